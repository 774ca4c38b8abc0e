// ECG core: WFDB reading and writing with their checks, QRS detection on synthetic ECGs
// with known beats, the EC57 comparison rules, and the real MIT-BIH and PTB records.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <numbers>
#include <random>
#include <set>

#include "test_util.h"
#include "yilian/ecg/aecg.h"
#include "yilian/ecg/beat_compare.h"
#include "yilian/ecg/qrs.h"
#include "yilian/ecg/wfdb.h"

namespace yilian::ecg {
namespace {

namespace fs = std::filesystem;
const fs::path kData = YILIAN_SHARED_DATA;

// A synthetic ECG: Gaussian P, QRS and T waves at known times, baseline wander and noise.
Record synthetic(double fs, double seconds, const std::vector<double>& beat_times, double noise_mv,
                 unsigned seed, int leads = 2) {
  Record r;
  r.id = "synthetic";
  r.sampling_hz = fs;
  const auto n = static_cast<std::size_t>(fs * seconds);
  std::mt19937 rng(seed);
  std::normal_distribution<double> noise(0, noise_mv);
  for (int l = 0; l < leads; ++l) {
    Lead lead;
    lead.name = "L" + std::to_string(l);
    lead.mv.resize(n);
    const double gain = l == 0 ? 1.0 : 0.6;
    for (std::size_t k = 0; k < n; ++k) {
      const double t = static_cast<double>(k) / fs;
      double v = 0.15 * std::sin(2 * std::numbers::pi * 0.3 * t);  // baseline wander
      for (double b : beat_times) {
        auto g = [&](double at, double width, double amp) {
          const double d = (t - at) / width;
          return amp * std::exp(-0.5 * d * d);
        };
        v += gain * (g(b - 0.16, 0.025, 0.12) + g(b, 0.012, 1.2) - g(b + 0.03, 0.012, 0.25) +
                     g(b + 0.3, 0.05, 0.3));
      }
      lead.mv[k] = static_cast<float>(v + noise(rng));
    }
    r.leads.push_back(std::move(lead));
  }
  return r;
}

TEST(Qrs, every_synthetic_beat_is_found_once_despite_wander_and_noise) {
  std::vector<double> beats;
  std::mt19937 rng(3);
  std::uniform_real_distribution<double> rr(0.6, 1.1);  // irregular rhythm
  for (double t = 0.8; t < 58; t += rr(rng)) beats.push_back(t);
  for (double fs : {250.0, 360.0, 500.0}) {
    Record r = synthetic(fs, 60, beats, 0.03, 11);
    auto found = detect_qrs(r);
    ASSERT_EQ(found.size(), beats.size()) << fs << " Hz";
    for (std::size_t i = 0; i < beats.size(); ++i) {
      EXPECT_NEAR(static_cast<double>(found[i]) / fs, beats[i], 0.02) << fs << " Hz beat " << i;
    }
  }
}

TEST(Qrs, a_noise_burst_on_one_lead_does_not_create_beats_or_hide_the_others) {
  std::vector<double> beats;
  for (double t = 1.0; t < 59; t += 0.8) beats.push_back(t);
  Record r = synthetic(360, 60, beats, 0.02, 5);
  std::mt19937 rng(9);
  std::normal_distribution<double> burst(0, 1.5);  // 1.5 mV of muscle noise on lead 2
  for (std::size_t k = 20 * 360; k < 30 * 360; ++k)
    r.leads[1].mv[k] += static_cast<float>(burst(rng));
  std::vector<Annotation> ref;
  for (double b : beats) ref.push_back({static_cast<std::int64_t>(b * 360), kNormalBeat, {}});
  auto found = detect_qrs(r);
  BeatMatch m = compare_beats(ref, found, 360, {0.15, 0});
  std::string extra;
  for (std::int64_t f : found) {
    bool near = false;
    for (double b : beats) near = near || std::abs(static_cast<double>(f) / 360 - b) < 0.15;
    if (!near) extra += std::to_string(static_cast<double>(f) / 360) + " s ";
  }
  EXPECT_EQ(m.fn, 0);
  EXPECT_EQ(m.fp, 0) << "extra detections at " << extra;
}

TEST(Qrs, a_flat_or_short_record_gives_no_beats) {
  Record r = synthetic(360, 10, {}, 0.0, 1);
  EXPECT_TRUE(detect_qrs(r).empty());
  Record tiny = synthetic(360, 1, {0.5}, 0.0, 1);
  EXPECT_TRUE(detect_qrs(tiny).empty());
}

TEST(BeatCompare, ec57_window_start_and_flutter_episodes) {
  const double fs = 100;
  std::vector<Annotation> ref = {
      {100, kNormalBeat, {}}, {200, 5, {}},           {300, 28, "(AFIB"}, {400, kNormalBeat, {}},
      {500, kVfOn, {}},       {550, kNormalBeat, {}}, {600, kVfOff, {}},  {700, kNormalBeat, {}}};
  // 100 found late but within 150 ms; 200 missed; 400 found; an extra at 450; inside the
  // flutter episode nothing counts; 700 found.
  std::vector<std::int64_t> det = {114, 400, 450, 560, 705};
  BeatMatch m = compare_beats(ref, det, fs, {0.15, 0});
  EXPECT_EQ(m.tp, 3);
  EXPECT_EQ(m.fn, 1);
  EXPECT_EQ(m.fp, 1);
  // From 3 s on only the beats after 300 count.
  BeatMatch late = compare_beats(ref, det, fs, {0.15, 3});
  EXPECT_EQ(late.tp, 2);
  EXPECT_EQ(late.fn, 0);
  EXPECT_EQ(late.fp, 1);
  EXPECT_NEAR(m.sensitivity(), 75.0, 1e-9);
  EXPECT_NEAR(m.positive_predictivity(), 75.0, 1e-9);
}

// A two-signal format 212 record written by hand.
void write_212(const fs::path& dir, const std::vector<int>& a, const std::vector<int>& b,
               const std::string& header) {
  std::string bytes;
  for (std::size_t k = 0; k < a.size(); ++k) {
    const int s0 = a[k] & 0xFFF, s1 = b[k] & 0xFFF;
    bytes += static_cast<char>(s0 & 0xFF);
    bytes += static_cast<char>(((s0 >> 8) & 0x0F) | ((s1 >> 4) & 0xF0));
    bytes += static_cast<char>(s1 & 0xFF);
  }
  std::ofstream(dir / "t.dat", std::ios::binary) << bytes;
  std::ofstream(dir / "t.hea") << header;
}

TEST(Wfdb, format_212_samples_gains_baselines_and_checksums) {
  testing::TempDir dir;
  std::vector<int> a = {1024, 1224, 824, -2048}, b = {0, 2047, -1, 5};
  auto sum = [](const std::vector<int>& v) {
    int s = 0;
    for (int x : v) s += x;
    return static_cast<std::int16_t>(s & 0xFFFF);
  };
  write_212(dir.path(), a, b,
            "t 2 360 4\nt.dat 212 200 11 1024 1024 " + std::to_string(sum(a)) +
                " 0 MLII\nt.dat 212 100(0)/mV 11 0 0 " + std::to_string(sum(b)) + " 0 V1\n");
  auto r = read_wfdb(dir.path() / "t.hea");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->sampling_hz, 360);
  ASSERT_EQ(r->leads.size(), 2u);
  EXPECT_EQ(r->leads[0].name, "MLII");
  EXPECT_FLOAT_EQ(r->leads[0].mv[1], 1.0f);     // (1224 - 1024) / 200
  EXPECT_FLOAT_EQ(r->leads[0].mv[3], -15.36f);  // -2048 sign-extended
  EXPECT_FLOAT_EQ(r->leads[1].mv[1], 20.47f);
  EXPECT_FLOAT_EQ(r->leads[1].mv[2], -0.01f);

