// ECG processing throughput (Google Benchmark): the MIT-BIH pipeline — read a 30-minute
// two-lead WFDB record, filter, detect every beat — and, on a 10 s 12-lead excerpt of the
// PTB record (1 kHz), QRS detection alone and the whole resting-ECG analysis; a 30-minute record
// detected and classified (AAMI beat classes). Counters: records per
// second, and how many times faster than real time the signal is processed.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "yilian/ecg/analysis.h"
#include "yilian/ecg/beat_class.h"
#include "yilian/ecg/qrs.h"
#include "yilian/ecg/wfdb.h"

namespace {

std::filesystem::path g_data = "../shared/data";

void mitbih_pipeline(benchmark::State& state, const std::string& record) {
  const auto header = g_data / "mitdb" / (record + ".hea");
  double seconds = 0;
  for (auto _ : state) {
    auto rec = yilian::ecg::read_wfdb(header);
    if (!rec.ok()) {
      state.SkipWithError(rec.error().message.c_str());
      return;
    }
    auto beats = yilian::ecg::detect_qrs(*rec);
    benchmark::DoNotOptimize(beats.data());
    seconds = static_cast<double>(rec->samples()) / rec->sampling_hz;
  }
  state.counters["x_realtime"] = benchmark::Counter(
      seconds * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

void mitbih_detect_only(benchmark::State& state) {
  auto rec = yilian::ecg::read_wfdb(g_data / "mitdb" / "101.hea");
  if (!rec.ok()) {
    state.SkipWithError(rec.error().message.c_str());
    return;
  }
  for (auto _ : state) {
    auto beats = yilian::ecg::detect_qrs(*rec);
    benchmark::DoNotOptimize(beats.data());
  }
  state.counters["x_realtime"] =
      benchmark::Counter(static_cast<double>(rec->samples()) / rec->sampling_hz *
                             static_cast<double>(state.iterations()),
                         benchmark::Counter::kIsRate);
}

void twelve_lead_10s_detect(benchmark::State& state) {
  auto rec = yilian::ecg::read_wfdb(g_data / "ptb" / "s0010_re.hea");
  if (!rec.ok()) {
    state.SkipWithError(rec.error().message.c_str());
    return;
  }
  rec->leads.resize(12);  // the standard 12 of the 15 (the last 3 are Frank XYZ)
  const auto n = static_cast<std::size_t>(10 * rec->sampling_hz);
  for (auto& l : rec->leads) l.mv.resize(n);
  for (auto _ : state) {
    auto beats = yilian::ecg::detect_qrs(*rec);
    benchmark::DoNotOptimize(beats.data());
  }
}

void twelve_lead_10s_analysis(benchmark::State& state) {
  auto rec = yilian::ecg::read_wfdb(g_data / "ptb" / "s0010_re.hea");
  if (!rec.ok()) {
    state.SkipWithError(rec.error().message.c_str());
    return;
  }
  rec->leads.resize(12);
  const auto n = static_cast<std::size_t>(10 * rec->sampling_hz);
  for (auto& l : rec->leads) l.mv.resize(n);
  for (auto _ : state) {
    auto a = yilian::ecg::analyze(*rec, {81, 'F'});
    benchmark::DoNotOptimize(a.flags.data());
  }
}

// A 30-minute two-lead record detected and its beats classified (features + forest), and the
// classification alone on the detected beats.
void mitbih_detect_classify(benchmark::State& state, bool detect) {
  auto rec = yilian::ecg::read_wfdb(g_data / "mitdb" / "208.hea");
  if (!rec.ok()) {
    state.SkipWithError(rec.error().message.c_str());
    return;
  }
  const auto& model = yilian::ecg::BeatModel::builtin();  // read once, as the hub does
  auto beats = yilian::ecg::detect_qrs(*rec);
  for (auto _ : state) {
    if (detect) beats = yilian::ecg::detect_qrs(*rec);
    auto classes = model.classify(yilian::ecg::beat_features(*rec, beats));
    benchmark::DoNotOptimize(classes.data());
  }
  state.counters["beats"] = static_cast<double>(beats.size());
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--data=", 0) == 0) g_data = a.substr(7);
  }
  for (const char* r : {"101", "108", "203", "207"}) {
    benchmark::RegisterBenchmark((std::string("mitbih_read_filter_detect/") + r).c_str(),
                                 mitbih_pipeline, std::string(r))
        ->Unit(benchmark::kMillisecond);
  }
  benchmark::RegisterBenchmark("mitbih_detect_only/101", mitbih_detect_only)
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("mitbih_detect_classify/208", mitbih_detect_classify, true)
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("mitbih_classify_only/208", mitbih_detect_classify, false)
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("twelve_lead_10s_detect/ptb_s0010", twelve_lead_10s_detect)
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("twelve_lead_10s_analysis/ptb_s0010", twelve_lead_10s_analysis)
      ->Unit(benchmark::kMillisecond);
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
