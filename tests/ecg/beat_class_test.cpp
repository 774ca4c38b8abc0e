// The AAMI class mapping, EC57 class statistics, atrial fibrillation episodes and their
// comparison: pure logic on made-up beat sequences with known answers; the built-in model loads;
// the model's own voting agrees with OpenCV's; shape features are relative to the record.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include <opencv2/core.hpp>
#include <opencv2/ml.hpp>

#include "yilian/ecg/beat_class.h"
#include "yilian/ecg/qrs.h"
#include "yilian/ecg/synthetic.h"

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

// Made-up features whose class follows from two of them (with some overlap), for training.
void made_up_beats(std::vector<BeatFeatures>& x, std::vector<BeatClass>& y, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> noise(0, 0.3f);
  for (int i = 0; i < 2000; ++i) {
    BeatFeatures f{};
    for (float& v : f) v = noise(rng);
    const int k = i % 4;
    f[0] += k == 1 ? -1.0f : 0.0f;                 // "premature"
    f[3] += k == 2 ? 1.5f : k == 3 ? 0.7f : 0.0f;  // "wide"
    x.push_back(f);
    y.push_back(k == 0   ? BeatClass::N
                : k == 1 ? BeatClass::S
                : k == 2 ? BeatClass::V
                         : BeatClass::F);
  }
}

TEST(BeatClass, the_model_votes_as_opencv_does_and_its_bias_moves_the_decision) {
  std::vector<BeatFeatures> x, test_x;
  std::vector<BeatClass> y, test_y;
  made_up_beats(x, y, 1);
  made_up_beats(test_x, test_y, 2);
  BeatTrainingOptions options;
  options.trees = 20;
  options.keep_every_nth_n = 1;
  options.bias = {1, 1, 1, 1};
  auto model = BeatModel::train(x, y, options);
  ASSERT_TRUE(model.ok()) << model.error().message;

  // The same trees read by OpenCV from the saved model decide by majority, lowest class first
  // on a tie: with no bias the model's own walk over the trees must decide the same.
  cv::FileStorage fs(model->save(), cv::FileStorage::READ | cv::FileStorage::MEMORY);
  auto forest = cv::ml::RTrees::create();
  forest->read(fs["forest"]);
  ASSERT_TRUE(forest->isTrained());
  cv::Mat samples(static_cast<int>(test_x.size()), static_cast<int>(kBeatFeatureCount), CV_32F);
  for (std::size_t r = 0; r < test_x.size(); ++r)
    std::copy(test_x[r].begin(), test_x[r].end(), samples.ptr<float>(static_cast<int>(r)));
  cv::Mat predicted;
  forest->predict(samples, predicted);
  const auto shares = model->shares(test_x);
  const auto classes = model->classify(shares);
  static constexpr BeatClass kByIndex[] = {BeatClass::N, BeatClass::S, BeatClass::V, BeatClass::F};
  std::size_t right = 0;
  for (std::size_t r = 0; r < test_x.size(); ++r) {
    const auto k = static_cast<std::size_t>(std::lround(predicted.at<float>(static_cast<int>(r))));
    ASSERT_LT(k, 4u);
    EXPECT_EQ(classes[r], kByIndex[k]) << "beat " << r;
    float sum = 0;
    for (float v : shares[r]) sum += v;
    EXPECT_NEAR(sum, 1.0f, 1e-5f);
    right += classes[r] == test_y[r];
  }
  EXPECT_GT(right, test_x.size() * 3 / 4);  // the made-up classes are learnt

  // The bias is saved with the model, and weighs the votes.
  model->bias = {1, 1, 1.5f, 1};
  auto again = BeatModel::load(model->save());
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again->bias, model->bias);
  const std::vector<BeatModel::Shares> close = {{0.55f, 0.0f, 0.45f, 0.0f}};
  EXPECT_EQ(again->classify(close)[0], BeatClass::V);
  again->bias = {1, 1, 1, 1};
  EXPECT_EQ(again->classify(close)[0], BeatClass::N);
}

