// Per-user limits on the HTTP requests that hold a worker and memory for long: renders
// (rendered frames, thumbnails, cine videos, ECG images) and uploads (STOW-RS, ECG uploads).
// A user at the limit gets 429 too_many_requests with Retry-After; everyone else goes on.
#pragma once

#include <functional>

#include "yilian/net/http.h"
#include "yilian/net/limits.h"

namespace yilian::app {

enum class RequestKind { other, render, upload };

// What a request is, by method and path.
RequestKind request_kind(const http::Request& request);

class RequestLimits {
 public:
  RequestLimits(std::size_t renders_per_user, std::size_t uploads_per_user)
      : renders_(renders_per_user), uploads_(uploads_per_user) {}

  // Runs `handler` while holding one of the caller's slots of the request's kind; 429 when the
  // caller holds them all. Requests of no limited kind, and requests with no signed-in user,
  // run as they are. Thread-safe.
  http::Response run(http::Request& request,
                     const std::function<http::Response(http::Request&)>& handler);

 private:
  net::KeyedSlots renders_, uploads_;
};

}  // namespace yilian::app
