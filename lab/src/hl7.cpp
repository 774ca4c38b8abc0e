#include "yilian/lab/hl7.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>

#include "yilian/common/text.h"

namespace yilian::lab {
namespace {

std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out;
  std::size_t start = 0;
  for (;;) {
    std::size_t at = s.find(sep, start);
    if (at == std::string_view::npos) {
      out.emplace_back(s.substr(start));
      return out;
    }
    out.emplace_back(s.substr(start, at - start));
    start = at + 1;
  }
}

std::string_view nth(std::string_view s, char sep, std::size_t index) {
  for (std::size_t i = 0; i < index; ++i) {
    std::size_t at = s.find(sep);
    if (at == std::string_view::npos) return {};
    s.remove_prefix(at + 1);
  }
  return s.substr(0, s.find(sep));
}

Hl7Error reject(int code, std::string text, std::string location = {}) {
  return Hl7Error{"AR", code, std::move(location), std::move(text)};
}
Hl7Error error(int code, std::string text, std::string location = {}) {
  return Hl7Error{"AE", code, std::move(location), std::move(text)};
}

bool separator_char(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u > 0x20 && u < 0x7f && !std::isalnum(u);
}

int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Days since 1970-01-01 of a proleptic Gregorian date.
long long days_from_civil(int y, unsigned m, unsigned d) {
  y -= m <= 2;
  const long long era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<long long>(doe) - 719468;
}

void civil_from_days(long long z, int& y, unsigned& m, unsigned& d) {
  z += 719468;
  const long long era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y = static_cast<int>(yoe + era * 400) + (m <= 2);
}

bool leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }
unsigned month_days(int y, unsigned m) {
  static const unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && leap(y) ? 29 : kDays[m - 1];
}

// A decimal number as HL7's NM type writes it: optional sign, digits, optional fraction.
std::optional<double> nm_value(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  if (s.empty() || s.size() > 32) return std::nullopt;
  std::size_t i = (s[0] == '+' || s[0] == '-') ? 1 : 0;
  bool digit = false, dot = false;
  for (std::size_t j = i; j < s.size(); ++j) {
    if (std::isdigit(static_cast<unsigned char>(s[j]))) {
      digit = true;
    } else if (s[j] == '.' && !dot) {
      dot = true;
    } else {
      return std::nullopt;
    }
  }
  if (!digit) return std::nullopt;
  std::string text(s.substr(s[0] == '+' ? 1 : 0));
  double v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || p != text.data() + text.size()) return std::nullopt;
  return v;
}

std::string location(std::string_view segment, std::size_t sequence, std::size_t field) {
  return std::string(segment) + "^" + std::to_string(sequence) + "^" + std::to_string(field);
}

}  // namespace

std::string Message::get(const Segment& s, std::size_t n, std::size_t c) const {
  if (n >= s.fields.size()) return {};
  if (s.name() == "MSH" && n <= 2) return s.fields[n];  // the separators themselves
  std::string_view f = nth(s.fields[n], repetition, 0);
  std::string_view comp = nth(f, component, c - 1);
  // Unescape (HL7 v2 section 2.7): separators, hexadecimal data, line breaks; formatting and
  // character-set switching sequences are dropped; an unterminated one is kept as it is.
  std::string out;
  out.reserve(comp.size());
  for (std::size_t i = 0; i < comp.size(); ++i) {
    if (comp[i] != escape) {
      out += comp[i];
      continue;
    }
    std::size_t end = comp.find(escape, i + 1);
    if (end == std::string_view::npos) {
      out.append(comp.substr(i));
      break;
    }
    std::string_view seq = comp.substr(i + 1, end - i - 1);
    if (seq == "F")
      out += field;
    else if (seq == "S")
      out += component;
    else if (seq == "T")
      out += subcomponent;
    else if (seq == "R")
      out += repetition;
    else if (seq == "E")
      out += escape;
    else if (seq == ".br")
      out += '\n';
    else if (!seq.empty() && seq[0] == 'X' && seq.size() % 2 == 1) {
      for (std::size_t k = 1; k + 1 < seq.size(); k += 2) {
        int hi = hex(seq[k]), lo = hex(seq[k + 1]);
        if (hi < 0 || lo < 0) break;
        out += static_cast<char>(hi * 16 + lo);
      }
    }
    i = end;
  }
  return out;
}

