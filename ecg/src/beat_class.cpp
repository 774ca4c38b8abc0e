#include "yilian/ecg/beat_class.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include <opencv2/core.hpp>
#include <opencv2/ml.hpp>

#include "filters.h"
#include "yilian/ecg/analysis.h"
#include "yilian/ecg/beat_compare.h"

namespace yilian::ecg {

// The model file built into the library (beat_model_blob.cpp).
std::string_view builtin_beat_model_text();

namespace {

constexpr int kClasses = 4;  // the forest learns N, S, V, F; Q beats are too few to learn
constexpr BeatClass kClassOf[kClasses] = {BeatClass::N, BeatClass::S, BeatClass::V, BeatClass::F};

int class_index(BeatClass c) {
  switch (c) {
    case BeatClass::N:
      return 0;
    case BeatClass::S:
      return 1;
    case BeatClass::V:
      return 2;
    case BeatClass::F:
      return 3;
    case BeatClass::Q:
      return 4;
  }
  return 4;
}

double correlation(const float* a, const float* b, std::size_t n) {
  double ma = 0, mb = 0;
  for (std::size_t k = 0; k < n; ++k) ma += a[k], mb += b[k];
  ma /= static_cast<double>(n);
  mb /= static_cast<double>(n);
  double sab = 0, saa = 0, sbb = 0;
  for (std::size_t k = 0; k < n; ++k) {
    const double x = a[k] - ma, y = b[k] - mb;
    sab += x * y;
    saa += x * x;
    sbb += y * y;
  }
  return saa > 0 && sbb > 0 ? sab / std::sqrt(saa * sbb) : 0;
}

// The QRS width in ms: where the slope stays above a fifth of its peak within +-150 ms.
double qrs_width_ms(const float* x, std::size_t n, double fs) {
  double peak = 0;
  for (std::size_t k = 1; k + 1 < n; ++k)
    peak = std::max(peak, std::fabs(double{x[k + 1] - x[k - 1]}));
  const double thr = 0.2 * peak;
  std::size_t first = n, last = 0;
  for (std::size_t k = 1; k + 1 < n; ++k) {
    if (std::fabs(double{x[k + 1] - x[k - 1]}) > thr) {
      first = std::min(first, k);
      last = k;
    }
  }
  return first < last ? 1000.0 * static_cast<double>(last - first) / fs : 0;
}

// Which two leads to use: II and V1 of a 12-lead; otherwise the first two (or the one twice).
std::array<std::size_t, 2> pick_leads(const Record& r) {
  std::optional<std::size_t> ii, v1;
  for (std::size_t i = 0; i < r.leads.size(); ++i) {
    const std::string name = standard_lead_name(r.leads[i].name);
    if (name == "II" && !ii) ii = i;
    if (name == "V1" && !v1) v1 = i;
  }
  if (ii && v1) return {*ii, *v1};
  return {0, r.leads.size() > 1 ? std::size_t{1} : std::size_t{0}};
}

}  // namespace

std::optional<BeatClass> aami_class(int code) {
  switch (code) {
    case 1:
    case 2:
    case 3:
    case 11:
    case 25:
    case 34:  // N L R j B e
      return BeatClass::N;
    case 4:
    case 7:
    case 8:
    case 9:
    case 35:  // a J A S n
      return BeatClass::S;
    case 5:
    case 10:
    case 41:  // V E r
      return BeatClass::V;
    case 6:  // F
      return BeatClass::F;
    case 12:
    case 13:
    case 30:
    case 38:  // / Q ? f
      return BeatClass::Q;
    default:
      return std::nullopt;
  }
}

const char* beat_class_name(BeatClass c) {
  switch (c) {
    case BeatClass::N:
      return "N";
    case BeatClass::S:
      return "S";
    case BeatClass::V:
      return "V";
    case BeatClass::F:
      return "F";
    case BeatClass::Q:
      return "Q";
  }
  return "Q";
}

std::vector<BeatFeatures> beat_features(const Record& record,
                                        const std::vector<std::int64_t>& beats) {
  std::vector<BeatFeatures> out(beats.size());
  const double fs = record.sampling_hz;
  const std::size_t n = record.samples();
  const std::size_t nb = beats.size();
  if (record.leads.empty() || nb == 0 || fs <= 0) return out;
  auto samples = [&](double ms) { return static_cast<std::int64_t>(std::lround(ms * fs / 1000)); };

  // RR intervals in seconds; the first beat's pre-RR and the last's post-RR are taken from
  // their neighbours.
  std::vector<double> rr(nb + 1, 0.0);  // rr[i]: between beat i-1 and beat i
  for (std::size_t i = 1; i < nb; ++i) rr[i] = static_cast<double>(beats[i] - beats[i - 1]) / fs;
  if (nb > 1) {
    rr[0] = rr[1];
    rr[nb] = rr[nb - 1];
  } else {
    rr[0] = rr[1] = 1.0;
  }
  // The patient's average RR around each beat: the median over +-150 beats, per block of 16.
  std::vector<double> avg(nb);
  for (std::size_t b = 0; b < nb; b += 16) {
    const std::size_t lo = b > 150 ? b - 150 : 0, hi = std::min(nb, b + 166);
    const double m = median_of(std::vector<double>(rr.begin() + static_cast<std::ptrdiff_t>(lo),
                                                   rr.begin() + static_cast<std::ptrdiff_t>(hi)));
    for (std::size_t i = b; i < std::min(nb, b + 16); ++i) avg[i] = m;
  }
  // The record's slower rhythm, for beats in long runs of short intervals (a paroxysm of
  // supraventricular tachycardia pulls the local median with it): the record's median RR, the
  // 75th and 90th percentiles of the RR over +-300 beats, and the median RR over the five
  // minutes that end a minute before the beat (per block of 16 beats).
  const double record_rr =
      std::max(nb > 2 ? median_of(std::vector<double>(rr.begin() + 1,
                                                      rr.begin() + static_cast<std::ptrdiff_t>(nb)))
                      : rr[0],
               1e-3);
  std::vector<double> slow75(nb), slow90(nb), earlier(nb);
  std::vector<double> window;
  for (std::size_t b = 0; b < nb; b += 16) {
    const std::size_t lo = b > 300 ? b - 300 : 0, hi = std::min(nb, b + 316);
    window.assign(rr.begin() + static_cast<std::ptrdiff_t>(lo),
                  rr.begin() + static_cast<std::ptrdiff_t>(hi));
    const double q75 = std::max(quantile_of(window, 0.75), 1e-3);
    const double q90 = std::max(quantile_of(window, 0.9), 1e-3);
    window.clear();
    const double t = static_cast<double>(beats[b]) / fs;
    for (std::size_t j = b; j-- > 0;) {
      const double tj = static_cast<double>(beats[j]) / fs;
      if (tj < t - 360) break;
      if (tj < t - 60) window.push_back(rr[j]);
    }
    const double before = window.size() > 10 ? std::max(median_of(window), 1e-3) : record_rr;
    for (std::size_t i = b; i < std::min(nb, b + 16); ++i) {
      slow75[i] = q75;
      slow90[i] = q90;
      earlier[i] = before;
    }
  }

  // Two leads, band-passed 0.5-40 Hz.
  const auto pick = pick_leads(record);
  std::array<std::vector<float>, 2> lead;
  for (int l = 0; l < 2; ++l) lead[l] = record.leads[pick[l]].mv;
  filtfilt(lead[0], lead[1],
           {Biquad::high_pass(0.5, fs), Biquad::low_pass(std::min(40.0, 0.4 * fs), fs)});

  // Windows around the fiducial point.
  const std::int64_t pre = samples(300), post = samples(200), len = pre + post;
  const std::int64_t qrs_a = pre - samples(80), qrs_b = pre + samples(100);
  const std::int64_t p_a = pre - samples(250), p_b = pre - samples(60);
  const std::int64_t wid_a = pre - samples(150), wid_b = pre + samples(150);
  const std::int64_t shift_max = samples(15);
  const std::int64_t used_a = std::min(p_a, wid_a), used_b = std::max(qrs_b, wid_b);
  auto inside = [&](std::int64_t b) {
    return b - pre - shift_max >= 0 && b + post + shift_max < static_cast<std::int64_t>(n);
  };

  // The dominant beat per stretch of 32 beats: the sample-wise median of the nearby beats (40
  // either side) that look like the rhythm's own, then again over those that resemble the
  // first median.
  constexpr std::size_t kBlock = 32, kReach = 40;
  std::array<std::vector<std::vector<float>>, 2> templ;
  const std::size_t blocks = (nb + kBlock - 1) / kBlock;
  for (int l = 0; l < 2; ++l)
    templ[l].assign(blocks, std::vector<float>(static_cast<std::size_t>(len), 0.f));
  std::vector<float> column;
  for (std::size_t blk = 0; blk < blocks; ++blk) {
    const std::size_t centre = std::min(nb - 1, blk * kBlock + kBlock / 2);
    std::vector<std::size_t> cand;
    const std::size_t lo = centre > kReach ? centre - kReach : 0,
                      hi = std::min(nb, centre + kReach);
    for (std::size_t i = lo; i < hi; ++i) {
      // Neither premature nor followed by a pause (an ectopic beat that comes barely early
      // still leaves a compensatory pause after it).
      if (inside(beats[i]) && rr[i] >= 0.95 * avg[i] && rr[i + 1] <= 1.1 * avg[i])
        cand.push_back(i);
    }
    if (cand.size() < 5) {
      cand.clear();
      for (std::size_t i = lo; i < hi; ++i) {
        if (inside(beats[i])) cand.push_back(i);
      }
    }
    if (cand.empty()) continue;
    std::vector<float> windows;  // the chosen beats' windows side by side (cache friendly)
    // The sample-wise median over the beats `which` of lead `l`, samples [a, b) of the window.
    auto median_over = [&](const std::vector<std::size_t>& which, int l, std::int64_t a,
                           std::int64_t b, std::vector<float>& m) {
      const auto w = static_cast<std::size_t>(b - a);
      windows.resize(which.size() * w);
      for (std::size_t j = 0; j < which.size(); ++j) {
        const float* from = &lead[l][static_cast<std::size_t>(beats[which[j]] - pre + a)];
        std::copy(from, from + w, windows.begin() + static_cast<std::ptrdiff_t>(j * w));
      }
      column.resize(which.size());
      for (std::size_t k = 0; k < w; ++k) {
        for (std::size_t j = 0; j < which.size(); ++j) column[j] = windows[j * w + k];
        // The middle element in place (the hot loop of the features).
        auto mid = column.begin() + static_cast<std::ptrdiff_t>(column.size() / 2);
        std::nth_element(column.begin(), mid, column.end());
        m[static_cast<std::size_t>(a) + k] = *mid;
      }
    };
    // The first median is needed only where the likeness is judged (the first lead's QRS),
    // unless too few beats are alike and it becomes the template.
    median_over(cand, 0, qrs_a, qrs_b, templ[0][blk]);
    std::vector<std::size_t> alike;
    for (std::size_t i : cand) {
      const float* x = &lead[0][static_cast<std::size_t>(beats[i] - pre + qrs_a)];
      if (correlation(x, templ[0][blk].data() + qrs_a, static_cast<std::size_t>(qrs_b - qrs_a)) >=
          0.85)
        alike.push_back(i);
    }
    // The template is read from the P region to the end of the width window only.
    const auto& chosen = alike.size() >= 5 ? alike : cand;
    for (int l = 0; l < 2; ++l) median_over(chosen, l, used_a, used_b, templ[l][blk]);
  }

  std::array<double, 2> t_pp{}, t_width{}, t_pol{}, t_pstd{};
  std::size_t t_blk = SIZE_MAX;
  // Layout: kRhythmFeatures rhythm features, 13 per lead (correlation, amplitude ratio, width
  // ratio, shape difference, P-region correlation and spread, polarity, 6 samples of the
  // difference), 3 over both leads.
  constexpr std::size_t kRhythm = kRhythmFeatures, kPerLead = 13;
  static_assert(kRhythm + 2 * kPerLead + 3 == kBeatFeatureCount);
  // How irregular the intervals within `reach` beats of beat i are: the mean successive
  // difference against the mean interval, and the share of successive differences under a
  // tenth of the patient's average (steady).
  auto irregularity = [&](std::size_t i, std::size_t reach, double a) {
    double irr = 0, mean = 0;
    int pairs = 0, steady = 0;
    for (std::size_t j = i >= reach ? i - reach : 1; j <= std::min(nb - 1, i + reach); ++j) {
      if (j == 0) continue;
      irr += std::fabs(rr[j] - rr[j - 1]);
      mean += rr[j];
      steady += std::fabs(rr[j] - rr[j - 1]) < 0.1 * a;
      ++pairs;
    }
    return std::pair{pairs ? irr / std::max(mean, 1e-3) : 0.0,
                     pairs ? static_cast<double>(steady) / pairs : 1.0};
  };
  std::vector<double> scratch;
  std::vector<std::size_t> shaped;                        // the beats whose shape features are set
  auto median_rr = [&](std::size_t lo, std::size_t hi) {  // over rr[lo, hi)
    scratch.assign(rr.begin() + static_cast<std::ptrdiff_t>(lo),
                   rr.begin() + static_cast<std::ptrdiff_t>(hi));
    return median_of(scratch);
  };
  for (std::size_t i = 0; i < nb; ++i) {
    BeatFeatures& f = out[i];
    std::size_t c = 0;
    // Rhythm: how premature the beat is against the patient's average RR, whether a pause
    // follows it, how irregular the rhythm around it is (atrial fibrillation: few steady
    // successive intervals, near and over a minute or so), whether it lies in a run of short
    // intervals (a run of supraventricular beats: steady but short), and how its interval
    // compares with the rhythm half a minute earlier (a paroxysm starts abruptly, a sinus
    // tachycardia gradually).
    const double a = std::max(avg[i], 1e-3);
    const auto [irr8, steady8] = irregularity(i, 8, a);
    const auto [irr32, steady32] = irregularity(i, 32, a);
    f[c++] = static_cast<float>(rr[i] / a);
    f[c++] = static_cast<float>(irr8);
    f[c++] = static_cast<float>(steady8);
    f[c++] = static_cast<float>(rr[i + 1] / a);
    f[c++] = static_cast<float>(irr32);
    f[c++] = static_cast<float>(steady32);
    f[c++] =
        static_cast<float>(median_rr(i >= 4 ? i - 4 : 0, std::min(nb, i + 5)) / std::max(a, 0.2));
    f[c++] = static_cast<float>(
        rr[i] /
        std::max(median_rr(i >= 40 ? i - 40 : 0, std::max<std::size_t>(1, i >= 20 ? i - 20 : 0)),
                 0.2));
    // Against the beats just before (a premature beat against its neighbours, the long-short
    // sequence before an aberrated beat), against the record's slower rhythm, and the run of
    // short intervals the beat lies in: how many beats, and how abruptly it began.
    auto ratio = [](double x, double y) { return static_cast<float>(x / std::max(y, 1e-3)); };
    const double mean8 = [&] {
      double s = 0;
      std::size_t k = 0;
      for (std::size_t j = i >= 8 ? i - 8 : 0; j < i; ++j) s += rr[j], ++k;
      return k ? s / static_cast<double>(k) : rr[i];
    }();
    f[c++] = ratio(rr[i], rr[i > 0 ? i - 1 : 0]);
    f[c++] = ratio(rr[i], mean8);
    f[c++] = ratio(rr[i], record_rr);
    f[c++] = ratio(rr[i + 1], rr[i]);
    f[c++] = ratio(rr[i], slow75[i]);
    f[c++] = ratio(rr[i], slow90[i]);
    f[c++] = ratio(rr[i] + rr[i + 1], 2 * slow75[i]);
    f[c++] = ratio(rr[i], rr[i > 1 ? i - 2 : 0]);
    {
      auto short_rr = [&](std::size_t j) { return rr[j] < 0.85 * slow75[i]; };
      std::size_t first = i, last = i;
      if (short_rr(i)) {
        while (first > 0 && i - first < 50 && short_rr(first - 1)) --first;
        while (last + 1 < nb && last - i < 50 && short_rr(last + 1)) ++last;
        f[c++] = static_cast<float>(std::min<std::size_t>(50, last - first + 1));
        f[c++] = ratio(rr[first], rr[first > 0 ? first - 1 : 0]);
      } else {
        f[c++] = 0;
        f[c++] = 1;
      }
    }
    f[c++] = ratio(rr[i], earlier[i]);

    const std::size_t blk = std::min(blocks - 1, i / kBlock);
    if (blk != t_blk) {
      t_blk = blk;
      for (int l = 0; l < 2; ++l) {
        const auto& t = templ[l][blk];
        auto [lo, hi] = std::minmax_element(t.begin() + qrs_a, t.begin() + qrs_b);
        t_pp[l] = std::max(1e-3, double{*hi - *lo});
        t_pol[l] = (*hi + *lo) / t_pp[l];
        t_width[l] = qrs_width_ms(t.data() + wid_a, static_cast<std::size_t>(wid_b - wid_a), fs);
        double s = 0, m = 0;
        for (std::int64_t k = p_a; k < p_b; ++k) m += t[static_cast<std::size_t>(k)];
        m /= static_cast<double>(p_b - p_a);
        for (std::int64_t k = p_a; k < p_b; ++k)
          s += (t[static_cast<std::size_t>(k)] - m) * (t[static_cast<std::size_t>(k)] - m);
        t_pstd[l] = std::max(1e-3, std::sqrt(s / static_cast<double>(p_b - p_a)));
      }
    }
    if (!inside(beats[i])) continue;
    // Align the beat with the dominant beat on the first lead (+-15 ms).
    std::int64_t best_shift = 0;
    double best = -2;
    for (std::int64_t s = -shift_max; s <= shift_max; ++s) {
      const float* x = &lead[0][static_cast<std::size_t>(beats[i] + s - pre + qrs_a)];
      const double r =
          correlation(x, templ[0][blk].data() + qrs_a, static_cast<std::size_t>(qrs_b - qrs_a));
      if (r > best) best = r, best_shift = s;
    }
    const std::int64_t start = beats[i] + best_shift - pre;
    for (int l = 0; l < 2; ++l) {
      const float* x = &lead[l][static_cast<std::size_t>(start)];
      const float* t = templ[l][blk].data();
      const std::size_t qn = static_cast<std::size_t>(qrs_b - qrs_a);
      auto [lo, hi] = std::minmax_element(x + qrs_a, x + qrs_b);
      const double pp = std::max(1e-3, double{*hi - *lo});
      // The beat's own baseline: the level just before its QRS window.
      double diff = 0, area = 0;
      for (std::int64_t k = qrs_a; k < qrs_b; ++k) {
        diff += std::fabs(x[k] - t[k]);
        area += std::fabs(t[k] - t[qrs_a]);
      }
      double pm = 0, ps = 0;
      for (std::int64_t k = p_a; k < p_b; ++k) pm += x[k];
      pm /= static_cast<double>(p_b - p_a);
      for (std::int64_t k = p_a; k < p_b; ++k) ps += (x[k] - pm) * (x[k] - pm);
      const double width = qrs_width_ms(x + wid_a, static_cast<std::size_t>(wid_b - wid_a), fs);
      f[c++] = static_cast<float>(correlation(x + qrs_a, t + qrs_a, qn));
      f[c++] = static_cast<float>(pp / t_pp[l]);
      f[c++] = static_cast<float>(width / std::max(1.0, t_width[l]));
      f[c++] = static_cast<float>(diff / std::max(area, 1e-3));
      f[c++] =
          static_cast<float>(correlation(x + p_a, t + p_a, static_cast<std::size_t>(p_b - p_a)));
      f[c++] = static_cast<float>(std::sqrt(ps / static_cast<double>(p_b - p_a)) / t_pstd[l]);
      f[c++] = static_cast<float>((*hi + *lo) / pp - t_pol[l]);
      for (double ms : {-60.0, -30.0, 0.0, 30.0, 60.0, 100.0}) {
        const std::int64_t k = pre + samples(ms);
        f[c++] = static_cast<float>((x[k] - x[qrs_a] - (t[k] - t[qrs_a])) / t_pp[l]);
      }
    }
    // The more different of the two leads (which lead shows an ectopic beat best varies).
    f[c++] = std::min(f[kRhythm], f[kRhythm + kPerLead]);
    f[c++] = std::max(f[kRhythm + 3], f[kRhythm + kPerLead + 3]);
    f[c++] = std::max(f[kRhythm + 2], f[kRhythm + kPerLead + 2]);
    shaped.push_back(i);
  }

  // The shape features against the record's own spread: each is divided by its lower quartile
  // over the record's beats (the dominant beats' own variation), so that the normal beats of a
  // noisy record and the ectopic beats of a clean one are not alike. Correlations count as
  // their distance from 1. The P-region features stay as they are: an ectopic atrial beat
  // differs there, and it may be a common beat of the record.
  if (shaped.empty()) return out;
  enum Kind { kKeep, kDistance, kRatio, kSigned };
  std::array<Kind, kBeatFeatureCount> kind{};
  for (std::size_t l = 0; l < 2; ++l) {
    const std::size_t b = kRhythm + l * kPerLead;
    kind[b] = kDistance;                               // correlation
    kind[b + 1] = kind[b + 2] = kind[b + 3] = kRatio;  // amplitude, width, difference
    for (std::size_t k = b + 6; k < b + kPerLead; ++k) kind[k] = kSigned;  // polarity, samples
  }
  const std::size_t both = kRhythm + 2 * kPerLead;
  kind[both] = kDistance;
  kind[both + 1] = kind[both + 2] = kRatio;
  std::vector<float> values;
  for (std::size_t k = 0; k < kBeatFeatureCount; ++k) {
    if (kind[k] == kKeep) continue;
    values.clear();
    for (std::size_t i : shaped) {
      const float v = out[i][k];
      values.push_back(kind[k] == kDistance ? 1 - v : kind[k] == kSigned ? std::fabs(v) : v);
    }
    auto q = values.begin() + static_cast<std::ptrdiff_t>(values.size() / 4);
    std::nth_element(values.begin(), q, values.end());
    const float scale = std::max(*q, kind[k] == kDistance ? 0.005f : 0.01f);
    for (std::size_t i : shaped) {
      float& v = out[i][k];
      v = (kind[k] == kDistance ? 1 - v : v) / scale;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

struct BeatModel::Impl {
  cv::Ptr<cv::ml::RTrees> forest;
  // The forest's trees flattened for voting: a split node goes to `below` when the feature is
  // at most the threshold, else to `above` (OpenCV's rule, with inverted splits folded in); a
  // leaf (feature < 0) holds its class in `below`. OpenCV's own voting costs several matrix
  // operations per tree and beat; this walks the same trees and counts the same votes.
  struct Node {
    int feature;
    float threshold;
    int below, above;
  };
  std::vector<Node> nodes;
  std::vector<int> roots;

  // False when the trees do not fit the features (a model file from elsewhere): every split on
  // a known feature, every child after its parent (so that a walk ends), every root a node.
  bool flatten() {
    nodes.clear();
    roots = forest->getRoots();
    const auto& from = forest->getNodes();
    const auto& splits = forest->getSplits();
    const auto count = static_cast<int>(from.size());
    nodes.reserve(from.size());
    for (int k = 0; k < count; ++k) {
      const auto& n = from[static_cast<std::size_t>(k)];
      if (n.split < 0) {
        nodes.push_back({-1, 0, static_cast<int>(std::lround(n.value)), 0});
        continue;
      }
      if (n.split >= static_cast<int>(splits.size())) return false;
      const auto& s = splits[static_cast<std::size_t>(n.split)];
      if (s.varIdx < 0 || s.varIdx >= static_cast<int>(kBeatFeatureCount)) return false;
      if (n.left <= k || n.right <= k || n.left >= count || n.right >= count) return false;
      nodes.push_back(
          {s.varIdx, s.c, s.inversed ? n.right : n.left, s.inversed ? n.left : n.right});
    }
    return std::all_of(roots.begin(), roots.end(), [count](int r) { return r >= 0 && r < count; });
  }
};

BeatModel::BeatModel() : impl_(std::make_unique<Impl>()) {}
BeatModel::~BeatModel() = default;
BeatModel::BeatModel(BeatModel&&) noexcept = default;
BeatModel& BeatModel::operator=(BeatModel&&) noexcept = default;

const BeatModel& BeatModel::builtin() {
  static const BeatModel model = [] {
    auto m = load(builtin_beat_model_text());
    return m.ok() ? std::move(m).value() : BeatModel{};
  }();
  return model;
}

Result<BeatModel> BeatModel::load(std::string_view text) {
  try {
    cv::FileStorage fs(std::string(text), cv::FileStorage::READ | cv::FileStorage::MEMORY |
                                              cv::FileStorage::FORMAT_YAML);
    if (!fs.isOpened()) return make_error(Errc::invalid_argument, "beat model: not a model file");
    if (static_cast<int>(fs["features"]) != static_cast<int>(kBeatFeatureCount))
      return make_error(Errc::invalid_argument, "beat model: made for other features");
    BeatModel m;
    for (const auto& r : fs["training_records"])
      m.training_records.push_back(static_cast<std::string>(r));
    if (const cv::FileNode b = fs["bias"]; b.isSeq() && b.size() == m.bias.size()) {
      for (std::size_t k = 0; k < m.bias.size(); ++k)
        m.bias[k] = static_cast<float>(b[static_cast<int>(k)]);
    }
    m.impl_->forest = cv::ml::RTrees::create();
    m.impl_->forest->read(fs["forest"]);
    if (!m.impl_->forest->isTrained())
      return make_error(Errc::invalid_argument, "beat model: no forest");
    if (!m.impl_->flatten())
      return make_error(Errc::invalid_argument, "beat model: trees do not fit the features");
    return m;
  } catch (const cv::Exception& e) {
    return make_error(Errc::invalid_argument, std::string("beat model: ") + e.what());
  }
}

std::string BeatModel::save() const {
  cv::FileStorage fs(".yml", cv::FileStorage::WRITE | cv::FileStorage::MEMORY);
  fs << "features" << static_cast<int>(kBeatFeatureCount);
  fs << "training_records"
     << "[";
  for (const auto& r : training_records) fs << r;
  fs << "]";
  fs << "bias"
     << "[";
  for (float b : bias) fs << b;
  fs << "]";
  fs << "forest"
     << "{";
  if (impl_->forest) impl_->forest->write(fs);
  fs << "}";
  return fs.releaseAndGetString();
}

Result<BeatModel> BeatModel::train(const std::vector<BeatFeatures>& features,
                                   const std::vector<BeatClass>& labels,
                                   const BeatTrainingOptions& options) {
  cv::theRNG().state = options.seed;
  std::vector<int> rows;
  std::size_t normal = 0;
  for (std::size_t i = 0; i < features.size(); ++i) {
    const int k = class_index(labels[i]);
    if (k >= kClasses) continue;
    if (k == 0 && normal++ % static_cast<std::size_t>(std::max(1, options.keep_every_nth_n)) != 0)
      continue;
    rows.push_back(static_cast<int>(i));
  }
  cv::Mat x(static_cast<int>(rows.size()), static_cast<int>(kBeatFeatureCount), CV_32F);
  cv::Mat y(static_cast<int>(rows.size()), 1, CV_32S);
  for (std::size_t r = 0; r < rows.size(); ++r) {
    const auto& f = features[static_cast<std::size_t>(rows[r])];
    std::copy(f.begin(), f.end(), x.ptr<float>(static_cast<int>(r)));
    y.at<int>(static_cast<int>(r)) = class_index(labels[static_cast<std::size_t>(rows[r])]);
  }
  BeatModel m;
  auto forest = cv::ml::RTrees::create();
  forest->setMaxDepth(options.max_depth);
  forest->setMinSampleCount(options.min_samples);
  forest->setCalculateVarImportance(false);
  forest->setActiveVarCount(0);
  forest->setTermCriteria(cv::TermCriteria(cv::TermCriteria::MAX_ITER, options.trees, 0));
  // One prior per class present in the data, in label order (OpenCV's rule).
  const double weight[kClasses] = {1.0, options.s_weight, options.v_weight, options.f_weight};
  bool present[kClasses] = {};
  for (std::size_t r = 0; r < rows.size(); ++r) present[y.at<int>(static_cast<int>(r))] = true;
  std::vector<float> priors;
  for (int k = 0; k < kClasses; ++k) {
    if (present[k]) priors.push_back(static_cast<float>(weight[k]));
  }
  if (priors.size() < 2)
    return make_error(Errc::invalid_argument, "beat model: fewer than two classes to learn");
  forest->setPriors(cv::Mat(priors, true).reshape(1, 1));
  try {
    forest->train(cv::ml::TrainData::create(x, cv::ml::ROW_SAMPLE, y));
  } catch (const cv::Exception& e) {
    return make_error(Errc::internal, std::string("beat model: ") + e.what());
  }
  m.impl_->forest = forest;
  if (!m.impl_->flatten()) return make_error(Errc::internal, "beat model: unexpected trees");
  m.bias = options.bias;
  return m;
}

std::vector<BeatModel::Shares> BeatModel::shares(const std::vector<BeatFeatures>& features) const {
  std::vector<Shares> out(features.size(), Shares{});
  const auto& nodes = impl_->nodes;
  if (impl_->roots.empty()) return out;
  // Tree by tree, so that one tree's nodes stay in cache while every beat walks it.
  std::vector<std::array<int, kClasses>> votes(features.size());
  for (int root : impl_->roots) {
    for (std::size_t r = 0; r < features.size(); ++r) {
      const BeatFeatures& f = features[r];
      const Impl::Node* n = &nodes[static_cast<std::size_t>(root)];
      while (n->feature >= 0) {
        n = &nodes[static_cast<std::size_t>(
            f[static_cast<std::size_t>(n->feature)] <= n->threshold ? n->below : n->above)];
      }
      if (n->below >= 0 && n->below < kClasses) ++votes[r][static_cast<std::size_t>(n->below)];
    }
  }
  const auto trees = static_cast<float>(impl_->roots.size());
  for (std::size_t r = 0; r < features.size(); ++r) {
    for (std::size_t k = 0; k < std::size_t{kClasses}; ++k)
      out[r][k] = static_cast<float>(votes[r][k]) / trees;
  }
  return out;
}

std::vector<BeatClass> BeatModel::classify(const std::vector<Shares>& shares) const {
  std::vector<BeatClass> out(shares.size(), BeatClass::Q);
  for (std::size_t r = 0; r < shares.size(); ++r) {
    std::size_t best = 0;
    float best_score = 0;
    for (std::size_t k = 0; k < std::size_t{kClasses}; ++k) {
      const float score = shares[r][k] * bias[k];
      if (score > best_score) best_score = score, best = k;
    }
    if (best_score > 0) out[r] = kClassOf[best];
  }
  return out;
}

std::vector<BeatClass> BeatModel::classify(const std::vector<BeatFeatures>& features) const {
  return classify(shares(features));
}

std::vector<BeatClass> classify_beats(const Record& record,
                                      const std::vector<std::int64_t>& beats) {
  return BeatModel::builtin().classify(beat_features(record, beats));
}

// ---------------------------------------------------------------------------------------------

ClassMatch& ClassMatch::operator+=(const ClassMatch& o) {
  veb_tp += o.veb_tp, veb_ref += o.veb_ref, veb_labelled += o.veb_labelled;
  sveb_tp += o.sveb_tp, sveb_ref += o.sveb_ref, sveb_labelled += o.sveb_labelled;
  for (std::size_t i = 0; i < 6; ++i)
    for (std::size_t j = 0; j < 6; ++j) confusion[i][j] += o.confusion[i][j];
  return *this;
}

namespace {

// Pairs each reference beat with the nearest unused detection within the window.
// match[i]: index of the detection paired with reference beat i, or -1.
std::vector<std::ptrdiff_t> pair_beats(const std::vector<std::int64_t>& ref,
                                       const std::vector<std::int64_t>& beats,
                                       std::int64_t window) {
  std::vector<std::ptrdiff_t> match(ref.size(), -1);
  std::vector<bool> used(beats.size(), false);
  std::size_t j = 0;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    while (j < beats.size() && beats[j] < ref[i] - window) ++j;
    std::ptrdiff_t best = -1;
    for (std::size_t k = j; k < beats.size() && beats[k] <= ref[i] + window; ++k) {
      if (used[k]) continue;
      if (best < 0 || std::llabs(beats[k] - ref[i]) <
                          std::llabs(beats[static_cast<std::size_t>(best)] - ref[i]))
        best = static_cast<std::ptrdiff_t>(k);
    }
    if (best >= 0) {
      used[static_cast<std::size_t>(best)] = true;
      match[i] = best;
    }
  }
  return match;
}

}  // namespace

std::vector<std::optional<BeatClass>> reference_classes(const std::vector<Annotation>& reference,
                                                        const std::vector<std::int64_t>& beats,
                                                        double fs) {
  std::vector<std::int64_t> ref;
  std::vector<BeatClass> cls;
  for (const Annotation& a : reference) {
    if (auto c = aami_class(a.code)) {
      ref.push_back(a.sample);
      cls.push_back(*c);
    }
  }
  std::vector<std::optional<BeatClass>> out(beats.size());
  auto match = pair_beats(ref, beats, static_cast<std::int64_t>(0.15 * fs));
  for (std::size_t i = 0; i < ref.size(); ++i) {
    if (match[i] >= 0) out[static_cast<std::size_t>(match[i])] = cls[i];
  }
  return out;
}

ClassMatch compare_classes(const std::vector<Annotation>& reference,
                           const std::vector<std::int64_t>& beats,
                           const std::vector<BeatClass>& classes, double fs, double start_s) {
  const Ec57Scope scope(reference, fs, start_s);
  auto counted = [&scope](std::int64_t s) { return scope.counted(s); };
  std::vector<std::int64_t> ref;
  std::vector<BeatClass> ref_cls;
  for (const Annotation& a : reference) {
    auto c = aami_class(a.code);
    if (c && counted(a.sample)) {
      ref.push_back(a.sample);
      ref_cls.push_back(*c);
    }
  }
  std::vector<std::int64_t> det;
  std::vector<BeatClass> det_cls;
  for (std::size_t i = 0; i < beats.size(); ++i) {
    if (counted(beats[i])) {
      det.push_back(beats[i]);
      det_cls.push_back(classes[i]);
    }
  }
  ClassMatch m;
  auto match = pair_beats(ref, det, static_cast<std::int64_t>(0.15 * fs));
  std::vector<bool> paired(det.size(), false);
  for (std::size_t i = 0; i < ref.size(); ++i) {
    const int r = class_index(ref_cls[i]);
    const int d = match[i] >= 0 ? class_index(det_cls[static_cast<std::size_t>(match[i])]) : 5;
    if (match[i] >= 0) paired[static_cast<std::size_t>(match[i])] = true;
    ++m.confusion[static_cast<std::size_t>(r)][static_cast<std::size_t>(d)];
  }
  for (std::size_t k = 0; k < det.size(); ++k) {
    if (!paired[k]) ++m.confusion[5][static_cast<std::size_t>(class_index(det_cls[k]))];
  }
  const auto& c = m.confusion;
  constexpr std::size_t N = 0, S = 1, V = 2, F = 3, Q = 4;
  m.veb_tp = c[V][V];
  for (std::size_t d = 0; d < 6; ++d) m.veb_ref += c[V][d];
  m.veb_labelled = c[N][V] + c[S][V] + c[V][V];  // not F, Q references, nor unmatched
  m.sveb_tp = c[S][S];
  for (std::size_t d = 0; d < 6; ++d) m.sveb_ref += c[S][d];
  m.sveb_labelled = c[N][S] + c[S][S] + c[V][S] + c[F][S];  // not Q references, nor unmatched
  (void)Q;
  return m;
}

bool is_paced_record(const std::vector<Annotation>& reference) {
  return std::any_of(reference.begin(), reference.end(),
                     [](const Annotation& a) { return a.code == 12 || a.code == 38; });
}

std::vector<Episode> detect_af(const std::vector<std::int64_t>& beats,
                               const std::vector<BeatClass>& classes, double fs) {
  std::vector<Episode> out;
  constexpr std::size_t kWindow = 32, kStep = 8;
  if (beats.size() < kWindow + 1 || fs <= 0) return out;
  for (std::size_t a = 0; a + kWindow < beats.size(); a += kStep) {
    // Intervals between two non-ventricular beats (an ectopic beat's coupling says nothing
    // about the atria).
    std::vector<double> rr;
    for (std::size_t i = a + 1; i <= a + kWindow; ++i) {
      if (classes[i] == BeatClass::V || classes[i - 1] == BeatClass::V) {
        rr.push_back(-1);
        continue;
      }
      rr.push_back(static_cast<double>(beats[i] - beats[i - 1]) / fs);
    }
    double diff = 0, sum = 0;
    int pairs = 0, steady = 0, n = 0;
    for (std::size_t k = 0; k < rr.size(); ++k) {
      if (rr[k] < 0) continue;
      sum += rr[k];
      ++n;
      if (k == 0 || rr[k - 1] < 0) continue;
      diff += std::fabs(rr[k] - rr[k - 1]);
      steady += std::fabs(rr[k] - rr[k - 1]) < 0.1 * rr[k - 1];
      ++pairs;
    }
    if (pairs < 16 || n == 0) continue;
    const double mean = sum / n;
    const bool af = diff / pairs / mean > 0.12 && steady < 0.4 * pairs;
    if (!af) continue;
    const Episode e{beats[a], beats[a + kWindow]};
    if (!out.empty() && e.first <= out.back().second) {
      out.back().second = std::max(out.back().second, e.second);
    } else {
      out.push_back(e);
    }
  }
  std::erase_if(
      out, [fs](const Episode& e) { return static_cast<double>(e.second - e.first) < 30 * fs; });
  return out;
}

std::vector<Episode> reference_af(const std::vector<Annotation>& reference, std::int64_t samples) {
  std::vector<Episode> out;
  std::int64_t start = -1;
  for (const Annotation& a : reference) {
    if (a.code != 28) continue;  // rhythm change
    const bool afib = a.aux.rfind("(AFIB", 0) == 0;
    if (afib && start < 0) start = a.sample;
    if (!afib && start >= 0) {
      out.emplace_back(start, a.sample);
      start = -1;
    }
  }
  if (start >= 0) out.emplace_back(start, samples);
  return out;
}

EpisodeMatch& EpisodeMatch::operator+=(const EpisodeMatch& o) {
  ref_episodes += o.ref_episodes, ref_found += o.ref_found;
  det_episodes += o.det_episodes, det_true += o.det_true;
  ref_samples += o.ref_samples, det_samples += o.det_samples;
  overlap_samples += o.overlap_samples;
  return *this;
}

EpisodeMatch compare_episodes(const std::vector<Episode>& reference,
                              const std::vector<Episode>& detected) {
  EpisodeMatch m;
  auto overlap = [](const Episode& a, const Episode& b) {
    return std::max<std::int64_t>(0, std::min(a.second, b.second) - std::max(a.first, b.first));
  };
  m.ref_episodes = static_cast<std::int64_t>(reference.size());
  m.det_episodes = static_cast<std::int64_t>(detected.size());
  for (const Episode& r : reference) {
    m.ref_samples += r.second - r.first;
    bool found = false;
    for (const Episode& d : detected) {
      const std::int64_t o = overlap(r, d);
      m.overlap_samples += o;
      found |= o > 0;
    }
    m.ref_found += found;
  }
  for (const Episode& d : detected) {
    m.det_samples += d.second - d.first;
    bool hit = false;
    for (const Episode& r : reference) hit |= overlap(r, d) > 0;
    m.det_true += hit;
  }
  return m;
}

}  // namespace yilian::ecg
