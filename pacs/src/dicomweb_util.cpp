#include "dicomweb_util.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <random>

#include "yilian/common/text.h"

namespace yilian::pacs::web {

const char* level_name(Level l) {
  switch (l) {
    case Level::study:
      return "study";
    case Level::series:
      return "series";
    default:
      return "instance";
  }
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::size_t b = 0;
  while (true) {
    std::size_t e = s.find(sep, b);
    out.push_back(s.substr(b, e == std::string::npos ? std::string::npos : e - b));
    if (e == std::string::npos) return out;
    b = e + 1;
  }
}

bool to_double(const std::string& s, double& out) {
  char* end = nullptr;
  out = std::strtod(s.c_str(), &end);
  return !s.empty() && end == s.c_str() + s.size() && std::isfinite(out);
}

bool to_int(const std::string& s, int& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

namespace {

std::string trim(std::string s) {
  s.erase(0, s.find_first_not_of(" \t"));
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.pop_back();
  return s;
}

std::string unquote(std::string v) {
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  return v;
}

// Splits at `sep` outside double quotes.
std::vector<std::string> split_unquoted(const std::string& s, char sep) {
  std::vector<std::string> out(1);
  bool quoted = false;
  for (char c : s) {
    if (c == '"') quoted = !quoted;
    if (c == sep && !quoted) {
      out.emplace_back();
    } else {
      out.back() += c;
    }
  }
  return out;
}

}  // namespace

std::string header_param(const std::string& header, const std::string& name) {
  for (const std::string& raw : split_unquoted(header, ';')) {
    std::string p = trim(raw);
    std::size_t eq = p.find('=');
    if (eq == std::string::npos || ascii_lower(trim(p.substr(0, eq))) != name) continue;
    return unquote(trim(p.substr(eq + 1)));
  }
  return {};
}

std::optional<std::string> attr(const http::Request& req, const char* keyword, const char* tag) {
  if (auto v = req.query_value(keyword)) return v;
  return req.query_value(tag);
}

// Built member by member: initializer lists would copy every element once more (a study list
// answer builds a few thousand of these).
namespace {
nlohmann::json attribute(const char* vr, nlohmann::json value) {
  nlohmann::json j(nlohmann::json::value_t::object);
  j["vr"] = vr;
  if (!value.is_null()) {
    nlohmann::json& values = j["Value"] = nlohmann::json(nlohmann::json::value_t::array);
    values.push_back(std::move(value));
  }
  return j;
}
}  // namespace

std::string instance_url(const std::string& study, const std::string& series,
                         const std::string& sop) {
  return "/dicom-web/studies/" + study + "/series/" + series + "/instances/" + sop;
}

nlohmann::json dicom_value(const char* vr, const std::string& v) {
  return attribute(vr, v.empty() ? nlohmann::json() : nlohmann::json(v));
}

nlohmann::json dicom_number(const char* vr, std::optional<std::int64_t> v) {
  return attribute(vr, v ? nlohmann::json(*v) : nlohmann::json());
}

nlohmann::json dicom_name(const std::string& v) {
  static constexpr const char* kGroups[] = {"Alphabetic", "Ideographic", "Phonetic"};
  nlohmann::json values(nlohmann::json::value_t::array);
  bool any = false;
  for (const std::string& value : split(v, '\\')) {
    nlohmann::json name(nlohmann::json::value_t::object);
    const std::vector<std::string> groups = split(value, '=');
    for (std::size_t g = 0; g < groups.size() && g < std::size(kGroups); ++g) {
      std::string_view group = groups[g];
      while (!group.empty() && (group.back() == '^' || group.back() == ' ')) group.remove_suffix(1);
      if (!group.empty()) name[kGroups[g]] = std::string(group);
    }
    any |= !name.empty();
    values.push_back(name.empty() ? nlohmann::json() : std::move(name));
  }
  if (!any) return attribute("PN", nullptr);
  nlohmann::json j(nlohmann::json::value_t::object);
  j["vr"] = "PN";
  j["Value"] = std::move(values);
  return j;
}

http::Response dicom_json_response(std::string body) {
  http::Response r;
  r.status = 200;
  r.content_type = "application/dicom+json";
  r.body = std::move(body);
  return r;
}

std::vector<MediaRange> parse_accept(const std::string& accept) {
  std::vector<MediaRange> out;
  for (const std::string& range : split_unquoted(accept, ',')) {
    auto fields = split_unquoted(range, ';');
    MediaRange m;
    m.type = ascii_lower(trim(fields[0]));
    if (m.type.empty()) continue;
    for (std::size_t i = 1; i < fields.size(); ++i) {
      std::string f = trim(fields[i]);
      std::size_t eq = f.find('=');
      if (eq == std::string::npos) continue;
      m.params[ascii_lower(trim(f.substr(0, eq)))] = unquote(trim(f.substr(eq + 1)));
    }
    out.push_back(std::move(m));
  }
  return out;
}

std::optional<FrameChoice> choose_frame_syntax(const std::vector<MediaRange>& ranges,
                                               const std::string& stored_ts,
                                               const std::string& stored_media) {
  constexpr const char* kExplicitLittle = "1.2.840.10008.1.2.1";
  constexpr const char* kJpegLsLossless = "1.2.840.10008.1.2.4.80";
  constexpr const char* kJpegLossless = "1.2.840.10008.1.2.4.70";
  constexpr const char* kRle = "1.2.840.10008.1.2.5";
  if (ranges.empty()) return FrameChoice{};  // decoded, as PS3.18 defaults to
  bool native = false;
  std::optional<std::string> target;
  for (const MediaRange& m : ranges) {
    const std::string type = m.type == "multipart/related" && m.params.count("type")
                                 ? ascii_lower(m.params.at("type"))
                                 : m.type;
    auto t = m.params.find("transfer-syntax");
    const std::string ts = t == m.params.end() ? "" : t->second;
    if (!stored_media.empty() && (ts == "*" || ts == stored_ts || type == stored_media)) {
      return FrameChoice{FrameChoice::How::stored, {}};
    }
    const bool any = type == "*/*" || type == "multipart/related";
    if (any || type == "application/octet-stream") {
      if (ts.empty() || ts == "*" || ts == kExplicitLittle) native = true;
    }
    if (target) continue;
    const bool rle = type == "image/dicom-rle" || type == "image/x-dicom-rle";
    if ((type == "image/jls" || any) && (ts == kJpegLsLossless || (ts.empty() && !any))) {
      target = kJpegLsLossless;
    } else if ((rle || any) && (ts == kRle || (ts.empty() && rle))) {
      target = kRle;
    } else if ((type == "image/jpeg" || any) && ts == kJpegLossless) {
      target = kJpegLossless;  // image/jpeg alone means baseline (lossy): not made here
    }
  }
  if (native) return FrameChoice{};
  if (target) return FrameChoice{FrameChoice::How::transcode, *target};
  return std::nullopt;
}

std::optional<ByteRange> parse_range(const std::string& header, std::uint64_t size) {
  std::string h = trim(header);
  if (ascii_lower(h.substr(0, 6)) != "bytes=" || h.find(',') != std::string::npos)
    return std::nullopt;
  std::string spec = trim(h.substr(6));
  std::size_t dash = spec.find('-');
  if (dash == std::string::npos) return std::nullopt;
  auto number = [](const std::string& s, std::uint64_t& out) {
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return !s.empty() && ec == std::errc() && p == s.data() + s.size();
  };
  std::string a = spec.substr(0, dash), b = spec.substr(dash + 1);
  ByteRange r;
  if (a.empty()) {  // the last n bytes
    std::uint64_t n = 0;
    if (!number(b, n)) return std::nullopt;
    if (n == 0 || size == 0) return ByteRange{0, 0, true};
    r.first = n >= size ? 0 : size - n;
    r.last = size - 1;
    return r;
  }
  if (!number(a, r.first)) return std::nullopt;
  if (b.empty()) {
    r.last = size ? size - 1 : 0;
  } else if (!number(b, r.last) || r.last < r.first) {
    return std::nullopt;
  }
  if (r.first >= size) return ByteRange{0, 0, true};
  r.last = std::min(r.last, size - 1);
  return r;
}

Multipart::Multipart() {
  std::random_device rd;
  static constexpr char kHex[] = "0123456789abcdef";
  boundary_ = "yilian-";
  for (int i = 0; i < 24; ++i) boundary_ += kHex[rd() & 15];
}

std::string Multipart::head(const std::string& content_type, const std::string& location) const {
  std::string h = "--" + boundary_ + "\r\nContent-Type: " + content_type + "\r\n";
  if (!location.empty()) h += "Content-Location: " + location + "\r\n";
  return h + "\r\n";
}

void Multipart::add(const std::string& content_type, std::string bytes,
                    const std::string& location) {
  http::BodyPiece p;
  p.bytes = (parts_ ? "\r\n" : "") + head(content_type, location) + bytes;
  pieces_.push_back(std::move(p));
  ++parts_;
}

void Multipart::add_file(const std::string& content_type, const std::string& file,
                         std::uint64_t offset, std::uint64_t length, const std::string& location) {
  add_file(content_type, file, std::vector<ByteSpan>{{offset, length}}, location);
}

void Multipart::add_file(const std::string& content_type, const std::string& file,
                         const std::vector<ByteSpan>& spans, const std::string& location) {
  http::BodyPiece h;
  h.bytes = (parts_ ? "\r\n" : "") + head(content_type, location);
  pieces_.push_back(std::move(h));
  for (const ByteSpan& s : spans) {
    if (s.length == 0) continue;
    http::BodyPiece f;
    f.file = file;
    f.offset = s.offset;
    f.length = s.length;
    pieces_.push_back(std::move(f));
  }
  ++parts_;
}

http::Response Multipart::finish(const std::string& type) {
  http::BodyPiece end;
  end.bytes = (parts_ ? "\r\n--" : "--") + boundary_ + "--\r\n";
  pieces_.push_back(std::move(end));
  http::Response r;
  r.status = 200;
  r.content_type = "multipart/related; type=\"" + type + "\"; boundary=" + boundary_;
  r.pieces = std::move(pieces_);
  pieces_.clear();
  parts_ = 0;
  return r;
}

bool valid_date_query(const std::string& d) {
  auto date = [](const std::string& s) {
    return s.empty() || (s.size() == 8 && s.find_first_not_of("0123456789") == std::string::npos);
  };
  std::size_t dash = d.find('-');
  if (dash == std::string::npos) return d.size() == 8 && date(d);
  return d.size() > 1 && date(d.substr(0, dash)) && date(d.substr(dash + 1));
}

// Study-level QIDO keys -> a study query; a 400 response on bad input.
std::optional<http::Response> study_query(const http::Request& req, pacs::StudyQuery& q) {
  q.patient_id = attr(req, "PatientID", "00100020").value_or("");
  q.patient_name = attr(req, "PatientName", "00100010").value_or("");
  q.fuzzy_names = req.query_value("fuzzymatching").value_or("") == "true";
  q.study_date = attr(req, "StudyDate", "00080020").value_or("");
  q.accession_number = attr(req, "AccessionNumber", "00080050").value_or("");
  q.modality = attr(req, "ModalitiesInStudy", "00080061").value_or("");
  q.study_description = attr(req, "StudyDescription", "00081030").value_or("");
  if (auto uids = attr(req, "StudyInstanceUID", "0020000D")) {
    std::string list = *uids;
    std::replace(list.begin(), list.end(), '\\', ',');
    for (const std::string& u : split(list, ',')) {
      if (!u.empty()) q.study_uids.push_back(u);
    }
  }
  // Matching keys reach the database as text, which must be UTF-8 (PostgreSQL refuses
  // anything else; SQLite would compare bytes that no stored value has).
  for (const std::string* key :
       {&q.patient_id, &q.patient_name, &q.accession_number, &q.modality, &q.study_description}) {
    if (!is_valid_utf8(*key)) return http::Response::error(400, "matching keys must be UTF-8");
  }
  for (const std::string& uid : q.study_uids) {
    if (!is_valid_utf8(uid)) return http::Response::error(400, "matching keys must be UTF-8");
  }
  if (!q.study_date.empty() && !valid_date_query(q.study_date)) {
    return http::Response::error(
        400, "StudyDate is YYYYMMDD or a range YYYYMMDD-YYYYMMDD (either end open)");
  }
  return std::nullopt;
}

}  // namespace yilian::pacs::web
