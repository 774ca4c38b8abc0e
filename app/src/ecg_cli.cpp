#include "ecg_cli.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <vector>

#include <nlohmann/json.hpp>

#include "yilian/common/text.h"
#include "yilian/ecg/analysis.h"
#include "yilian/ecg/beat_compare.h"
#include "yilian/ecg/dicom_waveform.h"
#include "yilian/ecg/qrs.h"
#include "yilian/ecg/service/rest.h"
#include "yilian/ecg/wfdb.h"
#include "yilian/viewer/ecg_render.h"

namespace yilian::app {

int ecg_eval(const std::string& db) {
  std::vector<std::filesystem::path> headers;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(db, ec)) {
    const auto& p = e.path();
    if (p.extension() == ".hea" &&
        std::filesystem::exists(p.parent_path() / (p.stem().string() + ".atr")))
      headers.push_back(p);
  }
  if (ec || headers.empty()) {
    std::fprintf(stderr, "error: no WFDB records with .atr annotations in %s\n", db.c_str());
    return 1;
  }
  std::sort(headers.begin(), headers.end());
  ecg::BeatMatch gross;
  std::printf("%-8s %8s %8s %6s %6s %6s\n", "record", "Se%", "+P%", "TP", "FN", "FP");
  for (const auto& h : headers) {
    auto rec = ecg::read_wfdb(h);
    if (!rec.ok()) {
      std::fprintf(stderr, "error: %s: %s\n", h.string().c_str(), rec.error().message.c_str());
      return 1;
    }
    auto ref = ecg::read_wfdb_annotations(h.parent_path() / (h.stem().string() + ".atr"));
    if (!ref.ok()) {
      std::fprintf(stderr, "error: %s\n", ref.error().message.c_str());
      return 1;
    }
    auto beats = ecg::detect_qrs(*rec);
    ecg::BeatMatch m = ecg::compare_beats(*ref, beats, rec->sampling_hz);
    gross += m;
    std::printf("%-8s %8.2f %8.2f %6lld %6lld %6lld\n", rec->id.c_str(), m.sensitivity(),
                m.positive_predictivity(), static_cast<long long>(m.tp),
                static_cast<long long>(m.fn), static_cast<long long>(m.fp));
  }
  std::printf("gross: Se=%.2f +P=%.2f TP=%lld FN=%lld FP=%lld\n", gross.sensitivity(),
              gross.positive_predictivity(), static_cast<long long>(gross.tp),
              static_cast<long long>(gross.fn), static_cast<long long>(gross.fp));
  return 0;
}

namespace {

// A WFDB header (.hea) or a DICOM ECG waveform.
Result<ecg::Record> read_ecg(const std::string& file) {
  if (std::filesystem::path(file).extension() == ".hea") return ecg::read_wfdb(file);
  return ecg::read_dicom_waveform(file);
}

}  // namespace

int ecg_detect(const std::string& file, const std::string& out) {
  auto rec = read_ecg(file);
  if (!rec.ok()) {
    std::fprintf(stderr, "error: %s: %s\n", file.c_str(), rec.error().message.c_str());
    return 1;
  }
  std::vector<ecg::Annotation> anns;
  for (std::int64_t b : ecg::detect_qrs(*rec)) anns.push_back({b, ecg::kNormalBeat, {}});
  if (Status s = ecg::write_wfdb_annotations(out, anns); !s) {
    std::fprintf(stderr, "error: %s\n", s.error().message.c_str());
    return 1;
  }
  std::printf("%zu beats written to %s\n", anns.size(), out.c_str());
  return 0;
}

int ecg_render(const std::string& file, const std::string& out, const std::string& layout) {
  auto rec = read_ecg(file);
  if (!rec.ok()) {
    std::fprintf(stderr, "error: %s: %s\n", file.c_str(), rec.error().message.c_str());
    return 1;
  }
  viewer::EcgRenderOptions o;
  o.layout = layout;
  o.header = rec->id;
  o.measurements = ecg::measurement_summary(ecg::analyze(*rec, rec->patient).measurements);
  auto img = viewer::render_ecg(*rec, o);
  if (!img.ok()) {
    std::fprintf(stderr, "error: %s\n", img.error().message.c_str());
    return 1;
  }
  std::FILE* f = std::fopen(out.c_str(), "wb");
  if (!f || std::fwrite(img->png.data(), 1, img->png.size(), f) != img->png.size()) {
    if (f) std::fclose(f);
    std::fprintf(stderr, "error: cannot write %s\n", out.c_str());
    return 1;
  }
  std::fclose(f);
  return 0;
}

int ecg_analyze(const std::string& file, int age, const std::string& sex, double mains_hz) {
  auto rec = read_ecg(file);
  if (!rec.ok()) {
    std::fprintf(stderr, "error: %s: %s\n", file.c_str(), rec.error().message.c_str());
    return 1;
  }
  ecg::Patient patient;
  if (age > 0) patient.age = age;
  patient.sex =
      sex.empty() ? 'U' : static_cast<char>(std::toupper(static_cast<unsigned char>(sex[0])));
  ecg::AnalysisOptions options;
  options.mains_hz = mains_hz;
  ecg::Analysis a = ecg::analyze(*rec, patient, options);
  auto out = nlohmann::json::parse(ecg::service::ecg_analysis_json(rec->id, *rec, a));
  std::printf("%s\n", json_text(out, 2).c_str());
  return 0;
}

}  // namespace yilian::app