TEST(BeatClass, shape_features_are_relative_to_the_records_own_beats) {
  // The same PVCs in a quiet and in a noisy recording: their normal beats differ from the
  // dominant beat by the noise, but measured against the record's own spread they look alike,
  // and the PVCs stand out in both.
  auto medians = [&](double noise) {
    Synthetic s;
    s.fs = 360;
    s.seconds = 120;
    s.noise = noise;
    s.wander = 0.05;
    s.rr_sequence = {0.8, 0.8, 0.8, 0.5, 1.1, 0.8, 0.8, 0.8};
    s.beat_kinds = "NNNVNNNN";
    const Record r = make_ecg(s);
    const auto beats = detect_qrs(r);
    const auto f = beat_features(r, beats);
    std::vector<float> normal, ventricular;
    for (std::size_t i = 8; i + 8 < beats.size(); ++i) {
      const bool early = beats[i] - beats[i - 1] < static_cast<std::int64_t>(0.6 * s.fs);
      (early ? ventricular : normal).push_back(f[i][kLargerShapeDifference]);
    }
    EXPECT_GT(ventricular.size(), 10u);
    auto median = [](std::vector<float> v) {
      std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
      return v[v.size() / 2];
    };
    return std::pair{median(normal), median(ventricular)};
  };
  const auto [quiet_n, quiet_v] = medians(0.01);
  const auto [noisy_n, noisy_v] = medians(0.05);
  EXPECT_GT(quiet_n, 0.5f);
  EXPECT_LT(quiet_n, 2.5f);
  EXPECT_GT(noisy_n, 0.5f);
  EXPECT_LT(noisy_n, 2.5f);
  EXPECT_GT(quiet_v, 4 * quiet_n);
  EXPECT_GT(noisy_v, 4 * noisy_n);
}

TEST(BeatClass, beats_of_a_paroxysm_stand_out_against_the_records_slower_rhythm) {
  // Runs of ten beats at 0.45 s within a rhythm at 0.9 s: inside a run the beats follow each
  // other steadily, but against the record's slower rhythm they are short, the run's length is
  // counted, and its start is abrupt (half the interval before it).
  Synthetic s;
  s.fs = 360;
  s.seconds = 240;
  s.rr_sequence.assign(20, 0.9);
  s.rr_sequence.insert(s.rr_sequence.end(), 10, 0.45);
  s.beat_kinds = std::string(20, 'N') + std::string(10, 'S');
  const Record r = make_ecg(s);
  const auto beats = detect_qrs(r);
  const auto f = beat_features(r, beats);
  constexpr std::size_t kAgainstSlow = 12;  // RR against the 75th percentile of +-300 beats
  int in_run = 0, outside = 0;
  for (std::size_t i = 40; i + 40 < beats.size(); ++i) {
    const double rr = static_cast<double>(beats[i] - beats[i - 1]) / s.fs;
    const bool paroxysm = rr < 0.6;
    if (paroxysm && beats[i - 1] - beats[i - 2] < static_cast<std::int64_t>(0.6 * s.fs)) {
      ++in_run;  // inside a run, past its first beat
      EXPECT_LT(f[i][kAgainstSlow], 0.6f) << "beat " << i;
      EXPECT_GE(f[i][kRunLength], 9.0f) << "beat " << i;
      EXPECT_NEAR(f[i][kRunOnset], 0.5f, 0.05f) << "beat " << i;
    } else if (!paroxysm) {
      ++outside;
      EXPECT_NEAR(f[i][kAgainstSlow], 1.0f, 0.05f) << "beat " << i;
      EXPECT_EQ(f[i][kRunLength], 0.0f) << "beat " << i;
    }
  }
  EXPECT_GT(in_run, 50);
  EXPECT_GT(outside, 100);
}

}  // namespace
}  // namespace yilian::ecg
