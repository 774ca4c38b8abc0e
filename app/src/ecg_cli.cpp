#include "ecg_cli.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "yilian/common/text.h"
#include "yilian/ecg/analysis.h"
#include "yilian/ecg/beat_class.h"
#include "yilian/ecg/beat_compare.h"
#include "yilian/ecg/dicom_waveform.h"
#include "yilian/ecg/qrs.h"
#include "yilian/ecg/service/rest.h"
#include "yilian/ecg/wfdb.h"
#include "yilian/viewer/ecg_render.h"

namespace yilian::app {

namespace {

// A WFDB record with its reference annotations, its detected beats and their features.
struct EvalRecord {
  ecg::Record record;
  std::vector<ecg::Annotation> reference;
  std::vector<std::int64_t> beats;
  std::vector<ecg::BeatFeatures> features;
  std::vector<std::optional<ecg::BeatClass>> reference_classes;
  bool paced = false;
};

// Every WFDB record of `db` that has reference annotations, read and detected in name order.
Result<std::vector<EvalRecord>> load_annotated(const std::string& db, bool with_features) {
  std::vector<std::filesystem::path> headers;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(db, ec)) {
    const auto& p = e.path();
    if (p.extension() == ".hea" &&
        std::filesystem::exists(p.parent_path() / (p.stem().string() + ".atr")))
      headers.push_back(p);
  }
  if (ec || headers.empty())
    return make_error(Errc::not_found, "no WFDB records with .atr annotations in " + db);
  std::sort(headers.begin(), headers.end());
  std::vector<EvalRecord> out;
  for (const auto& h : headers) {
    EvalRecord r;
    auto rec = ecg::read_wfdb(h);
    if (!rec.ok()) return make_error(rec.error().code, h.string() + ": " + rec.error().message);
    auto ref = ecg::read_wfdb_annotations(h.parent_path() / (h.stem().string() + ".atr"));
    if (!ref.ok()) return ref.error();
    r.record = std::move(rec).value();
    r.reference = std::move(ref).value();
    r.beats = ecg::detect_qrs(r.record);
    r.paced = ecg::is_paced_record(r.reference);
    if (with_features) {
      r.features = ecg::beat_features(r.record, r.beats);
      r.reference_classes = ecg::reference_classes(r.reference, r.beats, r.record.sampling_hz);
    }
    out.push_back(std::move(r));
  }
  return out;
}

// The labelled beats of the given records, for training.
Result<ecg::BeatModel> train_on(const std::vector<const EvalRecord*>& records) {
  std::vector<ecg::BeatFeatures> x;
  std::vector<ecg::BeatClass> y;
  for (const EvalRecord* r : records) {
    for (std::size_t i = 0; i < r->beats.size(); ++i) {
      if (!r->reference_classes[i]) continue;
      x.push_back(r->features[i]);
      y.push_back(*r->reference_classes[i]);
    }
  }
  auto m = ecg::BeatModel::train(x, y);
  if (!m.ok()) return m.error();
  for (const EvalRecord* r : records) m->training_records.push_back(r->record.id);
  return m;
}

int eval_classes(const std::vector<EvalRecord>& records) {
  const ecg::BeatModel& builtin = ecg::BeatModel::builtin();
  auto trained_on = [&](const std::string& id) {
    return std::find(builtin.training_records.begin(), builtin.training_records.end(), id) !=
           builtin.training_records.end();
  };
  ecg::ClassMatch gross;
  std::printf("%-8s %-6s %6s %6s %8s %8s %6s %8s %8s\n", "record", "model", "N", "V", "VEB Se",
              "VEB +P", "S", "SVEB Se", "SVEB +P");
  // A record the built-in model learnt from is scored by a model trained without it (on the
  // other records of the same database the built-in model learnt from): cross-validation by
  // record, so that no record's beats are both learnt and scored. The folds train in parallel.
  std::vector<std::vector<ecg::BeatClass>> labelled(records.size());
  {
    std::atomic<std::size_t> next{0};
    auto work = [&] {
      for (std::size_t i; (i = next++) < records.size();) {
        const EvalRecord& r = records[i];
        if (r.paced) continue;
        if (!trained_on(r.record.id)) {
          labelled[i] = builtin.classify(r.features);
          continue;
        }
        std::vector<const EvalRecord*> others;
        for (const EvalRecord& o : records) {
          if (&o != &r && !o.paced && trained_on(o.record.id)) others.push_back(&o);
        }
        auto model = train_on(others);
        if (!model.ok()) {  // too little to learn from: the beats are left unclassified
          std::fprintf(stderr, "%s: %s\n", r.record.id.c_str(), model.error().message.c_str());
          labelled[i].assign(r.features.size(), ecg::BeatClass::Q);
          continue;
        }
        labelled[i] = model->classify(r.features);
      }
    };
    std::vector<std::thread> pool;
    for (unsigned t = 1; t < std::max(1u, std::thread::hardware_concurrency()); ++t)
      pool.emplace_back(work);
    work();
    for (auto& t : pool) t.join();
  }
  for (std::size_t ri = 0; ri < records.size(); ++ri) {
    const EvalRecord& r = records[ri];
    if (r.paced) {
      std::printf("%-8s paced: left out (EC57)\n", r.record.id.c_str());
      continue;
    }
    const bool cv = trained_on(r.record.id);
    const std::vector<ecg::BeatClass>& classes = labelled[ri];
    ecg::ClassMatch m = ecg::compare_classes(r.reference, r.beats, classes, r.record.sampling_hz);
    gross += m;
    std::printf("%-8s %-6s %6lld %6lld %8.2f %8.2f %6lld %8.2f %8.2f\n", r.record.id.c_str(),
                cv ? "cv" : "built", static_cast<long long>(m.confusion[0][0]),
                static_cast<long long>(m.veb_ref), m.veb_se(), m.veb_pp(),
                static_cast<long long>(m.sveb_ref), m.sveb_se(), m.sveb_pp());
    std::fflush(stdout);
  }
  static const char* kNames[] = {"N", "S", "V", "F", "Q", "O"};
  std::printf("confusion (rows: reference, columns: labelled; O: missed or not a beat)\n    ");
  for (const char* n : kNames) std::printf(" %8s", n);
  std::printf("\n");
  for (std::size_t i = 0; i < 6; ++i) {
    std::printf("    %s", kNames[i]);
    for (std::size_t j = 0; j < 6; ++j)
      std::printf(" %8lld", static_cast<long long>(gross.confusion[i][j]));
    std::printf("\n");
  }
  std::printf("classes: VEB Se=%.2f +P=%.2f SVEB Se=%.2f +P=%.2f\n", gross.veb_se(), gross.veb_pp(),
              gross.sveb_se(), gross.sveb_pp());
  return 0;
}

// Atrial fibrillation episodes against the reference rhythm annotations, with the built-in
// beat classifier's classes (ventricular beats are left out of the irregularity).
int eval_af(const std::vector<EvalRecord>& records) {
  ecg::EpisodeMatch gross;
  std::printf("%-8s %5s %5s %9s %9s %10s %10s\n", "record", "ref", "det", "episodeSe", "episode+P",
              "durationSe", "duration+P");
  for (const EvalRecord& r : records) {
    if (r.paced) {  // paced beats are regular whatever the atria do: not judged by RR
      std::printf("%-8s paced: left out\n", r.record.id.c_str());
      continue;
    }
    auto classes = ecg::BeatModel::builtin().classify(r.features);
    auto detected = ecg::detect_af(r.beats, classes, r.record.sampling_hz);
    auto reference = ecg::reference_af(r.reference, static_cast<std::int64_t>(r.record.samples()));
    ecg::EpisodeMatch m = ecg::compare_episodes(reference, detected);
    gross += m;
    if (m.ref_episodes == 0 && m.det_episodes == 0) continue;
    using E = ecg::EpisodeMatch;
    std::printf("%-8s %5lld %5lld %9.2f %9.2f %10.2f %10.2f\n", r.record.id.c_str(),
                static_cast<long long>(m.ref_episodes), static_cast<long long>(m.det_episodes),
                E::pct(m.ref_found, m.ref_episodes), E::pct(m.det_true, m.det_episodes),
                E::pct(m.overlap_samples, m.ref_samples), E::pct(m.overlap_samples, m.det_samples));
  }
  using E = ecg::EpisodeMatch;
  std::printf(
      "af: episode Se=%.2f +P=%.2f duration Se=%.2f +P=%.2f (%lld reference, %lld "
      "detected episodes)\n",
      E::pct(gross.ref_found, gross.ref_episodes), E::pct(gross.det_true, gross.det_episodes),
      E::pct(gross.overlap_samples, gross.ref_samples),
      E::pct(gross.overlap_samples, gross.det_samples), static_cast<long long>(gross.ref_episodes),
      static_cast<long long>(gross.det_episodes));
  return 0;
}

}  // namespace

