#include "yilian/ecg/synthetic.h"

#include <cmath>
#include <numbers>
#include <random>

namespace yilian::ecg {
namespace {

const char* kLeads[] = {"I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"};

struct Beat {
  double onset;  // QRS onset, s
  char kind;
};

double lerp(double a, double b, double f) { return a + (b - a) * f; }

// One beat's contribution at `x` seconds from its QRS onset.
double beat_at(const Synthetic& s, const LeadShape& sh, const Beat& b, double x) {
  double v = 0;
  const bool ventricular = b.kind == 'V';
  if (s.p_waves && s.flutter_hz <= 0 && !ventricular) {
    const double p_on = -s.pr;
    const double p = b.kind == 'S' ? -sh.p : sh.p;
    if (x >= p_on && x < p_on + s.p_dur) v += p * std::sin(std::numbers::pi * (x - p_on) / s.p_dur);
  }
  if (s.paced && x >= -0.004 && x < -0.002) v += 3.0;
  // Q, R and S at 10 %, 40 % and 70 % of the QRS: a wide QRS is a slowed one. A ventricular
  // beat is wide (160 ms), larger and of the opposite main direction.
  const double j = ventricular ? 0.16 : s.qrs;
  const double r = ventricular ? -1.4 * sh.r : sh.r, sd = ventricular ? -0.5 * sh.s : sh.s;
  const double tq = 0.1 * j, tr = 0.4 * j, ts = 0.7 * j;
  const double term = ventricular ? 0 : sh.terminal;
  if (x >= 0 && x < tq) {
    v += lerp(0, -sh.q, x / tq);
  } else if (x >= tq && x < tr) {
    v += lerp(-sh.q, r, (x - tq) / (tr - tq));
  } else if (x >= tr && x < ts) {
    v += lerp(r, term != 0 ? 0 : -sd, (x - tr) / (ts - tr));
  } else if (x >= ts && x < j) {
    if (term != 0) {  // a terminal R' or S: up (down) and back over the last 30 %
      const double f = (x - ts) / (j - ts);
      v += f < 0.5 ? lerp(0, term, 2 * f) : lerp(term, sh.st, 2 * f - 1);
    } else {
      v += lerp(-sd, sh.st, (x - ts) / (j - ts));
    }
  }
  const double qt = ventricular ? s.qt + 0.04 : s.qt;
  const double t_amp = ventricular ? -1.5 * sh.t : sh.t;
  const double t_end = qt, t_on = qt - 0.16;
  if (x >= j && x < t_end) v += sh.st * (1 - (x - j) / (t_end - j));
  if (x >= t_on && x < t_end) v += t_amp * std::sin(std::numbers::pi * (x - t_on) / (t_end - t_on));
  return v;
}

}  // namespace

Record make_ecg(const Synthetic& s, unsigned seed) {
  Record r;
  r.sampling_hz = s.fs;
  const auto n = static_cast<std::size_t>(s.fs * s.seconds);
  std::vector<Beat> beats;
  for (double t = 0.6; t < s.seconds + 1;) {
    const std::size_t i = beats.size();
    beats.push_back({t, s.beat_kinds.empty() ? 'N' : s.beat_kinds[i % s.beat_kinds.size()]});
    t += s.rr_sequence.empty() ? s.rr : s.rr_sequence[i % s.rr_sequence.size()];
  }
  std::mt19937 rng(seed);
  std::normal_distribution<double> noise(0, s.noise);
  for (const char* name : kLeads) {
    LeadShape sh = s.leads.count(name) ? s.leads.at(name) : LeadShape{};
    Lead lead;
    lead.name = name;
    lead.mv.resize(n);
    std::size_t first = 0;  // the first beat that can still reach the current sample
    for (std::size_t k = 0; k < n; ++k) {
      const double t = static_cast<double>(k) / s.fs;
      double v = s.wander * std::sin(2 * std::numbers::pi * 0.3 * t + 1.0);
      while (first < beats.size() && beats[first].onset + 0.7 < t) ++first;
      for (std::size_t b = first; b < beats.size() && beats[b].onset - s.pr - 0.01 <= t; ++b)
        v += beat_at(s, sh, beats[b], t - beats[b].onset);
      if (s.flutter_hz > 0) {  // saw-tooth: a slow fall and a quick rise, 0.2 mV, P polarity
        const double phase = std::fmod(t * s.flutter_hz, 1.0);
        const double saw = phase < 0.8 ? 0.5 - phase / 0.8 : -0.5 + (phase - 0.8) / 0.2;
        v += 0.4 * saw * (sh.p >= 0 ? 1 : -1);
      }
      lead.mv[k] = static_cast<float>(v + noise(rng));
    }
    r.leads.push_back(std::move(lead));
  }
  return r;
}

}  // namespace yilian::ecg
