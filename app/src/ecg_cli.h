// `yilian ecg ...` commands.
#pragma once

#include <string>

namespace yilian::app {

// ANSI/AAMI EC57 beat-by-beat evaluation of the QRS detector on every WFDB record of `db`
// that has reference annotations (`.atr`): one line per record, then the gross totals.
int ecg_eval(const std::string& db);

// Analyses one record (a WFDB header) and prints measurements and flags as JSON.
int ecg_analyze(const std::string& file, int age, const std::string& sex, double mains_hz);

}  // namespace yilian::app
