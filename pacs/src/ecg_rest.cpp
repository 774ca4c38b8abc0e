#include "yilian/pacs/ecg_rest.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "yilian/ecg/analysis.h"
#include "yilian/ecg/dicom_waveform.h"
#include "yilian/identity/policy.h"
#include "yilian/pacs/study_access.h"
#include "yilian/viewer/ecg_render.h"

namespace yilian::pacs {
namespace {

using http::Request;
using http::Response;

nlohmann::json rounded(const std::optional<double>& v) {
  return v ? nlohmann::json(std::round(*v)) : nlohmann::json(nullptr);
}

double mv(double v) { return std::round(v * 1000) / 1000; }

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
    flags.push_back({{"code", f.code}, {"text", f.text}, {"evidence", f.evidence}});
  }
  return {{"sopInstanceUid", uid},
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
          {"leads", leads},
          {"flags", flags},
          {"note", "Automated measurements support the reader; they are not a report."}};
}

}  // namespace

std::string ecg_analysis_json(const std::string& uid, const ecg::Record& rec,
                              const ecg::Analysis& a) {
  return analysis_json(uid, rec, a).dump();
}

std::string ecg_analysis_cache_key(const std::string& uid) { return "ecg-" + uid + ".json"; }

void register_ecg_routes(http::Router& router, storage::Index& index, storage::BlobStore& blobs,
                         identity::AuthService& auth, storage::DiskCache& cache) {
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
    identity::AuditEvent ev = identity::event_for(*req.principal, req.peer);
    ev.action = action;
    ev.object_type = "instance";
    ev.object_id = uid;
    ev.outcome = ok ? "ok" : "denied";
    (void)auth.auditor().record(ev);
    if (!ok)
      return {std::nullopt, Response::error(403, "forbidden", "no ECG you may see has this UID")};
    auto rec = ecg::read_dicom_waveform(blobs.blob_path((*loc)->blob_key));
    if (!rec.ok())
      return {std::nullopt,
              Response::error(400, "invalid_argument", "not an ECG: " + rec.error().message)};
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

  router.add("GET", "/api/ecg/{instance}/render", [load, &cache](const Request& req) {
    const std::string layout = req.query_value("layout").value_or("3x4+II");
    const std::string key = "ecg-" + req.params.at("instance") + "-" + layout + ".png";
    auto [rec, answer] = load(req, "ecg.render");
    if (answer) return *answer;
    Response r;
    r.content_type = "image/png";
    if (auto hit = cache.get(key)) {
      r.body = std::move(*hit);
      return r;
    }
    const ecg::Measurements m = ecg::analyze(*rec, rec->patient).measurements;
    auto v = [](const std::optional<double>& x) {
      return x ? std::to_string(static_cast<long>(std::lround(*x))) : std::string("-");
    };
    viewer::EcgRenderOptions o;
    o.layout = layout;
    o.measurements = "HR " + std::to_string(static_cast<long>(std::lround(m.heart_rate_bpm))) +
                     "  PR " + v(m.pr_ms) + "  QRS " + v(m.qrs_ms) + "  QT/QTc " + v(m.qt_ms) +
                     "/" + v(m.qtc_bazett_ms) + "  Axis " + v(m.axis_deg);
    auto img = viewer::render_ecg(*rec, o);
    if (!img.ok()) return Response::from_error(img.error());
    (void)cache.put(key, img->png);
    r.body = std::move(img->png);
    return r;
  });
}

}  // namespace yilian::pacs
