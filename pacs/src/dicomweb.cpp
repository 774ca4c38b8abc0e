#include "yilian/pacs/dicomweb.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <set>

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dctag.h>
#include <spdlog/spdlog.h>

#include "dicomweb_util.h"
#include "instance_reader.h"
#include "query_retrieve.h"
#include "wado.h"
#include "yilian/common/text.h"
#include "yilian/identity/policy.h"
#include "yilian/pacs/study_access.h"

namespace yilian::pacs {
namespace {

using http::Request;
using namespace web;
using http::Response;

nlohmann::json study_to_dicom_json(const pacs::StudySummary& s) {
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

// includefield (PS3.18 8.3.4.3): `all`, or attribute keywords and tags (8 hex digits),
// comma-separated or repeated. What the default set lacks comes from a representative
// instance's data set.
struct IncludeFields {
  bool all = false;
  std::set<std::string> tags;  // 8 upper-case hex digits
  bool empty() const { return !all && tags.empty(); }
};

std::optional<Response> include_fields(const Request& req, IncludeFields& out) {
  auto v = req.query_value("includefield");
  if (!v) return std::nullopt;
  for (std::string field : split(*v, ',')) {
    field.erase(0, field.find_first_not_of(' '));
    field.erase(field.find_last_not_of(' ') + 1);
    if (field.empty()) continue;
    if (field == "all") {
      out.all = true;
      continue;
    }
    bool hex = field.size() == 8 && std::all_of(field.begin(), field.end(), [](char c) {
                 return std::isxdigit(static_cast<unsigned char>(c)) != 0;
               });
    if (hex) {
      for (char& c : field) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      out.tags.insert(field);
      continue;
    }
    DcmTag tag;
    if (DcmTag::findTagFromName(field.c_str(), tag).bad()) {
      return Response::error(400, "includefield: no DICOM attribute is called " + field);
    }
    char text[9];
    std::snprintf(text, sizeof text, "%04X%04X", tag.getGroup(), tag.getElement());
    out.tags.insert(text);
  }
  return std::nullopt;
}

// The attributes `includefield=all` adds at the study and series levels (the Patient, Study
// and Visit modules; the General Series and Equipment modules); an instance gives all of its
// own.
bool study_level_tag(std::uint16_t group, std::uint16_t element) {
  static const std::set<std::uint32_t> kStudy = {0x00080020, 0x00080030, 0x00080050, 0x00080051,
                                                 0x00080090, 0x00081030, 0x00081032, 0x00081048,
                                                 0x00081060, 0x00081080, 0x00081110, 0x00200010};
  return group == 0x0010 || group == 0x0032 || group == 0x0038 ||
         kStudy.count((std::uint32_t{group} << 16) | element) > 0;
}
bool series_level_tag(std::uint16_t group, std::uint16_t element) {
  static const std::set<std::uint32_t> kSeries = {
      0x00080021, 0x00080031, 0x00080060, 0x00080070, 0x00080080, 0x00080081, 0x00081010,
      0x0008103E, 0x00081040, 0x00081050, 0x00081070, 0x00081090, 0x00081111, 0x00180015,
      0x00181030, 0x00185100, 0x0020000E, 0x00200011, 0x00200052, 0x00200060, 0x00400244,
      0x00400245, 0x00400253, 0x00400254, 0x00400275};
  return kSeries.count((std::uint32_t{group} << 16) | element) > 0;
}

// Adds to the result `j` what `inc` asks for beyond what it holds, from the data set of
// `instance` (the study's or series' first; none: the requested ones come back empty).
// `with_study`: a series or instance result that
// carries its study's attributes too. A requested attribute the object lacks comes back empty.
void include_from(nlohmann::json& j, const IncludeFields& inc, Level level, bool with_study,
                  const storage::BlobStore& blobs, const InstanceLocation* instance) {
  nlohmann::json meta;
  if (instance) {
    auto text = instance_metadata_json(blobs.blob_path(instance->blob_key), "");
    if (text.ok()) {
      meta = nlohmann::json::parse(*text, nullptr, false);
    } else {
      spdlog::warn("includefield: cannot read instance {}: {}", instance->sop_instance_uid,
                   text.error().message);
    }
  }
  if (meta.is_object()) {
    for (auto& [key, value] : meta.items()) {
      if (j.contains(key) || !value.is_object() || value.contains("BulkDataURI")) continue;
      unsigned long packed = std::strtoul(key.c_str(), nullptr, 16);
      const auto group = static_cast<std::uint16_t>(packed >> 16);
      const auto element = static_cast<std::uint16_t>(packed & 0xFFFF);
      bool wanted = inc.tags.count(key) > 0;
      if (inc.all && !wanted) {
        wanted = level == Level::instance ||
                 ((level == Level::study || with_study) && study_level_tag(group, element)) ||
                 (level == Level::series && series_level_tag(group, element));
      }
      if (wanted) j[key] = value;
    }
  }
  for (const std::string& key : inc.tags) {
    if (j.contains(key)) continue;
    const unsigned long packed = std::strtoul(key.c_str(), nullptr, 16);
    DcmTag tag(static_cast<Uint16>(packed >> 16), static_cast<Uint16>(packed & 0xFFFF));
    nlohmann::json empty(nlohmann::json::value_t::object);
    empty["vr"] = tag.getVR().getValidVRName();
    j[key] = std::move(empty);
  }
}

// include_from with the first instance of a study (of one of its series, when given).
Status include_first(nlohmann::json& j, const IncludeFields& inc, Level level, bool with_study,
                     pacs::Index& index, const storage::BlobStore& blobs, const std::string& study,
                     const std::string& series = {}) {
  auto first = study_instances(index, study, series, 1);
  if (!first.ok()) return first.error();
  include_from(j, inc, level, with_study, blobs, first->empty() ? nullptr : &first->front());
  return Status::Ok();
}

// A '\\' or ',' separated UID list as a DICOM match pattern.
std::string uid_list(std::string v) {
  std::replace(v.begin(), v.end(), ',', '\\');
  return v;
}

struct SeriesFilter {
  std::string modality, uid, number, description;
  bool matches(const pacs::SeriesSummary& s) const {
    return dicom_match(modality, s.modality) && dicom_match(uid, s.series_instance_uid) &&
           dicom_match(number, s.series_number ? std::to_string(*s.series_number) : "") &&
           dicom_match(description, s.series_description);
  }
};
SeriesFilter series_filter(const Request& req) {
  return {attr(req, "Modality", "00080060").value_or(""),
          uid_list(attr(req, "SeriesInstanceUID", "0020000E").value_or("")),
          attr(req, "SeriesNumber", "00200011").value_or(""),
          attr(req, "SeriesDescription", "0008103E").value_or("")};
}

struct InstanceFilter {
  std::string uid, sop_class, number;
  bool matches(const pacs::InstanceLocation& i) const {
    return dicom_match(uid, i.sop_instance_uid) && dicom_match(sop_class, i.sop_class_uid) &&
           dicom_match(number, i.instance_number ? std::to_string(*i.instance_number) : "");
  }
};
InstanceFilter instance_filter(const Request& req) {
  return {uid_list(attr(req, "SOPInstanceUID", "00080018").value_or("")),
          uid_list(attr(req, "SOPClassUID", "00080016").value_or("")),
          attr(req, "InstanceNumber", "00200013").value_or("")};
}

// Series attributes; with the study's (and patient's) when the search spans studies.
nlohmann::json series_to_dicom_json(const pacs::StudySummary& st, const pacs::SeriesSummary& s,
                                    bool with_study) {
  nlohmann::json j = with_study ? study_to_dicom_json(st) : nlohmann::json::object();
  const std::string& study = st.study_instance_uid;
  j["00080060"] = dicom_value("CS", s.modality);
  j["0008103E"] = dicom_value("LO", s.series_description);
  j["00180015"] = dicom_value("CS", s.body_part);
  j["0020000D"] = dicom_value("UI", study);
  j["0020000E"] = dicom_value("UI", s.series_instance_uid);
  j["00200011"] = dicom_number("IS", s.series_number);
  j["00201209"] = dicom_number("IS", s.num_instances);
  j["00081190"] =
      dicom_value("UR", "/dicom-web/studies/" + study + "/series/" + s.series_instance_uid);
  return j;
}

nlohmann::json instance_to_dicom_json(const pacs::StudySummary& st, const pacs::SeriesSummary& se,
                                      const pacs::InstanceLocation& i, bool with_parents) {
  nlohmann::json j = with_parents ? series_to_dicom_json(st, se, true) : nlohmann::json::object();
  const std::string& study = st.study_instance_uid;
  j["00080016"] = dicom_value("UI", i.sop_class_uid);
  j["00080018"] = dicom_value("UI", i.sop_instance_uid);
  j["00083002"] = dicom_value("UI", i.transfer_syntax_uid);
  j["0020000D"] = dicom_value("UI", study);
  j["0020000E"] = dicom_value("UI", i.series_instance_uid);
  j["00200013"] = dicom_number("IS", i.instance_number);
  j["00280008"] = dicom_number("IS", i.number_of_frames);
  j["00081190"] = dicom_value("UR", instance_url(study, i.series_instance_uid, i.sop_instance_uid));
  return j;
}

void audit_search(identity::AuthService& auth, const Request& req, const char* action,
                  std::string detail) {
  const bool in_study = req.params.count("study") > 0;
  const std::string outcome = detail == "denied" ? "denied" : "ok";
  auth.audit(req, action, in_study ? "study" : "studies", in_study ? req.params.at("study") : "",
             outcome, std::move(detail));
}

}  // namespace

Result<std::vector<BodyPart>> split_multipart(const std::string& content_type,
                                              std::string_view body) {
  const std::string type = ascii_lower(content_type);
  if (type.rfind("multipart/related", 0) != 0 && type.rfind("multipart/form-data", 0) != 0) {
    return make_error(Errc::invalid_argument, "expected a multipart/related or form-data body");
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
    // A part may have no header fields at all (RFC 2046): its body starts after one CRLF.
    std::string headers;
    std::size_t data = pos + 2;
    if (body.substr(pos, 2) != "\r\n") {
      std::size_t head_end = body.find("\r\n\r\n", pos);
      if (head_end == std::string_view::npos)
        return make_error(Errc::invalid_argument, "a part has no header end");
      headers = std::string(body.substr(pos, head_end - pos));
      data = head_end + 4;
    }
    std::size_t next = body.find("\r\n" + delim, data);
    if (next == std::string_view::npos)
      return make_error(Errc::invalid_argument, "unterminated multipart body");
    BodyPart part;
    // Without a Content-Type of its own, a part of multipart/related is of the root's type.
    part.content_type = header_param(content_type, "type");
    for (const std::string& line : split(headers, '\n')) {
      std::string l = line;
      if (!l.empty() && l.back() == '\r') l.pop_back();
      if (ascii_lower(l).rfind("content-type:", 0) == 0) {
        part.content_type = l.substr(13);
        part.content_type.erase(0, part.content_type.find_first_not_of(" \t"));
      } else if (ascii_lower(l).rfind("content-disposition:", 0) == 0) {
        part.filename = header_param(l, "filename");
      }
    }
    part.bytes = body.substr(data, next - data);
    parts.push_back(part);
    pos = next + 2;
  }
  return parts;
}

void register_dicomweb_routes(http::Router& router, pacs::Index& index, storage::BlobStore& blobs,
                              Ingestor& ingestor, identity::AuthService& auth,
                              storage::DiskCache& cache, FrameIndexCache& frames) {
  // QIDO-RS: search for studies (DICOM JSON), limited to what the caller may see.
  router.add("GET", "/dicom-web/studies", [&index, &auth, &blobs](const Request& req) {
    const Principal& p = *req.principal;
    pacs::StudyQuery q;
    if (auto bad = study_query(req, q)) return *bad;
    IncludeFields inc;
    if (auto bad = include_fields(req, inc)) return *bad;
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
      if (!inc.empty()) {
        Status included =
            include_first(out.back(), inc, Level::study, false, index, blobs, s.study_instance_uid);
        if (!included) return Response::from_error(included.error());
      }
      uids += (uids.empty() ? "" : ",") + s.study_instance_uid;
    }
    audit_search(
        auth, req, "qido.studies",
        std::to_string(page->studies.size()) + " of " + std::to_string(page->total) + ": " + uids);
    Response r = dicom_json_response(json_text(out));
    r.headers.emplace_back("X-Total-Count", std::to_string(page->total));
    return r;
  });

