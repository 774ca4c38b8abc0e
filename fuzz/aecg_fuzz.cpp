// HL7 aECG XML uploads.
#include <cstdint>
#include <string_view>

#include "yilian/ecg/aecg.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  (void)yilian::ecg::parse_aecg(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
