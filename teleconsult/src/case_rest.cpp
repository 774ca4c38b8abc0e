#include <cmath>
#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>

#include "case_view.h"
#include "yilian/common/text.h"
#include "yilian/identity/policy.h"
#include "yilian/identity/rest.h"
#include "yilian/net/json_body.h"
#include "yilian/pacs/study_access.h"
#include "yilian/teleconsult/consult_rest.h"
#include "yilian/teleconsult/consult_rules.h"
#include "yilian/teleconsult/emergency_rules.h"

namespace yilian::teleconsult {
namespace {

using http::Request;
using http::Response;
using nlohmann::json;

void audit(identity::AuthService& auth, const Request& req, const std::string& action,
           const std::string& id, const std::string& outcome, const std::string& detail = {}) {
  auth.audit(req, action, "emergency_case", id, outcome, detail);
}

// The case of the {id} path if the caller may see it; otherwise the answer (404 alike).
std::variant<teleconsult::CaseRow, Response> load(teleconsult::CaseStore& store,
                                                  const Request& req) {
  auto id = http::path_id(req, "id", "case id");
  if (!id.ok()) return Response::from_error(id.error());
  auto row = store.get_case(*id);
  if (!row.ok()) return Response::from_error(row.error());
  if (!row->has_value() || !may_see_case(*req.principal, **row)) {
    return Response::error(404, "no emergency case you may see has this id");
  }
  return **row;
}

Response view_response(teleconsult::CaseStore& store, const teleconsult::CaseRow& c,
                       identity::AuthService& auth, int status, const CaseTargets& targets) {
  auto now = storage::parse_iso8601(auth.now());
  auto view = case_view(store, c, now.value_or(storage::TimePoint{}), targets);
  if (!view.ok()) return Response::from_error(view.error());
  return Response::json(status, view->dump());
}

}  // namespace

void register_case_routes(http::Router& router, teleconsult::CaseStore& store, pacs::Index& index,
                          Hub& hub, identity::AuthService& auth, int utc_offset_minutes) {
  router.add("POST", "/api/emergencies", [&store, &index, &hub, &auth](const Request& req) {
    const Principal& p = *req.principal;
    if (!identity::has_clinical_role(p)) {
      audit(auth, req, "case.open", "", "denied");
      return Response::error(403, "emergency cases are opened by clinicians");
    }
    auto body = http::json_object_body(req);
    if (!body.ok()) return Response::from_error(body.error());
    teleconsult::CaseRow c;
    c.kind = http::json_string(*body, "kind");
    c.patient_id = http::json_string(*body, "patientId");
    c.patient_name = http::json_string(*body, "patientName");
    c.study_uid = http::json_string(*body, "studyInstanceUid");
    c.reason = http::json_string(*body, "reason");
    if (!is_case_kind(c.kind)) {
      return Response::error(400, "kind is one of: " + case_kinds_text());
    }
    if (c.patient_id.empty()) return Response::error(400, "patientId is required");
    // A study named here must be one the clinician may read, before anything is looked up
    // by it: a case is found by its study, and another institution's case must stay hidden.
    if (!c.study_uid.empty()) {
      auto ok = pacs::may_read_study(index, p, c.study_uid, auth.now());
      if (!ok.ok()) return Response::from_error(ok.error());
      if (!*ok) {
        audit(auth, req, "case.open", "", "denied", "study " + c.study_uid);
        return Response::error(404, "no such study");
      }
    }
    c.institution_id = p.institution_id;
    c.source = "manual";
    c.opened_by = p.username;
    c.opened_at = auth.now();
    bool existed = false;
    auto row = store.open_case(c, existed);
    if (!row.ok()) return Response::from_error(row.error());
    audit(auth, req, "case.open", std::to_string(row->id), "ok", c.kind);
    if (!existed) hub.case_changed(row->id, true);
    return view_response(store, *row, auth, existed ? 200 : 201, hub.case_targets());
  });

  router.add("GET", "/api/emergencies", [&store, &hub, &auth](const Request& req) {
    const Principal& p = *req.principal;
    if (!identity::has_clinical_role(p)) return Response::json(200, R"({"cases":[]})");
    // ?status= open (the board), closed (for review), all; ?from=&to= bound the opening time.
    CaseStore::Filter filter;
    filter.status = req.query_value("status").value_or("open");
    if (filter.status == "all") filter.status.clear();
    if (!filter.status.empty() && filter.status != "open" && filter.status != "closed") {
      return Response::error(400, "status is open, closed or all");
    }
    for (auto [name, bound] : {std::pair{"from", &filter.from}, std::pair{"to", &filter.to}}) {
      *bound = req.query_value(name).value_or("");
      if (!bound->empty() && !storage::parse_iso8601(*bound)) {
        return Response::error(400, std::string(name) + " is a time in ISO 8601 UTC");
      }
    }
    // ?kind= one centre's board (trauma, maternal, ...); absent: every centre's.
    filter.kind = req.query_value("kind").value_or("");
    if (!filter.kind.empty() && !is_case_kind(filter.kind)) {
      return Response::error(400, "kind is one of: " + case_kinds_text());
    }
    // Pages of one status' list: ?limit= (at most 500) and ?before= the `next` of the page before.
    auto before = req.int_query("before", 0, std::numeric_limits<std::int64_t>::max());
    if (!before.ok()) return Response::from_error(before.error());
    auto limit = req.int_query("limit", 500, 500);
    if (!limit.ok()) return Response::from_error(limit.error());
    if (*before > 0 && filter.status.empty()) {
      return Response::error(400, "before pages the open or the closed cases, not all");
    }
    filter.before_id = *before;
    filter.limit = *limit;
    auto rows = store.cases(served_institutions(p), filter);
    if (!rows.ok()) return Response::from_error(rows.error());
    std::vector<std::int64_t> case_ids;
    for (const auto& c : *rows) case_ids.push_back(c.id);
    // Every listed case's records in two reads, not two a case.
    auto points = store.time_points(case_ids);
    if (!points.ok()) return Response::from_error(points.error());
    auto alerts = store.alerts(case_ids);
    if (!alerts.ok()) return Response::from_error(alerts.error());
    json out = json::array();
    auto now = storage::parse_iso8601(auth.now()).value_or(storage::TimePoint{});
    std::string ids;
    for (const auto& c : *rows) {
      out.push_back(case_view(c, (*points)[c.id], (*alerts)[c.id], now, hub.case_targets()));
      ids += (ids.empty() ? "" : ",") + std::to_string(c.id);
    }
    audit(auth, req, "case.list", "", "ok", ids);
    // A full page may have more after it: `next` is where the next page begins.
    const bool full = *limit > 0 && static_cast<std::int64_t>(rows->size()) == *limit;
    return Response::json(
        200,
        json_text(json{{"cases", out}, {"next", full ? json(rows->back().id) : json(nullptr)}}));
  });

  // The centres' quality figures per interval (aggregates, no patient data): readers, QC and
  // admins, as the other statistics. Cases opened in [from, to).
  router.add("GET", "/api/stats/emergency", [&store, &hub, utc_offset_minutes](const Request& req) {
    if (!identity::may_read_statistics(*req.principal)) {
      return Response::error(403, "statistics are for readers, QC and admins");
    }
    const std::string by = req.query_value("by").value_or("centre");
    if (by != "centre" && by != "institution" && by != "month") {
      return Response::error(400, "by is centre, institution or month");
    }
    const std::string kind = req.query_value("kind").value_or("");
    if (!kind.empty() && !is_case_kind(kind)) {
      return Response::error(400, "kind is one of: " + case_kinds_text());
    }
    auto cases = store.cases_opened(req.query_value("from").value_or("0000"),
                                    req.query_value("to").value_or("9999"));
    if (!cases.ok()) return Response::from_error(cases.error());
    if (!kind.empty()) {
      std::erase_if(*cases, [&](const CaseRecords& c) { return c.c.kind != kind; });
    }
    const auto rows = interval_quality(*cases,
                                       by == "institution" ? QualityBy::institution
                                       : by == "month"     ? QualityBy::month
                                                           : QualityBy::centre,
                                       hub.case_targets(), utc_offset_minutes);
    auto percent = [](const IntervalQuality& q) -> std::optional<double> {
      if (q.done == 0) return std::nullopt;
      return std::round(1000.0 * q.met / q.done) / 10.0;
    };
    if (req.query_value("format").value_or("") == "csv") {
      auto num = [](std::optional<double> v) {
        if (!v) return std::string();
        char text[32];
        std::snprintf(text, sizeof text, "%.1f", *v);
        return std::string(text);
      };
      Response r;
      r.content_type = "text/csv; charset=utf-8";
      r.body = "centre,interval," + (by == "centre" ? std::string("institution") : by) +
               ",target_minutes,cases,started,done,met,met_percent,median_minutes,p90_minutes,"
               "inconsistent\n";
      for (const auto& q : rows) {
        r.body += q.kind + "," + q.interval + "," + q.group + "," +
                  std::to_string(q.target_minutes) + "," + std::to_string(q.cases) + "," +
                  std::to_string(q.started) + "," + std::to_string(q.done) + "," +
                  std::to_string(q.met) + "," + num(percent(q)) + "," + num(q.median_minutes) +
                  "," + num(q.p90_minutes) + "," + std::to_string(q.inconsistent) + "\n";
      }
      return r;
    }
    auto value = [](std::optional<double> v) { return v ? json(*v) : json(nullptr); };
    json list = json::array();
    for (const auto& q : rows) {
      json row = {{"centre", q.kind},
                  {"interval", q.interval},
                  {"targetMinutes", q.target_minutes},
                  {"cases", q.cases},
                  {"started", q.started},
                  {"done", q.done},
                  {"met", q.met},
                  {"metPercent", value(percent(q))},
                  {"medianMinutes", value(q.median_minutes)},
                  {"p90Minutes", value(q.p90_minutes)},
                  {"inconsistent", q.inconsistent}};
      if (by != "centre") row[by] = q.group;
      list.push_back(std::move(row));
    }
    return Response::json(200, json_text(json{{"intervals", list}}));
  });

  router.add("GET", "/api/emergencies/{id}", [&store, &hub, &auth](const Request& req) {
    auto l = load(store, req);
    if (auto* r = std::get_if<Response>(&l)) {
      audit(auth, req, "case.read", req.params.at("id"), "denied");
      return *r;
    }
    const auto& c = std::get<teleconsult::CaseRow>(l);
    audit(auth, req, "case.read", std::to_string(c.id), "ok");
    return view_response(store, c, auth, 200, hub.case_targets());
  });

  router.add(
      "POST", "/api/emergencies/{id}/time-points", [&store, &hub, &auth](const Request& req) {
        auto l = load(store, req);
        if (auto* r = std::get_if<Response>(&l)) {
          audit(auth, req, "case.time_point", req.params.at("id"), "denied");
          return *r;
        }
        const auto& c = std::get<teleconsult::CaseRow>(l);
        // A closed case's times are corrected by quality control only (the centre's data
        // manager, against the source records), each with its reason: its figures count
        // towards the centre's accreditation. Every earlier record stays in its history.
        const bool correction = c.status != "open";
        if (correction && !req.principal->has(Role::qc_reviewer)) {
          return Response::error(409, "the case is closed: quality control corrects its times");
        }
        auto body = http::json_object_body(req);
        if (!body.ok()) return Response::from_error(body.error());
        teleconsult::TimePointRow tp;
        tp.point = http::json_string(*body, "point");
        tp.at = http::json_string(*body, "at");
        tp.note = http::json_string(*body, "note");
        tp.recorded_by = req.principal->username;
        tp.recorded_at = auth.now();
        if (!is_time_point(c.kind, tp.point)) {
          std::string known;
          for (const auto& p : time_points(c.kind)) known += (known.empty() ? "" : ", ") + p;
          return Response::error(400, "a " + c.kind + " case records: " + known);
        }
        if (correction && (tp.at.empty() || tp.note.empty())) {
          return Response::error(400, "a closed case's time is corrected with at and a note (why)");
        }
        if (tp.at.empty()) tp.at = tp.recorded_at;  // "now", the one-tap case
        auto at = storage::parse_iso8601(tp.at);
        auto recorded = storage::parse_iso8601(tp.recorded_at);
        if (!at) return Response::error(400, "at is an ISO 8601 UTC time");
        if (recorded && *at > *recorded + std::chrono::minutes(5)) {
          return Response::error(400, "a time point cannot be in the future");
        }
        tp.at = storage::to_iso8601(*at);
        if (Status s = store.record_time_point(c.id, tp); !s)
          return Response::from_error(s.error());
        audit(auth, req, "case.time_point", std::to_string(c.id), "ok",
              tp.point + " " + tp.at +
                  (correction ? " (closed case corrected: " + tp.note + ")" : ""));
        hub.case_changed(c.id, false);
        return view_response(store, c, auth, 200, hub.case_targets());
      });

  // The alert's acknowledgement: one tap by whoever was alerted (or anyone who may see the case).
  router.add("POST", "/api/emergencies/{id}/ack", [&store, &hub, &auth](const Request& req) {
    auto l = load(store, req);
    if (auto* r = std::get_if<Response>(&l)) {
      audit(auth, req, "case.ack", req.params.at("id"), "denied");
      return *r;
    }
    const auto& c = std::get<teleconsult::CaseRow>(l);
    auto now = storage::parse_iso8601(auth.now()).value_or(storage::TimePoint{});
    auto first = acknowledge_alert(store, *req.principal, c, now);
    if (!first.ok()) return Response::from_error(first.error());
    audit(auth, req, "case.ack", std::to_string(c.id), "ok", *first ? "first" : "again");
    hub.case_changed(c.id, false);
    auto row = store.get_case(c.id);
    if (!row.ok() || !row->has_value()) return Response::error(500, "case vanished");
    return view_response(store, **row, auth, 200, hub.case_targets());
  });

  router.add("POST", "/api/emergencies/{id}/close", [&store, &hub, &auth](const Request& req) {
    auto l = load(store, req);
    if (auto* r = std::get_if<Response>(&l)) {
      audit(auth, req, "case.close", req.params.at("id"), "denied");
      return *r;
    }
    const auto& c = std::get<teleconsult::CaseRow>(l);
    if (Status s = store.close_case(c.id, auth.now()); !s) return Response::from_error(s.error());
    audit(auth, req, "case.close", std::to_string(c.id), "ok");
    hub.case_changed(c.id, false);
    auto row = store.get_case(c.id);
    if (!row.ok() || !row->has_value()) return Response::error(500, "case vanished");
    return view_response(store, **row, auth, 200, hub.case_targets());
  });
}

namespace {

json shift_json(const ShiftRow& s) {
  return {{"id", s.id},
          {"institution", s.institution_code},
          {"service", s.service},
          {"role", s.role},
          {"user", s.username},
          {"startsAt", s.starts_at},
          {"endsAt", s.ends_at},
          {"createdBy", s.created_by},
          {"createdAt", s.created_at}};
}

// The institution of the `institution` query parameter (code), or the answer to send.
std::variant<identity::InstitutionInfo, Response> query_institution(identity::AuthService& auth,
                                                                    const Request& req) {
  auto it = req.query.find("institution");
  if (it == req.query.end() || it->second.empty())
    return Response::error(400, "institution (its code) is required");
  auto inst = auth.accounts().find_institution(it->second);
  if (!inst.ok()) return Response::from_error(inst.error());
  if (!inst->has_value()) return Response::error(404, "no institution has this code");
  return **inst;
}

}  // namespace

void register_oncall_routes(http::Router& router, teleconsult::CaseStore& store,
                            identity::AuthService& auth) {
  // An institution's roster from now on (or from ?from=): clinicians and admins read it.
  router.add("GET", "/api/oncall", [&store, &auth](const Request& req) {
    if (!identity::has_clinical_role(*req.principal) && !req.principal->has(Role::admin))
      return Response::error(403, "on-call rosters are for clinicians and admins");
    auto inst = query_institution(auth, req);
    if (auto* r = std::get_if<Response>(&inst)) return *r;
    const auto& i = std::get<identity::InstitutionInfo>(inst);
    auto from_it = req.query.find("from");
    const std::string from = from_it == req.query.end() ? auth.now() : from_it->second;
    auto rows = store.shifts(i.id, from);
    if (!rows.ok()) return Response::from_error(rows.error());
    json list = json::array();
    for (const auto& s : *rows) list.push_back(shift_json(s));
    auth.audit(req, "oncall.list", "institution", i.code, "ok");
    return Response::json(200, json_text(json{{"institution", i.code}, {"shifts", list}}));
  });

  // Who answers an alert of `service` for a case of `institution` now (or at ?at=): the
  // nearest institution's primary, then back-ups.
  router.add("GET", "/api/oncall/now", [&store, &auth](const Request& req) {
    if (!identity::has_clinical_role(*req.principal) && !req.principal->has(Role::admin))
      return Response::error(403, "on-call rosters are for clinicians and admins");
    auto inst = query_institution(auth, req);
    if (auto* r = std::get_if<Response>(&inst)) return *r;
    const auto& i = std::get<identity::InstitutionInfo>(inst);
    auto svc = req.query.find("service");
    if (svc == req.query.end() || !is_oncall_service(svc->second))
      return Response::error(400, "service is one of: " + oncall_services_text());
    auto at_it = req.query.find("at");
    const std::string at = at_it == req.query.end() ? auth.now() : at_it->second;
    auto rows = store.on_call(i.id, svc->second, at);
    if (!rows.ok()) return Response::from_error(rows.error());
    json primary = nullptr, backups = json::array();
    for (const auto& s : *rows) {
      if (s.role == "primary" && primary.is_null()) primary = shift_json(s);
      if (s.role == "backup") backups.push_back(shift_json(s));
    }
    return Response::json(200, json_text(json{{"institution", i.code},
                                              {"service", svc->second},
                                              {"at", at},
                                              {"primary", primary},
                                              {"backups", backups}}));
  });

  router.add("POST", "/api/oncall", [&store, &auth](const Request& req) {
    if (auto refused = identity::refuse_non_admin(auth, req, "oncall.add", "oncall_shift"))
      return *refused;
    auto body = http::json_object_body(req);
    if (!body.ok()) return Response::from_error(body.error());
    ShiftRow s;
    s.service = http::json_string(*body, "service");
    s.role = http::json_string(*body, "role");
    if (s.role.empty()) s.role = "primary";
    if (!is_oncall_service(s.service))
      return Response::error(400, "service is one of: " + oncall_services_text());
    if (!is_oncall_role(s.role)) return Response::error(400, "role is primary or backup");
    auto inst = auth.accounts().find_institution(http::json_string(*body, "institution"));
    if (!inst.ok()) return Response::from_error(inst.error());
    if (!inst->has_value()) return Response::error(400, "no institution has this code");
    auto user = auth.accounts().find_user(http::json_string(*body, "user"));
    if (!user.ok()) return Response::from_error(user.error());
    if (!user->has_value() || (*user)->disabled)
      return Response::error(400, "no enabled user has this username");
    auto starts = storage::parse_iso8601(http::json_string(*body, "startsAt"));
    auto ends = storage::parse_iso8601(http::json_string(*body, "endsAt"));
    if (!starts || !ends) return Response::error(400, "startsAt and endsAt are ISO 8601 UTC times");
    if (*ends <= *starts) return Response::error(400, "a shift ends after it starts");
    if (*ends - *starts > std::chrono::hours(24 * 14))
      return Response::error(400, "a shift is at most 14 days");
    s.institution_id = (*inst)->id;
    s.user_id = (*user)->id;
    s.starts_at = storage::to_iso8601(*starts);
    s.ends_at = storage::to_iso8601(*ends);
    s.created_by = req.principal->username;
    s.created_at = auth.now();
    auto row = store.add_shift(s);
    if (!row.ok()) return Response::from_error(row.error());
    auth.audit(req, "oncall.add", "oncall_shift", std::to_string(row->id), "ok",
               row->institution_code + " " + row->service + " " + row->role + " " + row->username +
                   " " + row->starts_at + "/" + row->ends_at);
    return Response::json(201, json_text(shift_json(*row)));
  });

  router.add("DELETE", "/api/oncall/{id}", [&store, &auth](const Request& req) {
    if (auto refused = identity::refuse_non_admin(auth, req, "oncall.remove", "oncall_shift"))
      return *refused;
    auto id = http::path_id(req, "id", "shift id");
    if (!id.ok()) return Response::from_error(id.error());
    auto removed = store.remove_shift(*id);
    if (!removed.ok()) return Response::from_error(removed.error());
    if (!*removed) return Response::error(404, "no shift has this id");
    auth.audit(req, "oncall.remove", "oncall_shift", std::to_string(*id), "ok");
    return Response::json(200, json_text(json{{"removed", *id}}));
  });
}

}  // namespace yilian::teleconsult
