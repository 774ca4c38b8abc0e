// libwebsockets HTTP server. Only the service thread touches lws objects; handlers run on
// it and must stay short (index reads). Requests are dispatched through an http::Router.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>

#include "yilian/common/http.h"
#include "yilian/common/result.h"

struct lws_context;

namespace yilian::app {

struct HttpServerOptions {
  std::uint16_t port = 8080;
  std::string bind_address;  // empty: all interfaces
  std::size_t max_body_bytes = 64u << 20;
};

class HttpServer {
 public:
  HttpServer(HttpServerOptions options, const http::Router& router);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  Status start();
  void stop();

  // Used by the lws callback.
  const http::Router& router() const { return router_; }
  const HttpServerOptions& options() const { return options_; }

 private:
  HttpServerOptions options_;
  const http::Router& router_;
  lws_context* context_ = nullptr;
  std::atomic<bool> stop_{false};
  std::thread service_;
};

}  // namespace yilian::app
