#include "yilian/ecg/service/rest.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcuid.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <map>

#include "yilian/common/text.h"
#include "yilian/ecg/aecg.h"
#include "yilian/ecg/analysis.h"
#include "yilian/ecg/dicom_waveform.h"
#include "yilian/ecg/wfdb.h"
#include "yilian/identity/policy.h"
#include "yilian/pacs/dicom_file.h"
#include "yilian/pacs/dicomweb.h"
#include "yilian/pacs/study_access.h"
#include "yilian/reading/queue_store.h"
#include "yilian/storage/clock.h"
#include "yilian/viewer/ecg_render.h"

namespace yilian::ecg::service {

using namespace yilian::pacs;  // NOLINT(google-build-using-namespace)
namespace {

using http::Request;
using http::Response;

nlohmann::json rounded(const std::optional<double>& v) {
  return v ? nlohmann::json(std::round(*v)) : nlohmann::json(nullptr);
}

double mv(double v) { return std::round(v * 1000) / 1000; }

// "张伟  M 56y  2026-11-22 08:41  Township A" from the study's index record.
std::string page_header(const pacs::StudySummary& s, const ecg::Patient& patient) {
  std::string name = s.patient_name;
  std::replace(name.begin(), name.end(), '^', ' ');
  std::string h = name.empty() ? s.patient_id : name + " (" + s.patient_id + ")";
  if (patient.sex != 'U') h += "  " + std::string(1, patient.sex);
  if (patient.age) h += " " + std::to_string(*patient.age) + "y";
  if (s.study_date.size() == 8) {
    h += "  " + s.study_date.substr(0, 4) + "-" + s.study_date.substr(4, 2) + "-" +
         s.study_date.substr(6, 2);
    if (s.study_time.size() >= 4)
      h += " " + s.study_time.substr(0, 2) + ":" + s.study_time.substr(2, 2);
  }
  if (!s.institution_name.empty()) h += "  " + s.institution_name;
  return h;
}

// "2026-12-04 16:30" of an ISO 8601 UTC time, shifted by `hours` (China Standard Time is
// UTC+8 all year); the text as stored when it does not parse.
std::string page_time(const std::string& iso, int hours) {
  auto t = storage::parse_iso8601(iso);
  if (!t) return iso;
  const std::string shifted = storage::to_iso8601(*t + std::chrono::hours(hours));
  return shifted.substr(0, 10) + " " + shifted.substr(11, 5);
}

// The signed report on the page: the final report's impression as the statements, each
// addendum after it, and who signed when in the footer.
void signed_page(const std::vector<reading::ReportRow>& signed_reports, bool en,
                 viewer::EcgRenderOptions& o) {
  const reading::ReportRow* final_report = nullptr;
  for (const auto& r : signed_reports) {
    if (r.kind == "final") final_report = &r;
  }
  if (!final_report) return;
  o.statements.clear();
  auto lines = [&o](const std::string& text, const std::string& prefix) {
    std::size_t at = 0;
    bool first = true;
    while (at <= text.size()) {
      const std::size_t nl = std::min(text.find('\n', at), text.size());
      std::string line = text.substr(at, nl - at);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (!line.empty()) {
        o.statements.push_back(first ? prefix + line : line);
        first = false;
      }
      at = nl + 1;
    }
  };
  auto who = [](const reading::ReportRow& r) {
    return r.author_display.empty() ? r.author : r.author_display;
  };
  lines(final_report->impression, "");
  for (const auto& r : signed_reports) {
    if (r.kind != "addendum" || r.task_id != final_report->task_id) continue;
    lines(r.findings, en ? "Addendum (" + who(r) + ", " + page_time(r.created_at, 0) + " UTC): "
                         : "补充报告（" + who(r) + "，" + page_time(r.created_at, 8) + "）：");
  }
  o.footer = en ? "Reported by " + who(*final_report) + ", signed " +
                      page_time(final_report->created_at, 0) + " UTC"
                : "报告医师：" + who(*final_report) + "　签发时间：" +
                      page_time(final_report->created_at, 8) + "（北京时间）";
}

nlohmann::json analysis_json(const std::string& uid, const ecg::Record& rec,
                             const ecg::Analysis& a) {
  const ecg::Measurements& m = a.measurements;
  nlohmann::json leads = nlohmann::json::array();
  for (const auto& l : m.leads) {
    leads.push_back({{"lead", l.lead},
                     {"stJ_mV", mv(l.st_j_mv)},
                     {"stJ60_mV", mv(l.st_j60_mv)},
                     {"r_mV", mv(l.r_mv)},
                     {"s_mV", mv(l.s_mv)}});
  }
  nlohmann::json flags = nlohmann::json::array();
  for (const auto& f : a.flags) {
    flags.push_back(
        {{"code", f.code}, {"text", f.text}, {"textZh", f.text_zh}, {"evidence", f.evidence}});
  }
  // Sex and age choose the STEMI thresholds for V2-V3: the reader sees which were used.
  nlohmann::json patient = {
      {"sex", rec.patient.sex == 'U' ? nlohmann::json(nullptr)
                                     : nlohmann::json(std::string(1, rec.patient.sex))},
      {"age", rec.patient.age ? nlohmann::json(*rec.patient.age) : nlohmann::json(nullptr)}};
  // The device's recorded filters (first lead that records them): a reader judges ST with them.
  nlohmann::json filters = nullptr;
  for (const auto& l : rec.leads) {
    if (!l.filter_low_hz && !l.filter_high_hz && !l.notch_hz) continue;
    auto hz = [](const std::optional<double>& v) {
      return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
    };
    filters = {{"highPass_hz", hz(l.filter_low_hz)},
               {"lowPass_hz", hz(l.filter_high_hz)},
               {"notch_hz", hz(l.notch_hz)}};
    break;
  }
  return {
      {"sopInstanceUid", uid},
      {"patient", patient},
      {"recordedFilters", filters},
      {"samplingHz", rec.sampling_hz},
      {"seconds", static_cast<double>(rec.samples()) / rec.sampling_hz},
      {"leadNames",
       [&] {
         nlohmann::json n = nlohmann::json::array();
         for (const auto& l : rec.leads) n.push_back(ecg::standard_lead_name(l.name));
         return n;
       }()},
      {"beats", m.beats},
      {"heartRate_bpm", std::round(m.heart_rate_bpm)},
      {"rr_ms", std::round(m.rr_ms)},
      {"pWaves", m.p_waves},
      {"pr_ms", rounded(m.pr_ms)},
      {"qrs_ms", rounded(m.qrs_ms)},
      {"qt_ms", rounded(m.qt_ms)},
      {"qtcBazett_ms", rounded(m.qtc_bazett_ms)},
      {"qtcFridericia_ms", rounded(m.qtc_fridericia_ms)},
      {"axis_deg", rounded(m.axis_deg)},
      {"sokolowLyon_mV",
       m.sokolow_lyon_mv ? nlohmann::json(mv(*m.sokolow_lyon_mv)) : nlohmann::json(nullptr)},
      {"cornell_mV", m.cornell_mv ? nlohmann::json(mv(*m.cornell_mv)) : nlohmann::json(nullptr)},
      {"beatClasses",
       {{"N", std::count(a.beat_classes.begin(), a.beat_classes.end(), ecg::BeatClass::N)},
        {"S", m.supraventricular},
        {"V", m.ventricular},
        {"F", std::count(a.beat_classes.begin(), a.beat_classes.end(), ecg::BeatClass::F)},
        {"Q", std::count(a.beat_classes.begin(), a.beat_classes.end(), ecg::BeatClass::Q)}}},
      {"leads", leads},
      {"flags", flags},
      {"note", "Automated measurements support the reader; they are not a report."}};
}

// A WFDB record uploaded as a form: one part named *.hea and a part for each signal file it
// names (by file name, without directories). Annotation files may come along and are ignored.
Result<ecg::Record> wfdb_upload(const Request& req) {
  auto parts = split_multipart(req.content_type, req.body);
  if (!parts.ok()) return parts.error();
  const BodyPart* header = nullptr;
  std::map<std::string, std::string_view> files;
  for (const BodyPart& part : *parts) {
    std::string name = part.filename.substr(part.filename.find_last_of("/\\") + 1);
    if (name.empty()) continue;  // a form field, not a file
    if (name.size() > 4 && name.compare(name.size() - 4, 4, ".hea") == 0) {
      if (header) return make_error(Errc::invalid_argument, "more than one .hea file uploaded");
      header = &part;
    }
    files[name] = part.bytes;
  }
  if (!header) {
    return make_error(Errc::invalid_argument,
                      "a WFDB upload needs its header (.hea) and signal files as form files");
  }
  return ecg::parse_wfdb(
      header->bytes, header->filename, [&files](const std::string& name) -> Result<std::string> {
        auto it = files.find(name);
        if (it == files.end()) {
          return make_error(Errc::invalid_argument,
                            "the header names signal file " + name + ", which was not uploaded");
        }
        return std::string(it->second);
      });
}

// Files an ECG read from XML or WFDB as a DICOM 12-lead (or General) ECG under the uploader's
// institution, through the same ingest path as every DICOM object. The query may name the
// patient (patientId, patientName) and correct sex and age, which the STEMI thresholds use.
Result<IngestOutcome> store_as_dicom(ecg::Record& rec, const Request& req,
                                     storage::BlobStore& blobs, Ingestor& ingestor,
                                     const std::string& now, int utc_offset_minutes) {
  if (auto sex = req.query_value("sex"); sex && (*sex == "M" || *sex == "F"))
    rec.patient.sex = (*sex)[0];
  if (auto age = req.query_value("age")) {
    int a = std::atoi(age->c_str());
    if (a > 0 && a < 130) rec.patient.age = a;
  }
  ecg::DicomEcgIdentity id;
  id.patient_id = req.query_value("patientId").value_or(rec.id);
  id.patient_name = req.query_value("patientName").value_or("");
  id.study_uid = pacs::new_uid();
  id.series_uid = pacs::new_uid();
  id.sop_uid = pacs::new_uid();
  // The upload time as local date and time (ISO 8601 "YYYY-MM-DDTHH:MM:SS...").
  const auto utc = storage::parse_iso8601(now).value_or(storage::TimePoint{});
  const std::string local = storage::to_iso8601(utc + std::chrono::minutes(utc_offset_minutes));
  id.study_date = local.substr(0, 4) + local.substr(5, 2) + local.substr(8, 2);
  id.study_time = local.substr(11, 2) + local.substr(14, 2) + local.substr(17, 2);
  const std::string key = blobs.new_key();
  if (Status s = ecg::write_dicom_waveform(rec, id, blobs.temp_path(key)); !s) {
    (void)blobs.remove_temp(key);
    return s.error();
  }
  const std::string sop_class =
      rec.leads.size() == 12 ? UID_TwelveLeadECGWaveformStorage : UID_GeneralECGWaveformStorage;
  return ingestor.ingest(key, Sender{"", req.principal->institution_id, {}},
                         Announced{sop_class, id.sop_uid});
}

}  // namespace

std::string ecg_analysis_json(const std::string& uid, const ecg::Record& rec,
                              const ecg::Analysis& a) {
  return json_text(analysis_json(uid, rec, a));
}

std::string ecg_analysis_cache_key(const std::string& uid) { return "ecg-" + uid + ".json"; }

void register_ecg_routes(http::Router& router, pacs::Index& index, storage::BlobStore& blobs,
                         Ingestor& ingestor, identity::AuthService& auth, storage::DiskCache& cache,
                         reading::QueueStore& reports, int utc_offset_minutes) {
  // The report's statement vocabulary (before /api/ecg/{instance}, which would take the path).
  router.add("GET", "/api/ecg/statements", [](const Request&) {
    nlohmann::json list = nlohmann::json::array();
    for (const ecg::Statement& s : ecg::statement_catalogue()) {
      list.push_back(
          {{"code", s.code}, {"text", s.text}, {"textZh", s.text_zh}, {"automated", s.automated}});
    }
    return Response::json(200, json_text(nlohmann::json{{"statements", list}}));
  });
  router.add(
      "POST", "/api/ecg", [&blobs, &ingestor, &auth, utc_offset_minutes](const Request& req) {
        const Principal& p = *req.principal;
        if (!identity::has_clinical_role(p)) {
          return Response::error(403, "uploads are filed under a clinical user's institution");
        }
        std::string ct = req.content_type.substr(0, req.content_type.find(';'));
        for (char& c : ct) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        IngestOutcome o;
        if (ct == "application/dicom") {
          o = ingestor.ingest_bytes(req.body, Sender{"", p.institution_id, {}});
        } else if (const bool xml = ct == "application/xml" || ct == "text/xml";
                   xml || ct == "multipart/form-data" || ct == "multipart/related") {
          // An HL7 aECG document, or a WFDB record's files.
          auto rec = xml ? ecg::parse_aecg(req.body) : wfdb_upload(req);
          if (!rec.ok()) return Response::error(400, rec.error().message);
          auto stored = store_as_dicom(*rec, req, blobs, ingestor, auth.now(), utc_offset_minutes);
          if (!stored.ok()) return Response::from_error(stored.error());
          o = *stored;
        } else {
          return Response::error(
              415,
              "POST /api/ecg takes application/xml (HL7 aECG), application/dicom, "
              "or a WFDB record as multipart/form-data (the .hea and its signal "
              "files)");
        }
        const bool stored = o.status == IngestStatus::stored || o.status == IngestStatus::duplicate;
        auth.audit(req, "ecg.upload", "instance", o.sop_instance_uid, stored ? "ok" : "failed",
                   std::string(ingest_status_name(o.status)) +
                       (o.message.empty() ? "" : ": " + o.message));
        if (!stored) return Response::from_error(ingest_error(o));
        nlohmann::json body = {{"studyInstanceUid", o.study_instance_uid},
                               {"sopInstanceUid", o.sop_instance_uid},
                               {"analysis", "/api/ecg/" + o.sop_instance_uid},
                               {"render", "/api/ecg/" + o.sop_instance_uid + "/render"}};
        return Response::json(201, json_text(body));
      });

  // The stored ECG an {instance} path names, after the access check; or the answer to send.
  auto load = [&index, &blobs, &auth](const Request& req, const char* action)
      -> std::pair<std::optional<ecg::Record>, std::optional<Response>> {
    const std::string& uid = req.params.at("instance");
    auto loc = index.locate_instance(uid);
    if (!loc.ok()) return {std::nullopt, Response::from_error(loc.error())};
    bool ok = false;
    if (loc->has_value()) {
      auto visible = may_read_study(index, *req.principal, (*loc)->study_instance_uid, auth.now());
      if (!visible.ok()) return {std::nullopt, Response::from_error(visible.error())};
      ok = *visible;
    }
    auth.audit(req, action, "instance", uid, ok ? "ok" : "denied");
    if (!ok) return {std::nullopt, Response::error(404, "no ECG you may see has this UID")};
    auto rec = ecg::read_dicom_waveform(blobs.blob_path((*loc)->blob_key));
    if (!rec.ok())
      return {std::nullopt, Response::error(400, "not an ECG: " + rec.error().message)};
    return {std::move(*rec), std::nullopt};
  };

  router.add("GET", "/api/ecg/{instance}", [load, &cache](const Request& req) {
    const std::string key = ecg_analysis_cache_key(req.params.at("instance"));
    auto [rec, answer] = load(req, "ecg.read");
    if (answer) return *answer;
    if (auto hit = cache.get(key)) return Response::json(200, std::move(*hit));
    ecg::Analysis a = ecg::analyze(*rec, rec->patient);
    std::string body = ecg_analysis_json(req.params.at("instance"), *rec, a);
    (void)cache.put(key, body);
    return Response::json(200, std::move(body));
  });

  // The leads' samples for drawing at true scale in the browser (whole microvolts).
  router.add("GET", "/api/ecg/{instance}/samples", [load, &cache](const Request& req) {
    const std::string key = "ecg-" + req.params.at("instance") + "-samples.json";
    auto [rec, answer] = load(req, "ecg.samples");
    if (answer) return *answer;
    if (auto hit = cache.get(key)) return Response::json(200, std::move(*hit));
    nlohmann::json leads = nlohmann::json::array();
    for (const ecg::Lead& l : rec->leads) {
      std::vector<int> uv(l.mv.size());
      std::transform(l.mv.begin(), l.mv.end(), uv.begin(),
                     [](float mv) { return static_cast<int>(std::lround(mv * 1000.0f)); });
      leads.push_back({{"lead", l.name}, {"samples", std::move(uv)}});
    }
    std::string body = json_text(
        nlohmann::json{{"samplingHz", rec->sampling_hz}, {"unit", "uV"}, {"leads", leads}});
    (void)cache.put(key, body);
    return Response::json(200, std::move(body));
  });

  // The page as on paper, with the patient, measurements and statements in the asked language
  // (?lang=zh, the default, or en), as PNG or (?format=pdf) a PDF that prints at true size.
  router.add(
      "GET", "/api/ecg/{instance}/render", [load, &cache, &index, &reports](const Request& req) {
        const std::string layout = req.query_value("layout").value_or("3x4+II");
        const bool en = req.query_value("lang").value_or("zh") == "en";
        const std::string format = req.query_value("format").value_or("png");
        if (format != "png" && format != "pdf") {
          return Response::error(400, "format is png or pdf");
        }
        const bool pdf = format == "pdf";
        auto [rec, answer] = load(req, "ecg.render");
        if (answer) return *answer;
        // Once the ECG's report is signed the page carries it (and a new signature, a new page).
        std::optional<pacs::StudySummary> study;
        std::vector<reading::ReportRow> signed_reports;
        if (auto loc = index.locate_instance(req.params.at("instance")); loc.ok() && *loc) {
          if (auto d = index.get_study((*loc)->study_instance_uid); d.ok() && *d)
            study = (*d)->study;
          if (auto sr = reports.signed_ecg_reports((*loc)->study_instance_uid); sr.ok())
            signed_reports = std::move(*sr);
        }
        const std::string key =
            "ecg-" + req.params.at("instance") + "-" + layout + (en ? "-en" : "-zh") +
            (signed_reports.empty() ? std::string()
                                    : "-r" + std::to_string(signed_reports.back().id)) +
            "." + format;
        Response r;
        r.content_type = pdf ? "application/pdf" : "image/png";
        if (pdf) {
          r.headers.emplace_back("Content-Disposition",
                                 "inline; filename=\"ecg-" + req.params.at("instance") + ".pdf\"");
        }
        if (auto hit = cache.get(key)) {
          r.body = std::move(*hit);
          return r;
        }
        viewer::EcgRenderOptions o;
        o.layout = layout;
        const ecg::Analysis a = ecg::analyze(*rec, rec->patient);
        o.measurements = ecg::measurement_summary(a.measurements);
        if (study) o.header = page_header(*study, rec->patient);
        for (const ecg::Flag& f : a.flags)
          o.statements.push_back(en || f.text_zh.empty() ? f.text : f.text_zh);
        o.footer =
            en ? "Automated interpretation, not yet signed: the signed report is what counts."
               : "计算机自动分析结果，尚未签发，仅供参考，以医师签发的报告为准。";
        signed_page(signed_reports, en, o);
        o.pdf = pdf;
        o.title = o.header.empty() ? "ECG" : "ECG " + o.header;
        auto img = viewer::render_ecg(*rec, o);
        if (!img.ok()) return Response::from_error(img.error());
        std::string& body = pdf ? img->pdf : img->png;
        (void)cache.put(key, body);
        r.body = std::move(body);
        return r;
      });
}

}  // namespace yilian::ecg::service
