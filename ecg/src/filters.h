// Digital filters for ECG samples (no I/O): biquad sections designed by the bilinear
// transform (RBJ cookbook), run forward and backward for zero phase on complete records.
#pragma once

#include <vector>

namespace yilian::ecg {

struct Biquad {
  double b0 = 1, b1 = 0, b2 = 0, a1 = 0, a2 = 0;
  static Biquad low_pass(double cutoff_hz, double fs, double q = 0.7071067811865476);
  static Biquad high_pass(double cutoff_hz, double fs, double q = 0.7071067811865476);
  static Biquad notch(double hz, double fs, double q = 30);
};

// Runs the sections in order over `x`, forward then backward (zero phase), in place. The
// filter starts from the first sample's steady state so a DC offset does not ring.
void filtfilt(std::vector<float>& x, const std::vector<Biquad>& sections);
// The same for two channels at once (each gets exactly what the one-channel call gives it).
void filtfilt(std::vector<float>& x, std::vector<float>& y, const std::vector<Biquad>& sections);

// The middle element (the upper one of an even count); 0 for none.
double median_of(std::vector<double> v);
// The element at q (0..1) of the sorted values, rounded down; 0 for none.
double quantile_of(std::vector<double> v, double q);

}  // namespace yilian::ecg
