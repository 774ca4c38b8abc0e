// The zero-phase filter's fused paths (two sections in one pass, two channels at once) give
// exactly what running the sections one after another gives.
#include "filters.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace yilian::ecg {
namespace {

std::vector<float> signal(std::size_t n, double phase) {
  std::vector<float> x(n);
  for (std::size_t k = 0; k < n; ++k) {
    const double t = static_cast<double>(k) / 360;
    x[k] = static_cast<float>(0.8 + std::sin(2 * 3.14159 * 1.2 * t + phase) +
                              0.3 * std::sin(2 * 3.14159 * 17 * t) + 0.05 * std::cos(k * 0.7));
  }
  return x;
}

TEST(EcgFilters, two_sections_in_one_pass_equal_the_sections_run_in_turn) {
  const std::vector<Biquad> band{Biquad::high_pass(0.5, 360), Biquad::low_pass(40, 360)};
  // A third section that passes its input unchanged makes filtfilt run the sections in turn.
  std::vector<Biquad> in_turn = band;
  in_turn.push_back(Biquad{});
  auto fused = signal(5000, 0), reference = fused;
  filtfilt(fused, band);
  filtfilt(reference, in_turn);
  ASSERT_EQ(fused.size(), reference.size());
  for (std::size_t k = 0; k < fused.size(); ++k) ASSERT_EQ(fused[k], reference[k]) << k;
  // And it filters: the 17 Hz part passes, the 0.8 mV offset does not.
  double mean = 0;
  for (float v : fused) mean += v;
  EXPECT_LT(std::fabs(mean / 5000), 0.05);
}

TEST(EcgFilters, two_channels_at_once_equal_one_at_a_time) {
  const std::vector<Biquad> band{Biquad::high_pass(5, 500), Biquad::low_pass(15, 500)};
  auto a = signal(3001, 0), b = signal(3001, 1.3);
  auto a1 = a, b1 = b;
  filtfilt(a, b, band);
  filtfilt(a1, band);
  filtfilt(b1, band);
  EXPECT_EQ(a, a1);
  EXPECT_EQ(b, b1);
  EXPECT_NE(a, b);
  // Channels of different lengths are filtered one by one.
  auto c = signal(100, 0), d = signal(90, 0), c1 = c, d1 = d;
  filtfilt(c, d, band);
  filtfilt(c1, band);
  filtfilt(d1, band);
  EXPECT_EQ(c, c1);
  EXPECT_EQ(d, d1);
}

}  // namespace
}  // namespace yilian::ecg
