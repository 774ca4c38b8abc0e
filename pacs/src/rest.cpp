#include "yilian/pacs/rest.h"

#include <charconv>
#include <nlohmann/json.hpp>

#include "yilian/common/text.h"
#include "yilian/identity/policy.h"
#include "yilian/storage/clock.h"

namespace yilian::pacs {
namespace {

using nlohmann::json;

json study_json(const pacs::StudySummary& s) {
  return json{
      {"studyInstanceUid", s.study_instance_uid},
      {"patient",
       {{"id", s.patient_id},
        {"issuer", s.issuer_of_patient_id},
        {"name", s.patient_name},
        {"birthDate", s.patient_birth_date},
        {"sex", s.patient_sex}}},
      {"studyDate", s.study_date},
      {"studyTime", s.study_time},
      {"accessionNumber", s.accession_number},
      {"description", s.study_description},
      {"referringPhysician", s.referring_physician},
      {"institutionName", s.institution_name},
      {"institution", s.institution_code},
      {"modalities", s.modalities},
      {"numberOfSeries", s.num_series},
      {"numberOfInstances", s.num_instances},
      {"sizeBytes", s.size_bytes},
      {"firstReceivedAt", s.first_received_at},
      {"lastReceivedAt", s.last_received_at},
  };
}

http::Response no_access() {
  return http::Response::error(404, "no study you may see has this UID");
}

void audit(identity::AuthService& auth, const http::Request& req, const char* action,
           const std::string& object, const char* outcome, std::string detail = {}) {
  auth.audit(req, action, "study", object, outcome, std::move(detail));
}

// The access facts of a study for the requesting principal, if it exists.
Result<std::optional<identity::StudyAccessFacts>> facts_for(pacs::Index& index,
                                                            identity::AuthService& auth,
                                                            const http::Request& req) {
  const Principal& p = *req.principal;
  auto shares = identity::share_institutions(p);
  return index.study_access(req.params.at("uid"), p.user_id, shares, auth.now());
}

}  // namespace

void register_study_routes(http::Router& router, pacs::Index& index, identity::AuthService& auth) {
  router.add("GET", "/api/studies", [&index, &auth](const http::Request& req) {
    auto limit = req.int_query("limit", 50, 1000);
    if (!limit.ok()) return http::Response::from_error(limit.error());
    auto offset = req.int_query("offset", 0, std::int64_t{1} << 40);
    if (!offset.ok()) return http::Response::from_error(offset.error());
    auto scope = identity::study_scope(*req.principal, auth.now());
    auto page = index.list_studies(scope, *limit, *offset);
    if (!page.ok()) return http::Response::from_error(page.error());
    json studies = json::array();
    std::string uids;
    for (const auto& s : page->studies) {
      studies.push_back(study_json(s));
      if (!uids.empty()) uids += ',';
      uids += s.study_instance_uid;
    }
    audit(
        auth, req, "study.list", "", "ok",
        std::to_string(page->studies.size()) + " of " + std::to_string(page->total) + ": " + uids);
    json body = {{"total", page->total},
                 {"limit", *limit},
                 {"offset", *offset},
                 {"studies", std::move(studies)}};
    return http::Response::json(200, json_text(body));
  });

  router.add("GET", "/api/studies/{uid}", [&index, &auth](const http::Request& req) {
    const std::string& uid = req.params.at("uid");
    auto facts = facts_for(index, auth, req);
    if (!facts.ok()) return http::Response::from_error(facts.error());
    if (!facts->has_value() || !identity::may_read_study(*req.principal, **facts)) {
      audit(auth, req, "study.read", uid, "denied", facts->has_value() ? "" : "no such study");
      return no_access();
    }
    auto detail = index.get_study(uid);
    if (!detail.ok()) return http::Response::from_error(detail.error());
    if (!detail->has_value()) return no_access();
    const pacs::StudyDetail& d = **detail;
    json body = study_json(d.study);
    json series = json::array();
    for (const auto& s : d.series) {
      series.push_back({{"seriesInstanceUid", s.series_instance_uid},
                        {"modality", s.modality},
                        {"seriesNumber", s.series_number ? json(*s.series_number) : json(nullptr)},
                        {"description", s.series_description},
                        {"bodyPart", s.body_part},
                        {"numberOfInstances", s.num_instances},
                        {"sizeBytes", s.size_bytes},
                        {"lastReceivedAt", s.last_received_at}});
    }
    body["series"] = std::move(series);
    audit(auth, req, "study.read", uid, "ok", (**facts).shared ? "through a share" : "");
    return http::Response::json(200, json_text(body));
  });

  router.add("POST", "/api/studies/{uid}/shares", [&index, &auth](const http::Request& req) {
    const std::string& uid = req.params.at("uid");
    auto facts = facts_for(index, auth, req);
    if (!facts.ok()) return http::Response::from_error(facts.error());
    // Hidden or missing: 404 like any read; seen (through a share) but not the caller's to
    // pass on: 403.
    const bool seen = facts->has_value() && identity::may_read_study(*req.principal, **facts);
    if (!seen || !identity::may_share_study(*req.principal, **facts)) {
      audit(auth, req, "study.share", uid, "denied");
      return seen ? http::Response::error(403, "a study seen through a share is not yours to share")
                  : no_access();
    }
    json j = json::parse(req.body, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      return http::Response::error(400, "the request body must be a JSON object");
    }
    identity::StudyShare share;
    share.study_instance_uid = uid;
    for (auto [key, out] :
         {std::pair{"institution", &share.institution_code}, std::pair{"user", &share.username},
          std::pair{"reason", &share.reason}, std::pair{"reference", &share.reference},
          std::pair{"expiresAt", &share.expires_at}}) {
      auto it = j.find(key);
      if (it == j.end() || it->is_null()) continue;
      if (!it->is_string()) {
        return http::Response::error(400, std::string(key) + " must be a string");
      }
      *out = it->get<std::string>();
    }
    if (!share.expires_at.empty() && !storage::parse_iso8601(share.expires_at)) {
      return http::Response::error(400, "expiresAt must be like 2026-12-01T00:00:00Z");
    }
    share.granted_by = req.principal->user_id;
    share.granted_at = auth.now();
    Status s = auth.accounts().add_share(share);
    std::string target = share.institution_code.empty() ? "user " + share.username
                                                        : "institution " + share.institution_code;
    audit(auth, req, "study.share", uid, s.ok() ? "ok" : "failed",
          s.ok() ? share.reason + " with " + target : s.error().message);
    if (!s) return http::Response::from_error(s.error());
    json body = {{"study", uid},
                 {"institution",
                  share.institution_code.empty() ? json(nullptr) : json(share.institution_code)},
                 {"user", share.username.empty() ? json(nullptr) : json(share.username)},
                 {"reason", share.reason},
                 {"reference", share.reference},
                 {"expiresAt", share.expires_at.empty() ? json(nullptr) : json(share.expires_at)}};
    return http::Response::json(201, json_text(body));
  });
}

}  // namespace yilian::pacs
