// The tus header values an edge node (or anyone holding an edge credential) sends the hub:
// Upload-Metadata (with its base64 values) and the sizes. Parsed pairs format back to a header
// that parses to the same pairs.
#include <cstdint>
#include <string>

#include "yilian/edge/protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string header(reinterpret_cast<const char*>(data), size);
  auto pairs = yilian::edge::parse_metadata(header);
  if (pairs.ok()) {
    auto again = yilian::edge::parse_metadata(yilian::edge::format_metadata(*pairs));
    if (!again.ok() || *again != *pairs) __builtin_trap();
  }
  if (auto n = yilian::edge::parse_size(header, 1000); n && *n > 1000) __builtin_trap();
  if (auto decoded = yilian::edge::base64_decode(header)) {
    if (yilian::edge::base64_encode(*decoded).size() != header.size()) __builtin_trap();
  }
  return 0;
}
