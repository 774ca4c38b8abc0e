#include "slides.h"

#include <tiffio.h>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include <algorithm>
#include <cstdio>

namespace yilian::test {
namespace {

bool write_stripped(TIFF* t, std::uint32_t w, std::uint32_t h, const std::string& description,
                    std::array<std::uint8_t, 3> colour) {
  TIFFSetField(t, TIFFTAG_IMAGEWIDTH, w);
  TIFFSetField(t, TIFFTAG_IMAGELENGTH, h);
  TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, 8);
  TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, 3);
  TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_RGB);
  TIFFSetField(t, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
  TIFFSetField(t, TIFFTAG_COMPRESSION, COMPRESSION_LZW);
  TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, 16);
  TIFFSetField(t, TIFFTAG_IMAGEDESCRIPTION, description.c_str());
  std::vector<std::uint8_t> line(static_cast<std::size_t>(w) * 3);
  for (std::uint32_t x = 0; x < w; ++x) {
    for (int c = 0; c < 3; ++c) line[x * 3 + c] = colour[c];
  }
  for (std::uint32_t y = 0; y < h; ++y) {
    if (TIFFWriteScanline(t, line.data(), y, 0) < 0) return false;
  }
  return TIFFWriteDirectory(t) == 1;
}

}  // namespace

std::array<std::uint8_t, 3> tile_colour(int level, std::uint32_t column, std::uint32_t row) {
  return {static_cast<std::uint8_t>(40 + (column * 37 + level * 11) % 180),
          static_cast<std::uint8_t>(40 + (row * 53 + level * 29) % 180),
          static_cast<std::uint8_t>(40 + ((column + row) * 19 + level * 71) % 180)};
}

std::array<double, 3> jpeg_mean_rgb(const std::string& jpeg) {
  cv::Mat img = cv::imdecode(
      cv::Mat(1, static_cast<int>(jpeg.size()), CV_8UC1, const_cast<char*>(jpeg.data())),
      cv::IMREAD_COLOR);
  if (img.empty()) return {-1, -1, -1};
  const cv::Scalar m = cv::mean(img);
  return {m[2], m[1], m[0]};
}

bool write_slide(const std::filesystem::path& file, const SlideSpec& spec) {
  TIFF* t = TIFFOpen(file.c_str(), "w8");  // BigTIFF, as large slides are
  if (!t) return false;
  bool ok = true;
  for (int level = 0; level < spec.levels && ok; ++level) {
    const std::uint32_t w = spec.width >> level, h = spec.height >> level;
    const bool lzw =
        std::find(spec.lzw_levels.begin(), spec.lzw_levels.end(), level) != spec.lzw_levels.end();
    TIFFSetField(t, TIFFTAG_IMAGEWIDTH, w);
    TIFFSetField(t, TIFFTAG_IMAGELENGTH, h);
    TIFFSetField(t, TIFFTAG_TILEWIDTH, spec.tile);
    TIFFSetField(t, TIFFTAG_TILELENGTH, spec.tile);
    TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, 8);
    TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, 3);
    TIFFSetField(t, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
    if (level > 0) TIFFSetField(t, TIFFTAG_SUBFILETYPE, FILETYPE_REDUCEDIMAGE);
    if (lzw) {
      TIFFSetField(t, TIFFTAG_COMPRESSION, COMPRESSION_LZW);
      TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_RGB);
    } else {
      TIFFSetField(t, TIFFTAG_COMPRESSION, COMPRESSION_JPEG);
      TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_YCBCR);
      TIFFSetField(t, TIFFTAG_YCBCRSUBSAMPLING, 2, 2);
      TIFFSetField(t, TIFFTAG_JPEGQUALITY, spec.jpeg_quality);
      TIFFSetField(t, TIFFTAG_JPEGCOLORMODE, JPEGCOLORMODE_RGB);
    }
    if (spec.aperio) {
      char d[256];
      std::snprintf(d, sizeof d,
                    "Aperio Image Library v10.0.50\r\n%ux%u [0,0 %ux%u] (%ux%u) JPEG/RGB Q=%d"
                    "|AppMag = 20|MPP = %.4f",
                    spec.width, spec.height, w, h, spec.tile, spec.tile, spec.jpeg_quality,
                    spec.microns_per_pixel * (1 << level));
      TIFFSetField(t, TIFFTAG_IMAGEDESCRIPTION, d);
    } else {
      TIFFSetField(t, TIFFTAG_RESOLUTIONUNIT, RESUNIT_CENTIMETER);
      TIFFSetField(t, TIFFTAG_XRESOLUTION, static_cast<float>(10000.0 / spec.microns_per_pixel));
      TIFFSetField(t, TIFFTAG_YRESOLUTION, static_cast<float>(10000.0 / spec.microns_per_pixel));
    }
    const std::uint32_t across = (w + spec.tile - 1) / spec.tile;
    const std::uint32_t down = (h + spec.tile - 1) / spec.tile;
    std::vector<std::uint8_t> tile(static_cast<std::size_t>(spec.tile) * spec.tile * 3);
    for (std::uint32_t row = 0; row < down && ok; ++row) {
      for (std::uint32_t col = 0; col < across && ok; ++col) {
        const auto c = tile_colour(level, col, row);
        std::uint32_t seed = (col * 7919u + row * 104729u + level * 15485863u) | 1u;
        for (std::size_t p = 0; p < tile.size(); p += 3) {
          for (int k = 0; k < 3; ++k) {
            int v = c[k];
            if (spec.noise > 0) {
              seed = seed * 1664525u + 1013904223u;
              v += static_cast<int>(seed >> 24) % (2 * spec.noise + 1) - spec.noise;
            }
            tile[p + k] = static_cast<std::uint8_t>(std::clamp(v, 0, 255));
          }
        }
        const ttile_t index = TIFFComputeTile(t, col * spec.tile, row * spec.tile, 0, 0);
        ok = TIFFWriteEncodedTile(t, index, tile.data(), static_cast<tmsize_t>(tile.size())) >= 0;
      }
    }
    ok = ok && TIFFWriteDirectory(t) == 1;
    if (ok && spec.aperio && level == 0) {
      // Aperio's second directory: a stripped thumbnail.
      ok = write_stripped(t, 256, 192, "Aperio Image Library v10.0.50\r\n2048x1536 -> 256x192",
                          {200, 180, 220});
    }
  }
  if (ok && spec.aperio) {
    ok =
        write_stripped(t, 200, 100, "Aperio Image Library v10.0.50\nlabel 200x100",
                       {250, 250, 240}) &&
        write_stripped(t, 400, 150, "Aperio Image Library v10.0.50\nmacro 400x150", {120, 90, 160});
  }
  TIFFClose(t);
  if (!ok) std::fprintf(stderr, "write_slide: libtiff failed on %s\n", file.c_str());
  return ok;
}

}  // namespace yilian::test
