#include "yilian/edge/back_channel.h"

#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>

#include "yilian/common/text.h"
#include "yilian/edge/protocol.h"
#include "yilian/identity/crypto.h"
#include "yilian/identity/policy.h"
#include "yilian/net/json_body.h"
#include "yilian/pacs/patient.h"
#include "yilian/pacs/study_access.h"
#include "yilian/reading/queue_settings.h"
#include "yilian/storage/sql.h"

namespace yilian::edge {

using http::Request;
using http::Response;
using nlohmann::json;
namespace sql = storage::sql;

namespace {

constexpr std::size_t kReportsPerSync = 200;
constexpr std::size_t kNoticesPerSync = 200;  // consults, and referrals, changed lately

bool is_edge(const Request& req) {
  return req.principal && req.principal->username.rfind(identity::kEdgeUserPrefix, 0) == 0;
}

std::string json_text(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<json> sync_body(storage::Database& db, std::int64_t institution, std::int64_t after,
                       const std::string& acked_since, const std::string& changed_since) {
  json accounts = json::array(), reports = json::array(), critical = json::array();
  json consults = json::array(), referrals = json::array();
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
    // The clinic's consults and referrals as they stand now, those changed in the window (a
    // handful a day per clinic: sent whole each time, the edge keeps the latest state).
    if (Status q = sql::query(
            c,
            "SELECT c.id, c.patient_id, c.patient_name, c.specialty, c.urgency, c.status, "
            "c.question, coalesce(c.opinion, ''), c.reason, coalesce(a.display_name, ''), "
            "coalesce(a.username, ''), q.username, c.created_at, c.updated_at FROM consults c "
            "JOIN users q ON q.id = c.requester_id LEFT JOIN users a ON a.id = c.assignee_id "
            "WHERE c.institution_id = ?1 AND c.updated_at >= ?2 ORDER BY c.updated_at DESC, c.id "
            "LIMIT ?3",
            [&](sql::Stmt& st) {
              st.bind(1, institution);
              st.bind(2, changed_since);
              st.bind(3, static_cast<std::int64_t>(kNoticesPerSync));
            },
            [&](sql::Stmt& st) {
              const std::string name = st.text(9);
              consults.push_back({{"id", st.int64(0)},
                                  {"patientId", st.text(1)},
                                  {"patientName", st.text(2)},
                                  {"specialty", st.text(3)},
                                  {"urgency", st.text(4)},
                                  {"status", st.text(5)},
                                  {"question", st.text(6)},
                                  {"opinion", st.text(7)},
                                  {"reason", st.text(8)},
                                  {"specialist", name.empty() ? st.text(10) : name},
                                  {"requester", st.text(11)},
                                  {"createdAt", st.text(12)},
                                  {"updatedAt", st.text(13)}});
            });
        !q)
      return q;
    if (Status q = sql::query(
            c,
            "SELECT r.id, r.direction, r.urgency, r.patient_id, r.patient_name, r.status, "
            "r.reason, "
            "r.answer, r.slot_date, r.discharge_summary, r.follow_up_plan, r.requested_by, "
            "CASE WHEN r.from_institution = ?1 THEN ti.name ELSE fi.name END, "
            "r.from_institution = ?1, r.created_at, r.updated_at FROM referrals r "
            "JOIN institutions fi ON fi.id = r.from_institution "
            "JOIN institutions ti ON ti.id = r.to_institution "
            "WHERE (r.from_institution = ?1 OR r.to_institution = ?1) AND r.updated_at >= ?2 "
            "ORDER BY r.updated_at DESC, r.id LIMIT ?3",
            [&](sql::Stmt& st) {
              st.bind(1, institution);
              st.bind(2, changed_since);
              st.bind(3, static_cast<std::int64_t>(kNoticesPerSync));
            },
            [&](sql::Stmt& st) {
              referrals.push_back({{"id", st.int64(0)},
                                   {"direction", st.text(1)},
                                   {"urgency", st.text(2)},
                                   {"patientId", st.text(3)},
                                   {"patientName", st.text(4)},
                                   {"status", st.text(5)},
                                   {"reason", st.text(6)},
                                   {"answer", st.text(7)},
                                   {"slotDate", st.text(8)},
                                   {"dischargeSummary", st.text(9)},
                                   {"followUpPlan", st.text(10)},
                                   {"requestedBy", st.text(11)},
                                   {"otherInstitution", st.text(12)},
                                   {"sentByClinic", st.int64(13) != 0},
                                   {"createdAt", st.text(14)},
                                   {"updatedAt", st.text(15)}});
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
  return json{{"accounts", std::move(accounts)},          {"reports", std::move(reports)},
              {"critical", std::move(critical)},          {"consults", std::move(consults)},
              {"referrals", std::move(referrals)},        {"next", next},
              {"more", reports.size() == kReportsPerSync}};
}

// The doctor of the edge's institution named by `by` (who acted at the edge), as the hub knows
// them; nullopt (audited as denied, `action` on `object`) when `by` names nobody of it.
Result<std::optional<Principal>> edge_doctor(const Request& req, identity::Accounts& accounts,
                                             identity::AuthService& auth, const std::string& by,
                                             const char* action, const char* object_type,
                                             const std::string& object) {
  auto user = accounts.find_user(by);
  if (!user.ok()) return user.error();
  if (!*user || (*user)->institution_id != req.principal->institution_id || (*user)->disabled) {
    auth.audit(req, action, object_type, object, "denied",
               "at the edge by " + by + ", not a user of the institution");
    return std::optional<Principal>();
  }
  auto who = accounts.principal((*user)->id);
  if (!who.ok()) return who.error();
  return std::optional<Principal>(std::move(*who));
}

constexpr std::int64_t kPriorsListed = 50;

}  // namespace

void register_back_channel_routes(http::Router& router, storage::Database& db,
                                  identity::Accounts& accounts, reading::ReadingQueue& queue,
                                  identity::AuthService& auth, pacs::Index& index,
                                  storage::BlobStore& blobs, std::string national_issuer) {
  // Priors: the studies of a patient a doctor of the clinic may read at the hub (their own
  // access rules: the clinic's studies, those shared with it by consult or referral), of the
  // clinic's patient: the ID is the clinic's own, so another member's study with the same
  // number is another person's unless both issued it under the national issuer.
  router.add(
      "GET", "/api/edge/v1/priors",
      [&accounts, &auth, &index, national_issuer](const Request& req) {
        if (!is_edge(req)) return Response::error(403, "edge nodes only");
        const std::string patient = req.query_value("patientId").value_or("");
        const std::string by = req.query_value("by").value_or("");
        if (!plain_patient_id(patient))
          return Response::error(400, "patientId must be one patient ID (no wildcards)");
        auto who = edge_doctor(req, accounts, auth, by, "edge.priors.list", "patient", patient);
        if (!who.ok()) return Response::from_error(who.error());
        if (!*who || !identity::has_clinical_role(**who))
          return Response::error(403, "by must name a doctor of the edge's institution");
        // Who the ID names is decided over every member's patient row of it, then only that
        // person's studies are searched: another member's studies of the same number, newer
        // than the patient's own, never take the patient's own places in the list.
        auto person = pacs::person_at(index, patient, (**who).institution_code, national_issuer);
        if (!person.ok()) return Response::from_error(person.error());
        pacs::StudyQuery q;
        q.patient_id = patient;
        q.institutions = person->institutions;
        auto found =
            index.search_studies(identity::study_scope(**who, auth.now()), q, kPriorsListed, 0);
        if (!found.ok()) return Response::from_error(found.error());
        json list = json::array();
        for (const pacs::StudySummary& st : found->studies) {
          list.push_back({{"studyInstanceUid", st.study_instance_uid},
                          {"patientId", st.patient_id},
                          {"patientName", st.patient_name},
                          {"studyDate", st.study_date},
                          {"modalities", st.modalities},
                          {"description", st.study_description},
                          {"institution", st.institution_code},
                          {"instances", st.num_instances},
                          {"bytes", st.size_bytes}});
        }
        auth.audit(req, "edge.priors.list", "patient", patient, "ok",
                   "at the edge by " + by + ": " + std::to_string(list.size()) + " studies");
        return Response::json(200, json_text(json{{"studies", std::move(list)}}));
      });
  // One prior study whole, as a bundle (multipart/related of the stored files, byte for byte),
  // streamed from the blob store.
  router.add(
      "GET", "/api/edge/v1/priors/{study}", [&accounts, &auth, &index, &blobs](const Request& req) {
        if (!is_edge(req)) return Response::error(403, "edge nodes only");
        const std::string study = req.params.count("study") ? req.params.at("study") : "";
        const std::string by = req.query_value("by").value_or("");
        auto who = edge_doctor(req, accounts, auth, by, "edge.priors.pull", "study", study);
        if (!who.ok()) return Response::from_error(who.error());
        if (!*who) return Response::error(403, "by must name a doctor of the edge's institution");
        auto may = pacs::may_read_study(index, **who, study, auth.now());
        if (!may.ok()) return Response::from_error(may.error());
        if (!*may) {
          auth.audit(req, "edge.priors.pull", "study", study, "denied", "at the edge by " + by);
          return Response::error(404, "no such study for this doctor");
        }
        auto detail = index.get_study(study);
        if (!detail.ok()) return Response::from_error(detail.error());
        if (!*detail) return Response::error(404, "no such study for this doctor");
        if (static_cast<std::uint64_t>((*detail)->study.size_bytes) > kMaxPriorBytes)
          return Response::error(413, "the study is larger than a prior pulled whole may be");
        Response r;
        // 128 random bits: not found in the files streamed (they are not searched for it).
        const std::string boundary = "yilian-prior-" + identity::random_hex(16);
        BundleWriter writer(boundary);
        r.content_type = writer.content_type();
        std::size_t count = 0;
        for (const auto& series : (*detail)->series) {
          auto instances = index.series_instances(series.series_instance_uid);
          if (!instances.ok()) return Response::from_error(instances.error());
          for (const pacs::InstanceLocation& i : *instances) {
            std::error_code ec;
            const std::string path = blobs.blob_path(i.blob_key).string();
            const auto size = std::filesystem::file_size(path, ec);
            if (ec) continue;  // gone since it was indexed: the rest is still worth having
            r.pieces.push_back({writer.part_head(), {}, 0, 0});
            r.pieces.push_back({{}, path, 0, size});
            r.pieces.push_back({std::string(BundleWriter::part_end()), {}, 0, 0});
            ++count;
          }
        }
        r.pieces.push_back({writer.finish(), {}, 0, 0});
        auth.audit(req, "edge.priors.pull", "study", study, "ok",
                   "at the edge by " + by + ": " + std::to_string(count) + " instances");
        return r;
      });
  router.add("GET", "/api/edge/v1/sync", [&db, &queue, &auth](const Request& req) {
    if (!is_edge(req)) return Response::error(403, "edge nodes only");
    auto after = req.int_query("after", 0, std::numeric_limits<std::int64_t>::max());
    if (!after.ok()) return Response::from_error(after.error());
    const auto now = storage::parse_iso8601(queue.now()).value_or(storage::TimePoint{});
    const auto week_ago = now - std::chrono::hours(24 * 7);
    const auto month_ago = now - std::chrono::hours(24 * 30);
    auto body = sync_body(db, req.principal->institution_id, *after, storage::to_iso8601(week_ago),
                          storage::to_iso8601(month_ago));
    if (!body.ok()) return Response::from_error(body.error());
    (*body)["priorityRules"] = reading::queue_setting(*queue.rules(), "priority_rules");
    auth.audit(req, "edge.sync", "institution", req.principal->institution_code, "ok",
               std::to_string((*body)["reports"].size()) + " reports, " +
                   std::to_string((*body)["critical"].size()) + " critical results, " +
                   std::to_string((*body)["consults"].size()) + " consults, " +
                   std::to_string((*body)["referrals"].size()) + " referrals, " +
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
               auto who = edge_doctor(req, accounts, auth, by, "critical.acknowledge",
                                      "critical_result", std::to_string(*id));
               if (!who.ok()) return Response::from_error(who.error());
               if (!*who)
                 return Response::error(403, "by must name a user of the edge's institution");
               Status s = queue.acknowledge_critical(**who, *id);
               auth.audit(req, "critical.acknowledge", "critical_result", std::to_string(*id),
                          s.ok() ? "ok" : "denied", "at the edge by " + by);
               if (!s) return Response::from_error(s.error());
               return Response::json(200, json_text(json{{"id", *id}, {"acknowledgedBy", by}}));
             });
}

}  // namespace yilian::edge
