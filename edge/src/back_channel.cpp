#include "yilian/edge/back_channel.h"

#include <limits>
#include <nlohmann/json.hpp>

#include "yilian/common/text.h"
#include "yilian/net/json_body.h"
#include "yilian/storage/sql.h"

namespace yilian::edge {

using http::Request;
using http::Response;
using nlohmann::json;
namespace sql = storage::sql;

namespace {

constexpr std::size_t kReportsPerSync = 200;

bool is_edge(const Request& req) {
  return req.principal && req.principal->username.rfind(identity::kEdgeUserPrefix, 0) == 0;
}

std::string json_text(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<json> sync_body(storage::Database& db, std::int64_t institution, std::int64_t after,
                       const std::string& acked_since) {
  json accounts = json::array(), reports = json::array(), critical = json::array();
  std::int64_t next = after;
  Status s = storage::read(db, [&](sql::Db& c) -> Status {
    if (Status q = sql::query(
            c,
            "SELECT username, display_name, roles, password_hash, disabled FROM users "
            "WHERE institution_id = ?1 AND username NOT LIKE 'edge.%' ORDER BY username",
            [&](sql::Stmt& st) { st.bind(1, institution); },
            [&](sql::Stmt& st) {
              accounts.push_back({{"username", st.text(0)},
                                  {"displayName", st.text(1)},
                                  {"roles", st.text(2)},
                                  {"passwordHash", st.text(3)},
                                  {"disabled", st.int64(4) != 0}});
            });
        !q)
      return q;
    if (Status q = sql::query(
            c,
            "SELECT r.id, t.id, s.study_uid, p.patient_id, p.name, s.modalities, s.description, "
            "s.study_date, r.kind, r.findings, r.impression, r.critical, coalesce(u.display_name, "
            "''), coalesce(u.username, ''), r.created_at FROM reports r "
            "JOIN reading_tasks t ON t.id = r.task_id JOIN studies s ON s.id = t.study_pk "
            "JOIN patients p ON p.id = s.patient_pk LEFT JOIN users u ON u.id = r.author_id "
            "WHERE t.institution_id = ?1 AND r.kind IN ('final', 'addendum') AND r.id > ?2 "
            "ORDER BY r.id LIMIT ?3",
            [&](sql::Stmt& st) {
              st.bind(1, institution);
              st.bind(2, after);
              st.bind(3, static_cast<std::int64_t>(kReportsPerSync));
            },
            [&](sql::Stmt& st) {
              next = std::max(next, st.int64(0));
              const std::string name = st.text(12);
              reports.push_back({{"id", st.int64(0)},
                                 {"taskId", st.int64(1)},
                                 {"studyInstanceUid", st.text(2)},
                                 {"patientId", st.text(3)},
                                 {"patientName", st.text(4)},
                                 {"modalities", st.text(5)},
                                 {"description", st.text(6)},
                                 {"studyDate", st.text(7)},
                                 {"kind", st.text(8)},
                                 {"findings", st.text(9)},
                                 {"impression", st.text(10)},
                                 {"critical", st.int64(11) != 0},
                                 {"author", name.empty() ? st.text(13) : name},
                                 {"createdAt", st.text(14)}});
            });
        !q)
      return q;
    return sql::query(
        c,
        "SELECT c.id, c.task_id, s.study_uid, p.patient_id, p.name, s.modalities, r.impression, "
        "c.created_at, coalesce(u.username, ''), coalesce(c.acknowledged_at, '') "
        "FROM critical_results c JOIN reading_tasks t ON t.id = c.task_id "
        "JOIN studies s ON s.id = t.study_pk JOIN patients p ON p.id = s.patient_pk "
        "JOIN reports r ON r.id = c.report_id LEFT JOIN users u ON u.id = c.acknowledged_by "
        "WHERE c.institution_id = ?1 AND (c.acknowledged_at IS NULL OR c.acknowledged_at >= ?2) "
        "ORDER BY c.id",
        [&](sql::Stmt& st) {
          st.bind(1, institution);
          st.bind(2, acked_since);
        },
        [&](sql::Stmt& st) {
          critical.push_back({{"id", st.int64(0)},
                              {"taskId", st.int64(1)},
                              {"studyInstanceUid", st.text(2)},
                              {"patientId", st.text(3)},
                              {"patientName", st.text(4)},
                              {"modalities", st.text(5)},
                              {"impression", st.text(6)},
                              {"createdAt", st.text(7)},
                              {"acknowledgedBy", st.text(8)},
                              {"acknowledgedAt", st.text(9)}});
        });
  });
  if (!s) return s.error();
  return json{{"accounts", std::move(accounts)},
              {"reports", std::move(reports)},
              {"critical", std::move(critical)},
              {"next", next},
              {"more", reports.size() == kReportsPerSync}};
}

}  // namespace

void register_back_channel_routes(http::Router& router, storage::Database& db,
                                  identity::Accounts& accounts, reading::ReadingQueue& queue,
                                  identity::AuthService& auth) {
  router.add("GET", "/api/edge/v1/sync", [&db, &queue, &auth](const Request& req) {
    if (!is_edge(req)) return Response::error(403, "edge nodes only");
    auto after = req.int_query("after", 0, std::numeric_limits<std::int64_t>::max());
    if (!after.ok()) return Response::from_error(after.error());
    const auto week_ago = storage::parse_iso8601(queue.now()).value_or(storage::TimePoint{}) -
                          std::chrono::hours(24 * 7);
    auto body = sync_body(db, req.principal->institution_id, *after, storage::to_iso8601(week_ago));
    if (!body.ok()) return Response::from_error(body.error());
    auth.audit(req, "edge.sync", "institution", req.principal->institution_code, "ok",
               std::to_string((*body)["reports"].size()) + " reports, " +
                   std::to_string((*body)["critical"].size()) + " critical results, " +
                   std::to_string((*body)["accounts"].size()) + " accounts");
    return Response::json(200, json_text(*body));
  });
  router.add("POST", "/api/edge/v1/critical-results/{id}/acknowledge",
             [&accounts, &queue, &auth](const Request& req) {
               if (!is_edge(req)) return Response::error(403, "edge nodes only");
               auto id = http::path_id(req, "id", "critical result id");
               if (!id.ok()) return Response::from_error(id.error());
               auto body = http::json_object_body(req);
               if (!body.ok()) return Response::from_error(body.error());
               const std::string by = http::json_string(*body, "by");
               // The doctor who acknowledged at the edge, a user of the edge's institution.
               auto user = accounts.find_user(by);
               if (!user.ok()) return Response::from_error(user.error());
               if (!*user || (*user)->institution_id != req.principal->institution_id) {
                 auth.audit(req, "critical.acknowledge", "critical_result", std::to_string(*id),
                            "denied", "at the edge by " + by + ", not a user of the institution");
                 return Response::error(403, "by must name a user of the edge's institution");
               }
               auto who = accounts.principal((*user)->id);
               if (!who.ok()) return Response::from_error(who.error());
               Status s = queue.acknowledge_critical(*who, *id);
               auth.audit(req, "critical.acknowledge", "critical_result", std::to_string(*id),
                          s.ok() ? "ok" : "denied", "at the edge by " + by);
               if (!s) return Response::from_error(s.error());
               return Response::json(200, json_text(json{{"id", *id}, {"acknowledgedBy", by}}));
             });
}

}  // namespace yilian::edge
