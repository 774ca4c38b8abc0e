#include "request_limits.h"

#include <string_view>

namespace yilian::app {

RequestKind request_kind(const http::Request& r) {
  const std::string_view path = r.path;
  if (r.method == "GET" && (path.ends_with("/rendered") || path.ends_with("/thumbnail") ||
                            (path.starts_with("/api/ecg/") && path.ends_with("/render")))) {
    return RequestKind::render;
  }
  constexpr std::string_view kStudies = "/dicom-web/studies/";
  const bool stow = path == "/dicom-web/studies" ||
                    (path.starts_with(kStudies) &&
                     path.find('/', kStudies.size()) == std::string_view::npos);  // {study}
  if (r.method == "POST" && (stow || path == "/api/ecg")) {
    return RequestKind::upload;
  }
  return RequestKind::other;
}

http::Response RequestLimits::run(http::Request& request,
                                  const std::function<http::Response(http::Request&)>& handler) {
  const RequestKind kind = request_kind(request);
  if (kind == RequestKind::other || !request.principal) return handler(request);
  net::KeyedSlots& slots = kind == RequestKind::render ? renders_ : uploads_;
  auto slot = slots.try_acquire(std::to_string(request.principal->user_id));
  if (!slot) {
    http::Response r = http::Response::error(
        429, std::string("too many ") + (kind == RequestKind::render ? "renders" : "uploads") +
                 " at once for this user (at most " + std::to_string(slots.max_per_key()) +
                 "); try again when one has finished");
    r.headers.emplace_back("Retry-After", "1");
    return r;
  }
  return handler(request);
}

}  // namespace yilian::app
