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
  for (const Biquad& s : sections) run(x, s, false);
  for (const Biquad& s : sections) run(x, s, true);
}

double median_of(std::vector<double> v) {
  if (v.empty()) return 0;
  auto mid = v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2);
  std::nth_element(v.begin(), mid, v.end());
  return *mid;
}

}  // namespace yilian::ecg