const Segment* Message::find(std::string_view name) const {
  for (const Segment& s : segments) {
    if (s.name() == name) return &s;
  }
  return nullptr;
}

std::string Message::get(std::string_view name, std::size_t n, std::size_t c) const {
  const Segment* s = find(name);
  return s ? get(*s, n, c) : std::string();
}

std::variant<Message, Hl7Error> parse(std::string_view bytes) {
  if (bytes.size() > kMaxMessageBytes) {
    return reject(207, "message larger than " + std::to_string(kMaxMessageBytes) + " bytes");
  }
  if (bytes.size() < 8 || bytes.substr(0, 3) != "MSH") {
    return reject(100, "an HL7 message starts with its MSH segment");
  }
  Message m;
  m.field = bytes[3];
  std::size_t enc_end = bytes.find(m.field, 4);
  if (enc_end == std::string_view::npos) enc_end = bytes.find_first_of("\r\n", 4);
  std::string_view enc = bytes.substr(4, enc_end == std::string_view::npos ? 0 : enc_end - 4);
  if (enc.size() < 4 || enc.size() > 5) {
    return reject(100, "MSH-2 must hold the four encoding characters (^~\\&)", "MSH^1^2");
  }
  m.component = enc[0];
  m.repetition = enc[1];
  m.escape = enc[2];
  m.subcomponent = enc[3];
  std::string all{m.field};
  all += enc;
  for (char c : all) {
    if (!separator_char(c)) {
      return reject(100, "the separators must be printable punctuation", "MSH^1^2");
    }
  }
  std::string sorted = all;
  std::sort(sorted.begin(), sorted.end());
  if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end()) {
    return reject(100, "the field separator and the encoding characters must all differ",
                  "MSH^1^2");
  }
  std::size_t start = 0;
  while (start < bytes.size()) {
    std::size_t end = bytes.find_first_of("\r\n", start);
    if (end == std::string_view::npos) end = bytes.size();
    std::string_view line = bytes.substr(start, end - start);
    start = end + 1;
    if (line.empty()) continue;
    if (m.segments.size() >= kMaxSegments) {
      return reject(207, "more than " + std::to_string(kMaxSegments) + " segments");
    }
    Segment seg;
    seg.fields = split(line, m.field);
    const std::string& name = seg.fields[0];
    const bool name_ok = name.size() == 3 && std::all_of(name.begin(), name.end(), [](char c) {
                           return std::isupper(static_cast<unsigned char>(c)) ||
                                  std::isdigit(static_cast<unsigned char>(c));
                         });
    if (!name_ok) {
      return reject(100, "segment " + std::to_string(m.segments.size() + 1) +
                             " has no valid segment name (three capitals or digits)");
    }
    if (m.segments.empty()) {
      // MSH-1 is the field separator itself: MSH-n at index n like every other segment.
      seg.fields.insert(seg.fields.begin() + 1, std::string(1, m.field));
    } else if (name == "MSH") {
      return reject(100, "one message per MSH: a second MSH segment was found");
    }
    m.segments.push_back(std::move(seg));
  }
  return m;
}

