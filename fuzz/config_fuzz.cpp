// The hub's TOML configuration.
#include <cstdint>
#include <string_view>

#include "config.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  (void)yilian::app::parse_config(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
