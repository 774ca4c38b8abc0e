#include "yilian/ecg/qrs.h"

#include <algorithm>
#include <cmath>

#include "filters.h"

namespace yilian::ecg {
namespace {

// A lead's band-passed signal and its integrated energy.
struct LeadEnergy {
  std::vector<float> band;    // 5-15 Hz, zero phase
  std::vector<float> energy;  // derivative squared, integrated over 150 ms (centred)
  double scale = 1;           // typical QRS energy of this lead
  double amplitude = 0;       // typical largest band-passed deflection per second, mV
};

// `e.band` holds the lead band-passed 5-15 Hz; fills in the rest.
void lead_energy(LeadEnergy& e, double fs) {
  const std::size_t n = e.band.size();
  // The derivative squared, computed where the running sum takes it in and again where it
  // leaves (cheaper than another record-long buffer).
  const float* b = e.band.data();
  auto sq = [b, n](std::size_t k) {
    if (k < 2 || k + 2 >= n) return 0.f;
    const float d = (2 * b[k + 1] + b[k + 2] - b[k - 2] - 2 * b[k - 1]) * 0.125f;
    return d * d;
  };
  const std::size_t w = std::max<std::size_t>(1, static_cast<std::size_t>(0.15 * fs));
  const std::size_t half = w / 2;
  e.energy.assign(n, 0.f);
  double sum = 0;
  for (std::size_t k = 0; k < n + half; ++k) {
    if (k < n) sum += sq(k);
    if (k >= w) sum -= sq(k - w);
    if (k >= half) e.energy[k - half] = static_cast<float>(sum / static_cast<double>(w));
  }
  // Typical QRS energy and deflection: the medians of the per-second maxima.
  const std::size_t sec = static_cast<std::size_t>(fs);
  std::vector<float> maxima, deflections;
  for (std::size_t a = 0; a + sec <= n; a += sec) {
    float m = 0, d = 0;
    for (std::size_t k = a; k < a + sec; ++k) {
      m = std::max(m, e.energy[k]);
      d = std::max(d, std::fabs(e.band[k]));
    }
    maxima.push_back(m);
    deflections.push_back(d);
  }
  auto median = [](std::vector<float>& v) {
    if (v.empty()) return 0.0;
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
    return static_cast<double>(v[v.size() / 2]);
  };
  e.scale = median(maxima);
  e.amplitude = median(deflections);
  if (!(e.scale > 0)) e.scale = 1;
}

}  // namespace

std::vector<std::int64_t> detect_qrs(const Record& record, const QrsOptions& options) {
  std::vector<std::int64_t> beats;
  const double fs = record.sampling_hz;
  const std::size_t n = record.samples();
  if (n < static_cast<std::size_t>(2 * fs) || record.leads.empty()) return beats;

  // Leads whose complexes would be under 50 uV (lead off, flat line) show no beats.
  constexpr double kMinDeflectionMv = 0.05;
  std::vector<LeadEnergy> leads(record.leads.size());
  const std::vector<Biquad> band{Biquad::high_pass(5, fs), Biquad::low_pass(15, fs)};
  for (std::size_t i = 0; i < leads.size(); i += 2) {  // two leads at a time through the filter
    leads[i].band = record.leads[i].mv;
    if (i + 1 < leads.size()) {
      leads[i + 1].band = record.leads[i + 1].mv;
      filtfilt(leads[i].band, leads[i + 1].band, band);
    } else {
      filtfilt(leads[i].band, band);
    }
  }
  for (LeadEnergy& e : leads) lead_energy(e, fs);
  std::erase_if(leads, [](const LeadEnergy& e) { return !(e.amplitude >= kMinDeflectionMv); });
  if (leads.empty()) return beats;
  // Each lead's energy in units of its typical QRS, clipped, and weighted down where the lead
  // is noisy: an artifact burst on one lead must not outweigh the beats of the others or set
  // the levels for minutes. Noise is judged per second by the lead's mean energy against its
  // usual mean (over the second and its neighbours).
  constexpr float kClip = 8.f;
  const std::size_t block = static_cast<std::size_t>(fs);
  const std::size_t blocks = (n + block - 1) / block;
  std::vector<std::vector<float>> weights;
  for (const LeadEnergy& l : leads) {
    const float inv = static_cast<float>(1.0 / l.scale);
    std::vector<double> mean(blocks, 0.0);
    for (std::size_t k = 0; k < n; ++k) mean[k / block] += l.energy[k] * inv;
    for (double& m : mean) m /= static_cast<double>(block);
    std::vector<double> sorted = mean;
    std::nth_element(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(blocks / 2),
                     sorted.end());
    const double usual = std::max(sorted[blocks / 2], 1e-9);
    // Per second (with its neighbours): how far the lead's energy stands above its usual
    // level (noise bursts), and how peaked it is (a lead showing beats has energy peaks far
    // above its median; a flat, noisy lead does not).
    std::vector<float> block_median(blocks), block_max(blocks), scratch;
    for (std::size_t b = 0; b < blocks; ++b) {
      const auto from = l.energy.begin() + static_cast<std::ptrdiff_t>(b * block);
      const auto to = l.energy.begin() + static_cast<std::ptrdiff_t>(std::min(n, (b + 1) * block));
      scratch.assign(from, to);
      const auto mid = scratch.begin() + static_cast<std::ptrdiff_t>(scratch.size() / 2);
      std::nth_element(scratch.begin(), mid, scratch.end());
      block_median[b] = *mid;
      block_max[b] = *std::max_element(mid, scratch.end());
    }
    std::vector<float> weight(blocks, 1.f);
    for (std::size_t b = 0; b < blocks; ++b) {
      const std::size_t lo = b > 0 ? b - 1 : 0, hi = std::min(blocks - 1, b + 1);
      double m = 0, peak = 0;
      for (std::size_t c = lo; c <= hi; ++c) {
        m = std::max(m, mean[c]);
        peak = std::max(peak, static_cast<double>(block_max[c]));
      }
      // The median of this block's and its neighbours' medians (two or three of them).
      const float first = block_median[lo], last = block_median[hi];
      const float middle = hi - lo == 2 ? block_median[lo + 1] : last;
      const double median =
          hi - lo == 2 ? std::max(std::min(first, middle), std::min(std::max(first, middle), last))
                       : std::max(first, last);
      const double ratio = m / usual;
      double w = ratio > 2 ? 2 / ratio : 1.0;
      const double peakiness = peak / (median + 1e-12 * l.scale);
      w *= std::clamp((peakiness - 5) / 20, 0.05, 1.0);
      weight[b] = static_cast<float>(w);
    }
    // A second next to a noisy one is as suspect as it (bursts do not respect seconds).
    std::vector<float> guarded = weight;
    for (std::size_t b = 0; b < blocks; ++b) {
      if (b > 0) guarded[b] = std::min(guarded[b], weight[b - 1]);
      if (b + 1 < blocks) guarded[b] = std::min(guarded[b], weight[b + 1]);
    }
    weights.push_back(std::move(guarded));
  }
  // Relative to the best lead of each second, so the sum keeps its scale where every lead is
  // equally poor (fast rhythms, which lower every lead's peakiness).
  for (std::size_t b = 0; b < blocks; ++b) {
    float best = 0;
    for (const auto& w : weights) best = std::max(best, w[b]);
    for (auto& w : weights) w[b] /= best;
  }
  // The sums go into the first lead's buffers (each sample is read before it is written).
  std::vector<float>& energy = leads[0].energy;
  std::vector<float>& amplitude = leads[0].band;
  for (std::size_t i = 0; i < leads.size(); ++i) {
    const LeadEnergy& l = leads[i];
    const std::vector<float>& weight = weights[i];
    const float inv = static_cast<float>(1.0 / l.scale);
    const float amp = static_cast<float>(1.0 / std::sqrt(l.scale));
    for (std::size_t k = 0; k < n; ++k) {
      const float w = weight[k / block];
      const float e = w * std::min(l.energy[k] * inv, kClip);
      const float a = w * std::fabs(l.band[k]) * amp;
      energy[k] = i == 0 ? e : energy[k] + e;
      amplitude[k] = i == 0 ? a : amplitude[k] + a;
    }
  }

  // Candidate peaks: local maxima of the energy, the largest within each refractory span.
  const auto refractory = static_cast<std::int64_t>(options.refractory_s * fs);
  std::vector<std::int64_t> peaks;
  for (std::size_t k = 1; k + 1 < n; ++k) {
    if (energy[k] < energy[k - 1] || energy[k] <= energy[k + 1]) continue;
    const auto p = static_cast<std::int64_t>(k);
    if (!peaks.empty() && p - peaks.back() < refractory) {
      if (energy[k] > energy[static_cast<std::size_t>(peaks.back())]) peaks.back() = p;
      continue;
    }
    peaks.push_back(p);
  }

  // The slope of the band-passed signal around a peak (T waves are slower than QRS).
  const auto near = static_cast<std::int64_t>(0.075 * fs);
  auto slope = [&](std::int64_t p) {
    float best = 0;
    const std::int64_t a = std::max<std::int64_t>(1, p - near);
    const std::int64_t b = std::min<std::int64_t>(static_cast<std::int64_t>(n) - 1, p + near);
    for (std::int64_t k = a; k < b; ++k) {
      best = std::max(best, std::fabs(amplitude[static_cast<std::size_t>(k + 1)] -
                                      amplitude[static_cast<std::size_t>(k - 1)]));
    }
    return best;
  };
  // The fiducial point: the largest band-passed deflection near the energy peak.
  auto fiducial = [&](std::int64_t p) {
    std::int64_t best = p;
    const std::int64_t a = std::max<std::int64_t>(0, p - near);
    const std::int64_t b = std::min<std::int64_t>(static_cast<std::int64_t>(n) - 1, p + near);
    for (std::int64_t k = a; k <= b; ++k) {
      if (amplitude[static_cast<std::size_t>(k)] > amplitude[static_cast<std::size_t>(best)])
        best = k;
    }
    return best;
  };

  // Adaptive levels, initialised on the first two seconds.
  const auto init = static_cast<std::size_t>(2 * fs);
  double spk = 0, npk = 0;
  for (std::size_t k = 0; k < init; ++k) {
    spk = std::max(spk, static_cast<double>(energy[k]));
    npk += energy[k];
  }
  spk *= 0.25;
  npk = 0.5 * npk / static_cast<double>(init);
  double rr = fs;  // running mean of the last 8 RR intervals
  std::vector<double> rrs;
  std::int64_t last = -refractory;
  std::int64_t decayed = -1;  // when the signal level was last let fall
  double last_slope = 0;
  std::size_t since = 0;  // first candidate after the last beat
  const auto t_window = static_cast<std::int64_t>(options.t_wave_window_s * fs);

  auto accept = [&](std::int64_t p, bool searched) {
    // One large complex (or artifact) moves the signal level by a bounded step.
    const double e = std::min(static_cast<double>(energy[static_cast<std::size_t>(p)]), 3 * spk);
    spk = searched ? 0.25 * e + 0.75 * spk : 0.125 * e + 0.875 * spk;
    if (last >= 0 && !beats.empty()) {
      rrs.push_back(static_cast<double>(p - last));
      if (rrs.size() > 8) rrs.erase(rrs.begin());
      double sum = 0;
      for (double v : rrs) sum += v;
      rr = sum / static_cast<double>(rrs.size());
    }
    last = p;
    last_slope = slope(p);
    beats.push_back(p);
  };

  // The detection level between noise and signal peaks, and the search back after 1.5 mean
  // RR intervals: Hamilton and Tompkins' values (IEEE TBME 1986).
  constexpr double kLevel = 0.3125;
  for (std::size_t i = 0; i < peaks.size(); ++i) {
    const std::int64_t p = peaks[i];
    // Search back: a beat is overdue, take the largest candidate if it is above half the
    // threshold — or, below that, if it towers over everything else in the overdue interval
    // (4x the next candidate) and stands clear of the noise level: aberrated premature beats
    // carry little 5-15 Hz energy.
    if (!beats.empty() && static_cast<double>(p - last) > 1.5 * rr) {
      const double thr2 = 0.5 * (npk + kLevel * (spk - npk));
      const double thr3 = npk + 0.05 * (spk - npk);
      std::int64_t top = -1;
      double top_e = 0, second = 0;
      for (std::size_t j = since; j < i; ++j) {
        const std::int64_t q = peaks[j];
        if (q - last < refractory) continue;
        const double eq = energy[static_cast<std::size_t>(q)];
        if (top < 0 || eq > top_e) {
          if (top >= 0) second = std::max(second, top_e);
          top = q;
          top_e = eq;
        } else {
          second = std::max(second, eq);
        }
      }
      std::int64_t best = -1;
      if (top >= 0 && top_e > thr2) {
        best = top;
      } else if (top >= 0 && top_e > thr3 && top_e >= 4 * second &&
                 !(top - last < t_window && slope(top) < 0.5 * last_slope)) {
        best = top;
      }
      if (best >= 0) {
        accept(best, true);
        since = i;
      } else if (static_cast<double>(p - std::max(last, decayed)) > std::max(2 * fs, 2.5 * rr)) {
        // Nothing even at half the threshold for this long: the level is stale (a burst of
        // noise, a change of lead contact); let it fall so detection resumes.
        spk = std::max(0.5 * spk, npk);
        decayed = p;
      }
    }
    if (p - last < refractory) continue;
    const double e = energy[static_cast<std::size_t>(p)];
    const double thr1 = npk + kLevel * (spk - npk);
    bool qrs = e > thr1;
    if (qrs && !beats.empty() && p - last < t_window && slope(p) < 0.5 * last_slope) {
      qrs = false;  // a T wave
    }
    if (qrs) {
      accept(p, false);
      since = i + 1;
    } else {
      npk = 0.125 * e + 0.875 * npk;
    }
  }
  for (std::int64_t& b : beats) b = fiducial(b);
  return beats;
}

}  // namespace yilian::ecg
