// multipart/related (STOW-RS) and multipart/form-data (ECG uploads) bodies.
#include <cstdint>
#include <string>

#include "yilian/pacs/dicomweb.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  // The first line is the Content-Type header, the rest the body.
  const std::size_t nl = input.find('\n');
  const std::string content_type = nl == std::string::npos ? input : input.substr(0, nl);
  const std::string body = nl == std::string::npos ? std::string() : input.substr(nl + 1);
  auto parts = yilian::pacs::split_multipart(content_type, body);
  if (parts.ok()) {
    for (const auto& p : *parts) {
      // Every part lies within the body.
      if (p.bytes.data() < body.data() ||
          p.bytes.data() + p.bytes.size() > body.data() + body.size())
        __builtin_trap();
    }
  }
  return 0;
}
