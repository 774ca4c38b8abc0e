// The edge's HTTP(S) client to the hub (libcurl): one connection kept alive, the hub's
// certificate verified, the edge credential on every request. Not thread-safe (one per
// thread).
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "yilian/common/result.h"

typedef void CURL;

namespace yilian::edge {

struct HubReply {
  long status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

class HubClient {
 public:
  // `base_url`: https://hub:port (no trailing slash); `ca_file`: PEM to verify the hub with,
  // empty for the system's trust store.
  HubClient(std::string base_url, std::string token, std::string ca_file);
  ~HubClient();
  HubClient(const HubClient&) = delete;
  HubClient& operator=(const HubClient&) = delete;

  // `target`: a path on the hub ("/api/...") or a full URL. Errors: unavailable when the hub
  // could not be reached or the exchange broke off (the link), with curl's reason.
  Result<HubReply> call(const std::string& method, const std::string& target,
                        const std::vector<std::string>& headers, std::string_view body = {});
  // Bytes of request bodies the last calls put on the wire (for the throughput figure).
  std::uint64_t bytes_sent() const { return bytes_sent_; }

 private:
  std::string base_url_, token_, ca_file_;
  CURL* curl_ = nullptr;
  std::uint64_t bytes_sent_ = 0;
};

}  // namespace yilian::edge
