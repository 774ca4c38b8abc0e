// JPEG streams of scanner tiles (pure). TIFF stores a slide's JPEG tiles as abbreviated
// streams sharing one JPEGTables value; a DICOM frame must be a whole interchange stream.
#pragma once

#include <string>
#include <string_view>

#include "yilian/common/result.h"

namespace yilian::pathology {

// The complete stream of an abbreviated tile: the tables' segments (SOI ... EOI of
// JPEGTables without its EOI) followed by the tile after its SOI. Tiles without tables (or
// empty tables) are returned as they are. invalid_argument when either is not a JPEG stream.
Result<std::string> complete_jpeg(std::string_view tables, std::string_view tile);

// Marks a stream whose three components are R, G and B (not YCbCr: Aperio's tiles) with an
// Adobe APP14 segment saying "no transform", so every decoder shows its colours; a stream
// with an APP14 segment already is returned as it is.
std::string mark_rgb(std::string_view jpeg);

// Width and height from a stream's start-of-frame segment; nullopt-like {0,0} when it has
// none before the scan.
struct JpegSize {
  int width = 0, height = 0, components = 0;
  unsigned sof = 0;  // the start-of-frame marker: 0xC0 baseline, 0xC1 extended, ...
};
JpegSize jpeg_size(std::string_view jpeg);

}  // namespace yilian::pathology
