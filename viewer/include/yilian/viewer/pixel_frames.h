// Frames of encapsulated (compressed) pixel data as stored: used by rendering (JPEG 2000,
// decoded with OpenCV/OpenJPEG) and by WADO-RS frame retrieval in the stored syntax.
#pragma once

#include <cstdint>
#include <string>

#include "yilian/common/result.h"

class DcmPixelSequence;

namespace yilian::viewer {

// The compressed bitstream of frame `index` (0-based) out of `frames`: its fragments joined.
// Frames are told apart by the basic offset table, one fragment per frame, or a single
// frame; otherwise invalid_argument.
Result<std::string> encapsulated_frame(DcmPixelSequence& seq, std::uint32_t index,
                                       std::uint32_t frames);

}  // namespace yilian::viewer
