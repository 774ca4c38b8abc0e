#include "yilian/net/http.h"
#include "yilian/common/text.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <nlohmann/json.hpp>

namespace yilian::http {

Result<std::shared_ptr<SpooledBody>> SpooledBody::create(const std::string& dir) {
  std::string path = dir + "/body-XXXXXX";
  const int fd = ::mkstemp(path.data());
  if (fd < 0) {
    return make_error(Errc::unavailable,
                      "cannot keep the request body: " + std::string(std::strerror(errno)));
  }
  ::unlink(path.c_str());
  std::shared_ptr<SpooledBody> body(new SpooledBody());
  body->fd_ = fd;
  return body;
}

SpooledBody::~SpooledBody() {
  if (map_) ::munmap(map_, static_cast<std::size_t>(size_));
  if (fd_ >= 0) ::close(fd_);
}

Status SpooledBody::append(const void* data, std::size_t n) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = ::write(fd_, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      return make_error(errno == ENOSPC ? Errc::out_of_space : Errc::io,
                        "cannot keep the request body: " + std::string(std::strerror(errno)));
    }
    p += w;
    n -= static_cast<std::size_t>(w);
    size_ += static_cast<std::uint64_t>(w);
  }
  return Status::Ok();
}

Status SpooledBody::finish() {
  if (size_ == 0 || map_) return Status::Ok();
  void* m = ::mmap(nullptr, static_cast<std::size_t>(size_), PROT_READ, MAP_PRIVATE, fd_, 0);
  if (m == MAP_FAILED) return make_error(Errc::io, "cannot read the kept request body");
  map_ = m;
  return Status::Ok();
}

std::string_view SpooledBody::view() const {
  return map_ ? std::string_view(static_cast<const char*>(map_), static_cast<std::size_t>(size_))
              : std::string_view();
}
namespace {

std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < path.size()) {
    while (i < path.size() && path[i] == '/') ++i;
    std::size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    if (j > i) out.emplace_back(path.substr(i, j - i));
    i = j;
  }
  return out;
}

int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string Request::header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? std::string() : it->second;
}

std::optional<std::string> Request::query_value(const std::string& name) const {
  auto it = query.find(name);
  if (it == query.end()) return std::nullopt;
  return it->second;
}

Result<std::int64_t> Request::int_query(const std::string& name, std::int64_t fallback,
                                        std::int64_t max) const {
  auto v = query_value(name);
  if (!v) return fallback;
  std::int64_t out = 0;
  auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), out);
  if (ec != std::errc() || p != v->data() + v->size() || out < 0 || out > max) {
    return make_error(Errc::invalid_argument,
                      name + " must be an integer from 0 to " + std::to_string(max));
  }
  return out;
}

std::uint64_t Response::body_size() const {
  if (pieces.empty()) return body.size();
  std::uint64_t n = 0;
  for (const BodyPiece& p : pieces) n += p.size();
  return n;
}

Response Response::json(int status, std::string body) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

const char* error_code(int status) {
  switch (status) {
    case 400:
      return "invalid_argument";
    case 401:
      return "unauthenticated";
    case 403:
      return "forbidden";
    case 404:
      return "not_found";
    case 405:
      return "method_not_allowed";
    case 406:
      return "not_acceptable";
    case 409:
      return "conflict";
    case 411:
      return "length_required";
    case 413:
      return "payload_too_large";
    case 414:
      return "uri_too_long";
    case 415:
      return "unsupported_media_type";
    case 416:
      return "range_not_satisfiable";
    case 429:
      return "too_many_requests";
    case 503:
      return "unavailable";
    case 507:
      return "out_of_space";
    default:
      return status >= 500 ? "internal" : "invalid_argument";
  }
}

Response Response::error(int status, std::string_view message) {
  nlohmann::json j = {{"error", {{"code", error_code(status)}, {"message", message}}}};
  return json(status, json_text(j));
}

int status_for(Errc code) {
  switch (code) {
    case Errc::invalid_argument:
      return 400;
    case Errc::unauthenticated:
      return 401;
    case Errc::permission_denied:
      return 403;
    case Errc::not_found:
      return 404;
    case Errc::conflict:
      return 409;
    case Errc::unavailable:
      return 503;
    case Errc::out_of_space:
      return 507;
    case Errc::io:
    case Errc::corrupt:
    case Errc::internal:
      return 500;
  }
  return 500;
}