  // A wrong checksum, a short file, an impossible rate, an unknown format: clear errors.
  write_212(dir.path(), a, b,
            "t 2 360 4\nt.dat 212 200 11 1024 1024 1 0 MLII\nt.dat 212 200 11 0 0 0 0 V1\n");
  auto bad = read_wfdb(dir.path() / "t.hea");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("checksum"), std::string::npos);
  write_212(dir.path(), a, b, "t 2 360 8\nt.dat 212 200 11 1024\nt.dat 212 200 11 0\n");
  EXPECT_NE(read_wfdb(dir.path() / "t.hea").error().message.find("truncated"), std::string::npos);
  write_212(dir.path(), a, b, "t 2 3 4\nt.dat 212 200 11 1024\nt.dat 212 200 11 0\n");
  EXPECT_NE(read_wfdb(dir.path() / "t.hea").error().message.find("impossible"), std::string::npos);
  write_212(dir.path(), a, b, "t 2 360 4\nt.dat 310 200\nt.dat 310 200\n");
  EXPECT_FALSE(read_wfdb(dir.path() / "t.hea").ok());
  write_212(dir.path(), a, b, "t 3 360 4\nt.dat 212 200\nt.dat 212 200\n");
  EXPECT_NE(read_wfdb(dir.path() / "t.hea").error().message.find("described"), std::string::npos);
}

