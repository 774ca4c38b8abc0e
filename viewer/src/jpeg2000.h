// JPEG 2000 decoding with OpenJPEG (DCMTK has no JPEG 2000 codec; OpenCV's reader refuses
// signed components, which CT and NM objects have).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "yilian/common/result.h"

namespace yilian::viewer {

struct DecodedFrame {
  int width = 0, height = 0, components = 0;
  bool wide = false;   // 16-bit samples (else 8-bit)
  std::string pixels;  // interleaved samples, little endian, rows top to bottom
};

// Decodes a J2K codestream or a JP2 file. Errors: invalid_argument.
Result<DecodedFrame> decode_jpeg2000(std::string_view bits);

}  // namespace yilian::viewer
