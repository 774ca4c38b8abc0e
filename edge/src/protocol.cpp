#include "yilian/edge/protocol.h"

#include <openssl/evp.h>

#include <cctype>
#include <charconv>

#include "yilian/common/text.h"

namespace yilian::edge {

bool plain_patient_id(std::string_view id) {
  if (id.empty() || id.size() > 64 || id.find_first_of("*?\\") != std::string_view::npos)
    return false;
  for (unsigned char ch : id)
    if (ch < 0x20 || ch == 0x7f) return false;
  return is_valid_utf8(id);
}

std::optional<std::uint64_t> parse_size(std::string_view value, std::uint64_t max) {
  if (value.empty() || value.size() > 20) return std::nullopt;
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (ec != std::errc() || end != value.data() + value.size() || v > max) return std::nullopt;
  return v;
}

std::string base64_encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0 || text.size() > 8192) return std::nullopt;
  if (text.empty()) return std::string();
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    // '=' only as padding: the last one or two characters.
    if (c == '=' ? i + 2 < text.size() || (i + 1 < text.size() && text[i + 1] != '=')
                 : !std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '/')
      return std::nullopt;
  }
  std::string out(text.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  if (n < 0) return std::nullopt;
  std::size_t len = static_cast<std::size_t>(n);
  // EVP_DecodeBlock counts the padding as zero bytes.
  for (std::size_t i = text.size(); i > 0 && text[i - 1] == '='; --i) --len;
  out.resize(len);
  return out;
}

Result<std::map<std::string, std::string>> parse_metadata(std::string_view header) {
  std::map<std::string, std::string> out;
  auto bad = [](std::string why) {
    return make_error(Errc::invalid_argument, "Upload-Metadata: " + std::move(why));
  };
  while (!header.empty()) {
    const std::size_t comma = header.find(',');
    std::string_view pair = header.substr(0, comma);
    header = comma == std::string_view::npos ? std::string_view() : header.substr(comma + 1);
    while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
    while (!pair.empty() && pair.back() == ' ') pair.remove_suffix(1);
    if (pair.empty()) return bad("an empty pair");
    const std::size_t space = pair.find(' ');
    const std::string_view key = pair.substr(0, space);
    if (key.size() > 64) return bad("a key longer than 64 characters");
    for (char c : key) {
      if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f)
        return bad("a key with a character outside printable ASCII");
    }
    std::string value;
    if (space != std::string_view::npos) {
      auto decoded = base64_decode(pair.substr(space + 1));
      if (!decoded) return bad("the value of " + std::string(key) + " is not base64");
      value = std::move(*decoded);
    }
    if (!out.emplace(std::string(key), std::move(value)).second)
      return bad("the key " + std::string(key) + " twice");
  }
  return out;
}

std::string format_metadata(const std::map<std::string, std::string>& pairs) {
  std::string out;
  for (const auto& [k, v] : pairs) {
    if (!out.empty()) out += ',';
    out += k;
    if (!v.empty()) out += ' ' + base64_encode(v);
  }
  return out;
}

std::string shuffle2(std::string_view bytes) {
  std::string out(bytes.size(), '\0');
  const std::size_t half = bytes.size() / 2;
  for (std::size_t i = 0; i < half; ++i) {
    out[i] = bytes[2 * i];
    out[half + i] = bytes[2 * i + 1];
  }
  if (bytes.size() % 2) out.back() = bytes.back();
  return out;
}

std::string unshuffle2(std::string_view bytes) {
  std::string out(bytes.size(), '\0');
  const std::size_t half = bytes.size() / 2;
  for (std::size_t i = 0; i < half; ++i) {
    out[2 * i] = bytes[i];
    out[2 * i + 1] = bytes[half + i];
  }
  if (bytes.size() % 2) out.back() = bytes.back();
  return out;
}

std::string BundleWriter::content_type() const {
  return "multipart/related; type=\"application/dicom\"; boundary=" + boundary_;
}

std::string BundleWriter::part_head() const {
  return "--" + boundary_ + "\r\nContent-Type: application/dicom\r\n\r\n";
}

std::string BundleWriter::finish() const { return "--" + boundary_ + "--\r\n"; }

}  // namespace yilian::edge