Response Response::from_error(const Error& e) { return error(status_for(e.code), e.message); }

std::string url_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2])));
      i += 2;
    } else if (s[i] == '+') {
      out.push_back(' ');
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

void add_query_value(std::map<std::string, std::string>& query, std::string name,
                     std::string value) {
  auto [it, fresh] = query.try_emplace(std::move(name), value);
  if (!fresh) it->second += "," + value;
}

std::string cookie_value(std::string_view header, std::string_view name) {
  while (!header.empty()) {
    std::size_t end = header.find(';');
    std::string_view pair = header.substr(0, end);
    header = end == std::string_view::npos ? std::string_view{} : header.substr(end + 1);
    while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
    const std::size_t eq = pair.find('=');
    if (eq != std::string_view::npos && pair.substr(0, eq) == name) {
      return std::string(pair.substr(eq + 1));
    }
  }
  return {};
}

std::map<std::string, std::string> parse_query(std::string_view query) {
  std::map<std::string, std::string> out;
  std::size_t i = 0;
  while (i <= query.size()) {
    std::size_t amp = query.find('&', i);
    if (amp == std::string_view::npos) amp = query.size();
    std::string_view pair = query.substr(i, amp - i);
    if (!pair.empty()) {
      std::size_t eq = pair.find('=');
      std::string key = url_decode(pair.substr(0, eq));
      std::string value =
          eq == std::string_view::npos ? std::string() : url_decode(pair.substr(eq + 1));
      add_query_value(out, std::move(key), std::move(value));
    }
    i = amp + 1;
  }
  return out;
}

void Router::add(std::string method, std::string pattern, Handler handler) {
  routes_.push_back(Route{std::move(method), split_path(pattern), std::move(handler)});
}

Response Router::dispatch(Request& request) const {
  std::vector<std::string> segs = split_path(request.path);
  bool path_matched = false;
  for (const Route& r : routes_) {
    // A last "{name...}" segment takes the rest of the path, none or several segments.
    const bool rest =
        !r.segments.empty() && r.segments.back().size() > 5 && r.segments.back().ends_with("...}");
    const std::size_t fixed = r.segments.size() - (rest ? 1 : 0);
    if (rest ? segs.size() < fixed : r.segments.size() != segs.size()) continue;
    std::map<std::string, std::string> params;
    bool ok = true;
    if (rest) {
      std::string tail;
      for (std::size_t i = fixed; i < segs.size(); ++i) tail += (tail.empty() ? "" : "/") + segs[i];
      const std::string& p = r.segments.back();
      params[p.substr(1, p.size() - 5)] = std::move(tail);
    }
    for (std::size_t i = 0; i < fixed && ok; ++i) {
      const std::string& p = r.segments[i];
      if (p.size() > 2 && p.front() == '{' && p.back() == '}') {
        params[p.substr(1, p.size() - 2)] = segs[i];
      } else {
        ok = p == segs[i];
      }
    }
    if (!ok) continue;
    path_matched = true;
    // HEAD is GET without the body (the server drops it).
    if (r.method != request.method && !(request.method == "HEAD" && r.method == "GET")) continue;
    request.params = std::move(params);
    return r.handler(request);
  }
  if (path_matched) return Response::error(405, "method not allowed here");
  return Response::error(404, "no such endpoint");
}

bool Cors::allowed(const std::string& origin) const {
  if (origin.empty()) return false;
  for (const std::string& o : origins_) {
    if (o == "*" || o == origin) return true;
  }
  return false;
}

std::optional<Response> Cors::preflight(const Request& request) const {
  if (request.method != "OPTIONS" || !allowed(request.origin)) return std::nullopt;
  Response r;
  r.status = 204;
  r.content_type = "text/plain";
  decorate(request, r);
  r.headers.emplace_back("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, OPTIONS");
  r.headers.emplace_back("Access-Control-Allow-Headers",
                         "Authorization, Content-Type, Accept, Range");
  r.headers.emplace_back("Access-Control-Max-Age", "600");
  return r;
}

void Cors::decorate(const Request& request, Response& response) const {
  if (!allowed(request.origin)) return;
  response.headers.emplace_back("Access-Control-Allow-Origin", request.origin);
  response.headers.emplace_back("Vary", "Origin");
  response.headers.emplace_back(
      "Access-Control-Expose-Headers",
      "X-Total-Count, Warning, Content-Type, Content-Length, Content-Range, Accept-Ranges");
}

}  // namespace yilian::http
