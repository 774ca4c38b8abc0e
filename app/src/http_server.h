// libwebsockets HTTP server. Only the service thread touches lws objects; handlers run on
// it and must stay short (index reads). Requests go to one HttpService function.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
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
  std::string tls_cert;  // PEM; with tls_key, serve HTTPS (and WSS) only
  std::string tls_key;
};

// Handles one complete request (authentication gate, then routing).
using HttpService = std::function<http::Response(http::Request&)>;

class HttpServer {
 public:
  HttpServer(HttpServerOptions options, HttpService service);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  Status start();
  void stop();

  // Used by the lws callback.
  http::Response handle(http::Request& request) const { return handler_(request); }
  const HttpServerOptions& options() const { return options_; }

 private:
  HttpServerOptions options_;
  HttpService handler_;
  lws_context* context_ = nullptr;
  std::atomic<bool> stop_{false};
  std::thread service_;
};

}  // namespace yilian::app