TEST(Wfdb, annotations_round_trip_with_long_gaps_and_rhythm_notes) {
  testing::TempDir dir;
  std::vector<Annotation> anns = {{18, kNormalBeat, {}},
                                  {300, 5, {}},
                                  {300000, 28, "(AFIB"},  // a gap over 1023 samples: SKIP
                                  {300100, 12, {}}};
  ASSERT_TRUE(write_wfdb_annotations(dir.path() / "x.atr", anns).ok());
  auto back = read_wfdb_annotations(dir.path() / "x.atr");
  ASSERT_TRUE(back.ok()) << back.error().message;
  ASSERT_EQ(back->size(), anns.size());
  for (std::size_t i = 0; i < anns.size(); ++i) {
    EXPECT_EQ((*back)[i].sample, anns[i].sample);
    EXPECT_EQ((*back)[i].code, anns[i].code);
    EXPECT_EQ((*back)[i].aux, anns[i].aux);
  }
  std::ofstream(dir.path() / "cut.atr", std::ios::binary) << std::string("\x12\x04", 2);
  EXPECT_FALSE(read_wfdb_annotations(dir.path() / "cut.atr").ok());
}

TEST(Wfdb, the_mit_bih_and_ptb_records_read_and_their_beats_are_found) {
  auto rec = read_wfdb(kData / "mitdb" / "101.hea");
  ASSERT_TRUE(rec.ok()) << rec.error().message;
  EXPECT_EQ(rec->sampling_hz, 360);
  ASSERT_EQ(rec->leads.size(), 2u);
  EXPECT_EQ(rec->leads[0].name, "MLII");
  EXPECT_EQ(rec->samples(), 650000u);
  auto ref = read_wfdb_annotations(kData / "mitdb" / "101.atr");
  ASSERT_TRUE(ref.ok());
  BeatMatch m = compare_beats(*ref, detect_qrs(*rec), rec->sampling_hz);
  EXPECT_GT(m.sensitivity(), 99.5);
  EXPECT_GT(m.positive_predictivity(), 99.5);

  auto ptb = read_wfdb(kData / "ptb" / "s0010_re.hea");
  ASSERT_TRUE(ptb.ok()) << ptb.error().message;
  EXPECT_EQ(ptb->sampling_hz, 1000);
  EXPECT_EQ(ptb->leads.size(), 15u);
  EXPECT_EQ(ptb->leads[0].name, "i");
  EXPECT_EQ(ptb->patient.sex, 'F');  // "# sex: female" in the header
  EXPECT_EQ(ptb->patient.age, 81);
  // 38.4 s at a resting rate: some 40 to 70 beats.
  auto beats = detect_qrs(*ptb);
  EXPECT_GT(beats.size(), 30u);
  EXPECT_LT(beats.size(), 90u);
}

}  // namespace
}  // namespace yilian::ecg

namespace yilian::ecg {
namespace {

TEST(Aecg, the_hl7_example_reads_as_twelve_leads_at_500_hz) {
  auto r = read_aecg(kData / "aecg" / "hl7-aecg-example.xml");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->sampling_hz, 500);
  ASSERT_EQ(r->leads.size(), 12u);
  std::set<std::string> names;
  for (const auto& l : r->leads) names.insert(l.name);
  EXPECT_EQ(names, (std::set<std::string>{"I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3",
                                          "V4", "V5", "V6"}));
  EXPECT_GT(r->samples(), 1000u);
  auto beats = detect_qrs(*r);
  EXPECT_GT(beats.size(), 3u);

  auto minimal = read_aecg(kData / "aecg" / "minimum-aecg.xml");
  ASSERT_TRUE(minimal.ok()) << minimal.error().message;
  ASSERT_EQ(minimal->leads.size(), 1u);
  EXPECT_EQ(minimal->leads[0].name, "II");
  EXPECT_FLOAT_EQ(minimal->leads[0].mv[0], -0.005f);  // -2 x 2.5 uV
}

TEST(Aecg, malformed_documents_are_refused_with_the_reason) {
  EXPECT_NE(parse_aecg("<not xml").error().message.find("well-formed"), std::string::npos);
  EXPECT_NE(parse_aecg("<Other/>").error().message.find("AnnotatedECG"), std::string::npos);
  const std::string no_time = R"(<AnnotatedECG xmlns="urn:hl7-org:v3"><component><series>
    <code code="RHYTHM"/><component><sequenceSet><component><sequence>
    <code code="MDC_ECG_LEAD_I"/><value><origin value="0" unit="uV"/><scale value="1" unit="uV"/>
    <digits>1 2 3</digits></value></sequence></component></sequenceSet></component></series>
    </component></AnnotatedECG>)";
  EXPECT_NE(parse_aecg(no_time).error().message.find("increment"), std::string::npos);
}

}  // namespace
}  // namespace yilian::ecg
