#include "hub_wiring.h"

#include <nlohmann/json.hpp>

#include "yilian/common/text.h"

namespace yilian::app {

void WsTransport::send(std::uint64_t conn, std::string text) {
  server_.ws_send(conn, std::move(text));
}

void WsTransport::close(std::uint64_t conn, int code, const std::string& reason) {
  server_.ws_close(conn, code, reason);
}

net::WsHandler ws_handler(teleconsult::Hub& hub) {
  return {[&hub](std::uint64_t c, std::string a, std::string peer) {
            hub.opened(c, std::move(a), std::move(peer));
          },
          [&hub](std::uint64_t c, std::string text) { hub.received(c, std::move(text)); },
          [&hub](std::uint64_t c) { hub.closed(c); }};
}

void register_health_route(http::Router& router, const std::string& version,
                           pacs::Ingestor& ingestor, net::HttpServer& http_server,
                           teleconsult::Hub& hub, storage::Database& database,
                           storage::Cluster& cluster) {
  router.add(
      "GET", "/healthz",
      [&ingestor, &http_server, &hub, &database, &cluster, version](const http::Request&) {
        auto c = ingestor.counters();
        // The database answers a query on a read connection (PostgreSQL may be down or
        // restarting; the load balancer then sends clients elsewhere).
        const Status reachable = storage::read(database, [](storage::sql::Db& conn) {
          return storage::sql::query(
              conn, "SELECT 1", [](storage::sql::Stmt&) {}, [](storage::sql::Stmt&) {});
        });
        nlohmann::json j = {
            {"status", reachable.ok() ? "ok" : "unavailable"},
            {"version", version},
            {"node", {{"id", cluster.node_id()}, {"leader", cluster.leader()}}},
            {"database",
             {{"backend",
               database.dialect() == storage::sql::Dialect::postgres ? "postgresql" : "sqlite"},
              {"reachable", reachable.ok()}}},
            {"ingest",
             {{"stored", c.stored},
              {"duplicates", c.duplicates},
              {"conflicts", c.conflicts},
              {"rejected", c.rejected},
              {"failed", c.failed},
              {"batches", c.batches}}}};
        // Live connections: a slow client dropped or a batch not saved shows here.
        auto w = http_server.ws_counters();
        auto h = hub.counters();
        j["websocket"] = {{"open", w.open},
                          {"accepted", w.accepted},
                          {"framesIn", w.frames_in},
                          {"framesOut", w.frames_out},
                          {"oversized", w.oversized},
                          {"slowDropped", w.slow_dropped},
                          {"queuedPeak", w.queued_peak},
                          {"pings", w.pings},
                          {"idleClosed", w.idle_closed},
                          {"authenticated", h.authenticated},
                          {"chatMessages", h.chat_messages},
                          {"errors", h.errors},
                          {"batches", h.batches},
                          {"commitFailures", h.commit_failures},
                          {"deferred", h.deferred},
                          {"refusedConnections", h.refused_connections},
                          {"rateLimited", h.rate_limited}};
        if (!reachable.ok()) j["database"]["error"] = reachable.error().message;
        nlohmann::json peers = nlohmann::json::array();
        for (const storage::NodeInfo& n : cluster.peers()) {
          peers.push_back({{"id", n.id}, {"address", n.address}, {"lastSeenMs", n.seen_ms}});
        }
        j["peers"] = std::move(peers);
        return http::Response::json(reachable.ok() ? 200 : 503, json_text(j));
      });
}

}  // namespace yilian::app