int ecg_eval(const std::string& db, bool classes, bool af) {
  auto records = load_annotated(db, classes || af);
  if (!records.ok()) {
    std::fprintf(stderr, "error: %s\n", records.error().message.c_str());
    return 1;
  }
  if (classes) return eval_classes(*records);
  if (af) return eval_af(*records);
  ecg::BeatMatch gross;
  std::printf("%-8s %8s %8s %6s %6s %6s\n", "record", "Se%", "+P%", "TP", "FN", "FP");
  for (const EvalRecord& r : *records) {
    ecg::BeatMatch m = ecg::compare_beats(r.reference, r.beats, r.record.sampling_hz);
    gross += m;
    std::printf("%-8s %8.2f %8.2f %6lld %6lld %6lld\n", r.record.id.c_str(), m.sensitivity(),
                m.positive_predictivity(), static_cast<long long>(m.tp),
                static_cast<long long>(m.fn), static_cast<long long>(m.fp));
  }
  std::printf("gross: Se=%.2f +P=%.2f TP=%lld FN=%lld FP=%lld\n", gross.sensitivity(),
              gross.positive_predictivity(), static_cast<long long>(gross.tp),
              static_cast<long long>(gross.fn), static_cast<long long>(gross.fp));
  return 0;
}

int ecg_train(const std::string& db, const std::string& out) {
  auto records = load_annotated(db, true);
  if (!records.ok()) {
    std::fprintf(stderr, "error: %s\n", records.error().message.c_str());
    return 1;
  }
  std::vector<const EvalRecord*> use;
  for (const EvalRecord& r : *records) {
    if (!r.paced) use.push_back(&r);
  }
  auto m = train_on(use);
  if (!m.ok()) {
    std::fprintf(stderr, "error: %s\n", m.error().message.c_str());
    return 1;
  }
  const std::string text = m->save();
  std::FILE* f = std::fopen(out.c_str(), "wb");
  if (!f || std::fwrite(text.data(), 1, text.size(), f) != text.size() || std::fclose(f) != 0) {
    std::fprintf(stderr, "error: cannot write %s\n", out.c_str());
    return 1;
  }
  std::printf("beat model trained on %zu records written to %s (%zu bytes)\n", use.size(),
              out.c_str(), text.size());
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

int ecg_render(const std::string& file, const std::string& out, const std::string& layout,
               const std::string& lang) {
  auto rec = read_ecg(file);
  if (!rec.ok()) {
    std::fprintf(stderr, "error: %s: %s\n", file.c_str(), rec.error().message.c_str());
    return 1;
  }
  viewer::EcgRenderOptions o;
  o.layout = layout;
  o.header = rec->id;
  const ecg::Analysis a = ecg::analyze(*rec, rec->patient);
  o.measurements = ecg::measurement_summary(a.measurements);
  for (const ecg::Flag& f : a.flags)
    o.statements.push_back(lang == "zh" && !f.text_zh.empty() ? f.text_zh : f.text);
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