std::optional<std::string> hl7_time(std::string_view ts, int utc_offset_minutes) {
  std::size_t digits = 0;
  while (digits < ts.size() && std::isdigit(static_cast<unsigned char>(ts[digits]))) ++digits;
  if (digits < 8 || digits > 14 || digits % 2 != 0) return std::nullopt;
  auto num = [&](std::size_t at, std::size_t n) {
    int v = 0;
    for (std::size_t i = at; i < at + n; ++i) v = v * 10 + (ts[i] - '0');
    return v;
  };
  int year = num(0, 4), month = num(4, 2), day = num(6, 2);
  int hour = digits >= 10 ? num(8, 2) : 0, minute = digits >= 12 ? num(10, 2) : 0;
  int second = digits >= 14 ? num(12, 2) : 0;
  if (year < 1900 || year > 2200 || month < 1 || month > 12 || day < 1 ||
      day > static_cast<int>(month_days(year, static_cast<unsigned>(month))) || hour > 23 ||
      minute > 59 || second > 59)
    return std::nullopt;
  std::size_t i = digits;
  int millis = 0;
  if (i < ts.size() && ts[i] == '.') {
    if (digits != 14) return std::nullopt;
    std::size_t f = ++i;
    while (i < ts.size() && std::isdigit(static_cast<unsigned char>(ts[i]))) ++i;
    if (i == f || i - f > 4) return std::nullopt;
    std::string frac(ts.substr(f, i - f));
    frac.resize(3, '0');
    millis = std::stoi(frac.substr(0, 3));
  }
  int offset = utc_offset_minutes;
  if (i < ts.size()) {
    if ((ts[i] != '+' && ts[i] != '-') || ts.size() - i != 5) return std::nullopt;
    for (std::size_t k = i + 1; k < ts.size(); ++k) {
      if (!std::isdigit(static_cast<unsigned char>(ts[k]))) return std::nullopt;
    }
    int hh = num(i + 1, 2), mm = num(i + 3, 2);
    if (hh > 14 || mm > 59) return std::nullopt;
    offset = (ts[i] == '-' ? -1 : 1) * (hh * 60 + mm);
  }
  long long minutes =
      days_from_civil(year, static_cast<unsigned>(month), static_cast<unsigned>(day)) * 1440 +
      hour * 60 + minute - offset;
  long long days = minutes >= 0 ? minutes / 1440 : (minutes - 1439) / 1440;
  long long in_day = minutes - days * 1440;
  int y = 0;
  unsigned mo = 0, d = 0;
  civil_from_days(days, y, mo, d);
  char out[96];
  std::snprintf(out, sizeof out, "%04d-%02u-%02uT%02lld:%02lld:%02d.%03dZ", y, mo, d, in_day / 60,
                in_day % 60, second % 60, millis % 1000);
  return std::string(out);
}