  // QIDO-RS for series and instances, within one study or across the studies the caller may
  // see (study-level keys narrow the studies first; results are paged by limit/offset).
  auto search = [&index, &auth, &blobs](bool instances, bool within_study) {
    return [&index, &auth, &blobs, instances, within_study](const Request& req) -> Response {
      const Principal& p = *req.principal;
      auto limit = req.int_query("limit", within_study ? 10000 : 100, 10000);
      if (!limit.ok()) return Response::from_error(limit.error());
      auto offset = req.int_query("offset", 0, std::int64_t{1} << 40);
      if (!offset.ok()) return Response::from_error(offset.error());
      pacs::StudyQuery q;
      if (auto bad = study_query(req, q)) return *bad;
      IncludeFields inc;
      if (auto bad = include_fields(req, inc)) return *bad;
      if (within_study) {
        q = pacs::StudyQuery{};
        q.study_uids = {req.params.at("study")};
      }
      const SeriesFilter sf = series_filter(req);
      const InstanceFilter inf = instance_filter(req);
      const std::string wanted_series =
          req.params.count("series") ? req.params.at("series") : std::string();
      const auto scope = identity::study_scope(p, auth.now());
      nlohmann::json out = nlohmann::json::array();
      // Every match is counted for X-Total-Count; across studies, counting on past a full page
      // reads at most kCountStudies more studies, after which the answer says only that there
      // are more (Warning 299, PS3.18 8.3.4.1).
      constexpr std::int64_t kStudyPage = 200, kCountStudies = 1000;
      std::int64_t matched = 0, studies_past_page = 0;
      bool full = false, counted = true;
      Status failed = Status::Ok();
      auto take = [&](auto build) {
        if (++matched <= *offset || full) return;
        out.push_back(build());
        full = static_cast<std::int64_t>(out.size()) >= *limit;
      };
      for (std::int64_t at = 0; counted; at += kStudyPage) {
        auto page = index.search_studies(scope, q, kStudyPage, at);
        if (!page.ok()) return Response::from_error(page.error());
        for (const pacs::StudySummary& st : page->studies) {
          if (full && ++studies_past_page > kCountStudies) {
            counted = false;
            break;
          }
          auto detail = index.get_study(st.study_instance_uid);
          if (!detail.ok()) return Response::from_error(detail.error());
          if (!detail->has_value()) continue;
          for (const pacs::SeriesSummary& se : (*detail)->series) {
            if (!wanted_series.empty() && se.series_instance_uid != wanted_series) continue;
            if (!sf.matches(se)) continue;
            if (!instances) {
              take([&] {
                nlohmann::json j = series_to_dicom_json(st, se, !within_study);
                if (!inc.empty()) {
                  Status s = include_first(j, inc, Level::series, !within_study, index, blobs,
                                           st.study_instance_uid, se.series_instance_uid);
                  if (!s) failed = s;
                }
                return j;
              });
              continue;
            }
            auto list = index.series_instances(se.series_instance_uid);
            if (!list.ok()) return Response::from_error(list.error());
            for (const pacs::InstanceLocation& i : *list) {
              if (i.study_instance_uid != st.study_instance_uid || !inf.matches(i)) continue;
              take([&] {
                nlohmann::json j = instance_to_dicom_json(st, se, i, !within_study);
                if (!inc.empty()) include_from(j, inc, Level::instance, true, blobs, &i);
                return j;
              });
            }
          }
        }
        if (static_cast<std::int64_t>(page->studies.size()) < kStudyPage) break;
      }
      if (!failed) return Response::from_error(failed.error());
      if (within_study && out.empty()) {
        // A study the caller may not see (or that does not exist) answers like a missing one.
        auto visible = may_read_study(index, p, req.params.at("study"), auth.now());
        if (!visible.ok()) return Response::from_error(visible.error());
        if (!*visible) {
          audit_search(auth, req, instances ? "qido.instances" : "qido.series", "denied");
          return Response::error(404, "no study you may see has this UID");
        }
      }
      audit_search(auth, req, instances ? "qido.instances" : "qido.series",
                   std::to_string(out.size()) + " match(es)");
      Response r = dicom_json_response(json_text(out));
      if (counted) {
        r.headers.emplace_back("X-Total-Count", std::to_string(matched));
      } else {
        r.headers.emplace_back("Warning",
                               "299 yilian: There are additional results that can be requested");
      }
      return r;
    };
  };
  router.add("GET", "/dicom-web/series", search(false, false));
  router.add("GET", "/dicom-web/instances", search(true, false));
  router.add("GET", "/dicom-web/studies/{study}/series", search(false, true));
  router.add("GET", "/dicom-web/studies/{study}/instances", search(true, true));
  router.add("GET", "/dicom-web/studies/{study}/series/{series}/instances", search(true, true));

