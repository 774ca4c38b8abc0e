// Synthetic 12-lead ECGs whose intervals and ST levels are known by construction: P as a
// half sine, QRS as straight segments (Q, R, S at 10, 40 and 70 % of its width), a flat-then-
// returning ST level, T as a half sine ending at the QT; baseline wander and noise added.
// Rhythms can be given beat by beat (RR sequence, ectopic beats), with atrial flutter waves
// or pacing spikes. For tests with known answers and for the demo consortium's ECG cart.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "yilian/ecg/record.h"

namespace yilian::ecg {

struct LeadShape {
  double p = 0.1, q = 0.05, r = 1.0, s = 0.2, st = 0, t = 0.3;
  // What the lead's last 40 % of the QRS does (bundle branch block shapes): 0 none; > 0 a
  // terminal R' of this height; < 0 a terminal S of this depth. Only for wide QRS.
  double terminal = 0;
};

struct Synthetic {
  double fs = 500, seconds = 10, rr = 1.0;
  double pr = 0.16, qrs = 0.10, qt = 0.40, p_dur = 0.10;
  double noise = 0.01, wander = 0.2;
  std::map<std::string, LeadShape> leads;  // by standard name; others get the default shape
  // Beat by beat, used cyclically when not empty: the RR interval before each next beat, and
  // its kind ('N' normal; 'V' ventricular: early, wide, no P, discordant T; 'S' atrial
  // premature: early, narrow, an inverted P).
  std::vector<double> rr_sequence;
  std::string beat_kinds;
  bool p_waves = true;    // false: no P waves (atrial fibrillation, junctional rhythm)
  double flutter_hz = 0;  // > 0: atrial flutter waves (saw-tooth, 0.2 mV) instead of P waves
  bool paced = false;     // a pacing spike (2 ms, 3 mV) before every QRS
};

Record make_ecg(const Synthetic& s, unsigned seed = 1);

}  // namespace yilian::ecg
