#include "yilian/pacs/dicomweb.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "dicomweb_util.h"
#include "wado.h"
#include "yilian/identity/policy.h"

namespace yilian::pacs {
namespace {

using http::Request;
using namespace web;
using http::Response;

nlohmann::json study_to_dicom_json(const storage::StudySummary& s) {
  nlohmann::json j;
  j["00080020"] = dicom_value("DA", s.study_date);
  j["00080030"] = dicom_value("TM", s.study_time);
  j["00080050"] = dicom_value("SH", s.accession_number);
  nlohmann::json mods = nlohmann::json::array();
  for (const std::string& m : split(s.modalities, '\\')) {
    if (!m.empty()) mods.push_back(m);
  }
  j["00080061"] =
      mods.empty() ? nlohmann::json{{"vr", "CS"}} : nlohmann::json{{"vr", "CS"}, {"Value", mods}};
  j["00080080"] = dicom_value("LO", s.institution_name);
  j["00080090"] = dicom_name(s.referring_physician);
  j["00081030"] = dicom_value("LO", s.study_description);
  j["00081190"] = dicom_value("UR", "/dicom-web/studies/" + s.study_instance_uid);
  j["00100010"] = dicom_name(s.patient_name);
  j["00100020"] = dicom_value("LO", s.patient_id);
  j["00100021"] = dicom_value("LO", s.issuer_of_patient_id);
  j["00100030"] = dicom_value("DA", s.patient_birth_date);
  j["00100040"] = dicom_value("CS", s.patient_sex);
  j["0020000D"] = dicom_value("UI", s.study_instance_uid);
  j["00201206"] = dicom_number("IS", s.num_series);
  j["00201208"] = dicom_number("IS", s.num_instances);
  return j;
}

bool valid_date_query(const std::string& d) {
  auto date = [](const std::string& s) {
    return s.empty() || (s.size() == 8 && s.find_first_not_of("0123456789") == std::string::npos);
  };
  std::size_t dash = d.find('-');
  if (dash == std::string::npos) return d.size() == 8 && date(d);
  return d.size() > 1 && date(d.substr(0, dash)) && date(d.substr(dash + 1));
}

// PS3.18 failure reasons (0008,1197) for the ingest outcomes.
int failure_reason(IngestStatus s, const std::string& message) {
  switch (s) {
    case IngestStatus::refused:
      return 0x0124;
    case IngestStatus::failed:
      return 0xA700;
    case IngestStatus::rejected:
      return message.find("SOP Class") != std::string::npos ? 0xA900 : 0xC000;
    default:
      return 0;
  }
}

}  // namespace

Result<std::vector<BodyPart>> split_multipart(const std::string& content_type,
                                              std::string_view body) {
  if (lower(content_type).rfind("multipart/related", 0) != 0) {
    return make_error(Errc::invalid_argument, "STOW-RS takes multipart/related bodies");
  }
  std::string boundary = header_param(content_type, "boundary");
  if (boundary.empty())
    return make_error(Errc::invalid_argument, "multipart body without a boundary");
  const std::string delim = "--" + boundary;
  std::vector<BodyPart> parts;
  std::size_t pos = body.find(delim);
  if (pos == std::string_view::npos)
    return make_error(Errc::invalid_argument, "no multipart boundary in the body");
  while (true) {
    pos += delim.size();
    if (body.substr(pos, 2) == "--") break;  // closing delimiter
    if (body.substr(pos, 2) != "\r\n")
      return make_error(Errc::invalid_argument, "malformed multipart delimiter");
    pos += 2;
    std::size_t head_end = body.find("\r\n\r\n", pos);
    if (head_end == std::string_view::npos)
      return make_error(Errc::invalid_argument, "a part has no header end");
    std::string headers(body.substr(pos, head_end - pos));
    std::size_t data = head_end + 4;
    std::size_t next = body.find("\r\n" + delim, data);
    if (next == std::string_view::npos)
      return make_error(Errc::invalid_argument, "unterminated multipart body");
    BodyPart part;
    for (const std::string& line : split(headers, '\n')) {
      std::string l = line;
      if (!l.empty() && l.back() == '\r') l.pop_back();
      if (lower(l).rfind("content-type:", 0) == 0) {
        part.content_type = l.substr(13);
        part.content_type.erase(0, part.content_type.find_first_not_of(" \t"));
      }
    }
    part.bytes = body.substr(data, next - data);
    parts.push_back(part);
    pos = next + 2;
  }
  return parts;
}

void register_dicomweb_routes(http::Router& router, storage::Index& index,
                              storage::BlobStore& blobs, Ingestor& ingestor,
                              identity::AuthService& auth, storage::DiskCache& cache) {
  // QIDO-RS: search for studies (DICOM JSON), limited to what the caller may see.
  router.add("GET", "/dicom-web/studies", [&index, &auth](const Request& req) {
    const Principal& p = *req.principal;
    storage::StudyQuery q;
    q.patient_id = attr(req, "PatientID", "00100020").value_or("");
    q.patient_name = attr(req, "PatientName", "00100010").value_or("");
    q.fuzzy_names = req.query_value("fuzzymatching").value_or("") == "true";
    q.study_date = attr(req, "StudyDate", "00080020").value_or("");
    q.accession_number = attr(req, "AccessionNumber", "00080050").value_or("");
    q.modality = attr(req, "ModalitiesInStudy", "00080061").value_or("");
    q.study_description = attr(req, "StudyDescription", "00081030").value_or("");
    if (auto uids = attr(req, "StudyInstanceUID", "0020000D")) {
      std::string list = *uids;
      std::replace(list.begin(), list.end(), '\\', ',');
      for (const std::string& u : split(list, ',')) {
        if (!u.empty()) q.study_uids.push_back(u);
      }
    }
    if (!q.study_date.empty() && !valid_date_query(q.study_date)) {
      return Response::error(
          400, "invalid_argument",
          "StudyDate is YYYYMMDD or a range YYYYMMDD-YYYYMMDD (either end open)");
    }
    auto limit = req.int_query("limit", 100, 1000);
    if (!limit.ok()) return Response::from_error(limit.error());
    auto offset = req.int_query("offset", 0, std::int64_t{1} << 40);
    if (!offset.ok()) return Response::from_error(offset.error());
    auto page = index.search_studies(identity::study_scope(p, auth.now()), q, *limit, *offset);
    if (!page.ok()) return Response::from_error(page.error());
    nlohmann::json out = nlohmann::json::array();
    std::string uids;
    for (const auto& s : page->studies) {
      out.push_back(study_to_dicom_json(s));
      uids += (uids.empty() ? "" : ",") + s.study_instance_uid;
    }
    identity::AuditEvent ev = identity::event_for(p, req.peer);
    ev.action = "qido.studies";
    ev.object_type = "studies";
    ev.detail =
        std::to_string(page->studies.size()) + " of " + std::to_string(page->total) + ": " + uids;
    (void)auth.auditor().record(ev);
    Response r;
    r.status = 200;
    r.content_type = "application/dicom+json";
    r.body = out.dump();
    r.headers.emplace_back("X-Total-Count", std::to_string(page->total));
    return r;
  });

  // QIDO-RS within a study: its series, and a series' instances.
  auto study_visible = [&index, &auth](const Request& req, const char* action) {
    const Principal& p = *req.principal;
    const std::string& study = req.params.at("study");
    auto facts = index.study_access(study, p.user_id, identity::share_institutions(p), auth.now());
    bool ok = facts.ok() && facts->has_value() && identity::may_read_study(p, **facts);
    identity::AuditEvent ev = identity::event_for(p, req.peer);
    ev.action = action;
    ev.object_type = "study";
    ev.object_id = study;
    ev.outcome = ok ? "ok" : "denied";
    (void)auth.auditor().record(ev);
    return ok;
  };
  auto json_response = [](const nlohmann::json& body) {
    Response r;
    r.status = 200;
    r.content_type = "application/dicom+json";
    r.body = body.dump();
    return r;
  };
  router.add("GET", "/dicom-web/studies/{study}/series",
             [&index, study_visible, json_response](const Request& req) {
               if (!study_visible(req, "qido.series")) {
                 return Response::error(403, "forbidden", "no study you may see has this UID");
               }
               const std::string& study = req.params.at("study");
               auto detail = index.get_study(study);
               if (!detail.ok()) return Response::from_error(detail.error());
               std::string modality = attr(req, "Modality", "00080060").value_or("");
               std::string wanted = attr(req, "SeriesInstanceUID", "0020000E").value_or("");
               nlohmann::json out = nlohmann::json::array();
               if (detail->has_value()) {
                 for (const auto& s : (*detail)->series) {
                   if (!modality.empty() && s.modality != modality) continue;
                   if (!wanted.empty() && s.series_instance_uid != wanted) continue;
                   nlohmann::json j;
                   j["00080060"] = dicom_value("CS", s.modality);
                   j["0008103E"] = dicom_value("LO", s.series_description);
                   j["00180015"] = dicom_value("CS", s.body_part);
                   j["0020000D"] = dicom_value("UI", study);
                   j["0020000E"] = dicom_value("UI", s.series_instance_uid);
                   j["00200011"] = dicom_number("IS", s.series_number);
                   j["00201209"] = dicom_number("IS", s.num_instances);
                   j["00081190"] = dicom_value(
                       "UR", "/dicom-web/studies/" + study + "/series/" + s.series_instance_uid);
                   out.push_back(std::move(j));
                 }
               }
               return json_response(out);
             });
  router.add("GET", "/dicom-web/studies/{study}/series/{series}/instances",
             [&index, study_visible, json_response](const Request& req) {
               if (!study_visible(req, "qido.instances")) {
                 return Response::error(403, "forbidden", "no study you may see has this UID");
               }
               const std::string& study = req.params.at("study");
               auto list = index.series_instances(req.params.at("series"));
               if (!list.ok()) return Response::from_error(list.error());
               std::string wanted = attr(req, "SOPInstanceUID", "00080018").value_or("");
               nlohmann::json out = nlohmann::json::array();
               for (const auto& i : *list) {
                 if (i.study_instance_uid != study) continue;  // a series of another study
                 if (!wanted.empty() && i.sop_instance_uid != wanted) continue;
                 nlohmann::json j;
                 j["00080016"] = dicom_value("UI", i.sop_class_uid);
                 j["00080018"] = dicom_value("UI", i.sop_instance_uid);
                 j["00083002"] = dicom_value("UI", i.transfer_syntax_uid);
                 j["0020000D"] = dicom_value("UI", study);
                 j["0020000E"] = dicom_value("UI", i.series_instance_uid);
                 j["00200013"] = dicom_number("IS", i.instance_number);
                 j["00280008"] = dicom_number("IS", i.number_of_frames);
                 j["00081190"] = dicom_value("UR", "/dicom-web/studies/" + study + "/series/" +
                                                       i.series_instance_uid + "/instances/" +
                                                       i.sop_instance_uid);
                 out.push_back(std::move(j));
               }
               return json_response(out);
             });

  router.add("POST", "/dicom-web/studies", [&ingestor, &auth](const Request& req) {
    const Principal& p = *req.principal;
    if (!identity::has_clinical_role(p)) {
      return Response::error(403, "forbidden",
                             "uploads are filed under a clinical user's institution");
    }
    auto parts = split_multipart(req.content_type, req.body);
    if (!parts.ok()) return Response::error(415, "unsupported_media_type", parts.error().message);
    if (parts->empty()) return Response::error(400, "invalid_argument", "no parts in the body");
    nlohmann::json stored = nlohmann::json::array(), failed = nlohmann::json::array();
    bool warning = false;
    std::string study;
    for (const BodyPart& part : *parts) {
      IngestOutcome o;
      std::string ct = lower(part.content_type);
      if (ct.rfind("application/dicom", 0) != 0 || ct.rfind("application/dicom+", 0) == 0) {
        o.status = IngestStatus::rejected;
        o.message = "part is not application/dicom";
      } else {
        o = ingestor.ingest_bytes(part.bytes, Sender{"", p.institution_id});
      }
      auto ui = [](const std::string& v) {
        return nlohmann::json{{"vr", "UI"}, {"Value", nlohmann::json::array({v})}};
      };
      nlohmann::json item;
      if (!o.sop_class_uid.empty()) item["00081150"] = ui(o.sop_class_uid);
      if (!o.sop_instance_uid.empty()) item["00081155"] = ui(o.sop_instance_uid);
      if (o.status == IngestStatus::stored || o.status == IngestStatus::duplicate ||
          o.status == IngestStatus::conflict) {
        if (study.empty()) study = o.study_instance_uid;
        item["00081190"] = {{"vr", "UR"},
                            {"Value", {"/dicom-web/studies/" + o.study_instance_uid}}};
        if (o.status == IngestStatus::conflict) {
          warning = true;
          item["00081196"] = {{"vr", "US"}, {"Value", {0xB000}}};
        }
        stored.push_back(item);
      } else {
        item["00081197"] = {{"vr", "US"}, {"Value", {failure_reason(o.status, o.message)}}};
        failed.push_back(item);
      }
      identity::AuditEvent ev = identity::event_for(p, req.peer);
      ev.action = "dicomweb.store";
      ev.object_type = "instance";
      ev.object_id = o.sop_instance_uid;
      ev.outcome = o.status == IngestStatus::stored || o.status == IngestStatus::duplicate
                       ? "ok"
                       : (o.status == IngestStatus::refused ? "denied" : "failed");
      ev.detail = std::string(ingest_status_name(o.status)) +
                  (o.message.empty() ? "" : ": " + o.message) +
                  (o.study_instance_uid.empty() ? "" : " (study " + o.study_instance_uid + ")");
      (void)auth.auditor().record(ev);
    }
    nlohmann::json body = nlohmann::json::object();
    if (!study.empty())
      body["00081190"] = {{"vr", "UR"}, {"Value", {"/dicom-web/studies/" + study}}};
    if (!failed.empty()) body["00081198"] = {{"vr", "SQ"}, {"Value", failed}};
    if (!stored.empty()) body["00081199"] = {{"vr", "SQ"}, {"Value", stored}};
    Response r;
    r.status = stored.empty() ? 409 : (failed.empty() && !warning ? 200 : 202);
    r.content_type = "application/dicom+json";
    r.body = body.dump();
    return r;
  });

  register_wado_routes(router, index, blobs, auth, cache);
}

}  // namespace yilian::pacs