  // STOW-RS; with {study} in the path every instance must belong to that study.
  auto stow = [&ingestor, &auth](const Request& req) {
    const Principal& p = *req.principal;
    const std::string expected_study =
        req.params.count("study") ? req.params.at("study") : std::string();
    if (!identity::has_clinical_role(p)) {
      return Response::error(403, "uploads are filed under a clinical user's institution");
    }
    if (ascii_lower(req.content_type).rfind("multipart/related", 0) != 0) {
      return Response::error(415, "STOW-RS takes multipart/related bodies");
    }
    auto parts = split_multipart(req.content_type, req.payload());
    if (!parts.ok()) return Response::error(400, parts.error().message);
    if (parts->empty()) return Response::error(400, "no parts in the body");
    nlohmann::json stored = nlohmann::json::array(), failed = nlohmann::json::array();
    bool warning = false, disk_full = false;
    std::string study;
    for (const BodyPart& part : *parts) {
      IngestOutcome o;
      std::string ct = ascii_lower(part.content_type);
      if (ct.rfind("application/dicom", 0) != 0 || ct.rfind("application/dicom+", 0) == 0) {
        o.status = IngestStatus::rejected;
        o.reason = IngestReason::not_dicom;
        o.message = "part is not application/dicom";
      } else if (!expected_study.empty() &&
                 part10_study_uid(part.bytes).value_or(expected_study) != expected_study) {
        o.status = IngestStatus::rejected;
        o.reason = IngestReason::other_study;
        o.message = "the instance belongs to another study than the request names";
        o.study_instance_uid = *part10_study_uid(part.bytes);
      } else {
        o = ingestor.ingest_bytes(part.bytes, Sender{"", p.institution_id, {}});
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
        item["00081190"] = dicom_value(
            "UR", instance_url(o.study_instance_uid, o.series_instance_uid, o.sop_instance_uid));
        if (o.status == IngestStatus::conflict) {
          warning = true;
          item["00081196"] = {{"vr", "US"}, {"Value", {dicom_status(o)}}};
        }
        stored.push_back(item);
      } else {
        item["00081197"] = {{"vr", "US"}, {"Value", {dicom_status(o)}}};
        failed.push_back(item);
        disk_full = disk_full || o.reason == IngestReason::disk_full;
      }
      auth.audit(req, "dicomweb.store", "instance", o.sop_instance_uid,
                 o.status == IngestStatus::stored || o.status == IngestStatus::duplicate
                     ? "ok"
                     : (o.status == IngestStatus::refused ? "denied" : "failed"),
                 std::string(ingest_status_name(o.status)) +
                     (o.message.empty() ? "" : ": " + o.message) +
                     (o.study_instance_uid.empty() ? "" : " (study " + o.study_instance_uid + ")"));
    }
    nlohmann::json body = nlohmann::json::object();
    if (!study.empty())
      body["00081190"] = {{"vr", "UR"}, {"Value", {"/dicom-web/studies/" + study}}};
    if (!failed.empty()) body["00081198"] = {{"vr", "SQ"}, {"Value", failed}};
    if (!stored.empty()) body["00081199"] = {{"vr", "SQ"}, {"Value", stored}};
    Response r;
    // Nothing stored because the disk is full: 507 (Insufficient Storage), to retry later.
    r.status = stored.empty() ? (disk_full ? 507 : 409) : (failed.empty() && !warning ? 200 : 202);
    r.content_type = "application/dicom+json";
    r.body = json_text(body);
    return r;
  };
  router.add("POST", "/dicom-web/studies", stow);
  router.add("POST", "/dicom-web/studies/{study}", stow);

  register_wado_routes(router, index, blobs, auth, cache, frames);
}

}  // namespace yilian::pacs
