#include "yilian/lab/rest.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <optional>
#include <variant>

#include <nlohmann/json.hpp>

#include "recognition_admin.h"
#include "yilian/common/text.h"
#include "yilian/identity/accounts.h"
#include "yilian/identity/auth.h"
#include "yilian/identity/policy.h"
#include "yilian/lab/fhir.h"
#include "yilian/net/json_body.h"
#include "yilian/pacs/index.h"

namespace yilian::lab {
namespace {

using http::Request;
using http::Response;
using nlohmann::json;

json recognition_json(const Recognition& g) {
  json recognition = {{"recognised", g.recognised}};
  if (!g.until.empty()) recognition["until"] = g.until;
  if (!g.recognised) {
    recognition["why"] = g.why;
    recognition["whyCode"] = g.why_code;
  }
  return recognition;
}

json result_json(const LabResult& r, const Recognition& g) {
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
          {"recognition", recognition_json(g)}};
}

// ?patientId=: a plain patient identifier (no wildcards), or why not.
Result<std::string> patient_param(const Request& req) {
  std::string patient = req.query_value("patientId").value_or("");
  if (patient.empty() || patient.size() > 64 || !is_valid_utf8(patient) ||
      patient.find_first_of("*?\\") != std::string::npos) {
    return make_error(Errc::invalid_argument, "patientId is a plain patient identifier");
  }
  return patient;
}

// ?institution=: the member whose patient the ID names, when it names different people at
// different members; empty when not given.
Result<std::string> institution_param(const Request& req) {
  std::string code = req.query_value("institution").value_or("");
  const bool plain = std::all_of(code.begin(), code.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
  if (code.size() > 64 || !plain) {
    return make_error(Errc::invalid_argument, "institution is a member's code");
  }
  return code;
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

// The patient's studies for the timeline: those the clinician may open (the study access rules),
// then those at the institutions that referred or consulted about the patient, listed with
// their reports but not opened; each with its readings.
Result<std::vector<PatientStudy>> patient_studies(const PatientSources& sources, const Principal& p,
                                                  const std::string& patient,
                                                  const std::vector<std::int64_t>& institutions,
                                                  const std::string& now, bool with_reads,
                                                  bool& more) {
  std::vector<PatientStudy> out;
  more = false;
  if (sources.index == nullptr) return out;
  constexpr std::int64_t kMost = 200;
  pacs::StudyQuery query;
  query.patient_id = patient;
  auto visible = sources.index->search_studies(identity::study_scope(p, now), query, kMost, 0);
  if (!visible.ok()) return visible.error();
  identity::StudyScope reached;
  reached.institutions = institutions;
  reached.now = now;
  auto listed = sources.index->search_studies(reached, query, kMost, 0);
  if (!listed.ok()) return listed.error();
  more = visible->total > kMost || listed->total > kMost;
  std::map<std::string, std::size_t> at;
  auto add = [&](const pacs::StudySummary& s, bool open) {
    if (!at.try_emplace(s.study_instance_uid, out.size()).second) return;
    PatientStudy ps;
    ps.study_uid = s.study_instance_uid;
    ps.study_date = s.study_date;
    ps.study_time = s.study_time;
    ps.modalities = s.modalities;
    ps.description = s.study_description;
    ps.institution_code = s.institution_code;
    ps.issuer = s.issuer_of_patient_id;
    ps.patient_name = s.patient_name;
    ps.patient_birth_date = s.patient_birth_date;
    ps.patient_sex = s.patient_sex;
    ps.first_received_at = s.first_received_at;
    ps.series = s.num_series;
    ps.instances = s.num_instances;
    ps.open = open;
    out.push_back(std::move(ps));
  };
  for (const auto& s : visible->studies) add(s, true);
  for (const auto& s : listed->studies) add(s, false);
  if (with_reads && sources.reads && !out.empty()) {
    auto reads = sources.reads(patient);
    if (!reads.ok()) return reads.error();
    for (StudyRead& r : *reads) {
      if (auto it = at.find(r.study_uid); it != at.end()) {
        out[it->second].reads.push_back(std::move(r));
      }
    }
  }
  return out;
}

// Which person the request is about, when the ID names several: the one of `institution`
// (empty: the only one there is). Keeps only that person's results and studies; an ID that
// names different people at different members, with no institution named, is a 409 that
// lists them for the clinician to choose.
struct Chosen {
  std::optional<PatientIdentity> who;
  std::optional<Response> refused;
};

Chosen choose_patient(const std::string& patient, const std::string& institution,
                      const std::string& national_issuer, std::vector<LabResult>& results,
                      std::vector<PatientStudy>& studies, std::vector<CareEvent>& events) {
  std::vector<PatientRecordSource> found;
  for (const PatientStudy& s : studies) {
    found.push_back(
        {s.institution_code, s.issuer, s.patient_name, s.patient_birth_date, s.patient_sex});
  }
  for (const LabResult& r : results)
    found.push_back({r.institution_code, "", r.patient_name, "", ""});
  for (const CareEvent& e : events) found.push_back({e.institution, "", e.patient_name, "", ""});
  std::vector<PatientIdentity> people = patient_identities(found, national_issuer);
  Chosen out;
  if (!institution.empty()) {
    out.who = identity::person_at(people, institution);
  } else if (people.size() > 1) {
    json candidates = json::array();
    for (const PatientIdentity& p : people) {
      candidates.push_back({{"institutions", p.institutions},
                            {"national", p.national},
                            {"name", p.name},
                            {"birthDate", p.birth_date},
                            {"sex", p.sex}});
    }
    out.refused = Response::json(
        409,
        json_text(json{{"error",
                        {{"code", "ambiguous_patient"},
                         {"message", "patient ID " + patient +
                                         " names different people at different members: name the "
                                         "institution"}}},
                       {"candidates", candidates}}));
    return out;
  } else if (!people.empty()) {
    out.who = people.front();
  }
  if (!out.who) return out;
  std::erase_if(results, [&](const LabResult& r) { return !out.who->holds(r.institution_code); });
  std::erase_if(studies,
                [&](const PatientStudy& s) { return !out.who->holds(s.institution_code); });
  std::erase_if(events, [&](const CareEvent& e) { return !out.who->holds(e.institution); });
  return out;
}

// What both patient endpoints read first: the patient (400 for a bad ID or institution, 403
// for non-clinicians, audited as `action`), the results and studies at the institutions the
// clinician reaches (with `whole`, also the readings, consults, referrals and emergency cases),
// narrowed to the one person the ID names there, the results' qualifications filled from the
// recognition table in force, which comes with them; or the refusal.
struct PatientRecord {
  std::string patient;
  RecognitionTable table;
  // The sources that held more than the record lists (only the newest are listed): "results",
  // "studies", "consults", "referrals", "emergencies".
  std::vector<std::string> bounded;
  std::vector<std::int64_t> institutions;
  std::vector<LabResult> results;
  std::vector<PatientStudy> studies;
  std::vector<CareEvent> events;
  std::optional<PatientIdentity> who;
};

std::variant<PatientRecord, Response> read_patient(const Request& req, const char* action,
                                                   const char* clinicians_only, LabStore& store,
                                                   const LabOptions& options,
                                                   const PatientSources& sources,
                                                   identity::AuthService& auth, bool whole) {
  const Principal& p = *req.principal;
  auto param = patient_param(req);
  if (!param.ok()) return Response::from_error(param.error());
  PatientRecord out;
  out.patient = *param;
  if (!identity::has_clinical_role(p)) {
    auth.audit(req, action, "patient", out.patient, "denied");
    return Response::error(403, clinicians_only);
  }
  auto institution = institution_param(req);
  if (!institution.ok()) return Response::from_error(institution.error());
  auto institutions = reachable(p, out.patient, sources.reach);
  if (!institutions.ok()) return Response::from_error(institutions.error());
  out.institutions = std::move(*institutions);
  auto results = store.results(out.patient, out.institutions);
  if (!results.ok()) return Response::from_error(results.error());
  out.results = std::move(*results);
  if (out.results.size() >= LabStore::kMostResults) out.bounded.push_back("results");
  bool more_studies = false;
  auto studies =
      patient_studies(sources, p, out.patient, out.institutions, auth.now(), whole, more_studies);
  if (!studies.ok()) return Response::from_error(studies.error());
  out.studies = std::move(*studies);
  if (more_studies) out.bounded.push_back("studies");
  if (whole && sources.care) {
    auto care = sources.care(p, out.patient, out.institutions);
    if (!care.ok()) return Response::from_error(care.error());
    out.events = std::move(*care);
    for (const auto& kind_name :
         {std::pair{EntryKind::consult, "consults"}, std::pair{EntryKind::referral, "referrals"},
          std::pair{EntryKind::emergency, "emergencies"}}) {
      const EntryKind kind = kind_name.first;
      const auto n = std::count_if(out.events.begin(), out.events.end(),
                                   [kind](const CareEvent& e) { return e.kind == kind; });
      if (sources.care_most > 0 && static_cast<std::size_t>(n) >= sources.care_most) {
        out.bounded.push_back(kind_name.second);
      }
    }
  }
  Chosen chosen = choose_patient(out.patient, *institution, sources.national_issuer, out.results,
                                 out.studies, out.events);
  if (chosen.refused) {
    auth.audit(req, action, "patient", out.patient, "refused",
               "the ID names different people at different members");
    return std::move(*chosen.refused);
  }
  out.who = std::move(chosen.who);
  auto table = store.recognition_table(options);
  if (!table.ok()) return Response::from_error(table.error());
  out.table = std::move(*table);
  for (LabResult& r : out.results) fill_qualification(r, out.table.qualifications);
  return out;
}

Response fhir(int status, const json& body) {
  Response r = Response::json(status, json_text(body));
  r.content_type = "application/fhir+json";
  return r;
}

}  // namespace

void register_lab_routes(http::Router& router, LabStore& store, const LabOptions& options,
                         identity::AuthService& auth, PatientSources sources) {
  register_recognition_admin(router, store, options, auth);
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

  router.add("GET", "/api/lab/results", [&store, &options, &auth, sources](const Request& req) {
    auto read = read_patient(req, "lab.results.read", "laboratory results are read by clinicians",
                             store, options, sources, auth, false);
    if (auto* refused = std::get_if<Response>(&read)) return std::move(*refused);
    PatientRecord& record = std::get<PatientRecord>(read);
    const std::string& patient = record.patient;
    const std::vector<RecognitionRule>& rules = record.table.rules;
    const std::vector<LabResult>& rows = record.results;
    const std::optional<PatientIdentity>& who = record.who;
    const auto now = storage::parse_iso8601(auth.now()).value_or(storage::TimePoint{});
    json out = json::array();
    std::size_t recognised = 0;
    for (const LabResult& r : rows) {
      const Recognition g = recognise(r, rules, now);
      recognised += g.recognised;
      out.push_back(result_json(r, g));
    }
    // The patient's imaging reports at the same institutions, with their recognition.
    json imaging = json::array();
    if (sources.reports) {
      auto reports = sources.reports(patient, record.institutions);
      if (!reports.ok()) return Response::from_error(reports.error());
      for (const ImagingReport& r : *reports) {
        if (who && !who->holds(r.institution_code)) continue;
        const Recognition g = recognise_report(r, rules, record.table.qualifications, now);
        recognised += g.recognised;
        imaging.push_back({{"taskId", r.task_id},
                           {"studyInstanceUid", r.study_uid},
                           {"studyDate", r.study_date},
                           {"modality", r.modality},
                           {"description", r.description},
                           {"institution", r.institution_code},
                           {"readBy", r.read_by},
                           {"finalAt", r.final_at},
                           {"impression", r.impression},
                           {"recognition", recognition_json(g)}});
      }
    }
    // Of what this answer lists, only the results are bounded (the imaging reports are not).
    const json lab_bounded = std::count(record.bounded.begin(), record.bounded.end(), "results")
                                 ? json::array({"results"})
                                 : json::array();
    auth.audit(req, "lab.results.read", "patient", patient, "ok",
               std::to_string(rows.size()) + " results, " + std::to_string(imaging.size()) +
                   " imaging reports");
    return Response::json(200, json_text(json{{"patientId", patient},
                                              {"recognised", recognised},
                                              {"results", out},
                                              {"imaging", imaging},
                                              {"bounded", lab_bounded}}));
  });

  // The patient's record in time: laboratory panels and the studies with their readings.
  router.add("GET", "/api/timeline", [&store, &options, &auth, sources](const Request& req) {
    auto read =
        read_patient(req, "patient.timeline.read", "a patient's record is read by clinicians",
                     store, options, sources, auth, true);
    if (auto* refused = std::get_if<Response>(&read)) return std::move(*refused);
    PatientRecord& record = std::get<PatientRecord>(read);
    const std::string& patient = record.patient;
    const std::vector<RecognitionRule>& rules = record.table.rules;
    const std::vector<LabResult>& results = record.results;
    const std::vector<PatientStudy>& studies = record.studies;
    const std::vector<CareEvent>& events = record.events;
    const auto now = storage::parse_iso8601(auth.now()).value_or(storage::TimePoint{});
    json entries = json::array();
    for (const TimelineEntry& e :
         patient_timeline(results, studies, options.utc_offset_minutes, events)) {
      json entry = {
          {"kind", entry_kind_name(e.kind)}, {"at", e.at}, {"institution", e.institution}};
      if (e.kind == EntryKind::lab) {
        const LabResult& first = results[e.results.front()];
        entry["order"] = {{"code", first.order_code}, {"name", first.order_name}};
        entry["performingLab"] = first.performing_lab;
        entry["qualification"] = first.qualification;
        json panel = json::array();
        for (std::size_t i : e.results) {
          panel.push_back(result_json(results[i], recognise(results[i], rules, now)));
        }
        entry["results"] = std::move(panel);
      } else if (e.kind == EntryKind::consult || e.kind == EntryKind::referral) {
        const CareEvent& c = events[e.event];
        json care = {{"id", c.id},     {"status", c.status}, {"urgency", c.urgency},
                     {"text", c.text}, {"answer", c.answer}, {"by", c.by}};
        if (e.kind == EntryKind::consult) {
          care["specialty"] = c.other;
          care["open"] = c.open;
        } else {
          care["to"] = c.other;
          care["direction"] = c.direction;
        }
        entry[entry_kind_name(e.kind)] = std::move(care);
      } else if (e.kind == EntryKind::emergency) {
        const CareEvent& c = events[e.event];
        json points = json::array();
        for (const CareEvent::Point& tp : c.points)
          points.push_back({{"point", tp.point}, {"at", tp.at}});
        entry["emergency"] = {{"id", c.id},
                              {"kind", c.other},
                              {"status", c.status},
                              {"source", c.source},
                              {"reason", c.text},
                              {"openedBy", c.by},
                              {"acknowledgedBy", c.acknowledged_by},
                              {"acknowledgedAt", c.acknowledged_at},
                              {"closedAt", c.closed_at},
                              {"timePoints", std::move(points)},
                              {"open", c.open}};
      } else {
        const PatientStudy& s = studies[e.study];
        entry["study"] = {{"studyInstanceUid", s.study_uid},  {"studyDate", s.study_date},
                          {"studyTime", s.study_time},        {"modalities", s.modalities},
                          {"description", s.description},     {"numberOfSeries", s.series},
                          {"numberOfInstances", s.instances}, {"open", s.open}};
        json reads = json::array();
        for (const StudyRead& r : s.reads) {
          json read = {{"taskId", r.task_id},
                       {"service", r.service},
                       {"status", r.status},
                       {"priority", r.priority},
                       {"priorityReason", r.priority_reason},
                       {"finalAt", r.final_at},
                       {"impression", r.impression},
                       {"readBy", r.read_by},
                       {"critical", r.critical}};
          if (r.status == "final" && !r.is_ecg) {
            const ImagingReport report{r.task_id,  s.study_uid,   s.study_date,
                                       r.modality, s.description, s.institution_code,
                                       r.read_by,  r.final_at,    r.impression};
            read["recognition"] =
                recognition_json(recognise_report(report, rules, record.table.qualifications, now));
          }
          reads.push_back(std::move(read));
        }
        entry["reads"] = std::move(reads);
      }
      entries.push_back(std::move(entry));
    }
    json who = {{"id", patient}, {"name", ""}, {"birthDate", ""}, {"sex", ""}};
    if (record.who) {
      who = {{"id", patient},
             {"name", record.who->name},
             {"birthDate", record.who->birth_date},
             {"sex", record.who->sex},
             {"institutions", record.who->institutions},
             {"national", record.who->national}};
    }
    auth.audit(req, "patient.timeline.read", "patient", patient, "ok",
               std::to_string(results.size()) + " results, " + std::to_string(studies.size()) +
                   " studies, " + std::to_string(events.size()) +
                   " consults, referrals and emergency cases");
    return Response::json(
        200, json_text(json{{"patient", who}, {"entries", entries}, {"bounded", record.bounded}}));
  });

  // The doctor takes a recognised result instead of ordering the test again: counted once per
  // result for the doctor's home institution.
  router.add("POST", "/api/lab/results/{id}/recognise",
             [&store, &options, &auth, reach = sources.reach](const Request& req) {
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
               auto table = store.recognition_table(options);
               if (!table.ok()) return Response::from_error(table.error());
               fill_qualification(**row, table->qualifications);
               const Recognition g = recognise(**row, table->rules, now);
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
