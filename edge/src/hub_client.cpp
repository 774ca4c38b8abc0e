#include "hub_client.h"

#include <curl/curl.h>

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

namespace yilian::edge {
namespace {

// Where an answer's body goes: the reply (small JSON), or a file (a download).
struct Sink {
  HubReply* reply = nullptr;
  std::FILE* file = nullptr;
  std::uint64_t max = 0;
  std::uint64_t written = 0;
};

std::size_t on_body(char* data, std::size_t size, std::size_t n, void* user) {
  auto* sink = static_cast<Sink*>(user);
  if (sink->written + size * n > sink->max) return 0;  // more than asked for: not the answer
  if (sink->file) {
    if (std::fwrite(data, 1, size * n, sink->file) != size * n) return 0;
  } else {
    sink->reply->body.append(data, size * n);
  }
  sink->written += size * n;
  return size * n;
}

std::size_t on_header(char* data, std::size_t size, std::size_t n, void* user) {
  auto* reply = static_cast<Sink*>(user)->reply;
  std::string_view line(data, size * n);
  const std::size_t colon = line.find(':');
  if (colon != std::string_view::npos) {
    std::string name(line.substr(0, colon));
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
      value.remove_prefix(1);
    while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' '))
      value.remove_suffix(1);
    reply->headers[name] = std::string(value);
  } else if (line.rfind("HTTP/", 0) == 0) {
    reply->headers.clear();  // a new response (after a 100 Continue)
  }
  return size * n;
}

}  // namespace

std::string reason_of(const HubReply& r) {
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  if (j.is_object() && j.contains("error") && j["error"].is_object() &&
      j["error"].value("message", "") != "")
    return "HTTP " + std::to_string(r.status) + ": " + j["error"].value("message", "");
  return "HTTP " + std::to_string(r.status);
}

Error hub_error(const HubReply& r) {
  const Errc code = r.status == 401 || r.status == 403 ? Errc::permission_denied
                    : r.status >= 500                  ? Errc::unavailable
                                                       : Errc::invalid_argument;
  return make_error(code, "the hub answered " + reason_of(r));
}

HubClient::HubClient(std::string base_url, std::string token, std::string ca_file)
    : base_url_(std::move(base_url)), token_(std::move(token)), ca_file_(std::move(ca_file)) {
  while (!base_url_.empty() && base_url_.back() == '/') base_url_.pop_back();
  curl_ = curl_easy_init();
}

HubClient::~HubClient() {
  if (curl_) curl_easy_cleanup(curl_);
}

Result<HubReply> HubClient::call(const std::string& method, const std::string& target,
                                 const std::vector<std::string>& headers, std::string_view body) {
  // Answers from the hub are small JSON; more than 4 MiB is not one.
  return perform(method, target, headers, body, nullptr, 4u << 20);
}

Result<HubReply> HubClient::download(const std::string& target,
                                     const std::vector<std::string>& headers,
                                     const std::filesystem::path& to, std::uint64_t max_bytes) {
  std::FILE* f = std::fopen(to.c_str(), "wb");
  if (!f) return make_error(Errc::io, "cannot write " + to.string());
  auto r = perform("GET", target, headers, {}, f, max_bytes);
  const bool flushed = std::fflush(f) == 0 && ::fsync(::fileno(f)) == 0;
  std::fclose(f);
  if (!r.ok()) return r;
  if (!flushed) return make_error(Errc::io, "cannot write " + to.string());
  if (r->status != 200) {
    // An error answer: its JSON, for the reason.
    std::ifstream in(to, std::ios::binary);
    r->body.assign(std::istreambuf_iterator<char>(in), {});
    if (r->body.size() > 4096) r->body.resize(4096);
  }
  return r;
}

Result<HubReply> HubClient::perform(const std::string& method, const std::string& target,
                                    const std::vector<std::string>& headers, std::string_view body,
                                    std::FILE* file, std::uint64_t max_body) {
  if (!curl_) return make_error(Errc::internal, "libcurl did not start");
  CURL* c = curl_;
  curl_easy_reset(c);
  HubReply reply;
  Sink sink{&reply, file, max_body, 0};
  const std::string url = target.rfind("http", 0) == 0 ? target : base_url_ + target;
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  if (std::getenv("YILIAN_CURL_VERBOSE")) curl_easy_setopt(c, CURLOPT_VERBOSE, 1L);
  curl_easy_setopt(c, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1));
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
  // A link that carries nothing for 20 s is down (a cut that closes nothing).
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 20L);
  // A download takes as long as the link needs (the low-speed limit finds a dead one).
  curl_easy_setopt(c, CURLOPT_TIMEOUT, file ? 0L : 300L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!ca_file_.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, ca_file_.c_str());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &sink);
  curl_slist* list = nullptr;
  const std::string auth = "Authorization: Bearer " + token_;
  list = curl_slist_append(list, auth.c_str());
  list = curl_slist_append(list, "Expect:");  // no 100-continue round trip per chunk
  for (const std::string& h : headers) list = curl_slist_append(list, h.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
  if (method == "HEAD") {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else if (method == "GET") {
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
  } else {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
    // Never a null pointer: with one, libcurl would read the body from stdin.
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.empty() ? "" : body.data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  }
  const CURLcode rc = curl_easy_perform(c);
  curl_slist_free_all(list);
  if (rc != CURLE_OK) {
    const bool tls = rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE ||
                     rc == CURLE_SSL_CONNECT_ERROR;
    return make_error(tls ? Errc::permission_denied : Errc::unavailable,
                      std::string(tls ? "the hub's certificate: " : "the link to the hub: ") +
                          curl_easy_strerror(rc));
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &reply.status);
  bytes_sent_ += body.size();
  return reply;
}

}  // namespace yilian::edge
