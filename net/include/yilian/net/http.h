// HTTP vocabulary shared by the modules that expose REST endpoints, free of any socket
// code: requests, responses, JSON errors, and a router whose routes are data.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "yilian/common/principal.h"
#include "yilian/common/result.h"

namespace yilian::http {

// A request body kept in a file instead of memory (a STOW-RS of whole-slide levels): written
// as it arrives, mapped read-only once complete. The file is unlinked when made, so it goes
// with this object whatever happens.
class SpooledBody {
 public:
  // A new empty body in directory `dir`.
  static Result<std::shared_ptr<SpooledBody>> create(const std::string& dir);
  ~SpooledBody();
  SpooledBody(const SpooledBody&) = delete;
  SpooledBody& operator=(const SpooledBody&) = delete;

  Status append(const void* data, std::size_t n);
  // After the last append: maps the bytes for view().
  Status finish();
  std::string_view view() const;
  std::uint64_t size() const { return size_; }

 private:
  SpooledBody() = default;
  int fd_ = -1;
  void* map_ = nullptr;
  std::uint64_t size_ = 0;
};

struct Request {
  std::string method;  // "GET", "POST", ...
  std::string path;    // decoded path, no query
  std::map<std::string, std::string> query;
  std::map<std::string, std::string> params;  // filled by the router from {name} segments
  std::string body;
  std::string peer;             // remote address
  std::string authorization;    // the Authorization header, as sent
  std::string accept;           // the Accept header, as sent
  std::string content_type;     // the Content-Type header of the request body
  std::string origin;           // the Origin header (browsers, cross-origin viewers)
  std::string range;            // the Range header (video seeking), as sent
  std::string accept_encoding;  // the Accept-Encoding header (pre-compressed static files)
  std::string cookie;           // the Cookie header (the advanced viewer's token)
  std::string if_none_match;    // the If-None-Match header (revalidated static files)
  // The resumable-upload headers (tus 1.0: Tus-Resumable, Upload-Offset, Upload-Length,
  // Upload-Metadata, X-HTTP-Method-Override), by lower-case name; absent ones are not in the map.
  std::map<std::string, std::string> headers;
  // Set by the authentication gate before dispatch for every protected path.
  std::optional<Principal> principal;
  // The body, when the server kept it in a file (`body` is then empty); see payload().
  std::shared_ptr<SpooledBody> spooled;

  // The body, wherever it is kept.
  std::string_view payload() const { return spooled ? spooled->view() : std::string_view(body); }

  std::optional<std::string> query_value(const std::string& name) const;
  // The value of header `lower_name` (one of the headers above), empty when absent.
  std::string header(const std::string& lower_name) const;
  // A non-negative integer query parameter in [0, max]; `fallback` when absent.
  Result<std::int64_t> int_query(const std::string& name, std::int64_t fallback,
                                 std::int64_t max) const;
};

// A piece of a streamed response body: bytes held in memory, or a byte range of a file that
// the server reads as it sends (large retrieves never sit in memory whole).
struct BodyPiece {
  std::string bytes;
  std::string file;  // when set, `length` bytes of it from `offset` instead of `bytes`
  std::uint64_t offset = 0, length = 0;
  std::uint64_t size() const { return file.empty() ? bytes.size() : length; }
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  // When not empty, the body is these pieces in order and `body` is ignored.
  std::vector<BodyPiece> pieces;
  // Extra response headers; a Cache-Control here replaces the default "no-store".
  std::vector<std::pair<std::string, std::string>> headers;

  std::uint64_t body_size() const;

  static Response json(int status, std::string body);
  // A JSON error body {"error": {"code", "message"}}; the code is the status's one code
  // (error_code below), so clients branch on one name per status.
  static Response error(int status, std::string_view message);
  // The one mapping of errors to HTTP: Errc -> status (status_for), then error().
  static Response from_error(const Error& e);
};

// The one error code of each status ("forbidden" for 403, "not_found" for 404, ...).
const char* error_code(int status);
// The status of each error kind (permission_denied -> 403, not_found -> 404, ...).
int status_for(Errc code);

using Handler = std::function<Response(const Request&)>;

class Router {
 public:
  // `pattern` is a path whose segments are literal or "{name}", e.g. "/api/studies/{uid}"; a
  // last segment "{name...}" takes the rest of the path (none or several segments, joined
  // with '/'), e.g. "/ohif/{path...}".
  void add(std::string method, std::string pattern, Handler handler);
  // 404 for an unknown path, 405 when the path exists for other methods.
  Response dispatch(Request& request) const;

 private:
  struct Route {
    std::string method;
    std::vector<std::string> segments;
    Handler handler;
  };
  std::vector<Route> routes_;
};

// Cross-origin access for browser viewers hosted elsewhere (OHIF): the allowed origins
// ("*" for any). Empty: no CORS headers at all, browsers keep to the same origin.
class Cors {
 public:
  explicit Cors(std::vector<std::string> origins = {}) : origins_(std::move(origins)) {}
  // A preflight (OPTIONS with an allowed Origin) is answered here, before authentication,
  // since browsers send it without credentials.
  std::optional<Response> preflight(const Request& request) const;
  // Adds the CORS headers to a response for an allowed origin.
  void decorate(const Request& request, Response& response) const;

 private:
  bool allowed(const std::string& origin) const;
  std::vector<std::string> origins_;
};

// Splits "a=1&b=x%20y" into decoded pairs.
std::map<std::string, std::string> parse_query(std::string_view query);
// Adds one query parameter; a repeated one holds its values comma-separated
// (includefield=a&includefield=b is includefield=a,b).
void add_query_value(std::map<std::string, std::string>& query, std::string name,
                     std::string value);
std::string url_decode(std::string_view s);
// The value of cookie `name` in a Cookie header ("a=1; b=2"); empty when it is not there.
std::string cookie_value(std::string_view header, std::string_view name);
int status_for(Errc code);

}  // namespace yilian::http
