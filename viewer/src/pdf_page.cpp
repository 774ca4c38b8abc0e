#include "pdf_page.h"

#include <zlib.h>

#include <cstdio>
#include <vector>

namespace yilian::viewer {
namespace {

// UTF-8 to a PDF text string: UTF-16BE with its byte order mark, as hex.
std::string pdf_text(std::string_view utf8) {
  std::u32string cps;
  for (std::size_t i = 0; i < utf8.size();) {
    const auto c = static_cast<unsigned char>(utf8[i]);
    const int n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + static_cast<std::size_t>(n) > utf8.size()) {
      cps.push_back(0xFFFD);
      ++i;
      continue;
    }
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

  const double pt_per_px = 72.0 / 25.4 / px_per_mm;
  char box[96];
  std::snprintf(box, sizeof box, "%.3f 0 0 %.3f 0 0", width * pt_per_px, height * pt_per_px);
  const std::string content = std::string("q ") + box + " cm /Im0 Do Q\n";

  std::string out = "%PDF-1.4\n%\xE2\xE3\xCF\xD3\n";
  std::vector<std::size_t> offsets;
  auto object = [&](const std::string& body) {
    offsets.push_back(out.size());
    out += std::to_string(offsets.size()) + " 0 obj\n" + body + "\nendobj\n";
  };
  char media[96];
  std::snprintf(media, sizeof media, "[0 0 %.3f %.3f]", width * pt_per_px, height * pt_per_px);
  object("<< /Type /Catalog /Pages 2 0 R >>");
  object("<< /Type /Pages /Kids [3 0 R] /Count 1 >>");
  object(std::string("<< /Type /Page /Parent 2 0 R /MediaBox ") + media +
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
