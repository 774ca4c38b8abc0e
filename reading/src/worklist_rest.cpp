#include "yilian/reading/worklist_rest.h"

#include <algorithm>
#include <charconv>
#include <map>
#include <nlohmann/json.hpp>

#include "yilian/common/stats.h"
#include "yilian/common/text.h"
#include "yilian/identity/policy.h"
#include "yilian/net/json_body.h"

namespace yilian::reading {
namespace {

using http::Request;
using http::Response;
using nlohmann::json;

Result<std::int64_t> task_id(const Request& req) { return http::path_id(req, "id", "task id"); }

Result<json> body(const Request& req) { return http::json_object_body(req); }

std::string str(const json& j, const char* key) { return http::json_string(j, key); }

json task_json(const ReadingQueue& q, const reading::TaskRow& t) {
  return {{"id", t.id},
          {"studyInstanceUid", t.study_uid},
          {"service", t.service},
          {"institution", t.institution_code},
          {"modalities", t.modality},
          {"kind", t.is_ecg ? "ecg" : "imaging"},
          {"priority", priority_name(static_cast<Priority>(t.priority))},
          {"priorityReason", t.priority_reason},
          {"status", t.status},
          {"receivedAt", t.received_at},
          {"routedAt", t.routed_at},
          {"dueAt", t.due_at},
          {"overdue", q.overdue(t)},
          {"nearDue", q.near_due(t)},
          {"escalatedAt", t.escalated_at.empty() ? json(nullptr) : json(t.escalated_at)},
          {"claimedBy", t.claimed_by_name.empty() ? json(nullptr) : json(t.claimed_by_name)},
          {"leaseExpiresAt", t.lease_expires_at.empty() ? json(nullptr) : json(t.lease_expires_at)},
          {"finalAt", t.final_at.empty() ? json(nullptr) : json(t.final_at)},
          {"patient", {{"id", t.patient_id}, {"name", t.patient_name}}},
          {"description", t.description},
          {"indication", t.indication},
          {"clinicalQuestion", t.clinical_question},
          {"arriving", t.arriving},
          {"instances", t.instances}};
}

json report_json(const reading::ReportRow& r) {
  return {{"id", r.id},
          {"version", r.version},
          {"kind", r.kind},
          {"findings", r.findings},
          {"impression", r.impression},
          {"critical", r.critical},
          {"author", r.author},
          {"createdAt", r.created_at}};
}

json event_json(const reading::TaskEvent& e) {
  return {{"taskId", e.task_id},
          {"at", e.at},
          {"type", e.type},
          {"actor", e.actor},
          {"detail", e.detail}};
}

Response fail(const Error& e) { return Response::from_error(e); }

void audit(identity::AuthService& auth, const Request& req, const char* action, std::int64_t id,
           bool ok, std::string detail = {}) {
  auth.audit(req, action, "task", std::to_string(id), ok ? "ok" : "denied", std::move(detail));
}

}  // namespace

void register_worklist_routes(http::Router& router, ReadingQueue& q, identity::AuthService& auth,
                              StatementKnown statement_known) {
  router.add("GET", "/api/worklist", [&q, &auth](const Request& req) {
    reading::WorklistFilter f;
    f.service = req.query_value("service").value_or("");
    f.status = req.query_value("status").value_or("");
    f.institution_code = req.query_value("institution").value_or("");
    f.overdue = req.query_value("overdue").value_or("") == "true";
    if (auto p = req.query_value("priority")) {
      auto pr = parse_priority(*p);
      if (!pr) return Response::error(400, "priority is stat, urgent or routine");
      f.priority = static_cast<int>(*pr);
    }
    if (!f.status.empty() && !parse_task_status(f.status)) {
      return Response::error(400, "status is queued, claimed, preliminary or final");
    }
    auto limit = req.int_query("limit", 50, 1000);
    if (!limit.ok()) return fail(limit.error());
    auto offset = req.int_query("offset", 0, std::int64_t{1} << 40);
    if (!offset.ok()) return fail(offset.error());
    f.limit = *limit;
    f.offset = *offset;
    auto page = q.worklist(*req.principal, f);
    if (!page.ok()) return fail(page.error());
    json tasks = json::array();
    for (const auto& t : page->first) tasks.push_back(task_json(q, t));
    auth.audit(req, "worklist.read", "worklist", "", "ok",
               std::to_string(page->first.size()) + " of " + std::to_string(page->second));
    return Response::json(
        200,
        json_text(json{
            {"total", page->second}, {"limit", f.limit}, {"offset", f.offset}, {"tasks", tasks}}));
  });

  router.add("POST", "/api/studies/{uid}/complete", [&q, &auth](const Request& req) {
    const std::string& uid = req.params.at("uid");
    auto b = body(req);
    if (!b.ok()) return fail(b.error());
    const std::string question = str(*b, "clinicalQuestion");
    if (question.size() > 2000) {
      return Response::error(400, "clinicalQuestion is at most 2000 bytes");
    }
    auto ids = q.study_complete(*req.principal, uid, question);
    auth.audit(req, "study.complete", "study", uid, ids.ok() ? "ok" : "denied");
    if (!ids.ok()) return fail(ids.error());
    return Response::json(200, json_text(json{{"studyInstanceUid", uid}, {"tasks", *ids}}));
  });

  router.add("POST", "/api/worklist/claim-next", [&q, &auth](const Request& req) {
    auto t = q.claim_next(*req.principal);
    if (!t.ok()) return fail(t.error());
    if (!t->has_value()) return Response::json(200, R"({"task":null})");
    audit(auth, req, "task.claim", (**t).id, true, "claim next");
    return Response::json(200, json_text(json{{"task", task_json(q, **t)}}));
  });

  router.add("GET", "/api/tasks/{id}", [&q, &auth](const Request& req) {
    auto id = task_id(req);
    if (!id.ok()) return fail(id.error());
    auto t = q.task(*req.principal, *id);
    audit(auth, req, "task.read", *id, t.ok());
    if (!t.ok()) return fail(t.error());
    json j = task_json(q, *t);
    auto reports = q.reports(*req.principal, *id);
    if (!reports.ok()) return fail(reports.error());
    j["reports"] = json::array();
    for (const auto& r : *reports) j["reports"].push_back(report_json(r));
    return Response::json(200, json_text(j));
  });

  auto simple = [&q, &auth](const char* action,
                            std::function<Status(const Principal&, std::int64_t, const json&)> op) {
    return [&q, &auth, action, op](const Request& req) {
      auto id = task_id(req);
      if (!id.ok()) return fail(id.error());
      auto b = body(req);
      if (!b.ok()) return fail(b.error());
      Status s = op(*req.principal, *id, *b);
      audit(auth, req, action, *id, s.ok(), s.ok() ? "" : s.error().message);
      if (!s) return fail(s.error());
      auto t = q.task(*req.principal, *id);
      if (!t.ok()) return fail(t.error());
      return Response::json(200, json_text(task_json(q, *t)));
    };
  };

  router.add("POST", "/api/tasks/{id}/claim",
             simple("task.claim", [&q](const Principal& p, std::int64_t id, const json&) {
               auto r = q.claim(p, id);
               return r.ok() ? Status::Ok() : Status(r.error());
             }));
  router.add("POST", "/api/tasks/{id}/heartbeat",
             simple("task.heartbeat", [&q](const Principal& p, std::int64_t id, const json&) {
               return q.heartbeat(p, id);
             }));
  router.add("POST", "/api/tasks/{id}/release",
             simple("task.release", [&q](const Principal& p, std::int64_t id, const json&) {
               return q.release(p, id);
             }));
  router.add("POST", "/api/tasks/{id}/reassign",
             simple("task.reassign", [&q](const Principal& p, std::int64_t id, const json& b) {
               return q.reassign(p, id, str(b, "to"), str(b, "reason"));
             }));
  router.add(
      "POST", "/api/tasks/{id}/priority",
      simple("task.priority", [&q](const Principal& p, std::int64_t id, const json& b) {
        auto pr = parse_priority(str(b, "priority"));
        if (!pr) {
          return Status(make_error(Errc::invalid_argument, "priority is stat, urgent or routine"));
        }
        return q.raise_priority(p, id, *pr, str(b, "reason"));
      }));
  router.add("POST", "/api/tasks/{id}/qc",
             simple("task.qc", [&q](const Principal& p, std::int64_t id, const json& b) {
               return q.record_qc(p, id, str(b, "agreement"), str(b, "comment"));
             }));

  router.add("POST", "/api/tasks/{id}/reports", [&q, &auth, statement_known](const Request& req) {
    auto id = task_id(req);
    if (!id.ok()) return fail(id.error());
    auto b = body(req);
    if (!b.ok()) return fail(b.error());
    auto kind = parse_report_kind(str(*b, "kind"));
    if (!kind) {
      return Response::error(400, "kind is draft, preliminary, final or addendum");
    }
    bool critical = b->value("critical", false);
    // An ECG report's statements: {"proposed": [codes], "signed": [codes]}.
    std::optional<std::pair<std::vector<std::string>, std::vector<std::string>>> statements;
    if (auto st = b->find("statements"); st != b->end() && !st->is_null()) {
      auto codes = [&](const char* key) -> std::optional<std::vector<std::string>> {
        std::vector<std::string> out;
        if (!st->is_object()) return std::nullopt;
        auto it = st->find(key);
        if (it == st->end()) return out;
        if (!it->is_array() || it->size() > 60) return std::nullopt;
        for (const json& c : *it) {
          if (!c.is_string()) return std::nullopt;
          const std::string code = c.get<std::string>();
          if (code.empty() || code.size() > 40 ||
              code.find_first_not_of("abcdefghijklmnopqrstuvwxyz_") != std::string::npos)
            return std::nullopt;
          out.push_back(code);
        }
        return out;
      };
      auto proposed = codes("proposed"), signed_list = codes("signed");
      if (!proposed || !signed_list) {
        return Response::error(
            400, "statements is {proposed, signed}: lists of statement codes (a-z and _)");
      }
      if (statement_known) {
        for (const auto* list : {&*proposed, &*signed_list}) {
          for (const std::string& code : *list) {
            if (!statement_known(code))
              return Response::error(400, "unknown statement code: " + code);
          }
        }
      }
      statements = std::make_pair(std::move(*proposed), std::move(*signed_list));
    }
    auto r = q.report(*req.principal, *id, *kind, str(*b, "findings"), str(*b, "impression"),
                      critical, std::move(statements));
    audit(auth, req, "task.report", *id, r.ok(),
          r.ok() ? std::string(report_kind_name(*kind)) + (critical ? ", critical" : "")
                 : r.error().message);
    if (!r.ok()) return fail(r.error());
    return Response::json(201, json_text(report_json(*r)));
  });

  router.add("GET", "/api/tasks/{id}/events", [&q, &auth](const Request& req) {
    auto id = task_id(req);
    if (!id.ok()) return fail(id.error());
    auto ev = q.events(*req.principal, *id);
    audit(auth, req, "task.events", *id, ev.ok());
    if (!ev.ok()) return fail(ev.error());
    json list = json::array();
    for (const auto& e : *ev) list.push_back(event_json(e));
    return Response::json(200, json_text(json{{"events", list}}));
  });

  router.add("GET", "/api/tasks/{id}/priors", [&q, &auth](const Request& req) {
    auto id = task_id(req);
    if (!id.ok()) return fail(id.error());
    auto priors = q.priors(*req.principal, *id);
    audit(auth, req, "task.priors", *id, priors.ok());
    if (!priors.ok()) return fail(priors.error());
    json list = json::array();
    for (const auto& p : *priors) {
      list.push_back({{"studyInstanceUid", p.study_uid},
                      {"studyDate", p.study_date},
                      {"modalities", p.modalities},
                      {"description", p.description},
                      {"institution", p.institution_code},
                      {"impression", p.impression.empty() ? json(nullptr) : json(p.impression)}});
    }
    return Response::json(200, json_text(json{{"priors", list}}));
  });

  router.add("GET", "/api/critical-results", [&q](const Request& req) {
    bool open_only = req.query_value("open").value_or("true") != "false";
    auto rows = q.critical_results(*req.principal, open_only);
    if (!rows.ok()) return fail(rows.error());
    json list = json::array();
    for (const auto& c : *rows) {
      list.push_back(
          {{"id", c.id},
           {"taskId", c.task_id},
           {"studyInstanceUid", c.study_uid},
           {"institution", c.institution_code},
           {"impression", c.impression},
           {"createdAt", c.created_at},
           {"acknowledgedBy", c.acknowledged_by.empty() ? json(nullptr) : json(c.acknowledged_by)},
           {"acknowledgedAt", c.acknowledged_at.empty() ? json(nullptr) : json(c.acknowledged_at)},
           {"escalatedAt", c.escalated_at.empty() ? json(nullptr) : json(c.escalated_at)}});
    }
    return Response::json(200, json_text(json{{"criticalResults", list}}));
  });

  router.add("POST", "/api/critical-results/{id}/acknowledge", [&q, &auth](const Request& req) {
    auto id = task_id(req);
    if (!id.ok()) return fail(id.error());
    Status s = q.acknowledge_critical(*req.principal, *id);
    auth.audit(req, "critical.acknowledge", "critical_result", std::to_string(*id),
               s.ok() ? "ok" : "denied");
    if (!s) return fail(s.error());
    return Response::json(200, json_text(json{{"id", *id}, {"acknowledged", true}}));
  });

  // Turnaround (received -> final) by institution, modality, priority or reader; SLA
  // compliance. Readers, QC reviewers and admins (aggregates only: no patient data).
  router.add("GET", "/api/stats/turnaround", [&q](const Request& req) {
    const Principal& p = *req.principal;
    if (!identity::may_read_statistics(p)) {
      return Response::error(403, "statistics are for readers, QC and admins");
    }
    std::string by = req.query_value("by").value_or("institution");
    if (by != "institution" && by != "modality" && by != "priority" && by != "reader") {
      return Response::error(400, "by is institution, modality, priority or reader");
    }
    std::string from = req.query_value("from").value_or("0000");
    std::string to = req.query_value("to").value_or("9999");
    auto rows = q.store().finals(from, to);
    if (!rows.ok()) return fail(rows.error());
    struct Group {
      std::vector<double> minutes;
      std::int64_t in_sla = 0;
    };
    std::map<std::string, Group> groups;
    for (const auto& r : *rows) {
      std::string key = by == "institution" ? r.institution_code
                        : by == "modality"  ? r.modality
                        : by == "priority"  ? priority_name(static_cast<Priority>(r.priority))
                                            : r.reader;
      auto rec = storage::parse_iso8601(r.received_at), fin = storage::parse_iso8601(r.final_at);
      if (!rec || !fin) continue;
      Group& g = groups[key];
      g.minutes.push_back(std::chrono::duration<double, std::ratio<60>>(*fin - *rec).count());
      if (r.final_at <= r.due_at) ++g.in_sla;
    }
    bool csv = req.query_value("format").value_or("") == "csv";
    json list = json::array();
    std::string text = by + ",count,p50_minutes,p90_minutes,p99_minutes,sla_met_percent\n";
    for (auto& [key, g] : groups) {
      std::sort(g.minutes.begin(), g.minutes.end());
      double met = 100.0 * static_cast<double>(g.in_sla) / static_cast<double>(g.minutes.size());
      list.push_back({{by, key},
                      {"count", g.minutes.size()},
                      {"p50Minutes", nearest_rank_percentile(g.minutes, 50)},
                      {"p90Minutes", nearest_rank_percentile(g.minutes, 90)},
                      {"p99Minutes", nearest_rank_percentile(g.minutes, 99)},
                      {"slaMetPercent", met}});
      char line[256];
      std::snprintf(line, sizeof line, ",%zu,%.1f,%.1f,%.1f,%.1f\n", g.minutes.size(),
                    nearest_rank_percentile(g.minutes, 50), nearest_rank_percentile(g.minutes, 90),
                    nearest_rank_percentile(g.minutes, 99), met);
      std::string k = key;
      std::replace(k.begin(), k.end(), ',', ' ');
      text += k + line;
    }
    if (csv) {
      Response r;
      r.content_type = "text/csv; charset=utf-8";
      r.body = text;
      return r;
    }
    return Response::json(200, json_text(json{{"by", by}, {"groups", list}}));
  });

  // How readers receive each automated ECG statement: proposed, kept, added by the reader.
  router.add("GET", "/api/stats/ecg-statements", [&q](const Request& req) {
    if (!identity::may_read_statistics(*req.principal)) {
      return Response::error(403, "statistics are for readers, QC and admins");
    }
    auto rows = q.store().statement_agreement(req.query_value("from").value_or("0000"),
                                              req.query_value("to").value_or("9999"));
    if (!rows.ok()) return fail(rows.error());
    json list = json::array();
    for (const auto& r : *rows) {
      list.push_back(
          {{"code", r.code},
           {"proposed", r.proposed},
           {"kept", r.kept},
           {"added", r.added},
           {"acceptedPercent",
            r.proposed ? json(std::round(1000.0 * r.kept / r.proposed) / 10) : json(nullptr)}});
    }
    return Response::json(200, json_text(json{{"statements", list}}));
  });

  router.add("GET", "/api/stats/volume", [&q](const Request& req) {
    const Principal& p = *req.principal;
    if (!identity::may_read_statistics(p)) {
      return Response::error(403, "statistics are for readers, QC and admins");
    }
    auto rows = q.store().daily_volume(req.query_value("from").value_or("0000"),
                                       req.query_value("to").value_or("9999"));
    if (!rows.ok()) return fail(rows.error());
    if (req.query_value("format").value_or("") == "csv") {
      Response r;
      r.content_type = "text/csv; charset=utf-8";
      r.body = "day,tasks\n";
      for (const auto& [day, n] : *rows) r.body += day + "," + std::to_string(n) + "\n";
      return r;
    }
    json list = json::array();
    for (const auto& [day, n] : *rows) list.push_back({{"day", day}, {"tasks", n}});
    return Response::json(200, json_text(json{{"days", list}}));
  });
}

}  // namespace yilian::reading
