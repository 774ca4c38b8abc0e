// An ECG in memory, whatever format it came from: leads of equally sampled values in
// millivolts, and beat annotations. Plain data; no I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace yilian::ecg {

struct Lead {
  Lead() = default;
  Lead(std::string n, std::vector<float> samples) : name(std::move(n)), mv(std::move(samples)) {}
  std::string name;       // "I", "II", "V1", "MLII", ...
  std::vector<float> mv;  // samples in millivolts
  // The acquisition device's filters as the file records them (DICOM channel definitions);
  // absent when the format does not say. A notch of 0 ("none") is kept absent.
  std::optional<double> filter_low_hz, filter_high_hz, notch_hz;
};

// Who the ECG belongs to, as far as the thresholds need it.
struct Patient {
  std::optional<int> age;
  char sex = 'U';  // 'M', 'F' or 'U' (unknown)
};

struct Record {
  std::string id;
  Patient patient;  // from the file when it says (DICOM: Patient's Sex and Age)
  double sampling_hz = 0;
  std::vector<Lead> leads;
  std::size_t samples() const { return leads.empty() ? 0 : leads.front().mv.size(); }
};

// A WFDB-style annotation: its sample and its MIT code (1 NORMAL, 5 PVC, 12 PACE, 28 RHYTHM,
// 32/33 ventricular flutter on/off, ...; see is_beat()).
struct Annotation {
  std::int64_t sample = 0;
  int code = 0;
  std::string aux;  // e.g. "(AFIB" for rhythm changes
};

// Annotation codes that mark a QRS complex (the WFDB isqrs table).
bool is_beat(int code);
char code_symbol(int code);  // 'N', 'V', '/', ...; '?' for codes without one

inline constexpr int kNormalBeat = 1;
inline constexpr int kVfOn = 32;
inline constexpr int kVfOff = 33;

}  // namespace yilian::ecg
