// The hub's HTTP(S) and WebSocket server (libwebsockets on a libev loop; no lws type in this
// header). One service thread owns the sockets: it reads requests and writes responses, while
// a pool of worker threads runs the HttpService on complete requests (renders, uploads and
// logins never stall other connections). WebSocket connections on /ws share the port.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "yilian/common/result.h"
#include "yilian/net/http.h"

namespace yilian::net {

struct HttpServerOptions {
  std::uint16_t port = 8080;
  std::string bind_address;  // empty: all interfaces
  std::size_t max_body_bytes = 64u << 20;
  std::string tls_cert;  // PEM; with tls_key, serve HTTPS (and WSS) only
  std::string tls_key;
  unsigned worker_threads = 4;
  // Requests `spool` picks (by method and path, before the body is read) may be larger, up to
  // max_spooled_bytes: their body is written to a file in `spool_dir` as it arrives and given
  // to the handler as Request::spooled (STOW-RS of whole-slide images).
  std::function<bool(const http::Request&)> spool{};
  std::string spool_dir{};
  std::uint64_t max_spooled_bytes = 0;
};

// Handles one complete request (authentication gate, then routing).
using HttpService = std::function<http::Response(http::Request&)>;

// WebSocket connections on /ws (same port). Called on the service thread; keep them short
// (queue the work). `opened` receives the upgrade request's Authorization header, if any.
struct WsHandler {
  std::function<void(std::uint64_t conn, std::string authorization, std::string peer)> opened;
  std::function<void(std::uint64_t conn, std::string text)> message;
  std::function<void(std::uint64_t conn)> closed;
};

struct WsOptions {
  std::size_t max_message_bytes = 64 * 1024;  // larger ones arrive cut to max+1 bytes
  std::size_t max_queued_messages = 1024;     // per connection; beyond: the client is too slow
  std::size_t max_queued_bytes = 4u << 20;
  std::uint16_t ping_after_idle_s = 30;    // a connection heard nothing from is pinged...
  std::uint16_t hangup_after_idle_s = 75;  // ...and closed when nothing answers
};

struct WsCounters {
  std::uint64_t open = 0, accepted = 0, frames_in = 0, frames_out = 0;
  std::uint64_t oversized = 0;     // messages above the limit (answered with an error)
  std::uint64_t slow_dropped = 0;  // connections closed because their send queue overflowed
  std::uint64_t queued_peak = 0;   // deepest send queue seen
  std::uint64_t pings = 0;         // sent to connections that had gone quiet
  std::uint64_t idle_closed = 0;   // connections closed because nothing answered a ping
};

// The HTTP library logs errors only (call once at start-up).
void log_errors_only();

class ServerCore;

class HttpServer {
 public:
  HttpServer(HttpServerOptions options, HttpService service);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Before start(): accept WebSocket upgrades on /ws.
  void enable_websockets(WsHandler handler, WsOptions options = {});

  Status start();
  // The port listened on (the one the system chose when the options said 0).
  std::uint16_t port() const;
  void stop();

  // Thread-safe. A message for a connection that has gone is dropped.
  void ws_send(std::uint64_t conn, std::string text);
  void ws_close(std::uint64_t conn, int code, std::string reason);
  WsCounters ws_counters() const;

 private:
  std::unique_ptr<ServerCore> core_;
};

}  // namespace yilian::net
