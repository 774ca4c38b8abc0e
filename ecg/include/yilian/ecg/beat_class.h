// Beat classification into the AAMI classes (ANSI/AAMI EC57): N (normal and bundle branch
// block beats, escapes), S (supraventricular ectopic), V (ventricular ectopic), F (fusion),
// Q (paced, unclassifiable).
//
// Each detected beat is described by features that do not depend on who the patient is:
// its RR intervals against the patient's own average RR (how premature, whether a pause
// follows, whether it lies in a run of short intervals, how it compares with the rhythm half a
// minute earlier), against the beats just before it, and against the record's slower rhythm
// (so that the beats of a paroxysm of supraventricular tachycardia, which pull the local
// average with them, still stand out), how irregular the rhythm is around it, its QRS width
// and shape against the patient's own dominant beat (a template kept per stretch of the
// record), and the P-wave region against the dominant beat's. The shape features are then
// taken relative to the record's own spread (each divided by its lower quartile over the
// record's beats), so that a noisy record's normal beats do not look like a clean record's
// ectopic ones. A random forest (OpenCV ml, trained on the MIT-BIH development records) votes;
// the class with the most votes, each class's votes weighed by the model's bias, is the
// beat's. The trained model is built into the library (ecg/model/beats.yml, `make ecg-model`
// makes it again); feature extraction and classification are pure computation.
//
// Feature layout (kBeatFeatureCount): kRhythmFeatures (19) rhythm features: RR against the
// local average, irregularity over 8 beats (mean successive difference, steady share),
// post-RR, the same over 32 beats, the median RR of the 9 beats around, RR against 20-40 beats
// earlier; then RR against the previous RR, the mean of the previous 8, the record's median
// RR, post-RR against RR, RR against the 75th and 90th percentiles of +-300 beats, RR and
// post-RR against the 75th percentile, RR against the one two beats back, the length of the run
// of short intervals (under 0.85 of that percentile) the beat is in (0 when it is not), how
// abruptly that run began (its first RR against the one before), and RR against the median of
// the five minutes that end a minute earlier. Then per lead (II and V1, or the first two) 13:
// correlation with the dominant beat, amplitude ratio, width ratio, shape difference, P-region
// correlation and spread, polarity, 6 samples of the difference from -60 to +100 ms; then 3
// over both leads: the lower correlation, the larger shape difference
// (kLargerShapeDifference), the larger width ratio.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "yilian/common/result.h"
#include "yilian/ecg/record.h"

namespace yilian::ecg {

enum class BeatClass : char { N = 'N', S = 'S', V = 'V', F = 'F', Q = 'Q' };

// The AAMI class of an MIT annotation code; nullopt for codes that are not beats.
std::optional<BeatClass> aami_class(int mit_code);
const char* beat_class_name(BeatClass c);  // "N", "S", ...

inline constexpr std::size_t kRhythmFeatures = 19;
inline constexpr std::size_t kBeatFeatureCount = kRhythmFeatures + 2 * 13 + 3;
inline constexpr std::size_t kLargerShapeDifference = kBeatFeatureCount - 2;
inline constexpr std::size_t kRunLength = 16, kRunOnset = 17;  // rhythm features 16 and 17
using BeatFeatures = std::array<float, kBeatFeatureCount>;

// The features of every beat (ascending sample positions) on the record's two most useful
// leads (II and V1 of a 12-lead; the first two otherwise).
std::vector<BeatFeatures> beat_features(const Record& record,
                                        const std::vector<std::int64_t>& beats);

struct BeatTrainingOptions {
  int trees = 100;
  int max_depth = 12;
  int min_samples = 8;
  int keep_every_nth_n = 3;  // N beats are many and alike: one in this many is enough
  // How much more a missed S or V beat weighs than a missed N beat.
  double s_weight = 6, v_weight = 3, f_weight = 3;
  unsigned seed = 20261204;
  // How much each class's votes count (N S V F) when a beat's class is decided: ventricular
  // votes a little more, which on the cross-validated development records trades a little VEB
  // +P for VEB Se and takes ventricular beats out of the supraventricular ones.
  std::array<float, 4> bias{1, 1, 1.2f, 1};
};

class BeatModel {
 public:
  BeatModel();
  ~BeatModel();
  BeatModel(BeatModel&&) noexcept;
  BeatModel& operator=(BeatModel&&) noexcept;

  // The model built into the library.
  static const BeatModel& builtin();
  // A model saved by save().
  static Result<BeatModel> load(std::string_view text);
  std::string save() const;

