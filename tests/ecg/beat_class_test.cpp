// The AAMI class mapping, EC57 class statistics, atrial fibrillation episodes and their
// comparison: pure logic on made-up beat sequences with known answers; the built-in model loads.
#include <gtest/gtest.h>

#include <random>

#include "yilian/ecg/beat_class.h"

namespace yilian::ecg {
namespace {

TEST(BeatClass, mit_codes_map_to_the_aami_classes) {
  EXPECT_EQ(aami_class(1), BeatClass::N);   // N
  EXPECT_EQ(aami_class(2), BeatClass::N);   // L
  EXPECT_EQ(aami_class(11), BeatClass::N);  // j
  EXPECT_EQ(aami_class(8), BeatClass::S);   // A
  EXPECT_EQ(aami_class(4), BeatClass::S);   // a
  EXPECT_EQ(aami_class(7), BeatClass::S);   // J
  EXPECT_EQ(aami_class(5), BeatClass::V);   // V
  EXPECT_EQ(aami_class(10), BeatClass::V);  // E
  EXPECT_EQ(aami_class(6), BeatClass::F);   // F
  EXPECT_EQ(aami_class(12), BeatClass::Q);  // paced
  EXPECT_FALSE(aami_class(28));             // a rhythm change is not a beat
}

TEST(BeatClass, ec57_class_statistics_count_missed_beats_and_leave_out_fusion_for_veb) {
  const double fs = 100;
  std::vector<Annotation> ref;
  std::vector<std::int64_t> beats;
  std::vector<BeatClass> labels;
  // From 301 s on: a V labelled V, a V labelled N, a V missed, an S labelled S, an N labelled
  // S, an F labelled V (not against VEB +P), an extra detection labelled V (not a beat).
  auto at = [&](int k) { return static_cast<std::int64_t>((301 + k) * fs); };
  ref = {{at(0), 5, ""}, {at(1), 5, ""}, {at(2), 5, ""},
         {at(3), 8, ""}, {at(4), 1, ""}, {at(5), 6, ""}};
  beats = {at(0), at(1), at(3), at(4), at(5), at(6)};
  labels = {BeatClass::V, BeatClass::N, BeatClass::S, BeatClass::S, BeatClass::V, BeatClass::V};
  ClassMatch m = compare_classes(ref, beats, labels, fs);
  EXPECT_EQ(m.veb_ref, 3);
  EXPECT_EQ(m.veb_tp, 1);
  EXPECT_EQ(m.veb_labelled, 1);  // the F and the non-beat are not counted
  EXPECT_NEAR(m.veb_se(), 100.0 / 3, 1e-9);
  EXPECT_EQ(m.sveb_ref, 1);
  EXPECT_EQ(m.sveb_tp, 1);
  EXPECT_EQ(m.sveb_labelled, 2);
  EXPECT_EQ(m.confusion[2][5], 1);  // the missed V
  EXPECT_EQ(m.confusion[5][2], 1);  // the extra detection
  // Beats in the first five minutes are not counted.
  EXPECT_EQ(compare_classes({{100, 5, ""}}, {100}, {BeatClass::N}, fs).veb_ref, 0);
}

TEST(BeatClass, atrial_fibrillation_episodes_are_found_and_compared) {
  const double fs = 250;
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> irregular(0.45, 1.15);
  std::vector<std::int64_t> beats;
  double t = 0;
  // 3 min regular, 4 min irregular, 3 min regular.
  while (t < 180) beats.push_back(static_cast<std::int64_t>((t += 0.8) * fs));
  while (t < 420) beats.push_back(static_cast<std::int64_t>((t += irregular(rng)) * fs));
  while (t < 600) beats.push_back(static_cast<std::int64_t>((t += 0.8) * fs));
  std::vector<BeatClass> classes(beats.size(), BeatClass::N);
  auto found = detect_af(beats, classes, fs);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_NEAR(static_cast<double>(found[0].first) / fs, 180, 30);
  EXPECT_NEAR(static_cast<double>(found[0].second) / fs, 420, 30);

  std::vector<Annotation> ref = {{0, 28, "(N"},
                                 {static_cast<std::int64_t>(180 * fs), 28, "(AFIB"},
                                 {static_cast<std::int64_t>(420 * fs), 28, "(N"}};
  auto episodes = reference_af(ref, static_cast<std::int64_t>(600 * fs));
  ASSERT_EQ(episodes.size(), 1u);
  EpisodeMatch m = compare_episodes(episodes, found);
  EXPECT_EQ(m.ref_found, 1);
  EXPECT_EQ(m.det_true, 1);
  EXPECT_GT(EpisodeMatch::pct(m.overlap_samples, m.ref_samples), 80);
  EXPECT_GT(EpisodeMatch::pct(m.overlap_samples, m.det_samples), 80);
  // A regular rhythm with isolated ventricular beats is not fibrillation.
  std::vector<std::int64_t> sinus;
  std::vector<BeatClass> with_pvcs;
  t = 0;
  for (int i = 0; t < 600; ++i) {
    const bool v = i % 7 == 3;
    t += v ? 0.5 : (i % 7 == 4 ? 1.1 : 0.8);
    sinus.push_back(static_cast<std::int64_t>(t * fs));
    with_pvcs.push_back(v ? BeatClass::V : BeatClass::N);
  }
  EXPECT_TRUE(detect_af(sinus, with_pvcs, fs).empty());
}

TEST(BeatClass, the_built_in_model_loads_and_says_what_it_learnt_from) {
  const BeatModel& m = BeatModel::builtin();
  EXPECT_EQ(m.training_records.size(), 22u);  // the 26 development records less 4 paced
  EXPECT_FALSE(BeatModel::load("not: a model").ok());
  auto again = BeatModel::load(m.save());
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again->training_records, m.training_records);
}

}  // namespace
}  // namespace yilian::ecg
