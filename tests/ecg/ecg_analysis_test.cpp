// ECG measurements and flags on synthetic 12-lead ECGs whose intervals, axis and ST levels
// are known by construction (noise and baseline wander added): intervals within 10 ms, ST
// levels within 0.02 mV, STEMI decided on each side of the 4th UDMI thresholds.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <numbers>
#include <random>

#include "synthetic_ecg.h"
#include "test_util.h"
#include "yilian/ecg/analysis.h"
#include "yilian/ecg/dicom_waveform.h"
#include "yilian/ecg/wfdb.h"

namespace yilian::ecg {
namespace {

using testing::LeadShape;
using testing::make_ecg;
using testing::Synthetic;

const LeadMeasurement* lead(const Analysis& a, const std::string& name) {
  for (const auto& l : a.measurements.leads) {
    if (l.lead == name) return &l;
  }
  return nullptr;
}

TEST(EcgAnalysis, intervals_rate_and_sinus_rhythm_of_a_normal_ecg) {
  for (double pr : {0.14, 0.20}) {
    for (double qt : {0.36, 0.44}) {
      for (unsigned seed : {1u, 2u, 3u}) {
        Synthetic s;
        s.pr = pr;
        s.qt = qt;
        Analysis a = analyze(make_ecg(s, seed));
        const Measurements& m = a.measurements;
        ASSERT_TRUE(m.pr_ms && m.qrs_ms && m.qt_ms) << pr << " " << qt;
        EXPECT_NEAR(*m.pr_ms, pr * 1000, 10) << "PR";
        EXPECT_NEAR(*m.qrs_ms, 100, 10) << "QRS";
        EXPECT_NEAR(*m.qt_ms, qt * 1000, 10) << "QT";
        EXPECT_NEAR(*m.qtc_bazett_ms, qt * 1000, 10);  // RR = 1 s
        EXPECT_NEAR(m.heart_rate_bpm, 60, 1);
        EXPECT_TRUE(a.has("sinus_rhythm"));
        EXPECT_FALSE(a.has("suspected_stemi"));
        EXPECT_FALSE(a.has("intraventricular_conduction_delay"));
        // A clean sinus ECG gets no other statement: no ectopy, block, voltage or axis.
        for (const Flag& f : a.flags)
          EXPECT_EQ(f.code, "sinus_rhythm") << f.text << ": " << f.evidence;
        EXPECT_EQ(a.measurements.ventricular + a.measurements.supraventricular, 0u);
      }
    }
  }
}

TEST(EcgAnalysis, rate_flags_wide_qrs_long_qt_and_axis) {
  Synthetic slow;
  slow.rr = 1.4;
  EXPECT_TRUE(analyze(make_ecg(slow)).has("sinus_bradycardia"));
  Synthetic fast;
  fast.rr = 0.5;
  fast.qt = 0.30;
  EXPECT_TRUE(analyze(make_ecg(fast)).has("sinus_tachycardia"));
  Synthetic wide;
  wide.qrs = 0.15;
  Analysis w = analyze(make_ecg(wide));
  ASSERT_TRUE(w.measurements.qrs_ms);
  EXPECT_NEAR(*w.measurements.qrs_ms, 150, 10);
  EXPECT_TRUE(w.has("intraventricular_conduction_delay"));
  Synthetic longqt;
  longqt.qt = 0.50;
  Analysis l = analyze(make_ecg(longqt), {60, 'M'});
  EXPECT_TRUE(l.has("long_qt"));
  // Axis: net QRS +0.75 in I and aVF alike -> 45 degrees.
  Synthetic axis;
  axis.leads["aVF"] = LeadShape{};
  axis.leads["I"] = LeadShape{};
  Analysis x = analyze(make_ecg(axis));
  ASSERT_TRUE(x.measurements.axis_deg);
  EXPECT_NEAR(*x.measurements.axis_deg, 45, 5);
}

Synthetic with_st(const std::map<std::string, double>& st) {
  Synthetic s;
  for (const auto& [name, level] : st) {
    LeadShape sh;
    sh.st = level;
    s.leads[name] = sh;
  }
  return s;
}

TEST(EcgAnalysis, st_levels_are_measured_within_two_hundredths_of_a_millivolt) {
  Analysis a = analyze(
      make_ecg(with_st({{"II", 0.25}, {"III", 0.15}, {"aVF", 0.2}, {"I", -0.1}, {"aVL", -0.12}})));
  for (const auto& [name, want] : std::map<std::string, double>{
           {"II", 0.25}, {"III", 0.15}, {"aVF", 0.2}, {"I", -0.1}, {"aVL", -0.12}, {"V5", 0}}) {
    ASSERT_NE(lead(a, name), nullptr) << name;
    EXPECT_NEAR(lead(a, name)->st_j_mv, want, 0.02) << name;
  }
  ASSERT_TRUE(a.has("suspected_stemi"));
  const Flag& f = *std::find_if(a.flags.begin(), a.flags.end(),
                                [](const Flag& f) { return f.code == "suspected_stemi"; });
  EXPECT_NE(f.text.find("inferior"), std::string::npos) << f.text;
  EXPECT_NE(f.evidence.find("reciprocal"), std::string::npos) << f.evidence;
}

TEST(EcgAnalysis, stemi_thresholds_of_the_fourth_universal_definition) {
  // 0.15 mV in two contiguous limb leads: elevated (>= 0.1); one lead alone is not enough.
  EXPECT_TRUE(analyze(make_ecg(with_st({{"II", 0.15}, {"aVF", 0.15}}))).has("suspected_stemi"));
  EXPECT_FALSE(analyze(make_ecg(with_st({{"II", 0.15}}))).has("suspected_stemi"));
  EXPECT_FALSE(analyze(make_ecg(with_st({{"II", 0.06}, {"aVF", 0.06}}))).has("suspected_stemi"));
  // V2-V3 at 0.18 mV: a woman's ECG meets it (0.15), a man's >= 40 does not (0.2).
  auto v2v3 = make_ecg(with_st({{"V2", 0.18}, {"V3", 0.18}}));
  EXPECT_TRUE(analyze(v2v3, {55, 'F'}).has("suspected_stemi"));
  EXPECT_FALSE(analyze(v2v3, {55, 'M'}).has("suspected_stemi"));
  // 0.22 mV: a man of 50 meets 0.2, a man of 30 needs 0.25.
  auto v2v3_22 = make_ecg(with_st({{"V2", 0.22}, {"V3", 0.22}}));
  EXPECT_TRUE(analyze(v2v3_22, {50, 'M'}).has("suspected_stemi"));
  EXPECT_FALSE(analyze(v2v3_22, {30, 'M'}).has("suspected_stemi"));
  Analysis ant = analyze(make_ecg(with_st({{"V2", 0.3}, {"V3", 0.35}, {"V4", 0.25}})), {50, 'M'});
  ASSERT_TRUE(ant.has("suspected_stemi"));
}

TEST(EcgAnalysis, a_lead_off_or_noisy_record_is_flagged_poor_quality) {
  Record r = make_ecg(Synthetic{});
  std::fill(r.leads[6].mv.begin(), r.leads[6].mv.end(), 0.f);  // V1 off
  Analysis a = analyze(r);
  ASSERT_TRUE(a.has("poor_quality"));
  EXPECT_NE(a.flags.front().evidence.find("V1"), std::string::npos);
  Synthetic noisy;
  noisy.noise = 0.3;
  EXPECT_TRUE(analyze(make_ecg(noisy)).has("poor_quality"));
}

// The pydicom 12-lead DICOM ECG carries the acquiring device's own measurements: RR 982 ms,
// PR 161 ms, QRS 75 ms, QT 368 ms, QTc 370 ms, QRS axis 52 degrees.
TEST(EcgAnalysis, a_dicom_12_lead_ecg_agrees_with_its_devices_measurements) {
  auto rec = read_dicom_waveform(std::filesystem::path(PYDICOM_TEST_FILES) / "waveform_ecg.dcm");
  ASSERT_TRUE(rec.ok()) << rec.error().message;
  EXPECT_EQ(rec->sampling_hz, 1000);
  ASSERT_EQ(rec->leads.size(), 12u);
  EXPECT_EQ(rec->leads[0].name, "I");
  EXPECT_EQ(rec->leads[3].name, "aVR");
  EXPECT_EQ(rec->leads[11].name, "V6");
  // The device's filters as recorded: diagnostic 0.05-300 Hz, no notch ("0").
  EXPECT_EQ(rec->leads[0].filter_low_hz, 0.05);
  EXPECT_EQ(rec->leads[0].filter_high_hz, 300);
  EXPECT_FALSE(rec->leads[0].notch_hz.has_value());
  Analysis a = analyze(*rec);
  const Measurements& m = a.measurements;
  EXPECT_NEAR(m.rr_ms, 982, 10);
  ASSERT_TRUE(m.pr_ms && m.qrs_ms && m.qt_ms && m.qtc_bazett_ms && m.axis_deg);
  EXPECT_NEAR(*m.pr_ms, 161, 10);
  EXPECT_NEAR(*m.qrs_ms, 75, 10);
  EXPECT_NEAR(*m.qt_ms, 368, 10);
  EXPECT_NEAR(*m.qtc_bazett_ms, 370, 10);
  EXPECT_NEAR(*m.axis_deg, 52, 10);
  EXPECT_TRUE(a.has("sinus_rhythm"));
  EXPECT_FALSE(a.has("suspected_stemi"));
  EXPECT_FALSE(a.has("st_distorting_filter"));
}

TEST(EcgAnalysis, an_ecg_written_as_dicom_reads_back_to_the_microvolt) {
  ::yilian::testing::TempDir dir;
  Record r = make_ecg(with_st({{"II", 0.2}, {"aVF", 0.2}}));
  r.patient = {62, 'M'};
  for (Lead& l : r.leads) {
    l.filter_low_hz = 0.5;  // a monitoring high-pass
    l.filter_high_hz = 40;
    l.notch_hz = 50;
  }
  DicomEcgIdentity id{"P1",          "TEST^STEMI", "1.2.3.4", "1.2.3.4.1",
                      "1.2.3.4.1.1", "20261122",   "083000",  "Township A"};
  ASSERT_TRUE(write_dicom_waveform(r, id, dir.path() / "ecg.dcm").ok());
  auto back = read_dicom_waveform(dir.path() / "ecg.dcm");
  ASSERT_TRUE(back.ok()) << back.error().message;
  ASSERT_EQ(back->leads.size(), 12u);
  EXPECT_EQ(back->leads[5].name, "aVF");
  EXPECT_EQ(back->sampling_hz, 500);
  EXPECT_EQ(back->patient.sex, 'M');
  EXPECT_EQ(back->patient.age, 62);
  for (std::size_t c = 0; c < 12; ++c) {
    for (std::size_t k = 0; k < r.samples(); k += 97)
      ASSERT_NEAR(back->leads[c].mv[k], r.leads[c].mv[k], 0.0006) << c << " " << k;
  }
  EXPECT_EQ(back->leads[3].filter_low_hz, 0.5);
  EXPECT_EQ(back->leads[3].filter_high_hz, 40);
  EXPECT_EQ(back->leads[3].notch_hz, 50);
  Analysis a = analyze(*back, back->patient);
  EXPECT_TRUE(a.has("suspected_stemi"));
  // The reader is told that the ST levels behind that flag went through a 0.5 Hz high-pass.
  ASSERT_TRUE(a.has("st_distorting_filter"));
}

TEST(EcgAnalysis, a_broken_dicom_waveform_is_refused_with_a_reason) {
  auto ct = read_dicom_waveform(std::filesystem::path(PYDICOM_TEST_FILES) / "CT_small.dcm");
  ASSERT_FALSE(ct.ok());
  EXPECT_NE(ct.error().message.find("no waveform"), std::string::npos);
}

TEST(EcgAnalysis, the_ptb_infero_lateral_infarction_is_analysed) {
  auto rec = read_wfdb(std::filesystem::path(YILIAN_SHARED_DATA) / "ptb" / "s0010_re.hea");
  ASSERT_TRUE(rec.ok()) << rec.error().message;
  rec->leads.resize(12);
  Analysis a = analyze(*rec, {81, 'F'});
  EXPECT_GT(a.measurements.beats, 30u);
  EXPECT_TRUE(a.measurements.qrs_ms.has_value());
  ASSERT_NE(lead(a, "II"), nullptr);
  ASSERT_NE(lead(a, "V6"), nullptr);
}

}  // namespace
}  // namespace yilian::ecg
