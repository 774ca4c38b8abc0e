#include "filters.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace yilian::ecg {
namespace {

struct Cookbook {
  double cosw, alpha;
  Cookbook(double hz, double fs, double q) {
    const double w = 2 * std::numbers::pi * hz / fs;
    cosw = std::cos(w);
    alpha = std::sin(w) / (2 * q);
  }
};

Biquad normalise(double b0, double b1, double b2, double a0, double a1, double a2) {
  return Biquad{b0 / a0, b1 / a0, b2 / a0, a1 / a0, a2 / a0};
}

void run(std::vector<float>& x, const Biquad& f, bool backward) {
  const std::size_t n = x.size();
  if (n == 0) return;
  // Steady state for a constant input equal to the first sample.
  const double first = backward ? x[n - 1] : x[0];
  const double dc_gain = (f.b0 + f.b1 + f.b2) / (1 + f.a1 + f.a2);
  const double y_ss = first * dc_gain;
  double z1 = y_ss - f.b0 * first;  // transposed direct form II states
  double z2 = f.b2 * first - f.a2 * y_ss;
  for (std::size_t k = 0; k < n; ++k) {
    float& v = x[backward ? n - 1 - k : k];
    const double in = v;
    const double out = f.b0 * in + z1;
    z1 = f.b1 * in - f.a1 * out + z2;
    z2 = f.b2 * in - f.a2 * out;
    v = static_cast<float>(out);
  }
}

// Two sections in one pass: the same arithmetic as two runs (the value between them rounded to
// float, the second section's steady state from the first's first output), but the second
// section's work on a sample overlaps the first's on the next, and the data is read once.
// Two channels of equal length go through together (independent chains, twice the overlap).
struct PairState {
  double f1, f2, g1, g2;
};

PairState start_pair(const Biquad& f, const Biquad& g, double first) {
  auto start = [](const Biquad& q, double in, double& z1, double& z2) {
    const double y_ss = in * ((q.b0 + q.b1 + q.b2) / (1 + q.a1 + q.a2));
    z1 = y_ss - q.b0 * in;
    z2 = q.b2 * in - q.a2 * y_ss;
  };
  PairState s{};
  start(f, first, s.f1, s.f2);
  start(g, static_cast<float>(f.b0 * first + s.f1), s.g1, s.g2);
  return s;
}

inline void step_pair(const Biquad& f, const Biquad& g, PairState& s, float& v) {
  const double in = v;
  const double out = f.b0 * in + s.f1;
  s.f1 = f.b1 * in - f.a1 * out + s.f2;
  s.f2 = f.b2 * in - f.a2 * out;
  const double in2 = static_cast<float>(out);
  const double out2 = g.b0 * in2 + s.g1;
  s.g1 = g.b1 * in2 - g.a1 * out2 + s.g2;
  s.g2 = g.b2 * in2 - g.a2 * out2;
  v = static_cast<float>(out2);
}

void run_pair(std::vector<float>& x, std::vector<float>* y, const Biquad& f, const Biquad& g,
              bool backward) {
  const std::size_t n = x.size();
  if (n == 0) return;
  const std::ptrdiff_t step = backward ? -1 : 1;
  const std::size_t at = backward ? n - 1 : 0;
  PairState sx = start_pair(f, g, x[at]);
  float* v = x.data() + at;
  if (y == nullptr) {
    for (std::size_t k = 0; k < n; ++k, v += step) step_pair(f, g, sx, *v);
    return;
  }
  PairState sy = start_pair(f, g, (*y)[at]);
  float* u = y->data() + at;
  for (std::size_t k = 0; k < n; ++k, v += step, u += step) {
    step_pair(f, g, sx, *v);
    step_pair(f, g, sy, *u);
  }
}

}  // namespace

Biquad Biquad::low_pass(double hz, double fs, double q) {
  Cookbook c(hz, fs, q);
  return normalise((1 - c.cosw) / 2, 1 - c.cosw, (1 - c.cosw) / 2, 1 + c.alpha, -2 * c.cosw,
                   1 - c.alpha);
}

Biquad Biquad::high_pass(double hz, double fs, double q) {
  Cookbook c(hz, fs, q);
  return normalise((1 + c.cosw) / 2, -(1 + c.cosw), (1 + c.cosw) / 2, 1 + c.alpha, -2 * c.cosw,
                   1 - c.alpha);
}

Biquad Biquad::notch(double hz, double fs, double q) {
  Cookbook c(hz, fs, q);
  return normalise(1, -2 * c.cosw, 1, 1 + c.alpha, -2 * c.cosw, 1 - c.alpha);
}

void filtfilt(std::vector<float>& x, const std::vector<Biquad>& sections) {
  if (sections.size() == 2) {
    run_pair(x, nullptr, sections[0], sections[1], false);
    run_pair(x, nullptr, sections[0], sections[1], true);
    return;
  }
  for (const Biquad& s : sections) run(x, s, false);
  for (const Biquad& s : sections) run(x, s, true);
}

void filtfilt(std::vector<float>& x, std::vector<float>& y, const std::vector<Biquad>& sections) {
  if (sections.size() != 2 || x.size() != y.size()) {
    filtfilt(x, sections);
    filtfilt(y, sections);
    return;
  }
  run_pair(x, &y, sections[0], sections[1], false);
  run_pair(x, &y, sections[0], sections[1], true);
}

double median_of(std::vector<double> v) {
  if (v.empty()) return 0;
  auto mid = v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2);
  std::nth_element(v.begin(), mid, v.end());
  return *mid;
}

double quantile_of(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  auto at = v.begin() + static_cast<std::ptrdiff_t>(std::clamp(q, 0.0, 1.0) *
                                                    static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), at, v.end());
  return *at;
}

}  // namespace yilian::ecg
