// Frames of encapsulated (compressed) pixel data: as stored (rendering, WADO-RS frames in the
// stored syntax) and, for JPEG 2000, decoded with OpenJPEG.
#pragma once

#include <cstdint>
#include <string>

#include "yilian/common/result.h"

class DcmDataset;
class DcmPixelSequence;

namespace yilian::viewer {

// The compressed bitstream of frame `index` (0-based) out of `frames`: its fragments joined.
// Frames are told apart by the basic offset table, one fragment per frame, or a single
// frame; otherwise invalid_argument.
Result<std::string> encapsulated_frame(DcmPixelSequence& seq, std::uint32_t index,
                                       std::uint32_t frames);

// Frame `index` (0-based, of `frames`) of a JPEG 2000 data set decoded by OpenJPEG (DCMTK has
// no JPEG 2000 codec): native little endian samples, interleaved, as Rows, Columns, Samples
// per Pixel and Bits Allocated describe them. Errors: invalid_argument (no such pixel data,
// a corrupt codestream, or one that disagrees with the description).
Result<std::string> decode_jpeg2000_frame(DcmDataset& ds, std::uint32_t index,
                                          std::uint32_t frames);

}  // namespace yilian::viewer
