// `yilian ecg ...` commands.
#pragma once

#include <string>

namespace yilian::app {

// ANSI/AAMI EC57 beat-by-beat evaluation on every WFDB record of `db` that has reference
// annotations (`.atr`): one line per record, then the gross totals. Of QRS detection; with
// `classes`, of beat classification (VEB and SVEB; paced records left out; records the
// built-in model learnt from are scored by a model trained without them).
// With `af`, of atrial fibrillation episodes against the rhythm annotations.
int ecg_eval(const std::string& db, bool classes, bool af);

// Trains the beat classifier on the non-paced records of `db` and writes the model file.
int ecg_train(const std::string& db, const std::string& out);

// Draws one ECG (WFDB header or DICOM waveform) as a PNG at 25 mm/s, 10 mm/mV, with its
// measurements and statements (in English, or Chinese with lang "zh").
int ecg_render(const std::string& file, const std::string& out, const std::string& layout,
               const std::string& lang);

// Detects the beats of one ECG and writes them as a WFDB annotation file (every beat "N":
// detection does not classify). Prints the count.
int ecg_detect(const std::string& file, const std::string& out);

// Analyses one record (a WFDB header) and prints measurements and flags as JSON.
int ecg_analyze(const std::string& file, int age, const std::string& sex, double mains_hz);

}  // namespace yilian::app
