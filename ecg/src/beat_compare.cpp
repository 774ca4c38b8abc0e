#include "yilian/ecg/beat_compare.h"

#include <algorithm>
#include <cstdlib>

namespace yilian::ecg {

Ec57Scope::Ec57Scope(const std::vector<Annotation>& reference, double fs, double start_s)
    : start_(static_cast<std::int64_t>(start_s * fs)) {
  std::int64_t vf_on = -1;
  for (const Annotation& a : reference) {
    if (a.code == kVfOn) vf_on = a.sample;
    if (a.code == kVfOff && vf_on >= 0) {
      excluded_.emplace_back(vf_on, a.sample);
      vf_on = -1;
    }
  }
  if (vf_on >= 0) excluded_.emplace_back(vf_on, INT64_MAX);
}

bool Ec57Scope::counted(std::int64_t s) const {
  if (s < start_) return false;
  for (const auto& [a, b] : excluded_) {
    if (s >= a && s <= b) return false;
  }
  return true;
}

BeatMatch compare_beats(const std::vector<Annotation>& reference,
                        const std::vector<std::int64_t>& detected, double fs,
                        const CompareOptions& options) {
  const auto window = static_cast<std::int64_t>(options.window_s * fs);
  const Ec57Scope scope(reference, fs, options.start_s);
  auto counted = [&scope](std::int64_t s) { return scope.counted(s); };
  std::vector<std::int64_t> ref, test;
  for (const Annotation& a : reference) {
    if (is_beat(a.code) && counted(a.sample)) ref.push_back(a.sample);
  }
  for (std::int64_t d : detected) {
    if (counted(d)) test.push_back(d);
  }
  std::sort(test.begin(), test.end());
  BeatMatch m;
  std::size_t j = 0;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    const std::int64_t r = ref[i];
    while (j < test.size() && test[j] < r - window) {
      ++m.fp;  // too early for this and every later reference beat
      ++j;
    }
    if (j < test.size() && test[j] <= r + window) {
      // The next reference beat may be the better partner of this detection.
      if (i + 1 < ref.size() && std::llabs(ref[i + 1] - test[j]) < std::llabs(r - test[j]) &&
          !(j + 1 < test.size() && test[j + 1] <= r + window)) {
        ++m.fn;
        continue;
      }
      ++m.tp;
      ++j;
    } else {
      ++m.fn;
    }
  }
  m.fp += static_cast<std::int64_t>(test.size() - j);
  return m;
}

}  // namespace yilian::ecg
