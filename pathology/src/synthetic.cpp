#include "yilian/pathology/synthetic.h"

#include <tiffio.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <memory>
#include <vector>

namespace yilian::pathology {
namespace {

using Rgb = std::array<float, 3>;

constexpr Rgb kBackground{243, 242, 240};
constexpr Rgb kStromaLight{242, 196, 220};
constexpr Rgb kStromaDark{214, 124, 172};
constexpr Rgb kLumen{249, 246, 248};
constexpr Rgb kNucleus{98, 58, 152};
constexpr Rgb kNucleusCore{66, 34, 118};

Rgb mix(const Rgb& a, const Rgb& b, double t) {
  Rgb out;
  for (int c = 0; c < 3; ++c) out[c] = static_cast<float>(a[c] + (b[c] - a[c]) * t);
  return out;
}

// A hash of a grid cell, in [0, 1).
double hash(std::int64_t x, std::int64_t y, std::uint32_t seed, std::uint32_t salt) {
  std::uint64_t h = static_cast<std::uint64_t>(x) * 0x9E3779B97F4A7C15ull ^
                    static_cast<std::uint64_t>(y) * 0xC2B2AE3D27D4EB4Full ^
                    (static_cast<std::uint64_t>(seed) << 32 | salt);
  h ^= h >> 33;
  h *= 0xFF51AFD7ED558CCDull;
  h ^= h >> 33;
  h *= 0xC4CEB9FE1A85EC53ull;
  h ^= h >> 33;
  return static_cast<double>(h >> 11) / 9007199254740992.0;
}

// The section at a point of level 0.
class Section {
 public:
  Section(const SyntheticSlideSpec& spec) : spec_(spec) {}

  Rgb at(double x, double y) const {
    const double w = spec_.width, h = spec_.height;
    const double u = (x - w / 2) / (0.42 * w), v = (y - h / 2) / (0.38 * h);
    const double r = std::sqrt(u * u + v * v), theta = std::atan2(v, u);
    const double edge = 1 + 0.07 * std::sin(5 * theta + 0.7) + 0.04 * std::sin(11 * theta + 2.1);
    if (r > edge) return kBackground;
    const double fibre =
        0.5 + 0.5 * std::sin(x * 0.045 + 3 * std::sin(y * 0.011) + 2 * std::sin(x * 0.007));
    Rgb colour = mix(kStromaLight, kStromaDark, 0.25 + 0.35 * fibre);
    // Glands: one per 360-pixel cell at most, a lumen lined by crowded nuclei.
    bool epithelium = false;
    const std::int64_t gx = static_cast<std::int64_t>(std::floor(x / kGland));
    const std::int64_t gy = static_cast<std::int64_t>(std::floor(y / kGland));
    for (std::int64_t cy = gy - 1; cy <= gy + 1; ++cy) {
      for (std::int64_t cx = gx - 1; cx <= gx + 1; ++cx) {
        if (hash(cx, cy, spec_.seed, 1) < 0.35) continue;
        const double ox = cx * kGland + 90 + hash(cx, cy, spec_.seed, 2) * 180;
        const double oy = cy * kGland + 90 + hash(cx, cy, spec_.seed, 3) * 180;
        const double radius = 55 + hash(cx, cy, spec_.seed, 4) * 45;
        const double d = std::hypot((x - ox) * 1.15, y - oy);
        if (d < radius * 0.6) return kLumen;
        if (d < radius) epithelium = true;
      }
    }
    // Nuclei: one per cell at most; smaller cells and more of them in the glands' lining.
    const double cell = epithelium ? 11.0 : 24.0;
    const double share = epithelium ? 0.9 : 0.45;
    const std::int64_t nx = static_cast<std::int64_t>(std::floor(x / cell));
    const std::int64_t ny = static_cast<std::int64_t>(std::floor(y / cell));
    const std::uint32_t salt = epithelium ? 10 : 20;
    for (std::int64_t cy = ny - 1; cy <= ny + 1; ++cy) {
      for (std::int64_t cx = nx - 1; cx <= nx + 1; ++cx) {
        if (hash(cx, cy, spec_.seed, salt) > share) continue;
        const double ox = (cx + 0.2 + 0.6 * hash(cx, cy, spec_.seed, salt + 1)) * cell;
        const double oy = (cy + 0.2 + 0.6 * hash(cx, cy, spec_.seed, salt + 2)) * cell;
        const double size = (epithelium ? 3.2 : 3.6) + 2.2 * hash(cx, cy, spec_.seed, salt + 3);
        const double stretch = epithelium ? 1.0 : 1.0 + 1.2 * hash(cx, cy, spec_.seed, salt + 4);
        const double d = std::hypot((x - ox) / stretch, y - oy) / size;
        if (d < 1) return mix(kNucleusCore, kNucleus, d);
      }
    }
    return colour;
  }

