// How serve() connects the pieces that do not know each other: the /ws frames of the HTTP
// server to the teleconsult hub, and the health page over every service's counters.
#pragma once

#include "yilian/storage/cluster.h"
#include "yilian/storage/database.h"

#include <string>

#include "yilian/net/http.h"
#include "yilian/net/http_server.h"
#include "yilian/pacs/ingest.h"
#include "yilian/teleconsult/hub.h"

namespace yilian::app {

// The hub's Transport over the HTTP server's WebSocket connections.
class WsTransport final : public teleconsult::Transport {
 public:
  explicit WsTransport(net::HttpServer& server) : server_(server) {}
  void send(std::uint64_t conn, std::string text) override;
  void close(std::uint64_t conn, int code, const std::string& reason) override;

 private:
  net::HttpServer& server_;
};

// The server's /ws events, handed to the hub.
net::WsHandler ws_handler(teleconsult::Hub& hub);

// GET /healthz: status, version, the node and the peers it sees, the database, ingest and
// WebSocket counters (no authentication).
void register_health_route(http::Router& router, const std::string& version,
                           pacs::Ingestor& ingestor, net::HttpServer& http_server,
                           teleconsult::Hub& hub, storage::Database& database,
                           storage::Cluster& cluster);

}  // namespace yilian::app
