// Text that leaves the process is valid UTF-8 of bounded length. Members send bytes in
// whatever encoding their devices use; everything that stores, logs or serialises text goes
// through these first, so a stray byte can never stop a JSON writer or an audit record.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace yilian {

// True when `s` is well-formed UTF-8 (no overlong forms, surrogates or code points past
// U+10FFFF).
bool is_valid_utf8(std::string_view s);

// `s` with every byte that is not part of a well-formed UTF-8 sequence replaced by U+FFFD.
std::string to_valid_utf8(std::string_view s);

// Valid UTF-8 of at most `max_bytes` bytes: cut at a character boundary, with "…" at the
// end when something was cut (the ellipsis counts against the limit).
std::string clip_utf8(std::string_view s, std::size_t max_bytes);

// `s` with the ASCII letters A-Z in lower case and every other byte as it is (what SQLite's
// lower() and PostgreSQL's lower() in the "C" collation do).
std::string ascii_lower(std::string_view s);

// JSON text of `j`. Strings that are not valid UTF-8 are written with U+FFFD in place of
// the bad bytes: serialising never throws on content.
std::string json_text(const nlohmann::json& j, int indent = -1);

// One CSV field (RFC 4180): quoted when it holds a comma, quote or line break, quotes doubled;
// a leading =, +, - or @ is prefixed with ' so a spreadsheet never runs it as a formula.
std::string csv_field(std::string_view s);

}  // namespace yilian
