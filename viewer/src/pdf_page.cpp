#include "pdf_page.h"

#include <zlib.h>

#include <cstdio>
#include <vector>

#include "yilian/common/text.h"

namespace yilian::viewer {
namespace {

// UTF-8 to a PDF text string: UTF-16BE with its byte order mark, as hex. Malformed bytes
// become U+FFFD first (common/text.h), so decoding needs no error path.
std::string pdf_text(std::string_view text) {
  const std::string utf8 = to_valid_utf8(text);
  std::u32string cps;
  for (std::size_t i = 0; i < utf8.size();) {
    const auto c = static_cast<unsigned char>(utf8[i]);
    const int n = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    char32_t cp = n == 1 ? c : c & (0x7F >> n);
    for (int k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(utf8[i + k]) & 0x3F);
    cps.push_back(cp);
    i += static_cast<std::size_t>(n);
  }
  std::string hex = "<FEFF";
  char buf[8];
  auto unit = [&](unsigned u) {
    std::snprintf(buf, sizeof buf, "%04X", u & 0xFFFF);
    hex += buf;
  };
  for (char32_t cp : cps) {
    if (cp >= 0x10000) {
      cp -= 0x10000;
      unit(0xD800 + (cp >> 10));
      unit(0xDC00 + (cp & 0x3FF));
    } else {
      unit(cp);
    }
  }
  return hex + ">";
}

}  // namespace

std::string image_pdf(const unsigned char* rgb, int width, int height, double px_per_mm,
                      std::string_view title) {
  const std::size_t raw = static_cast<std::size_t>(width) * static_cast<std::size_t>(height) * 3;
  uLongf packed_size = compressBound(static_cast<uLong>(raw));
  std::vector<unsigned char> packed(packed_size);
  if (compress2(packed.data(), &packed_size, rgb, static_cast<uLong>(raw), 6) != Z_OK) return {};
  packed.resize(packed_size);

  // The page's width and height in points (the page and the image's placement).
  auto points = [px_per_mm](int px) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f", px * 72.0 / 25.4 / px_per_mm);
    return std::string(buf);
  };
  const std::string w_pt = points(width), h_pt = points(height);
  const std::string content = "q " + w_pt + " 0 0 " + h_pt + " 0 0 cm /Im0 Do Q\n";

  std::string out = "%PDF-1.4\n%\xE2\xE3\xCF\xD3\n";
  std::vector<std::size_t> offsets;
  auto object = [&](const std::string& body) {
    offsets.push_back(out.size());
    out += std::to_string(offsets.size()) + " 0 obj\n" + body + "\nendobj\n";
  };
  object("<< /Type /Catalog /Pages 2 0 R >>");
  object("<< /Type /Pages /Kids [3 0 R] /Count 1 >>");
  object("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 " + w_pt + " " + h_pt + "]" +
         " /Resources << /XObject << /Im0 4 0 R >> >> /Contents 5 0 R >>");
  object("<< /Type /XObject /Subtype /Image /Width " + std::to_string(width) + " /Height " +
         std::to_string(height) +
         " /ColorSpace /DeviceRGB /BitsPerComponent 8 /Filter /FlateDecode /Length " +
         std::to_string(packed.size()) + " >>\nstream\n" +
         std::string(packed.begin(), packed.end()) + "\nendstream");
  object("<< /Length " + std::to_string(content.size()) + " >>\nstream\n" + content + "endstream");
  object("<< /Title " + pdf_text(title) + " /Producer (Yilian) >>");
  const std::size_t xref = out.size();
  out += "xref\n0 " + std::to_string(offsets.size() + 1) + "\n0000000000 65535 f \n";
  char line[32];
  for (std::size_t off : offsets) {
    std::snprintf(line, sizeof line, "%010zu 00000 n \n", off);
    out += line;
  }
  out += "trailer\n<< /Size " + std::to_string(offsets.size() + 1) +
         " /Root 1 0 R /Info 6 0 R >>\nstartxref\n" + std::to_string(xref) + "\n%%EOF\n";
  return out;
}

}  // namespace yilian::viewer
