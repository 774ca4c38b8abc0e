// Messages on /ws: the protocol's parsing and validation, and the error answer.
#include <cstdint>
#include <string_view>

#include "yilian/common/text.h"
#include "yilian/teleconsult/protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace proto = yilian::teleconsult::protocol;
  auto parsed = proto::parse(std::string_view(reinterpret_cast<const char*>(data), size));
  if (parsed.message.has_value() == parsed.error.has_value()) __builtin_trap();
  if (parsed.error) {
    auto text = proto::error(parsed.error->code, parsed.error->message, parsed.error->ref);
    if (!yilian::is_valid_utf8(text)) __builtin_trap();
  }
  return 0;
}