 private:
  static constexpr double kGland = 360;
  const SyntheticSlideSpec& spec_;
};

struct TiffCloser {
  void operator()(TIFF* t) const { TIFFClose(t); }
};

}  // namespace

Status write_synthetic_slide(const std::filesystem::path& file, const SyntheticSlideSpec& spec) {
  if (spec.width < 64 || spec.height < 64 || spec.width > 65536 || spec.height > 65536 ||
      spec.tile < 16 || spec.tile % 16 != 0 || spec.levels < 1 || spec.levels > 8 ||
      (spec.width >> (spec.levels - 1)) < 16 || (spec.height >> (spec.levels - 1)) < 16 ||
      !(spec.microns_per_pixel > 0)) {
    return make_error(Errc::invalid_argument, "synthetic slide: size, tile or levels out of range");
  }
  std::unique_ptr<TIFF, TiffCloser> t(TIFFOpen(file.c_str(), "w"));
  if (!t) return make_error(Errc::io, "cannot write " + file.string());
  const Section section(spec);
  std::vector<std::uint8_t> tile(static_cast<std::size_t>(spec.tile) * spec.tile * 3);
  for (int level = 0; level < spec.levels; ++level) {
    const std::uint32_t scale = 1u << level;
    const std::uint32_t w = spec.width >> level, h = spec.height >> level;
    TIFF* tp = t.get();
    TIFFSetField(tp, TIFFTAG_IMAGEWIDTH, w);
    TIFFSetField(tp, TIFFTAG_IMAGELENGTH, h);
    TIFFSetField(tp, TIFFTAG_TILEWIDTH, spec.tile);
    TIFFSetField(tp, TIFFTAG_TILELENGTH, spec.tile);
    TIFFSetField(tp, TIFFTAG_BITSPERSAMPLE, 8);
    TIFFSetField(tp, TIFFTAG_SAMPLESPERPIXEL, 3);
    TIFFSetField(tp, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
    if (level > 0) TIFFSetField(tp, TIFFTAG_SUBFILETYPE, FILETYPE_REDUCEDIMAGE);
    TIFFSetField(tp, TIFFTAG_COMPRESSION, COMPRESSION_JPEG);
    TIFFSetField(tp, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_YCBCR);
    TIFFSetField(tp, TIFFTAG_YCBCRSUBSAMPLING, 2, 2);
    TIFFSetField(tp, TIFFTAG_JPEGQUALITY, spec.jpeg_quality);
    TIFFSetField(tp, TIFFTAG_JPEGCOLORMODE, JPEGCOLORMODE_RGB);
    TIFFSetField(tp, TIFFTAG_RESOLUTIONUNIT, RESUNIT_CENTIMETER);
    const auto per_cm = static_cast<float>(10000.0 / (spec.microns_per_pixel * scale));
    TIFFSetField(tp, TIFFTAG_XRESOLUTION, per_cm);
    TIFFSetField(tp, TIFFTAG_YRESOLUTION, per_cm);
    // Each pixel of a reduced level is the mean of up to 4 x 4 points of the section under it.
    const std::uint32_t samples = std::min<std::uint32_t>(scale, 4);
    const double step = static_cast<double>(scale) / samples;
    for (std::uint32_t ty = 0; ty < h; ty += spec.tile) {
      for (std::uint32_t tx = 0; tx < w; tx += spec.tile) {
        for (std::uint32_t y = 0; y < spec.tile; ++y) {
          for (std::uint32_t x = 0; x < spec.tile; ++x) {
            Rgb sum{0, 0, 0};
            for (std::uint32_t sy = 0; sy < samples; ++sy) {
              for (std::uint32_t sx = 0; sx < samples; ++sx) {
                const Rgb c = section.at((tx + x) * scale + (sx + 0.5) * step,
                                         (ty + y) * scale + (sy + 0.5) * step);
                for (int k = 0; k < 3; ++k) sum[k] += c[k];
              }
            }
            std::uint8_t* p = &tile[(static_cast<std::size_t>(y) * spec.tile + x) * 3];
            for (int k = 0; k < 3; ++k) {
              p[k] = static_cast<std::uint8_t>(
                  std::clamp(sum[k] / static_cast<float>(samples * samples), 0.0f, 255.0f));
            }
          }
        }
        const ttile_t index = TIFFComputeTile(tp, tx, ty, 0, 0);
        if (TIFFWriteEncodedTile(tp, index, tile.data(), static_cast<tmsize_t>(tile.size())) < 0) {
          return make_error(Errc::io, "libtiff could not write a tile of " + file.string());
        }
      }
    }
    if (TIFFWriteDirectory(tp) != 1) {
      return make_error(Errc::io, "libtiff could not finish a level of " + file.string());
    }
  }
  t.reset();
  return Status::Ok();
}

}  // namespace yilian::pathology
