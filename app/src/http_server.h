// libwebsockets HTTP server. Only the service thread touches lws objects; it reads requests
// and writes responses, while a pool of worker threads runs the HttpService on complete
// requests (renders, uploads and logins never stall other connections). A worker's answer
// returns to the service thread through lws_cancel_service() and deliver().
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "yilian/common/http.h"
#include "yilian/common/result.h"

struct lws_context;
struct lws;

namespace yilian::app {

struct HttpServerOptions {
  std::uint16_t port = 8080;
  std::string bind_address;  // empty: all interfaces
  std::size_t max_body_bytes = 64u << 20;
  std::string tls_cert;  // PEM; with tls_key, serve HTTPS (and WSS) only
  std::string tls_key;
  unsigned worker_threads = 4;
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

  // Used by the lws callback, on the service thread.
  const HttpServerOptions& options() const { return options_; }
  // Queues a complete request for the workers; returns its id.
  std::uint64_t submit(lws* wsi, http::Request request);
  // Hands finished responses to their connections.
  void deliver();
  // The connection is gone: its pending answer, if any, is dropped.
  void forget(lws* wsi);

 private:
  void work();

  struct Job {
    std::uint64_t id = 0;
    http::Request request;
  };
  struct Done {
    std::uint64_t id = 0;
    http::Response response;
  };

  HttpServerOptions options_;
  HttpService handler_;
  lws_context* context_ = nullptr;
  std::atomic<bool> stop_{false};
  std::thread service_;

  std::mutex jobs_mu_;
  std::condition_variable jobs_cv_;
  std::deque<Job> jobs_;           // guarded by jobs_mu_
  bool stopping_workers_ = false;  // guarded by jobs_mu_
  std::vector<std::thread> workers_;
  std::mutex done_mu_;
  std::vector<Done> done_;  // guarded by done_mu_
  // Service thread only.
  std::unordered_map<std::uint64_t, lws*> waiting_;
  std::uint64_t next_id_ = 1;
};

}  // namespace yilian::app
