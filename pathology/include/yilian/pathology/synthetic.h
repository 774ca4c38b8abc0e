// A synthetic stained tissue section, for the demo consortium and for trying the converter: a
// pyramidal tiled TIFF (generic TIFF, JPEG tiles, the pixel size in its resolution tags) that
// looks like an H&E section under the microscope - pink stroma with fibres, purple nuclei,
// glands with white lumens lined by crowded nuclei - on a white background. Deterministic for
// a seed. Not a scanner's file: nothing clinical is in it.
#pragma once

#include <cstdint>
#include <filesystem>

#include "yilian/common/result.h"

namespace yilian::pathology {

struct SyntheticSlideSpec {
  std::uint32_t width = 3072, height = 2304;  // level 0, pixels
  std::uint32_t tile = 256;
  int levels = 3;  // each half the one before
  double microns_per_pixel = 0.5;
  std::uint32_t seed = 7;
  int jpeg_quality = 85;
};

// Errors: invalid_argument (a size or level count out of range), io (libtiff failed).
Status write_synthetic_slide(const std::filesystem::path& file, const SyntheticSlideSpec& spec);

}  // namespace yilian::pathology
