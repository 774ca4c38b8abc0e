#include "yilian/pathology/jpeg.h"

#include <cstdint>

namespace yilian::pathology {
namespace {

bool starts_with_soi(std::string_view s) {
  return s.size() >= 2 && static_cast<unsigned char>(s[0]) == 0xFF &&
         static_cast<unsigned char>(s[1]) == 0xD8;
}

unsigned byte(std::string_view s, std::size_t i) { return static_cast<unsigned char>(s[i]); }

// Calls `segment(marker, offset of its payload, payload length)` for each marker segment up to
// the first scan (SOS) or EOI; false when the stream is broken before that.
template <typename F>
bool walk_segments(std::string_view s, F&& segment) {
  std::size_t at = 2;
  while (at + 4 <= s.size()) {
    if (byte(s, at) != 0xFF) return false;
    const unsigned marker = byte(s, at + 1);
    if (marker == 0xFF) {  // fill byte
      ++at;
      continue;
    }
    if (marker == 0xD9) return true;  // EOI
    const std::size_t len = byte(s, at + 2) << 8 | byte(s, at + 3);
    if (len < 2 || at + 2 + len > s.size()) return false;
    if (!segment(marker, at + 4, len - 2)) return true;
    if (marker == 0xDA) return true;  // SOS: entropy-coded data follows
    at += 2 + len;
  }
  return true;
}

}  // namespace

Result<std::string> complete_jpeg(std::string_view tables, std::string_view tile) {
  if (!starts_with_soi(tile)) return make_error(Errc::invalid_argument, "a tile is not JPEG");
  if (tables.size() <= 4) return std::string(tile);
  if (!starts_with_soi(tables) || byte(tables, tables.size() - 2) != 0xFF ||
      byte(tables, tables.size() - 1) != 0xD9) {
    return make_error(Errc::invalid_argument, "the JPEG tables are not a JPEG stream");
  }
  std::string out;
  out.reserve(tables.size() + tile.size());
  out.append(tables.substr(0, tables.size() - 2));
  out.append(tile.substr(2));
  return out;
}

std::string mark_rgb(std::string_view jpeg) {
  if (!starts_with_soi(jpeg)) return std::string(jpeg);
  bool adobe = false;
  walk_segments(jpeg, [&](unsigned marker, std::size_t, std::size_t) {
    if (marker == 0xEE) adobe = true;
    return !adobe;
  });
  if (adobe) return std::string(jpeg);
  // APP14 "Adobe": version 100, flags 0, 0, transform 0 (components are not YCbCr).
  static constexpr unsigned char kApp14[] = {0xFF, 0xEE, 0x00, 0x0E, 'A',  'd',  'o',  'b',
                                             'e',  0x00, 0x64, 0x00, 0x00, 0x00, 0x00, 0x00};
  std::string out;
  out.reserve(jpeg.size() + sizeof kApp14);
  out.append(jpeg.substr(0, 2));
  out.append(reinterpret_cast<const char*>(kApp14), sizeof kApp14);
  out.append(jpeg.substr(2));
  return out;
}

JpegSize jpeg_size(std::string_view jpeg) {
  JpegSize size;
  if (!starts_with_soi(jpeg)) return size;
  walk_segments(jpeg, [&](unsigned marker, std::size_t at, std::size_t len) {
    const bool sof =
        marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
    if (!sof || len < 6) return true;
    size.height = static_cast<int>(byte(jpeg, at + 1) << 8 | byte(jpeg, at + 2));
    size.width = static_cast<int>(byte(jpeg, at + 3) << 8 | byte(jpeg, at + 4));
    size.components = static_cast<int>(byte(jpeg, at + 5));
    size.sof = marker;
    return false;
  });
  return size;
}

}  // namespace yilian::pathology
