#include <nlohmann/json.hpp>
#include <variant>

#include "yilian/common/text.h"
#include "yilian/identity/policy.h"
#include "yilian/net/json_body.h"
#include "yilian/pacs/study_access.h"
#include "yilian/teleconsult/consult_rest.h"
#include "yilian/teleconsult/referral_rules.h"

namespace yilian::teleconsult {
namespace {

using http::Request;
using http::Response;
using nlohmann::json;

json referral_json(const teleconsult::ReferralRow& r) {
  auto opt = [](const std::string& s) { return s.empty() ? json(nullptr) : json(s); };
  return {{"id", r.id},
          {"direction", r.direction},
          {"urgency", r.urgency},
          {"status", r.status},
          {"patient", {{"id", r.patient_id}, {"name", r.patient_name}}},
          {"from", r.from_code},
          {"to", r.to_code},
          {"requestedBy", r.requested_by},
          {"reason", r.reason},
          {"answer", opt(r.answer)},
          {"slotDate", opt(r.slot_date)},
          {"dischargeSummary", opt(r.discharge_summary)},
          {"followUpPlan", opt(r.follow_up_plan)},
          {"studies", json::parse(r.studies, nullptr, false)},
          {"createdAt", r.created_at},
          {"updatedAt", r.updated_at},
          {"answerDueAt", r.answer_due_at},
          {"escalatedAt", opt(r.escalated_at)}};
}

void audit(identity::AuthService& auth, const Request& req, const std::string& action,
           const std::string& id, const std::string& outcome, const std::string& detail = {}) {
  auth.audit(req, action, "referral", id, outcome, detail);
}

std::variant<teleconsult::ReferralRow, Response> load(teleconsult::ReferralStore& store,
                                                      const Request& req) {
  auto id = http::path_id(req, "id", "referral id");
  if (!id.ok()) return Response::from_error(id.error());
  auto row = store.get_referral(*id);
  if (!row.ok()) return Response::from_error(row.error());
  if (!row->has_value() || !may_see_referral(*req.principal, **row)) {
    return Response::error(404, "no referral you may see has this id");
  }
  return **row;
}

}  // namespace

void register_referral_routes(http::Router& router, teleconsult::ReferralStore& store, Hub& hub,
                              pacs::Index& index, identity::Accounts& accounts,
                              identity::AuthService& auth) {
  // Counts for the consortium dashboard: aggregates, no patient data; readers, QC and admins
  // (as the reading statistics).
  router.add("GET", "/api/stats/referrals", [&store](const Request& req) {
    const Principal& p = *req.principal;
    if (!identity::may_read_statistics(p)) {
      return Response::error(403, "statistics are for readers, QC and admins");
    }
    auto rows = store.referral_counts(req.query_value("from").value_or("0000"),
                                      req.query_value("to").value_or("9999"));
    if (!rows.ok()) return Response::from_error(rows.error());
    if (req.query_value("format").value_or("") == "csv") {
      Response r;
      r.content_type = "text/csv; charset=utf-8";
      r.body = "from,to,direction,status,count\n";
      for (const auto& c : *rows) {
        r.body += c.from + "," + c.to + "," + c.direction + "," + c.status + "," +
                  std::to_string(c.count) + "\n";
      }
      return r;
    }
    json list = json::array();
    for (const auto& c : *rows) {
      list.push_back({{"from", c.from},
                      {"to", c.to},
                      {"direction", c.direction},
                      {"status", c.status},
                      {"count", c.count}});
    }
    return Response::json(200, json_text(json{{"referrals", list}}));
  });

  router.add(
      "POST", "/api/referrals", [&store, &hub, &index, &accounts, &auth](const Request& req) {
        const Principal& p = *req.principal;
        if (!identity::has_clinical_role(p)) {
          audit(auth, req, "referral.create", "", "denied");
          return Response::error(403, "referrals are made by clinicians");
        }
        auto body = http::json_object_body(req);
        if (!body.ok()) return Response::from_error(body.error());
        teleconsult::ReferralRow r;
        r.direction = http::json_string(*body, "direction");
        r.urgency = http::json_string(*body, "urgency");
        if (r.urgency.empty()) r.urgency = "routine";
        r.patient_id = http::json_string(*body, "patientId");
        r.patient_name = http::json_string(*body, "patientName");
        r.reason = http::json_string(*body, "reason");
        r.discharge_summary = http::json_string(*body, "dischargeSummary");
        r.follow_up_plan = http::json_string(*body, "followUpPlan");
        if (r.patient_id.empty() || r.reason.empty()) {
          return Response::error(400, "patientId and reason are required");
        }
        if (r.urgency != "routine" && r.urgency != "urgent") {
          return Response::error(400, "urgency is routine or urgent");
        }
        if (r.direction == "down" && (r.discharge_summary.empty() || r.follow_up_plan.empty())) {
          return Response::error(
              400, "a down-referral carries the discharge summary and follow-up plan");
        }
        auto from = accounts.find_institution(p.institution_code);
        auto to = accounts.find_institution(http::json_string(*body, "toInstitution"));
        if (!from.ok() || !to.ok()) return Response::error(500, "institutions unreadable");
        if (!to->has_value()) {
          return Response::error(400, "toInstitution names no institution");
        }
        if (auto problem = referral_route_problem(r.direction, **from, **to)) {
          return Response::error(400, *problem);
        }
        // The studies go with the patient: the sender must see them; the receiver is given them.
        json studies = json::array();
        if (auto it = body->find("studies"); it != body->end()) {
          if (!it->is_array() || it->size() > 50) {
            return Response::error(400, "studies is an array of study UIDs");
          }
          for (const json& s : *it) {
            if (!s.is_string()) {
              return Response::error(400, "studies is an array of study UIDs");
            }
            // A referral shares the studies with the receiver: the onward-sharing rule.
            auto ok = pacs::may_share_study(index, p, s.get<std::string>(), auth.now());
            if (!ok.ok()) return Response::from_error(ok.error());
            if (!*ok) {
              auth.audit(req, "referral.create", "study", s.get<std::string>(), "denied",
                         "not the sender's to pass on");
              return Response::error(403,
                                     "study " + s.get<std::string>() +
                                         ": no study of your institution or its reading services");
            }
            studies.push_back(s);
          }
        }
        r.studies = json_text(studies);
        r.from_institution = (*from)->id;
        r.to_institution = (*to)->id;
        r.requested_by = p.username;
        r.created_at = auth.now();
        auto created = storage::parse_iso8601(r.created_at);
        r.answer_due_at =
            storage::to_iso8601(created.value_or(storage::TimePoint{}) + answer_within(r.urgency));
        auto row = store.create_referral(r);
        if (!row.ok()) return Response::from_error(row.error());
        for (const json& s : studies) {
          identity::StudyShare share;
          share.study_instance_uid = s.get<std::string>();
          share.institution_code = row->to_code;
          share.reason = "referral";
          share.reference = "referral:" + std::to_string(row->id);
          share.granted_by = p.user_id;
          share.granted_at = r.created_at;
          (void)accounts.add_share(share);
        }
        audit(auth, req, "referral.create", std::to_string(row->id), "ok",
              row->direction + " to " + row->to_code);
        hub.referral_changed(row->id);
        return Response::json(201, json_text(referral_json(*row)));
      });

  router.add("GET", "/api/referrals", [&store, &auth](const Request& req) {
    const Principal& p = *req.principal;
    if (!identity::has_clinical_role(p)) return Response::json(200, R"({"referrals":[]})");
    std::vector<std::int64_t> mine{p.institution_id};
    mine.insert(mine.end(), p.credentialed.begin(), p.credentialed.end());
    auto rows = store.referrals(mine, req.query_value("status").value_or(""));
    if (!rows.ok()) return Response::from_error(rows.error());
    json out = json::array();
    std::string ids;
    for (const auto& r : *rows) {
      out.push_back(referral_json(r));
      ids += (ids.empty() ? "" : ",") + std::to_string(r.id);
    }
    audit(auth, req, "referral.list", "", "ok", ids);
    return Response::json(200, json_text(json{{"referrals", out}}));
  });

  router.add("GET", "/api/referrals/{id}", [&store, &auth](const Request& req) {
    auto l = load(store, req);
    if (auto* r = std::get_if<Response>(&l)) {
      audit(auth, req, "referral.read", req.params.at("id"), "denied");
      return *r;
    }
    const auto& r = std::get<teleconsult::ReferralRow>(l);
    json j = referral_json(r);
    auto events = store.referral_events(r.id);
    if (!events.ok()) return Response::from_error(events.error());
    j["history"] = json::array();
    for (const auto& e : *events) {
      j["history"].push_back(
          {{"at", e.at}, {"type", e.type}, {"actor", e.actor}, {"detail", e.detail}});
    }
    audit(auth, req, "referral.read", std::to_string(r.id), "ok");
    return Response::json(200, json_text(j));
  });

  router.add("POST", "/api/referrals/{id}/{action}", [&store, &hub, &auth](const Request& req) {
    auto action = parse_referral_action(req.params.at("action"));
    if (!action) return Response::error(404, "no such referral action");
    const std::string what = "referral." + req.params.at("action");
    auto l = load(store, req);
    if (auto* r = std::get_if<Response>(&l)) {
      audit(auth, req, what, req.params.at("id"), "denied");
      return *r;
    }
    auto body = http::json_object_body(req);
    if (!body.ok()) return Response::from_error(body.error());
    const std::string text = http::json_string(*body, "reason");
    const std::string now = auth.now();
    auto row = store.change_referral(
        std::get<teleconsult::ReferralRow>(l).id,
        [&](const teleconsult::ReferralRow& current) {
          return decide_referral(*action, current, *req.principal, text, now.substr(0, 10));
        },
        now);
    if (!row.ok()) {
      audit(auth, req, what, req.params.at("id"), "denied", row.error().message);
      return Response::from_error(row.error());
    }
    audit(auth, req, what, std::to_string(row->id), "ok", row->slot_date);
    hub.referral_changed(row->id);
    return Response::json(200, json_text(referral_json(*row)));
  });

  // The receiving institution's daily referral slots (admin).
  router.add(
      "PUT", "/api/admin/referral-quotas/{code}", [&store, &accounts, &auth](const Request& req) {
        if (!req.principal->has(Role::admin)) {
          audit(auth, req, "referral.quota", req.params.at("code"), "denied");
          return Response::error(403, "administrators set referral quotas");
        }
        auto body = http::json_object_body(req);
        if (!body.ok()) return Response::from_error(body.error());
        auto inst = accounts.find_institution(req.params.at("code"));
        if (!inst.ok()) return Response::from_error(inst.error());
        if (!inst->has_value()) return Response::error(404, "no such institution");
        auto daily = body->find("daily");
        if (daily == body->end() || !daily->is_number_integer() || *daily < 0 || *daily > 10000) {
          return Response::error(400, "daily is a number of slots (0-10000)");
        }
        if (Status s = store.set_referral_quota((*inst)->id, daily->get<int>()); !s)
          return Response::from_error(s.error());
        audit(auth, req, "referral.quota", req.params.at("code"), "ok", daily->dump());
        return Response::json(
            200, json_text(json{{"institution", req.params.at("code")}, {"daily", *daily}}));
      });
}

}  // namespace yilian::teleconsult
