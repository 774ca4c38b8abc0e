// Rhythm, conduction and voltage statements on synthetic 12-lead ECGs built with the feature
// each statement names (and without it): every statement carries its evidence and its
// standard Chinese term.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <string>

#include "synthetic_ecg.h"
#include "yilian/ecg/analysis.h"

namespace yilian::ecg {
namespace {

using testing::LeadShape;
using testing::make_ecg;
using testing::Synthetic;

// Every statement the analysis proposes is in the report's catalogue (readers pick from it,
// and the agreement statistics count by its codes).
void expect_catalogued(const Analysis& a) {
  const auto& cat = statement_catalogue();
  for (const Flag& f : a.flags) {
    EXPECT_TRUE(std::any_of(cat.begin(), cat.end(),
                            [&](const Statement& s) { return s.automated && f.code == s.code; }))
        << f.code << " is not in the statement catalogue";
  }
}

const Flag* statement(const Analysis& a, const std::string& code) {
  expect_catalogued(a);
  auto it =
      std::find_if(a.flags.begin(), a.flags.end(), [&](const Flag& f) { return f.code == code; });
  return it == a.flags.end() ? nullptr : &*it;
}

std::string codes(const Analysis& a) {
  std::string s;
  for (const Flag& f : a.flags) s += f.code + " (" + f.evidence + "); ";
  return s;
}

TEST(EcgStatements, every_statement_has_evidence_and_a_chinese_term) {
  Synthetic s;
  s.pr = 0.24;
  s.rr = 1.3;
  const Analysis a = analyze(make_ecg(s));
  expect_catalogued(a);
  for (const Flag& f : a.flags) {
    EXPECT_FALSE(f.evidence.empty()) << f.code;
    EXPECT_FALSE(f.text_zh.empty()) << f.code;
  }
}

TEST(EcgStatements, the_catalogue_has_unique_codes_and_both_languages) {
  std::set<std::string> seen;
  for (const Statement& s : statement_catalogue()) {
    const std::string code = s.code;
    EXPECT_TRUE(seen.insert(code).second) << code;
    EXPECT_FALSE(code.empty());
    EXPECT_TRUE(std::all_of(code.begin(), code.end(), [](char c) {
      return (c >= 'a' && c <= 'z') || c == '_';
    })) << code;
    EXPECT_NE(std::string(s.text), "") << code;
    EXPECT_NE(std::string(s.text_zh), "") << code;
  }
  EXPECT_TRUE(seen.count("normal_ecg"));
  EXPECT_TRUE(seen.count("suspected_stemi"));
}

TEST(EcgStatements, sinus_rate_statements_and_first_degree_av_block) {
  Synthetic slow;
  slow.rr = 1.3;
  Analysis a = analyze(make_ecg(slow));
  ASSERT_NE(statement(a, "sinus_bradycardia"), nullptr) << codes(a);
  EXPECT_EQ(statement(a, "sinus_bradycardia")->text_zh, "窦性心动过缓");
  EXPECT_EQ(statement(a, "sinus_rhythm"), nullptr);

  Synthetic block;
  block.pr = 0.26;
  Analysis b = analyze(make_ecg(block));
  ASSERT_NE(statement(b, "first_degree_av_block"), nullptr) << codes(b);
  EXPECT_NE(statement(b, "first_degree_av_block")->evidence.find("PR 2"), std::string::npos);
  EXPECT_NE(statement(b, "sinus_rhythm"), nullptr);
  Synthetic normal_pr;
  normal_pr.pr = 0.18;
  EXPECT_EQ(statement(analyze(make_ecg(normal_pr)), "first_degree_av_block"), nullptr);
}

TEST(EcgStatements, sinus_arrhythmia_varies_the_rate_of_sinus_beats) {
  Synthetic s;
  s.rr_sequence = {0.8, 0.9, 1.0, 1.1, 1.05, 0.95, 0.85};
  Analysis a = analyze(make_ecg(s));
  EXPECT_NE(statement(a, "sinus_rhythm"), nullptr) << codes(a);
  EXPECT_NE(statement(a, "sinus_arrhythmia"), nullptr) << codes(a);
  EXPECT_EQ(statement(a, "atrial_fibrillation"), nullptr);
}

TEST(EcgStatements, atrial_fibrillation_is_irregular_without_p_waves) {
  Synthetic s;
  s.p_waves = false;
  s.rr_sequence = {0.62, 0.95, 0.71, 1.12, 0.58, 0.83, 0.99, 0.66, 0.77, 1.05, 0.69};
  Analysis a = analyze(make_ecg(s));
  const Flag* af = statement(a, "atrial_fibrillation");
  ASSERT_NE(af, nullptr) << codes(a);
  EXPECT_EQ(af->text_zh, "心房颤动");
  EXPECT_EQ(statement(a, "sinus_rhythm"), nullptr);
  EXPECT_EQ(statement(a, "pac"), nullptr) << "premature beats mean nothing in AF";
  // The same irregular rhythm with P waves is not atrial fibrillation.
  s.p_waves = true;
  EXPECT_EQ(statement(analyze(make_ecg(s)), "atrial_fibrillation"), nullptr);
}

TEST(EcgStatements, atrial_flutter_waves_are_found_at_their_rate) {
  Synthetic s;
  s.flutter_hz = 5;  // 300/min, variable (3:1 and 4:1) conduction
  s.rr_sequence = {0.8, 0.6, 0.8, 0.8, 0.6};
  Analysis a = analyze(make_ecg(s));
  const Flag* fl = statement(a, "atrial_flutter");
  ASSERT_NE(fl, nullptr) << codes(a);
  ASSERT_TRUE(a.measurements.flutter_rate_bpm);
  EXPECT_NEAR(*a.measurements.flutter_rate_bpm, 300, 12);
  EXPECT_EQ(statement(a, "atrial_fibrillation"), nullptr);
  // No flutter in sinus ECGs, slow or fast (P waves at half a flutter rate), nor with noise.
  for (double rr : {0.5, 0.8, 1.2}) {
    Synthetic sinus;
    sinus.rr = rr;
    sinus.qt = std::min(0.4, 0.6 * rr);
    sinus.noise = 0.03;
    Analysis b = analyze(make_ecg(sinus));
    EXPECT_FALSE(b.measurements.flutter_rate_bpm) << rr << ": " << codes(b);
  }
}

TEST(EcgStatements, paced_rhythm_from_pacing_spikes) {
  Synthetic s;
  s.paced = true;
  s.qrs = 0.15;
  s.p_waves = false;
  Analysis a = analyze(make_ecg(s));
  ASSERT_NE(statement(a, "paced_rhythm"), nullptr) << codes(a);
  EXPECT_TRUE(a.measurements.paced);
  // A paced QRS is wide by nature: no bundle branch block statement.
  EXPECT_EQ(statement(a, "intraventricular_conduction_delay"), nullptr);
  EXPECT_EQ(statement(a, "lbbb"), nullptr);
}

TEST(EcgStatements, premature_ventricular_beats_couplets_and_bigeminy) {
  Synthetic s;
  s.seconds = 12;
  // Isolated PVCs: early (0.6 s after the previous beat), then a compensatory pause.
  s.rr_sequence = {1.0, 1.0, 0.6, 1.4, 1.0, 1.0, 1.0};
  s.beat_kinds = "NNNVNNN";
  Analysis a = analyze(make_ecg(s));
  const Flag* pvc = statement(a, "pvc");
  ASSERT_NE(pvc, nullptr) << codes(a);
  EXPECT_EQ(pvc->text_zh, "室性早搏");
  EXPECT_GE(a.measurements.ventricular, 1u);
  EXPECT_EQ(statement(a, "ventricular_bigeminy"), nullptr);

  Synthetic big;
  big.seconds = 12;
  big.rr_sequence = {0.6, 1.4};
  big.beat_kinds = "NV";
  Analysis b = analyze(make_ecg(big));
  EXPECT_NE(statement(b, "ventricular_bigeminy"), nullptr) << codes(b);
  EXPECT_GE(b.measurements.ventricular, 4u);
}

TEST(EcgStatements, premature_atrial_beats) {
  Synthetic s;
  s.seconds = 12;
  s.rr_sequence = {1.0, 1.0, 0.62, 1.1, 1.0, 1.0, 1.0};
  s.beat_kinds = "NNNSNNN";
  Analysis a = analyze(make_ecg(s));
  const Flag* pac = statement(a, "pac");
  ASSERT_NE(pac, nullptr) << codes(a);
  EXPECT_EQ(pac->text_zh, "房性早搏");
  EXPECT_EQ(statement(a, "pvc"), nullptr) << codes(a);
}

TEST(EcgStatements, right_and_left_bundle_branch_block) {
  Synthetic r;
  r.qrs = 0.14;
  r.leads["V1"] = LeadShape{0.1, 0, 0.3, 0.4, 0, -0.2, 0.6};    // rsR'
  r.leads["I"] = LeadShape{0.1, 0.05, 0.8, 0.1, 0, 0.3, -0.4};  // wide terminal S
  r.leads["V6"] = LeadShape{0.1, 0.05, 1.0, 0.1, 0, 0.3, -0.4};
  Analysis a = analyze(make_ecg(r));
  ASSERT_NE(statement(a, "rbbb"), nullptr) << codes(a);
  EXPECT_EQ(statement(a, "rbbb")->text_zh, "完全性右束支传导阻滞");
  EXPECT_EQ(statement(a, "lbbb"), nullptr);

  Synthetic l;
  l.qrs = 0.15;
  l.leads["V1"] = LeadShape{0.1, 0, 0.1, 1.2, 0, 0.3, -0.6};  // rS with a deep, slow S
  l.leads["I"] = LeadShape{0.1, 0, 1.0, 0, 0, -0.2, 0.8};     // broad, notched R
  l.leads["V6"] = LeadShape{0.1, 0, 1.2, 0, 0, -0.2, 0.9};
  Analysis b = analyze(make_ecg(l));
  ASSERT_NE(statement(b, "lbbb"), nullptr) << codes(b);
  EXPECT_EQ(statement(b, "rbbb"), nullptr);
  EXPECT_EQ(statement(b, "lvh"), nullptr) << "voltage criteria do not apply with LBBB";

  // Narrow QRS with the same shapes: no block.
  r.qrs = 0.09;
  Analysis c = analyze(make_ecg(r));
  EXPECT_EQ(statement(c, "rbbb"), nullptr) << codes(c);
}

TEST(EcgStatements, left_ventricular_hypertrophy_by_sokolow_lyon_and_cornell) {
  Synthetic s;
  s.leads["V1"] = LeadShape{0.1, 0, 0.3, 1.8, 0, 0.3};
  s.leads["V5"] = LeadShape{0.1, 0.05, 2.2, 0.2, 0, 0.4};
  Analysis a = analyze(make_ecg(s));
  const Flag* lvh = statement(a, "lvh");
  ASSERT_NE(lvh, nullptr) << codes(a);
  ASSERT_TRUE(a.measurements.sokolow_lyon_mv);
  EXPECT_NEAR(*a.measurements.sokolow_lyon_mv, 4.0, 0.25);  // 1.8 + 2.2, low-passed
  EXPECT_NE(lvh->evidence.find("Sokolow"), std::string::npos);
  // Cornell: RaVL + SV3 = 2.4 mV: above a woman's 2.0, below a man's 2.8.
  Synthetic c;
  c.leads["aVL"] = LeadShape{0.1, 0, 1.2, 0.1, 0, 0.3};
  c.leads["V3"] = LeadShape{0.1, 0, 0.5, 1.2, 0, 0.3};
  EXPECT_NE(statement(analyze(make_ecg(c), {50, 'F'}), "lvh"), nullptr);
  EXPECT_EQ(statement(analyze(make_ecg(c), {50, 'M'}), "lvh"), nullptr);
}

TEST(EcgStatements, low_voltage_and_axis_deviation) {
  Synthetic low;
  for (const char* l : {"I", "II", "III", "aVR", "aVL", "aVF"})
    low.leads[l] = LeadShape{0.05, 0.02, 0.3, 0.1, 0, 0.1};
  Analysis a = analyze(make_ecg(low));
  ASSERT_NE(statement(a, "low_voltage"), nullptr) << codes(a);
  EXPECT_EQ(statement(a, "low_voltage")->text_zh, "肢体导联低电压");

  // Left axis: I positive, aVF and II negative-dominant (about -50 degrees).
  Synthetic left;
  left.leads["I"] = LeadShape{0.1, 0, 1.0, 0.1, 0, 0.3};
  left.leads["aVF"] = LeadShape{0.1, 0, 0.2, 1.3, 0, 0.2};
  Analysis l = analyze(make_ecg(left));
  ASSERT_TRUE(l.measurements.axis_deg);
  EXPECT_LT(*l.measurements.axis_deg, -30);
  EXPECT_NE(statement(l, "left_axis_deviation"), nullptr) << codes(l);
  // Right axis: I negative, aVF positive (about +120 degrees).
  Synthetic right;
  right.leads["I"] = LeadShape{0.1, 0, 0.2, 0.8, 0, 0.2};
  right.leads["aVF"] = LeadShape{0.1, 0, 1.3, 0.1, 0, 0.3};
  Analysis r = analyze(make_ecg(right));
  EXPECT_NE(statement(r, "right_axis_deviation"), nullptr) << codes(r);
}

TEST(EcgStatements, early_repolarisation_is_told_from_stemi) {
  // Mild elevation in the inferior and lateral leads, no reciprocal depression.
  Synthetic er;
  for (const char* l : {"II", "III", "aVF", "V5", "V6", "I"}) {
    LeadShape sh;
    sh.st = 0.12;
    er.leads[l] = sh;
  }
  Analysis a = analyze(make_ecg(er), {28, 'M'});
  EXPECT_NE(statement(a, "early_repolarisation"), nullptr) << codes(a);
  EXPECT_EQ(statement(a, "suspected_stemi"), nullptr) << codes(a);
  // The same elevation with reciprocal depression in aVL is an infarction.
  LeadShape avl;
  avl.st = -0.12;
  er.leads["aVL"] = avl;
  er.leads["I"] = LeadShape{};
  Analysis b = analyze(make_ecg(er), {60, 'M'});
  EXPECT_NE(statement(b, "suspected_stemi"), nullptr) << codes(b);
  EXPECT_EQ(statement(b, "suspected_stemi")->text_zh.rfind("疑似急性ST段抬高型心肌梗死", 0), 0u);
}

}  // namespace
}  // namespace yilian::ecg