std::variant<OruReport, Hl7Error> read_oru(const Message& m, int utc_offset_minutes,
                                           const Decode& decode) {
  const Segment& msh = m.segments.front();
  OruReport r;
  if (m.get(msh, 9, 1) != "ORU") {
    return reject(200, "only ORU^R01 laboratory results are accepted here", "MSH^1^9");
  }
  if (m.get(msh, 9, 2) != "R01") {
    return reject(201, "only the R01 event of ORU is accepted", "MSH^1^9");
  }
  r.control_id = m.get(msh, 10);
  if (r.control_id.empty() || r.control_id.size() > 199 || !is_valid_utf8(r.control_id)) {
    return reject(101, "MSH-10 message control id is required (at most 199 characters)",
                  "MSH^1^10");
  }
  const std::string processing = m.get(msh, 11);
  if (processing != "P" && processing != "T") {
    return reject(202,
                  "MSH-11 processing id must be P or T, not '" + clip_utf8(processing, 8) + "'",
                  "MSH^1^11");
  }
  const std::string version = m.get(msh, 12);
  if (version.size() < 3 || version.substr(0, 2) != "2." || version[2] < '3' || version[2] > '8') {
    return reject(203, "MSH-12 version must be 2.3 to 2.8, not '" + clip_utf8(version, 12) + "'",
                  "MSH^1^12");
  }
  r.charset = m.get(msh, 18);
  auto text = [&](std::string raw) -> std::optional<std::string> {
    if (decode) return decode(raw, r.charset);
    if (is_valid_utf8(raw)) return raw;
    return std::nullopt;
  };
  auto field = [&](const Segment& s, std::size_t n, std::size_t c, std::size_t seq,
                   std::string& out) -> std::optional<Hl7Error> {
    auto t = text(m.get(s, n, c));
    if (!t) {
      return error(102,
                   "text is not valid " + (r.charset.empty() ? std::string("UTF-8") : r.charset) +
                       " (MSH-18)",
                   location(s.name(), seq, n));
    }
    for (char ch : *t) {
      if (static_cast<unsigned char>(ch) < 0x20 && ch != '\n') {
        return error(102, "control characters in a value", location(s.name(), seq, n));
      }
    }
    out = std::move(*t);
    return std::nullopt;
  };
  r.sending_app = m.get(msh, 3);
  r.sending_facility = m.get(msh, 4);
  if (r.sending_facility.empty()) {
    return reject(101, "MSH-4 sending facility is required: it names the member institution",
                  "MSH^1^4");
  }

  const Segment* pid = m.find("PID");
  if (!pid) return error(101, "the PID segment (the patient) is required", "PID");
  if (auto e = field(*pid, 3, 1, 1, r.patient_id)) return *e;
  if (r.patient_id.empty()) return error(101, "PID-3 patient identifier is required", "PID^1^3");
  if (r.patient_id.size() > 64 || r.patient_id.find_first_of("*?\\") != std::string::npos) {
    return error(102, "PID-3 is not a plain patient identifier", "PID^1^3");
  }
  std::string family, given;
  if (auto e = field(*pid, 5, 1, 1, family)) return *e;
  if (auto e = field(*pid, 5, 2, 1, given)) return *e;
  r.patient_name = given.empty() ? family : family + "^" + given;

  // OBR opens an order; its OBX follow it.
  std::size_t obr_seq = 0, obx_seq = 0;
  Observation order;
  bool in_order = false;
  for (const Segment& s : m.segments) {
    if (s.name() == "OBR") {
      ++obr_seq;
      in_order = true;
      order = Observation{};
      if (auto e = field(s, 4, 1, obr_seq, order.order_code)) return *e;
      if (auto e = field(s, 4, 2, obr_seq, order.order_name)) return *e;
      const std::string when = m.get(s, 7);
      if (when.empty()) {
        return error(101, "OBR-7 specimen collection time is required",
                     location("OBR", obr_seq, 7));
      }
      auto t = hl7_time(when, utc_offset_minutes);
      if (!t) return error(102, "OBR-7 is not an HL7 time stamp", location("OBR", obr_seq, 7));
      order.specimen_time = *t;
      continue;
    }
    if (s.name() != "OBX") continue;
    ++obx_seq;
    const std::string at = "OBX";
    if (!in_order) return error(100, "an OBX before any OBR", location(at, obx_seq, 0));
    if (r.observations.size() >= 2000) return error(207, "more than 2000 results in a message");
    Observation o = order;
    o.value_type = m.get(s, 2);
    if (auto e = field(s, 3, 1, obx_seq, o.code)) return *e;
    if (o.code.empty() || o.code.size() > 64) {
      return error(101, "OBX-3 observation identifier is required", location(at, obx_seq, 3));
    }
    if (auto e = field(s, 3, 2, obx_seq, o.code_name)) return *e;
    if (auto e = field(s, 3, 3, obx_seq, o.code_system)) return *e;
    if (auto e = field(s, 3, 4, obx_seq, o.alt_code)) return *e;
    if (auto e = field(s, 3, 6, obx_seq, o.alt_system)) return *e;
    const std::string raw = m.get(s, 5);
    if (o.value_type == "NM") {
      o.numeric = nm_value(raw);
      if (!o.numeric) {
        return error(102, "OBX-5 is not a number (value type NM)", location(at, obx_seq, 5));
      }
      o.value = raw;
    } else if (o.value_type == "SN") {
      // Structured numeric: comparator^num1^separator^num2 (">^200", "^1^:^128").
      std::string cmp = m.get(s, 5, 1), n1 = m.get(s, 5, 2), sep = m.get(s, 5, 3),
                  n2 = m.get(s, 5, 4);
      auto v1 = nm_value(n1);
      if (!v1) return error(102, "OBX-5 is not a structured numeric", location(at, obx_seq, 5));
      o.value = cmp + n1 + sep + n2;
      if ((cmp.empty() || cmp == "=") && sep.empty()) o.numeric = v1;
    } else if (o.value_type == "CE" || o.value_type == "CWE") {
      std::string code, label;
      if (auto e = field(s, 5, 1, obx_seq, code)) return *e;
      if (auto e = field(s, 5, 2, obx_seq, label)) return *e;
      o.value = label.empty() ? code : label;
    } else if (o.value_type == "ST" || o.value_type == "TX" || o.value_type == "FT") {
      if (auto e = field(s, 5, 1, obx_seq, o.value)) return *e;
    } else {
      return error(103,
                   "OBX-2 value type '" + clip_utf8(o.value_type, 8) +
                       "' is not accepted (NM, SN, ST, TX, FT, CE, CWE)",
                   location(at, obx_seq, 2));
    }
    if (o.value.empty()) return error(101, "OBX-5 value is required", location(at, obx_seq, 5));
    if (o.value.size() > 4096)
      return error(102, "OBX-5 longer than 4096 bytes", location(at, obx_seq, 5));
    if (auto e = field(s, 6, 1, obx_seq, o.units)) return *e;
    if (auto e = field(s, 7, 1, obx_seq, o.reference_range)) return *e;
    // OBX-8: every repetition (H, L, HH, LL, A, N, ...), joined by ",".
    if (s.fields.size() > 8) {
      for (const std::string& rep : split(s.fields[8], m.repetition)) {
        if (rep.empty()) continue;
        if (!o.flags.empty()) o.flags += ",";
        o.flags += clip_utf8(to_valid_utf8(rep), 8);
      }
    }
    o.status = m.get(s, 11);
    if (o.status != "F" && o.status != "C" && o.status != "P") {
      return error(103, "OBX-11 result status must be F, C or P", location(at, obx_seq, 11));
    }
    const std::string observed = m.get(s, 14);
    if (!observed.empty()) {
      auto t = hl7_time(observed, utc_offset_minutes);
      if (!t) return error(102, "OBX-14 is not an HL7 time stamp", location(at, obx_seq, 14));
      o.observed_time = *t;
    }
    if (auto e = field(s, 23, 1, obx_seq, o.performing_lab)) return *e;
    if (o.performing_lab.empty()) o.performing_lab = r.sending_facility;
    r.observations.push_back(std::move(o));
  }
  if (r.observations.empty()) return error(101, "no results: an ORU^R01 carries OBX segments");
  return r;
}

