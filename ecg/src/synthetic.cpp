#include "yilian/ecg/synthetic.h"

#include <cmath>
#include <numbers>
#include <random>

namespace yilian::ecg {
namespace {

const char* kLeads[] = {"I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"};

}  // namespace

Record make_ecg(const Synthetic& s, unsigned seed) {
  Record r;
  r.sampling_hz = s.fs;
  const auto n = static_cast<std::size_t>(s.fs * s.seconds);
  std::mt19937 rng(seed);
  std::normal_distribution<double> noise(0, s.noise);
  for (const char* name : kLeads) {
    LeadShape sh = s.leads.count(name) ? s.leads.at(name) : LeadShape{};
    Lead lead;
    lead.name = name;
    lead.mv.resize(n);
    for (std::size_t k = 0; k < n; ++k) {
      const double t = static_cast<double>(k) / s.fs;
      double v = s.wander * std::sin(2 * std::numbers::pi * 0.3 * t + 1.0);
      // QRS onsets at 0.6 s + k RR.
      const double q0 = 0.6 + std::floor((t - 0.6 + s.rr / 2) / s.rr) * s.rr;
      const double x = t - q0;  // time from this beat's QRS onset
      const double p_on = -s.pr;
      if (x >= p_on && x < p_on + s.p_dur)
        v += sh.p * std::sin(std::numbers::pi * (x - p_on) / s.p_dur);
      auto lerp = [](double a, double b, double f) { return a + (b - a) * f; };
      // Q, R and S at 10 %, 40 % and 70 % of the QRS: a wide QRS is a slowed one.
      const double j = s.qrs, tq = 0.1 * j, tr = 0.4 * j, ts = 0.7 * j;
      if (x >= 0 && x < tq)
        v += lerp(0, -sh.q, x / tq);
      else if (x >= tq && x < tr)
        v += lerp(-sh.q, sh.r, (x - tq) / (tr - tq));
      else if (x >= tr && x < ts)
        v += lerp(sh.r, -sh.s, (x - tr) / (ts - tr));
      else if (x >= ts && x < j)
        v += lerp(-sh.s, sh.st, (x - ts) / (j - ts));
      const double t_end = s.qt, t_on = s.qt - 0.16;
      if (x >= j && x < t_end) v += sh.st * (1 - (x - j) / (t_end - j));
      if (x >= t_on && x < t_end)
        v += sh.t * std::sin(std::numbers::pi * (x - t_on) / (t_end - t_on));
      lead.mv[k] = static_cast<float>(v + noise(rng));
    }
    r.leads.push_back(std::move(lead));
  }
  return r;
}

}  // namespace yilian::ecg
