// `yilian ecg ...` commands.
#pragma once

#include <string>

namespace yilian::app {

// ANSI/AAMI EC57 beat-by-beat evaluation of the QRS detector on every WFDB record of `db`
// that has reference annotations (`.atr`): one line per record, then the gross totals.
int ecg_eval(const std::string& db);

// Draws one ECG (WFDB header or DICOM waveform) as a PNG at 25 mm/s, 10 mm/mV.
int ecg_render(const std::string& file, const std::string& out, const std::string& layout);

// Detects the beats of one ECG and writes them as a WFDB annotation file (every beat "N":
// detection does not classify). Prints the count.
int ecg_detect(const std::string& file, const std::string& out);

// Analyses one record (a WFDB header) and prints measurements and flags as JSON.
int ecg_analyze(const std::string& file, int age, const std::string& sex, double mains_hz);

}  // namespace yilian::app
