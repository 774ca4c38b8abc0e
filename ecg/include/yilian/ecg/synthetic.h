// Synthetic 12-lead ECGs whose intervals and ST levels are known by construction: P as a
// half sine, QRS as straight segments (Q, R, S at 10, 40 and 70 % of its width), a flat-then-
// returning ST level, T as a half sine ending at the QT; baseline wander and noise added.
// For tests with known answers and for the demo consortium's ECG cart.
#pragma once

#include <map>
#include <string>

#include "yilian/ecg/record.h"

namespace yilian::ecg {

struct LeadShape {
  double p = 0.1, q = 0.05, r = 1.0, s = 0.2, st = 0, t = 0.3;
};

struct Synthetic {
  double fs = 500, seconds = 10, rr = 1.0;
  double pr = 0.16, qrs = 0.10, qt = 0.40, p_dur = 0.10;
  double noise = 0.01, wander = 0.2;
  std::map<std::string, LeadShape> leads;  // by standard name; others get the default shape
};

Record make_ecg(const Synthetic& s, unsigned seed = 1);

}  // namespace yilian::ecg