std::string escape(std::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '|':
        out += "\\F\\";
        break;
      case '^':
        out += "\\S\\";
        break;
      case '&':
        out += "\\T\\";
        break;
      case '~':
        out += "\\R\\";
        break;
      case '\\':
        out += "\\E\\";
        break;
      case '\r':
      case '\n':
        out += "\\.br\\";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string make_ack(const Message* in, std::string_view code, const Hl7Error* err,
                     std::string_view text, std::string_view control_id, std::string_view now) {
  auto from = [&](std::size_t n) {
    if (!in || in->segments.empty()) return std::string();
    return escape(to_valid_utf8(in->get(in->segments.front(), n)));
  };
  std::string processing = from(11);
  if (processing != "P" && processing != "T") processing = "P";
  std::string out = "MSH|^~\\&|YILIAN|YILIAN|" + from(3) + "|" + from(4) + "|" + std::string(now) +
                    "||ACK^R01^ACK|" + escape(control_id) + "|" + processing +
                    "|2.5.1|||||||UNICODE UTF-8\r";
  out += "MSA|" + std::string(code) + "|" + from(10) + "|" + escape(to_valid_utf8(text)) + "\r";
  if (err) {
    static const std::pair<int, const char*> kNames[] = {
        {100, "Segment sequence error"},    {101, "Required field missing"},
        {102, "Data type error"},           {103, "Table value not found"},
        {200, "Unsupported message type"},  {201, "Unsupported event code"},
        {202, "Unsupported processing id"}, {203, "Unsupported version id"},
        {204, "Unknown key identifier"},    {207, "Application internal error"}};
    std::string name = "Application error";
    for (const auto& [c, n] : kNames) {
      if (c == err->code) name = n;
    }
    out += "ERR||" + err->location + "|" + std::to_string(err->code) + "^" + name +
           "^HL70357|E||||" + escape(to_valid_utf8(err->text)) + "\r";
  }
  return out;
}

}  // namespace yilian::lab
