#include "yilian/teleconsult/consult_rest.h"

#include <algorithm>
#include <variant>

#include <nlohmann/json.hpp>

#include "yilian/common/text.h"
#include "yilian/identity/policy.h"
#include "yilian/net/json_body.h"
#include "yilian/pacs/study_access.h"
#include "yilian/teleconsult/consult_rules.h"

namespace yilian::teleconsult {
namespace {

using http::Request;
using http::Response;
using nlohmann::json;

json consult_json(const teleconsult::ConsultRow& c) {
  auto opt = [](const std::string& s) { return s.empty() ? json(nullptr) : json(s); };
  json j = {{"id", c.id},
            {"status", c.status},
            {"urgency", c.urgency},
            {"specialty", c.specialty},
            {"question", c.question},
            {"patient", {{"id", c.patient_id}, {"name", c.patient_name}}},
            {"institution", c.institution_code},
            {"requester", c.requester},
            {"assignee", opt(c.assignee)},
            {"reason", opt(c.reason)},
            {"createdAt", c.created_at},
            {"updatedAt", c.updated_at},
            {"lastSeq", c.last_seq}};
  if (c.status == "concluded") {
    j["opinion"] = {{"text", c.opinion},
                    {"signedBy", c.assignee},
                    {"signedAt", c.concluded_at},
                    {"sha256", c.opinion_sha256}};
  }
  return j;
}

void audit(identity::AuthService& auth, const Request& req, const std::string& action,
           const std::string& id, const std::string& outcome, const std::string& detail = {}) {
  auth.audit(req, action, "consult", id, outcome, detail);
}

Response no_consult() {
  // A consult one may not see answers like a missing one.
  return Response::error(404, "no consult you may see has this id");
}

struct Loaded {
  teleconsult::ConsultRow consult;
  std::vector<teleconsult::ConsultParticipant> participants;
  bool participant = false;
};

// The consult of the {id} path if `p` may see it; otherwise the answer to send.
std::variant<Loaded, Response> load(teleconsult::ConsultStore& store, const Request& req) {
  auto id = http::path_id(req, "id", "consult id");
  if (!id.ok()) return Response::from_error(id.error());
  auto row = store.get(*id);
  if (!row.ok()) return Response::from_error(row.error());
  if (!row->has_value()) return no_consult();
  auto people = store.participants(*id);
  if (!people.ok()) return Response::from_error(people.error());
  Loaded l{**row, *people, false};
  for (const auto& p : l.participants) l.participant |= p.user_id == req.principal->user_id;
  if (!may_view(*req.principal, l.consult, l.participant)) return no_consult();
  return l;
}

// Checks the attachments the requester names: each must be a study (or an ECG inside one, or
// a reading task's report) they may read. Fills `out`; an error answer otherwise.
std::optional<Response> attachments_of(const json& body, const Request& req, pacs::Index& index,
                                       reading::ReadingQueue& queue, identity::AuthService& auth,
                                       std::vector<teleconsult::ConsultAttachment>& out) {
  auto list = [&body](const char* key) -> std::optional<std::vector<std::string>> {
    std::vector<std::string> v;
    auto it = body.find(key);
    if (it == body.end()) return v;
    if (!it->is_array() || it->size() > 50) return std::nullopt;
    for (const json& e : *it) {
      if (e.is_string()) {
        v.push_back(e.get<std::string>());
      } else if (e.is_number_integer()) {
        v.push_back(std::to_string(e.get<std::int64_t>()));
      } else {
        return std::nullopt;
      }
    }
    return v;
  };
  auto check = [&](const std::string& kind, const std::string& ref,
                   const std::string& study) -> std::optional<Response> {
    auto ok = pacs::may_read_study(index, *req.principal, study, auth.now());
    if (!ok.ok()) return Response::from_error(ok.error());
    if (!*ok) {
      auth.audit(req, "consult.request", "study", study, "denied",
                 "attachment " + kind + " " + ref);
      return Response::error(403, "attachment " + kind + " " + ref + ": no study you may read");
    }
    out.push_back({kind, ref, study});
    return std::nullopt;
  };
  auto studies = list("studies"), ecgs = list("ecgs"), reports = list("reports");
  if (!studies || !ecgs || !reports) {
    return Response::error(400, "studies, ecgs and reports are arrays of at most 50 references");
  }
  for (const std::string& uid : *studies) {
    if (auto bad = check("study", uid, uid)) return bad;
  }
  for (const std::string& sop : *ecgs) {
    auto loc = index.locate_instance(sop);
    if (!loc.ok()) return Response::from_error(loc.error());
    if (!loc->has_value()) {
      return Response::error(403, "attachment ecg " + sop + ": no ECG you may read");
    }
    if (auto bad = check("ecg", sop, (*loc)->study_instance_uid)) return bad;
  }
  for (const std::string& ref : *reports) {
    std::int64_t task = 0;
    try {
      task = std::stoll(ref);
    } catch (...) {
      return Response::error(400, "reports are reading task ids");
    }
    // Through the queue, which answers a task the caller may not see as it answers a
    // missing one.
    auto t = queue.task(*req.principal, task);
    if (!t.ok() && t.error().code != Errc::not_found) return Response::from_error(t.error());
    if (!t.ok()) {
      auth.audit(req, "consult.request", "task", ref, "denied", "attachment report " + ref);
      return Response::error(403, "attachment report " + ref + ": no such report");
    }
    if (auto bad = check("report", ref, t->study_uid)) return bad;
  }
  return std::nullopt;
}

}  // namespace

void register_consult_routes(http::Router& router, teleconsult::ConsultStore& store, Hub& hub,
                             pacs::Index& index, reading::ReadingQueue& queue,
                             identity::Accounts& accounts, identity::AuthService& auth) {
  router.add("POST", "/api/consults",
             [&store, &index, &queue, &accounts, &auth, &hub](const Request& req) {
               const Principal& p = *req.principal;
               if (!identity::has_clinical_role(p)) {
                 audit(auth, req, "consult.create", "", "denied");
                 return Response::error(403, "consults are asked by clinicians");
               }
               auto body = http::json_object_body(req);
               if (!body.ok()) return Response::from_error(body.error());
               teleconsult::NewConsult c;
               c.institution_id = p.institution_id;
               c.requester_id = p.user_id;
               c.patient_id = http::json_string(*body, "patientId");
               c.patient_name = http::json_string(*body, "patientName");
               c.question = http::json_string(*body, "question");
               c.urgency = http::json_string(*body, "urgency");
               c.specialty = http::json_string(*body, "specialty");
               if (c.urgency.empty()) c.urgency = "routine";
               if (c.patient_id.empty() || c.question.empty()) {
                 return Response::error(400, "patientId and question are required");
               }
               if (c.question.size() > 8000) {
                 return Response::error(400, "the question is too long");
               }
               if (!is_urgency(c.urgency)) {
                 return Response::error(400, "urgency is routine, urgent or emergency");
               }
               if (!is_specialty(c.specialty)) {
                 return Response::error(400, "specialty is radiology, cardiology or ecg");
               }
               if (auto bad = attachments_of(*body, req, index, queue, auth, c.attachments))
                 return *bad;
               if (std::string to = http::json_string(*body, "assignTo"); !to.empty()) {
                 auto u = accounts.find_user(to);
                 if (!u.ok()) return Response::from_error(u.error());
                 Principal them;
                 if (u->has_value()) them.roles = (*u)->roles;
                 const auto answers = specialties_of(them);
                 if (!u->has_value() || (*u)->disabled ||
                     std::find(answers.begin(), answers.end(), c.specialty) == answers.end()) {
                   return Response::error(400,
                                          to + " is not an active " + c.specialty + " specialist");
                 }
                 c.assignee_id = (*u)->id;
               }
               auto row = store.create(c, auth.now(), p.username);
               if (!row.ok()) return Response::from_error(row.error());
               audit(auth, req, "consult.create", std::to_string(row->id), "ok",
                     row->urgency + ", " + row->specialty);
               hub.consult_requested(row->id);
               return Response::json(201, json_text(consult_json(*row)));
             });

  router.add("GET", "/api/consults", [&store, &auth](const Request& req) {
    const Principal& p = *req.principal;
    teleconsult::ConsultFilter f;
    f.participant = p.user_id;
    f.open_specialties = specialties_of(p);
    if (!f.open_specialties.empty()) {
      f.open_institutions = served_institutions(p);
      f.open_for_user = p.user_id;
    }
    f.status = req.query_value("status").value_or("");
    auto limit = req.int_query("limit", 50, 500);
    if (!limit.ok()) return Response::from_error(limit.error());
    auto offset = req.int_query("offset", 0, 1 << 30);
    if (!offset.ok()) return Response::from_error(offset.error());
    f.limit = *limit;
    f.offset = *offset;
    auto rows = store.list(f);
    if (!rows.ok()) return Response::from_error(rows.error());
    json out = json::array();
    std::string ids;
    for (const auto& c : *rows) {
      out.push_back(consult_json(c));
      ids += (ids.empty() ? "" : ",") + std::to_string(c.id);
    }
    audit(auth, req, "consult.list", "", "ok", ids);
    return Response::json(200, json_text(json{{"consults", out}}));
  });

  router.add("GET", "/api/consults/{id}", [&store, &auth](const Request& req) {
    auto l = load(store, req);
    if (auto* r = std::get_if<Response>(&l)) {
      audit(auth, req, "consult.read", req.params.at("id"), "denied");
      return *r;
    }
    const Loaded& c = std::get<Loaded>(l);
    json j = consult_json(c.consult);
    auto attachments = store.attachments(c.consult.id);
    auto events = store.events(c.consult.id);
    if (!attachments.ok()) return Response::from_error(attachments.error());
    if (!events.ok()) return Response::from_error(events.error());
    j["attachments"] = json::array();
    for (const auto& a : *attachments) {
      j["attachments"].push_back(
          {{"kind", a.kind}, {"ref", a.ref}, {"studyInstanceUid", a.study_uid}});
    }
    j["participants"] = json::array();
    for (const auto& p : c.participants) {
      j["participants"].push_back({{"user", p.username},
                                   {"role", p.role},
                                   {"delivered", p.delivered_seq},
                                   {"read", p.read_seq}});
    }
    j["history"] = json::array();
    for (const auto& e : *events) {
      j["history"].push_back(
          {{"at", e.at}, {"type", e.type}, {"actor", e.actor}, {"detail", e.detail}});
    }
    audit(auth, req, "consult.read", std::to_string(c.consult.id), "ok");
    return Response::json(200, json_text(j));
  });

  router.add("GET", "/api/consults/{id}/messages", [&store, &auth](const Request& req) {
    auto l = load(store, req);
    if (auto* r = std::get_if<Response>(&l)) {
      audit(auth, req, "consult.messages", req.params.at("id"), "denied");
      return *r;
    }
    const Loaded& c = std::get<Loaded>(l);
    auto after = req.int_query("afterSeq", 0, std::int64_t{1} << 50);
    if (!after.ok()) return Response::from_error(after.error());
    auto limit = req.int_query("limit", 200, 1000);
    if (!limit.ok()) return Response::from_error(limit.error());
    auto messages = store.messages(c.consult.id, *after, *limit);
    if (!messages.ok()) return Response::from_error(messages.error());
    json out = json::array();
    for (const auto& m : *messages) {
      out.push_back({{"seq", m.seq},
                     {"from", m.author},
                     {"at", m.at},
                     {"text", m.text},
                     {"attachments", json::parse(m.attachments, nullptr, false)}});
    }
    audit(auth, req, "consult.messages", std::to_string(c.consult.id), "ok");
    return Response::json(200, json_text(json{{"lastSeq", c.consult.last_seq}, {"messages", out}}));
  });

  router.add(
      "POST", "/api/consults/{id}/{action}", [&store, &accounts, &auth, &hub](const Request& req) {
        auto action = parse_action(req.params.at("action"));
        if (!action) return Response::error(404, "no such consult action");
        const std::string audit_action = "consult." + req.params.at("action");
        auto l = load(store, req);
        if (auto* r = std::get_if<Response>(&l)) {
          audit(auth, req, audit_action, req.params.at("id"), "denied");
          return *r;
        }
        const Loaded& c = std::get<Loaded>(l);
        auto body = http::json_object_body(req);
        if (!body.ok()) return Response::from_error(body.error());
        const std::string text = *action == Action::conclude ? http::json_string(*body, "opinion")
                                                             : http::json_string(*body, "reason");
        const Principal& p = *req.principal;
        const std::string now = auth.now();
        auto row = store.change(
            c.consult.id,
            [&](const teleconsult::ConsultRow& current) {
              // Decided on the row as it is inside the transaction (two specialists
              // accepting at once: one wins, the other gets 409).
              bool participant = c.participant || current.assignee_id == p.user_id;
              return decide(*action, current, p, participant, text, now);
            },
            now);
        if (!row.ok()) {
          audit(auth, req, audit_action, std::to_string(c.consult.id), "denied",
                row.error().message);
          return Response::from_error(row.error());
        }
        if (*action == Action::accept) {
          // The specialist may now read what the consult is about.
          auto attachments = store.attachments(row->id);
          if (attachments.ok()) {
            for (const auto& a : *attachments) {
              identity::StudyShare share;
              share.study_instance_uid = a.study_uid;
              share.username = p.username;
              share.reason = "consult";
              share.reference = "consult:" + std::to_string(row->id);
              share.granted_by = row->requester_id;
              share.granted_at = now;
              (void)accounts.add_share(share);
            }
          }
        }
        audit(auth, req, audit_action, std::to_string(row->id), "ok", text);
        hub.consult_changed(row->id);
        return Response::json(200, json_text(consult_json(*row)));
      });
}

}  // namespace yilian::teleconsult
