// The libwebsockets side of net::HttpServer (private): an lws HTTP server on a libev (epoll) loop.
// Only the service thread touches lws objects; it reads requests and writes responses, while a pool
// of worker threads runs the HttpService on complete requests (renders, uploads and logins never
// stall other connections). A worker's answer returns to the service thread through
// lws_cancel_service() and deliver().
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "yilian/common/result.h"
#include "yilian/net/http.h"
#include "yilian/net/http_server.h"

struct lws_context;
struct lws;
struct ev_loop;
struct ev_async;
struct ev_timer;

namespace yilian::net {

class ServerCore {
 public:
  ServerCore(HttpServerOptions options, HttpService service);
  ~ServerCore();
  ServerCore(const ServerCore&) = delete;
  ServerCore& operator=(const ServerCore&) = delete;

  // Before start(): accept WebSocket upgrades on /ws.
  void enable_websockets(WsHandler handler, WsOptions options = {});

  Status start();
  // The port listened on (the one the system chose when the options said 0).
  std::uint16_t port() const { return bound_port_; }
  void stop();

  // Thread-safe. A message for a connection that has gone is dropped.
  void ws_send(std::uint64_t conn, std::string text);
  void ws_close(std::uint64_t conn, int code, std::string reason);
  WsCounters ws_counters() const;

  // Used by the lws callback, on the service thread.
  const HttpServerOptions& options() const { return options_; }
  // Queues a complete request for the workers; returns its id.
  std::uint64_t submit(lws* wsi, http::Request request);
  // Hands finished responses to their connections.
  void deliver();
  // The connection is gone: its pending answer, if any, is dropped.
  void forget(lws* wsi);
  // WebSocket events from the lws callback (service thread).
  bool ws_enabled() const { return ws_enabled_; }
  std::uint64_t ws_opened(lws* wsi, std::string authorization, std::string peer);
  void ws_received(std::uint64_t conn, std::string text, bool oversized);
  void ws_closed(std::uint64_t conn);
  // Something (a frame, a pong) arrived from `conn`: it is alive.
  void ws_heard(std::uint64_t conn);
  // Writes the next queued frame of `conn`; -1 to close the connection.
  int ws_writable(lws* wsi, std::uint64_t conn);
  const WsOptions& ws_options() const { return ws_options_; }

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
  struct ev_loop* loop_ = nullptr;  // libev (epoll), run by the service thread
  std::unique_ptr<ev_async> stop_watcher_;
  std::unique_ptr<ev_timer> idle_watcher_;  // once a second: ws_check_idle()
  std::thread service_;
  std::uint16_t bound_port_ = 0;

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

  // WebSockets.
  struct WsOut {
    std::uint64_t conn = 0;
    std::string text;
    int close_code = 0;  // non-zero: close with this code and `text` as the reason
  };
  struct WsConn {
    lws* wsi = nullptr;
    std::deque<std::string> queue;
    std::size_t queued_bytes = 0;
    int close_code = 0;
    std::string close_reason;
    double heard = 0;       // loop time of the last frame or pong from the client
    bool ping_due = false;  // a ping waits for the next writable callback
    bool pinged = false;    // since `heard`
    bool hung_up = false;   // closed for silence; lws finishes it
  };
  void ws_deliver();
  // Pings connections silent for ping_after_idle_s, closes those silent for
  // hangup_after_idle_s. One walk a second over the connections, where a timer per
  // connection re-armed on every frame would cost a sorted insertion each time.
  void ws_check_idle();
  bool ws_enabled_ = false;
  WsHandler ws_handler_;
  WsOptions ws_options_;
  std::mutex ws_mu_;
  std::vector<WsOut> ws_outbox_;  // guarded by ws_mu_
  mutable std::mutex ws_counters_mu_;
  WsCounters ws_counters_;                              // guarded by ws_counters_mu_
  std::unordered_map<std::uint64_t, WsConn> ws_conns_;  // service thread only
  std::uint64_t next_ws_id_ = 1;
};

}  // namespace yilian::net
