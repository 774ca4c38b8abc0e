#include "yilian/lab/rest.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "yilian/common/text.h"
#include "yilian/identity/accounts.h"
#include "yilian/identity/auth.h"
#include "yilian/identity/policy.h"
#include "yilian/lab/fhir.h"
#include "yilian/net/json_body.h"

namespace yilian::lab {
namespace {

using http::Request;
using http::Response;
using nlohmann::json;

json result_json(const LabResult& r, const Recognition& g) {
  json recognition = {{"recognised", g.recognised}};
  if (!g.until.empty()) recognition["until"] = g.until;
  if (!g.recognised) {
    recognition["why"] = g.why;
    recognition["whyCode"] = g.why_code;
  }
  return {{"id", r.id},
          {"institution", r.institution_code},
          {"patient", {{"id", r.patient_id}, {"name", r.patient_name}}},
          {"order", {{"code", r.order_code}, {"name", r.order_name}}},
          {"code", r.code},
          {"codeSystem", r.code_system},
          {"localCode", r.local_code},
          {"name", r.name},
          {"valueType", r.value_type},
          {"value", r.value},
          {"units", r.units},
          {"referenceRange", r.reference_range},
          {"flags", r.flags},
          {"status", r.status},
          {"specimenAt", r.specimen_at},
          {"observedAt", r.observed_at},
          {"performingLab", r.performing_lab},
          {"qualification", r.qualification},
          {"receivedAt", r.received_at},
          {"recognition", recognition}};
}

// The institutions whose results about `patient` the clinician sees: those they work for, and
// those that referred the patient to them or asked them about the patient.
Result<std::vector<std::int64_t>> reachable(const Principal& p, std::string_view patient,
                                            const PatientReach& reach) {
  std::vector<std::int64_t> out = identity::served_institutions(p);
  if (!reach) return out;
  auto more = reach(p, patient);
  if (!more.ok()) return more.error();
  for (std::int64_t id : *more) {
    if (std::find(out.begin(), out.end(), id) == out.end()) out.push_back(id);
  }
  return out;
}

Response fhir(int status, const json& body) {
  Response r = Response::json(status, json_text(body));
  r.content_type = "application/fhir+json";
  return r;
}

}  // namespace

void register_lab_routes(http::Router& router, LabStore& store, const LabOptions& options,
                         identity::AuthService& auth, PatientReach reach, ReportsOf reports) {
  const std::vector<RecognitionRule>& rules = options.recognition;
  // FHIR R4: a laboratory system of a member posts its results with a credential of that
  // institution (a clinician account); the institution is the account's home one.
  auto post_fhir = [&store, &options, &auth](const Request& req) {
    const Principal& p = *req.principal;
    if (!identity::has_clinical_role(p)) {
      auth.audit(req, "lab.fhir.receive", "lab_report", "", "denied");
      return fhir(403, operation_outcome("error", "forbidden",
                                         "results are posted with a member's clinical account"));
    }
    const std::string type = req.content_type;
    if (type.rfind("application/fhir+json", 0) != 0 && type.rfind("application/json", 0) != 0) {
      return fhir(415, operation_outcome("error", "not-supported",
                                         "send application/fhir+json (FHIR R4, JSON)"));
    }
    json body = json::parse(req.body, nullptr, false);
    if (!body.is_object()) {
      return fhir(400, operation_outcome("error", "structure", "the body is not a JSON object"));
    }
    auto report = read_fhir(body, p.institution_code, options.utc_offset_minutes);
    if (auto* e = std::get_if<FhirIssue>(&report)) {
      auth.audit(req, "lab.fhir.receive", "lab_report", "", "refused", e->text);
      return fhir(e->status, operation_outcome("error", e->code, e->text, e->expression));
    }
    const OruReport& oru = std::get<OruReport>(report);
    auto sender = auth.accounts().find_institution(p.institution_code);
    if (!sender.ok()) return Response::from_error(sender.error());
    if (!sender->has_value()) return Response::error(403, "no institution");
    Intake in = intake(store, options, **sender, oru, "fhir", auth.now());
    if (in.failed) return Response::from_error(*in.failed);
    if (in.unknown_patient) {
      auth.audit(req, "lab.fhir.receive", "lab_report", oru.control_id, "refused", in.text);
      return fhir(422, operation_outcome("error", "business-rule", in.text, "Observation.subject"));
    }
    auth.audit(req, "lab.fhir.receive", "lab_report", oru.control_id, "ok", in.text);
    return fhir(in.duplicate ? 200 : 201,
                operation_outcome("information", "informational", in.text));
  };
  router.add("POST", "/fhir/r4/Observation", post_fhir);
  router.add("POST", "/fhir/r4/Bundle", post_fhir);
  router.add("POST", "/fhir/r4", post_fhir);  // a transaction posted to the base

  router.add("GET", "/api/lab/results",
             [&store, &options, &rules, &auth, reach, reports](const Request& req) {
               const Principal& p = *req.principal;
               const std::string patient = req.query_value("patientId").value_or("");
               if (patient.empty() || patient.size() > 64 || !is_valid_utf8(patient) ||
                   patient.find_first_of("*?\\") != std::string::npos) {
                 return Response::error(400, "patientId is a plain patient identifier");
               }
               if (!identity::has_clinical_role(p)) {
                 auth.audit(req, "lab.results.read", "patient", patient, "denied");
                 return Response::error(403, "laboratory results are read by clinicians");
               }
               auto institutions = reachable(p, patient, reach);
               if (!institutions.ok()) return Response::from_error(institutions.error());
               auto rows = store.results(patient, *institutions);
               if (!rows.ok()) return Response::from_error(rows.error());
               const auto now = storage::parse_iso8601(auth.now()).value_or(storage::TimePoint{});
               json out = json::array();
               std::size_t recognised = 0;
               for (const LabResult& r : *rows) {
                 const Recognition g = recognise(r, rules, now);
                 recognised += g.recognised;
                 out.push_back(result_json(r, g));
               }
               // The patient's imaging reports at the same institutions, with their recognition.
               json imaging = json::array();
               if (reports) {
                 auto studies = reports(patient, *institutions);
                 if (!studies.ok()) return Response::from_error(studies.error());
                 for (const ImagingReport& r : *studies) {
                   const Recognition g = recognise_report(r, rules, options.qualifications, now);
                   recognised += g.recognised;
                   json recognition = {{"recognised", g.recognised}};
                   if (!g.until.empty()) recognition["until"] = g.until;
                   if (!g.recognised) {
                     recognition["why"] = g.why;
                     recognition["whyCode"] = g.why_code;
                   }
                   imaging.push_back({{"taskId", r.task_id},
                                      {"studyInstanceUid", r.study_uid},
                                      {"studyDate", r.study_date},
                                      {"modality", r.modality},
                                      {"description", r.description},
                                      {"institution", r.institution_code},
                                      {"readBy", r.read_by},
                                      {"finalAt", r.final_at},
                                      {"impression", r.impression},
                                      {"recognition", recognition}});
                 }
               }
               auth.audit(req, "lab.results.read", "patient", patient, "ok",
                          std::to_string(rows->size()) + " results, " +
                              std::to_string(imaging.size()) + " imaging reports");
               return Response::json(200, json_text(json{{"patientId", patient},
                                                         {"recognised", recognised},
                                                         {"results", out},
                                                         {"imaging", imaging}}));
             });

  // The doctor takes a recognised result instead of ordering the test again: counted once per
  // result for the doctor's home institution.
  router.add("POST", "/api/lab/results/{id}/recognise",
             [&store, &rules, &auth, reach](const Request& req) {
               const Principal& p = *req.principal;
               auto id = http::path_id(req, "id", "result id");
               if (!id.ok()) return Response::from_error(id.error());
               auto row = store.result(*id);
               if (!row.ok()) return Response::from_error(row.error());
               bool visible = false;
               if (row->has_value() && identity::has_clinical_role(p)) {
                 auto institutions = reachable(p, (*row)->patient_id, reach);
                 if (!institutions.ok()) return Response::from_error(institutions.error());
                 visible = std::find(institutions->begin(), institutions->end(),
                                     (*row)->institution_id) != institutions->end();
               }
               if (!visible) {
                 auth.audit(req, "lab.recognise", "lab_result", std::to_string(*id), "denied");
                 return Response::error(404, "no laboratory result you may see has this id");
               }
               const auto now = storage::parse_iso8601(auth.now()).value_or(storage::TimePoint{});
               const Recognition g = recognise(**row, rules, now);
               if (!g.recognised) {
                 return Response::error(409, "this result is not recognised: " + g.why);
               }
               auto recorded =
                   store.record_recognition(*id, p.institution_id, p.username, auth.now());
               if (!recorded.ok()) return Response::from_error(recorded.error());
               auth.audit(req, "lab.recognise", "lab_result", std::to_string(*id), "ok",
                          *recorded ? "first" : "again");
               return Response::json(200, json_text(json{{"result", *id},
                                                         {"recorded", *recorded},
                                                         {"institution", p.institution_code}}));
             });

  router.add("GET", "/api/lab/avoided-repeats", [&store, &auth](const Request& req) {
    const Principal& p = *req.principal;
    if (!identity::may_read_statistics(p) && !identity::has_clinical_role(p)) {
      return Response::error(403, "statistics are read by clinicians, QC reviewers and admins");
    }
    // Admins and QC reviewers see the whole consortium; a clinician the institutions they work
    // for.
    std::vector<std::int64_t> scope;
    if (identity::may_read_statistics(p) && !identity::has_clinical_role(p)) {
      auto all = auth.accounts().institutions();
      if (!all.ok()) return Response::from_error(all.error());
      for (const auto& i : *all) scope.push_back(i.id);
    } else {
      scope = identity::served_institutions(p);
    }
    // ?from=&to= (ISO 8601): the period, as the dashboard's other figures take it.
    std::string from = req.query_value("from").value_or("");
    std::string to = req.query_value("to").value_or("");
    for (std::string* bound : {&from, &to}) {
      if (bound->empty()) continue;
      auto t = storage::parse_iso8601(*bound);
      if (!t) return Response::error(400, "from and to are ISO 8601 times");
      *bound = storage::to_iso8601(*t);
    }
    auto counts = store.avoided_repeats(scope, from, to);
    if (!counts.ok()) return Response::from_error(counts.error());
    std::int64_t total = 0;
    for (const auto& [code, n] : *counts) total += n;
    return Response::json(200, json_text(json{{"byInstitution", *counts}, {"total", total}}));
  });
}

}  // namespace yilian::lab
