#include "yilian/pacs/charset.h"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcspchrs.h>

#include "yilian/common/text.h"

namespace yilian::pacs {
namespace {

// DCMTK takes the ISO 2022 sets with code extensions only in their multi-valued form (the
// first value the default repertoire): "ISO 2022 IR 58" alone means "\\ISO 2022 IR 58".
OFString dcmtk_term(std::string_view term) {
  std::string t(term);
  if (t.rfind("ISO 2022", 0) == 0 && t.find('\\') == std::string::npos) t = "\\" + t;
  return OFString(t.c_str());
}

bool plain_ascii(std::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) >= 0x80 || c == '\x1b') return false;
  }
  return true;
}

// `raw` converted from `charset` to UTF-8, or false when the bytes are not text in it.
bool convert(std::string_view raw, const std::string& charset, bool person_name, std::string& out) {
  std::string_view term = charset;
  while (!term.empty() && term.back() == ' ') term.remove_suffix(1);
  while (!term.empty() && term.front() == ' ') term.remove_prefix(1);
  if (term == "ISO_IR 192") {
    if (!is_valid_utf8(raw)) return false;
    out.assign(raw);
    return true;
  }
  DcmSpecificCharacterSet converter;
  if (converter.selectCharacterSet(dcmtk_term(term)).bad()) return false;
  OFString converted;
  // Person names switch back to the default repertoire at each component group; every
  // value switches back at a value delimiter.
  const OFString delimiters = person_name ? "\\^=" : "\\";
  if (converter.convertString(raw.data(), raw.size(), converted, delimiters).bad()) return false;
  out.assign(converted.c_str(), converted.length());
  return is_valid_utf8(out);
}

}  // namespace

bool is_supported_charset(std::string_view name) {
  if (name.empty()) return false;
  if (name == "ISO_IR 192") return true;
  DcmSpecificCharacterSet converter;
  return converter.selectCharacterSet(dcmtk_term(name)).good();
}

std::string decode_text(std::string_view raw, std::string_view declared,
                        const TextDecoding& decoding, bool person_name) {
  if (plain_ascii(raw)) return std::string(raw);
  std::string out;
  std::string declared_set(declared);
  while (!declared_set.empty() && (declared_set.back() == ' ' || declared_set.back() == '\0'))
    declared_set.pop_back();
  const bool has_declared = !declared_set.empty() && declared_set != "\\";
  if (has_declared && !decoding.override_declared && convert(raw, declared_set, person_name, out)) {
    return out;
  }
  if (!has_declared && is_valid_utf8(raw)) return std::string(raw);
  if (!decoding.charset.empty() && convert(raw, decoding.charset, person_name, out)) return out;
  return to_valid_utf8(raw);
}

}  // namespace yilian::pacs
