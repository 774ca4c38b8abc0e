// ANSI/AAMI EC57 beat-by-beat comparison of detected beats with reference annotations:
// a detection within the match window (150 ms) of a reference beat is a true positive,
// each pairing used once; comparison starts after the first 5 minutes; ventricular flutter
// and fibrillation episodes (between their on and off annotations) are left out.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "yilian/ecg/record.h"

namespace yilian::ecg {

struct BeatMatch {
  std::int64_t tp = 0, fn = 0, fp = 0;
  double sensitivity() const { return tp + fn ? 100.0 * tp / (tp + fn) : 100.0; }
  double positive_predictivity() const { return tp + fp ? 100.0 * tp / (tp + fp) : 100.0; }
  BeatMatch& operator+=(const BeatMatch& o) {
    tp += o.tp;
    fn += o.fn;
    fp += o.fp;
    return *this;
  }
};

// Which annotated samples EC57 counts: from `start_s` into the record, outside ventricular
// flutter/fibrillation episodes (between their on and off annotations).
class Ec57Scope {
 public:
  Ec57Scope(const std::vector<Annotation>& reference, double sampling_hz, double start_s);
  bool counted(std::int64_t sample) const;

 private:
  std::int64_t start_ = 0;
  std::vector<std::pair<std::int64_t, std::int64_t>> excluded_;
};

struct CompareOptions {
  double window_s = 0.15;
  double start_s = 300;
};

BeatMatch compare_beats(const std::vector<Annotation>& reference,
                        const std::vector<std::int64_t>& detected, double sampling_hz,
                        const CompareOptions& options = {});

}  // namespace yilian::ecg
