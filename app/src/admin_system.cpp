#include "admin_system.h"

#include <sys/statvfs.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "backup.h"
#include "yilian/common/text.h"
#include "yilian/identity/rest.h"
#include "yilian/net/json_body.h"
#include "yilian/pacs/dicom_server.h"
#include "yilian/pacs/scu.h"
#include "yilian/storage/sql.h"

namespace yilian::app {
namespace {

namespace fs = std::filesystem;
using http::Request;
using http::Response;
using nlohmann::json;

// Bytes of a SQLite database with its write-ahead log.
std::uint64_t sqlite_bytes(const fs::path& file) {
  std::uint64_t n = 0;
  for (const char* suffix : {"", "-wal"}) {
    std::error_code ec;
    const auto size = fs::file_size(file.string() + suffix, ec);
    if (!ec) n += size;
  }
  return n;
}

json disk_json(const fs::path& dir) {
  struct statvfs st {};
  if (::statvfs(dir.c_str(), &st) != 0) return nullptr;
  return {{"path", dir.string()},
          {"freeBytes", static_cast<std::uint64_t>(st.f_bavail) * st.f_frsize},
          {"totalBytes", static_cast<std::uint64_t>(st.f_blocks) * st.f_frsize}};
}

}  // namespace

void register_admin_system_routes(http::Router& router, identity::AuthService& auth,
                                  storage::Database& database, reading::QueueStore& queue,
                                  SystemFacts facts) {
  router.add("GET", "/api/admin/system", [&auth, &database, &queue, facts](const Request& req) {
    if (auto no = identity::refuse_non_admin(auth, req, "system.read", "admin")) return *no;
    const bool postgres = database.dialect() == storage::sql::Dialect::postgres;
    json db = {{"backend", postgres ? "postgresql" : "sqlite"}};
    if (postgres) {
      std::int64_t bytes = 0;
      Status s = storage::read(database, [&](storage::sql::Db& conn) {
        return storage::sql::query(
            conn, "SELECT pg_database_size(current_database())", [](storage::sql::Stmt&) {},
            [&](storage::sql::Stmt& st) { bytes = st.int64(0); });
      });
      if (s.ok()) db["bytes"] = bytes;
    } else {
      db["indexBytes"] = sqlite_bytes(facts.data / "index.sqlite");
      db["auditBytes"] = sqlite_bytes(facts.data / "audit.sqlite");
    }
    json last = nullptr;
    {
      std::ifstream in(facts.data / kLastBackupFile);
      std::stringstream text;
      text << in.rdbuf();
      if (in) {
        json j = json::parse(text.str(), nullptr, false);
        if (j.is_object()) last = std::move(j);
      }
    }
    json depth = json::array();
    if (auto d = queue.depth(auth.now()); d.ok()) {
      for (const auto& row : *d) {
        depth.push_back(
            {{"status", row.status},
             {"priority", reading::priority_name(static_cast<reading::Priority>(row.priority))},
             {"count", row.count},
             {"overdue", row.overdue}});
      }
    }
    json disks = json::array({disk_json(facts.data)});
    if (facts.blobs != facts.data) disks.push_back(disk_json(facts.blobs));
    json body = {{"version", facts.version}, {"startedAt", facts.started_at},
                 {"now", auth.now()},        {"dicom", {{"aeTitle", facts.ae_title}}},
                 {"disks", disks},           {"database", db},
                 {"queue", depth},           {"lastBackup", last}};
    return Response::json(200, json_text(body));
  });

  // A modality's connection test: C-ECHO to the address given, or to the one configured for
  // its AE title ([[dicom.peers]]).
  router.add("POST", "/api/admin/dicom-echo", [&auth, facts](const Request& req) {
    if (auto no = identity::refuse_non_admin(auth, req, "dicom.echo", "admin")) return *no;
    auto body = http::json_object_body(req);
    if (!body.ok()) return Response::from_error(body.error());
    pacs::ScuPeer peer;
    peer.calling_ae = facts.ae_title;
    peer.called_ae = pacs::normalize_ae_title(http::json_string(*body, "aeTitle"));
    peer.host = http::json_string(*body, "host");
    if (auto p = body->find("port"); p != body->end() && p->is_number_unsigned()) {
      const auto port = p->get<std::uint64_t>();
      if (port == 0 || port > 65535) return Response::error(400, "port must be 1 to 65535");
      peer.port = static_cast<std::uint16_t>(port);
    }
    if (peer.called_ae.empty() || peer.called_ae.size() > 16) {
      return Response::error(400, "aeTitle must be 1 to 16 characters");
    }
    if (peer.host.empty()) {
      for (const DicomPeerConfig& p : facts.peers) {
        if (pacs::normalize_ae_title(p.ae_title) != peer.called_ae || p.port == 0) continue;
        peer.host = p.host;
        peer.port = p.port;
      }
    }
    if (peer.host.empty() || peer.port == 0) {
      return Response::error(
          400, "no address is configured for " + peer.called_ae + "; give its host and port");
    }
    auto ms = pacs::echo(peer);
    const std::string where = peer.host + ":" + std::to_string(peer.port);
    auth.audit(req, "dicom.echo", "ae", peer.called_ae, ms.ok() ? "ok" : "failed",
               ms.ok() ? where : ms.error().message);
    json answer = {
        {"aeTitle", peer.called_ae}, {"host", peer.host}, {"port", peer.port}, {"ok", ms.ok()}};
    if (ms.ok()) {
      answer["milliseconds"] = *ms;
    } else {
      answer["error"] = ms.error().message;
    }
    return Response::json(200, json_text(answer));
  });
}

}  // namespace yilian::app
