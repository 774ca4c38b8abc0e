#include "yilian/ecg/record.h"

namespace yilian::ecg {

bool is_beat(int code) {
  return (code >= 1 && code <= 13) || code == 25 || code == 30 || code == 34 || code == 35 ||
         code == 38 || code == 41;
}

char code_symbol(int code) {
  static constexpr char kSymbols[] = " NLRaVFJASEj/Q~ |?sT*D\"=pB^t+u?![]en@xf()r";
  if (code < 0 || code >= static_cast<int>(sizeof kSymbols) - 1) return '?';
  return kSymbols[code];
}

}  // namespace yilian::ecg
