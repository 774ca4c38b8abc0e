// Synthetic scanner slides for tests and benchmarks, written with libtiff: a pyramid of tiled
// levels (JPEG YCbCr with shared tables, as scanners write them, or LZW), optionally laid out
// as Aperio SVS (its ImageDescription, a thumbnail, a label and a macro image) so that
// OpenSlide reads it as that vendor's. Every tile is one flat colour, tile_colour() of its
// place, so a test knows what each tile must show.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace yilian::test {

struct SlideSpec {
  std::uint32_t width = 2048, height = 1536, tile = 256;
  int levels = 3;      // each half the size of the one before
  bool aperio = true;  // SVS layout and description; else a generic TIFF
  double microns_per_pixel = 0.5;
  std::vector<int> lzw_levels;  // levels stored with LZW instead of JPEG
  int jpeg_quality = 95;
  // Texture: each pixel varies by up to this much around its tile's colour (0: flat tiles),
  // so that tiles weigh what tissue tiles do (benchmarks).
  int noise = 0;
};

// RGB of tile (column, row) of `level`.
std::array<std::uint8_t, 3> tile_colour(int level, std::uint32_t column, std::uint32_t row);

// Writes the slide; false (and a message on stderr) when libtiff fails.
bool write_slide(const std::filesystem::path& file, const SlideSpec& spec);

// The mean R, G, B of a JPEG image ({-1, -1, -1} when it does not decode).
std::array<double, 3> jpeg_mean_rgb(const std::string& jpeg);

}  // namespace yilian::test
