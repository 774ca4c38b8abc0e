// The edge's HTTP(S) client to the hub (libcurl): one connection kept alive, the hub's
// certificate verified, the edge credential on every request. Not thread-safe (one per
// thread).
#pragma once

#include <cstdint>
#include <cstdio>
#include <filesystem>
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

// The hub's JSON error message of an answer, or its status when there is none ("HTTP 409: ...").
std::string reason_of(const HubReply& r);
// An answer other than the one expected, as an error: 401/403 permission_denied (the
// credential), 5xx unavailable (tried again), any other invalid_argument (refused for good).
Error hub_error(const HubReply& r);

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
  // GET `target` with its body written to the file `to` (synced), at most `max_bytes` of it
  // (more: the exchange is broken off, unavailable). An error answer's body is also in the
  // reply (its first 4 KiB). No overall time limit: a link that carries nothing for 20 s is down.
  Result<HubReply> download(const std::string& target, const std::vector<std::string>& headers,
                            const std::filesystem::path& to, std::uint64_t max_bytes);
  // Bytes of request bodies the last calls put on the wire (for the throughput figure).
  std::uint64_t bytes_sent() const { return bytes_sent_; }

 private:
  Result<HubReply> perform(const std::string& method, const std::string& target,
                           const std::vector<std::string>& headers, std::string_view body,
                           std::FILE* file, std::uint64_t max_body);

  std::string base_url_, token_, ca_file_;
  CURL* curl_ = nullptr;
  std::uint64_t bytes_sent_ = 0;
};

}  // namespace yilian::edge
