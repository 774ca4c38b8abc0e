// WFDB uploads: the header text, and one signal file made of the rest of the input.
#include <cstdint>
#include <string>

#include "yilian/ecg/wfdb.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  // The header ends at the first NUL; every signal file the header names is what follows.
  const std::size_t cut = input.find('\0');
  const std::string header = input.substr(0, cut);
  const std::string signal = cut == std::string::npos ? std::string() : input.substr(cut + 1);
  (void)yilian::ecg::parse_wfdb(
      header, "fuzz", [&](const std::string&) -> yilian::Result<std::string> { return signal; });
  return 0;
}
