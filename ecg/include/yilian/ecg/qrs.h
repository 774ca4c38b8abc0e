// QRS detection on one or more leads. Pure computation on samples in memory.
//
// Each lead is band-passed (5-15 Hz), differentiated, squared and integrated over 150 ms
// (Pan & Tompkins); the leads' energies are scaled to a common level and summed, so that a
// noisy or flat lead does not hide the beats the others show. Peaks of the sum are accepted
// with adaptive signal/noise levels, a 200 ms refractory period, a search back at half the
// threshold when a beat is overdue, and a T-wave test for close peaks. Each beat is placed
// at the largest band-passed deflection near the energy peak.
#pragma once

#include <cstdint>
#include <vector>

#include "yilian/ecg/record.h"

namespace yilian::ecg {

struct QrsOptions {
  double refractory_s = 0.2;
  double t_wave_window_s = 0.36;  // peaks closer than this to the last beat may be T waves
};

// Sample positions of the detected QRS complexes, ascending.
std::vector<std::int64_t> detect_qrs(const Record& record, const QrsOptions& options = {});

}  // namespace yilian::ecg