  // Errors: invalid_argument (fewer than two classes among the labels), internal (OpenCV).
  static Result<BeatModel> train(const std::vector<BeatFeatures>& features,
                                 const std::vector<BeatClass>& labels,
                                 const BeatTrainingOptions& options = {});

  // The share of the forest's trees that vote N, S, V and F for each beat.
  using Shares = std::array<float, 4>;
  std::vector<Shares> shares(const std::vector<BeatFeatures>& features) const;
  // Each beat's class: the class whose share, times the model's bias for it, is largest.
  std::vector<BeatClass> classify(const std::vector<BeatFeatures>& features) const;
  std::vector<BeatClass> classify(const std::vector<Shares>& shares) const;

  // How much each class's votes count (N S V F) when the class is decided.
  Shares bias{1, 1, 1, 1};

  // The records the model learnt from (record ids), so that an evaluation never scores a
  // record with a model that has seen it.
  std::vector<std::string> training_records;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Features and classes in one step, with the built-in model.
std::vector<BeatClass> classify_beats(const Record& record, const std::vector<std::int64_t>& beats);

// EC57 class statistics of classified beats against reference annotations (the same beat
// matching as compare_beats: 150 ms window, after the first 5 minutes, VF episodes left out).
// Se counts every reference beat of the class, missed ones too; +P counts the beats labelled
// with the class that match a reference beat, leaving out Q references, and for VEB fusion
// references, as EC57 prescribes.
struct ClassMatch {
  std::int64_t veb_tp = 0, veb_ref = 0, veb_labelled = 0;
  std::int64_t sveb_tp = 0, sveb_ref = 0, sveb_labelled = 0;
  // confusion[reference][labelled] over N S V F Q and O (missed / not a beat).
  std::array<std::array<std::int64_t, 6>, 6> confusion{};
  double veb_se() const { return veb_ref ? 100.0 * veb_tp / veb_ref : 100.0; }
  double veb_pp() const { return veb_labelled ? 100.0 * veb_tp / veb_labelled : 100.0; }
  double sveb_se() const { return sveb_ref ? 100.0 * sveb_tp / sveb_ref : 100.0; }
  double sveb_pp() const { return sveb_labelled ? 100.0 * sveb_tp / sveb_labelled : 100.0; }
  ClassMatch& operator+=(const ClassMatch& o);
};

ClassMatch compare_classes(const std::vector<Annotation>& reference,
                           const std::vector<std::int64_t>& beats,
                           const std::vector<BeatClass>& classes, double sampling_hz,
                           double start_s = 300);

// The reference class of each detected beat (the matched annotation's), for training; nullopt
// where no reference beat is within 150 ms.
std::vector<std::optional<BeatClass>> reference_classes(const std::vector<Annotation>& reference,
                                                        const std::vector<std::int64_t>& beats,
                                                        double sampling_hz);

// A record EC57 leaves out of class statistics: one with paced beats.
bool is_paced_record(const std::vector<Annotation>& reference);

// Atrial fibrillation in a long recording, from the beats and their classes: windows of 32
// beats (moved by 8) whose intervals between non-ventricular beats are irregular (mean
// successive difference > 12 % of the mean, under 40 % of them steady within 10 %) are
// fibrillation; overlapping ones merge; episodes under 30 s are dropped. Sample ranges.
using Episode = std::pair<std::int64_t, std::int64_t>;
std::vector<Episode> detect_af(const std::vector<std::int64_t>& beats,
                               const std::vector<BeatClass>& classes, double sampling_hz);
// The reference's atrial fibrillation episodes: from each "(AFIB" rhythm annotation to the next
// rhythm change (or the end, `samples`).
std::vector<Episode> reference_af(const std::vector<Annotation>& reference, std::int64_t samples);

// Episode and duration sensitivity and positive predictivity (EC57 style): an episode counts as
// found when a detected one overlaps it, a detected one as true when it overlaps a reference
// one; durations by the overlap in samples.
struct EpisodeMatch {
  std::int64_t ref_episodes = 0, ref_found = 0, det_episodes = 0, det_true = 0;
  std::int64_t ref_samples = 0, det_samples = 0, overlap_samples = 0;
  EpisodeMatch& operator+=(const EpisodeMatch& o);
  static double pct(std::int64_t a, std::int64_t b) { return b ? 100.0 * a / b : 100.0; }
};
EpisodeMatch compare_episodes(const std::vector<Episode>& reference,
                              const std::vector<Episode>& detected);

}  // namespace yilian::ecg
