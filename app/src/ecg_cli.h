// `yilian ecg ...` commands.
#pragma once

#include <string>

namespace yilian::app {

// ANSI/AAMI EC57 beat-by-beat evaluation of the QRS detector on every WFDB record of `db`
// that has reference annotations (`.atr`): one line per record, then the gross totals.
int ecg_eval(const std::string& db);

}  // namespace yilian::app
