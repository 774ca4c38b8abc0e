// Decoding the text of received objects into UTF-8.
//
// Township modalities very often send GB18030/GBK names with no Specific Character Set
// (0008,0005), or with one the bytes do not match. Every text value the hub keeps (index,
// audit, JSON) is decoded here: by the declared character set when it decodes the bytes,
// else as UTF-8 when the bytes are UTF-8 and nothing was declared, else by the sender's
// configured character set, else with U+FFFD in place of the undecodable bytes. The stored
// file is never changed.
#pragma once

#include <string>
#include <string_view>

namespace yilian::pacs {

struct TextDecoding {
  // The sender's character set when it declares none, or when the declared one does not
  // decode the bytes (a DICOM defined term: "GB18030", "GBK", "ISO_IR 100", ...).
  std::string charset = "GB18030";
  // The sender's declaration is known to be wrong: use `charset` whatever it declares.
  bool override_declared = false;
};

// True when `name` is a Specific Character Set term this build can decode (single values;
// "ISO 2022 ..." terms with code extensions included).
bool is_supported_charset(std::string_view name);

// `raw` (one attribute's value as stored) in UTF-8. `declared` is the data set's Specific
// Character Set, backslash-separated as stored. Person names keep their component groups.
std::string decode_text(std::string_view raw, std::string_view declared,
                        const TextDecoding& decoding, bool person_name = false);

}  // namespace yilian::pacs
