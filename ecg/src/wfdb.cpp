#include "yilian/ecg/wfdb.h"

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <sstream>

namespace yilian::ecg {
namespace {

Error bad(const std::string& what) { return make_error(Errc::invalid_argument, what); }

Result<std::string> slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return make_error(Errc::not_found, "cannot open " + p.string());
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

struct SignalSpec {
  std::string file;
  int format = 0;
  double gain = 200;  // ADC units per physical unit
  int baseline = 0;
  std::string units = "mV";
  int initial = 0;
  int checksum = 0;
  bool has_checksum = false;
  std::string description;
};

bool parse_double(const std::string& s, double& out) {
  char* end = nullptr;
  out = std::strtod(s.c_str(), &end);
  return !s.empty() && end == s.c_str() + s.size() && std::isfinite(out);
}

bool parse_int(const std::string& s, long& out) {
  char* end = nullptr;
  out = std::strtol(s.c_str(), &end, 10);
  return !s.empty() && end == s.c_str() + s.size();
}

// "200(1024)/mV" -> gain 200, baseline 1024, units mV.
bool parse_gain(const std::string& field, SignalSpec& s, bool& has_baseline) {
  std::string g = field;
  std::size_t slash = g.find('/');
  if (slash != std::string::npos) {
    s.units = g.substr(slash + 1);
    g = g.substr(0, slash);
  }
  std::size_t paren = g.find('(');
  if (paren != std::string::npos) {
    if (g.back() != ')') return false;
    long b = 0;
    if (!parse_int(g.substr(paren + 1, g.size() - paren - 2), b)) return false;
    s.baseline = static_cast<int>(b);
    has_baseline = true;
    g = g.substr(0, paren);
  }
  if (!parse_double(g, s.gain)) return false;
  if (s.gain == 0) s.gain = 200;  // WFDB: 0 means the default
  return true;
}

double unit_scale(const std::string& units) {
  if (units == "uV") return 0.001;
  if (units == "V") return 1000.0;
  return 1.0;  // mV, or unspecified
}

// PhysioNet headers often carry the patient in comments: "# age: 81", "# sex: female".
void read_patient_comment(const std::string& comment, Patient& patient) {
  std::string c = comment;
  for (char& ch : c) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  c.erase(0, c.find_first_not_of(" \t"));
  auto value = [&c](std::string_view key) -> std::optional<std::string> {
    if (c.rfind(key, 0) != 0) return std::nullopt;
    std::string v = c.substr(key.size());
    v.erase(0, v.find_first_not_of(" \t:"));
    v.erase(v.find_last_not_of(" \t") + 1);
    return v;
  };
  if (auto age = value("age")) {
    long a = 0;
    if (parse_int(*age, a) && a > 0 && a < 130) patient.age = static_cast<int>(a);
  } else if (auto sex = value("sex")) {
    if (*sex == "m" || *sex == "male") patient.sex = 'M';
    if (*sex == "f" || *sex == "female") patient.sex = 'F';
  }
}

}  // namespace

Result<Record> read_wfdb(const std::filesystem::path& header) {
  auto text = slurp(header);
  if (!text.ok()) return text.error();
  return parse_wfdb(*text, header.string(),
                    [&header](const std::string& file) -> Result<std::string> {
                      if (file.find('/') != std::string::npos || file == "..")
                        return bad(file + ": signal files are read beside the header only");
                      return slurp(header.parent_path() / file);
                    });
}

Result<Record> parse_wfdb(std::string_view header_text, const std::string& label,
                          const std::function<Result<std::string>(const std::string&)>& file) {
  std::istringstream lines{std::string(header_text)};
  std::string line;
  std::vector<std::string> content;
  Record rec;
  while (std::getline(lines, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::size_t b = line.find_first_not_of(" \t");
    if (b == std::string::npos) continue;
    if (line[b] == '#') {
      read_patient_comment(line.substr(b + 1), rec.patient);
      continue;
    }
    content.push_back(line.substr(b));
  }
  if (content.empty()) return bad(label + ": empty header");
  std::istringstream first(content[0]);
  std::string name, nsig_s, fs_s, nsamp_s;
  first >> name >> nsig_s;
  first >> fs_s >> nsamp_s;
  long nsig = 0, nsamp = -1;
  if (name.find('/') != std::string::npos) return bad("multi-segment records are not supported");
  if (!parse_int(nsig_s, nsig) || nsig < 1 || nsig > 64)
    return bad(label + ": number of signals must be 1 to 64");
  rec.id = name;
  rec.sampling_hz = 250;
  if (!fs_s.empty()) {
    std::string f = fs_s.substr(0, fs_s.find('/'));
    if (!parse_double(f, rec.sampling_hz)) return bad(label + ": bad sampling frequency");
  }
  if (!(rec.sampling_hz >= 50 && rec.sampling_hz <= 20000))
    return bad(label + ": impossible sampling frequency " + fs_s + " Hz");
  if (!nsamp_s.empty() && !parse_int(nsamp_s, nsamp)) return bad("bad number of samples");
  if (static_cast<long>(content.size()) < 1 + nsig)
    return bad(label + ": " + std::to_string(nsig) + " signals announced, " +
               std::to_string(content.size() - 1) + " described");

  std::vector<SignalSpec> specs;
  for (long i = 0; i < nsig; ++i) {
    std::istringstream f(content[static_cast<std::size_t>(1 + i)]);
    SignalSpec s;
    std::string fmt, gain, adcres, adczero, init, cks, block;
    f >> s.file >> fmt >> gain >> adcres >> adczero >> init >> cks >> block;
    std::getline(f, s.description);
    s.description.erase(0, s.description.find_first_not_of(" \t"));
    long v = 0;
    std::string fmt_base = fmt.substr(0, fmt.find_first_of("x:+"));
    if (!parse_int(fmt_base, v)) return bad("signal " + std::to_string(i) + ": bad format");
    s.format = static_cast<int>(v);
    if (fmt.find_first_of("x:+") != std::string::npos)
      return bad("signal formats with sample multiplicity, skew or offset are not supported");
    if (s.format != 212 && s.format != 16)
      return bad("signal format " + fmt + " is not supported (212 and 16 are)");
    bool has_baseline = false;
    if (!gain.empty() && !parse_gain(gain, s, has_baseline))
      return bad("signal " + std::to_string(i) + ": bad gain " + gain);
    if (!adczero.empty() && parse_int(adczero, v) && !has_baseline)
      s.baseline = static_cast<int>(v);
    if (!init.empty() && parse_int(init, v)) s.initial = static_cast<int>(v);
    if (!cks.empty() && parse_int(cks, v)) {
      s.checksum = static_cast<int>(v);
      s.has_checksum = true;
    }
    specs.push_back(s);
  }

  // Signals sharing a file are interleaved, one sample of each per frame.
  std::map<std::string, std::vector<std::size_t>> files;
  std::vector<std::string> order;
  for (std::size_t i = 0; i < specs.size(); ++i) {
    if (!files.count(specs[i].file)) order.push_back(specs[i].file);
    files[specs[i].file].push_back(i);
  }
  std::vector<std::vector<int>> raw(specs.size());
  for (const std::string& signal_name : order) {
    const auto& members = files[signal_name];
    const int format = specs[members[0]].format;
    for (std::size_t m : members) {
      if (specs[m].format != format)
        return bad(signal_name + ": signals of one file differ in format");
    }
    auto data = file(signal_name);
    if (!data.ok()) return data.error();
    const auto* b = reinterpret_cast<const unsigned char*>(data->data());
    const std::size_t n = members.size();
    std::size_t total = 0;  // samples in the file
    if (format == 16) {
      total = data->size() / 2;
    } else {
      total = data->size() * 2 / 3;
    }
    std::size_t frames = total / n;
    if (nsamp >= 0) {
      if (frames < static_cast<std::size_t>(nsamp))
        return bad(signal_name + ": truncated (" + std::to_string(frames) + " of " +
                   std::to_string(nsamp) + " samples)");
      frames = static_cast<std::size_t>(nsamp);
    }
    for (std::size_t m : members) raw[m].resize(frames);
    const std::size_t count = frames * n;
    auto put = [&](std::size_t k, int v) { raw[members[k % n]][k / n] = v; };
    if (format == 16) {
      for (std::size_t k = 0; k < count; ++k)
        put(k, static_cast<std::int16_t>(b[2 * k] | (b[2 * k + 1] << 8)));
    } else if (n == 2) {  // the common case: two signals, one frame per three bytes
      int* s0 = raw[members[0]].data();
      int* s1 = raw[members[1]].data();
      for (std::size_t f = 0; f < frames; ++f, b += 3) {
        const int v0 = b[0] | ((b[1] & 0x0F) << 8), v1 = b[2] | ((b[1] & 0xF0) << 4);
        s0[f] = v0 - ((v0 & 0x800) << 1);  // sign-extend 12 bits
        s1[f] = v1 - ((v1 & 0x800) << 1);
      }
    } else {
      for (std::size_t k = 0; k < count; ++k) {
        const unsigned char* p = b + (k / 2) * 3;
        const int v = (k % 2 == 0) ? (p[0] | ((p[1] & 0x0F) << 8)) : (p[2] | ((p[1] & 0xF0) << 4));
        put(k, v - ((v & 0x800) << 1));
      }
    }
  }
  for (std::size_t i = 0; i < specs.size(); ++i) {
    const SignalSpec& s = specs[i];
    if (!raw[i].empty() && s.initial != 0 && raw[i][0] != s.initial && s.format == 212) {
      return bad("signal " + std::to_string(i) + ": first sample " + std::to_string(raw[i][0]) +
                 " differs from the header's initial value " + std::to_string(s.initial));
    }
    if (s.has_checksum && nsamp >= 0) {
      std::int32_t sum = 0;
      for (int v : raw[i]) sum += v;
      if (static_cast<std::int16_t>(sum & 0xFFFF) != static_cast<std::int16_t>(s.checksum)) {
        return bad("signal " + std::to_string(i) + " (" + s.description +
                   "): checksum mismatch, the signal file does not match its header");
      }
    }
    Lead lead;
    lead.name = s.description.empty() ? "signal" + std::to_string(i) : s.description;
    const double scale = unit_scale(s.units) / s.gain;
    lead.mv.resize(raw[i].size());
    for (std::size_t k = 0; k < raw[i].size(); ++k) {
      lead.mv[k] = static_cast<float>((raw[i][k] - s.baseline) * scale);
    }
    rec.leads.push_back(std::move(lead));
  }
  return rec;
}

Result<std::vector<Annotation>> read_wfdb_annotations(const std::filesystem::path& file) {
  auto data = slurp(file);
  if (!data.ok()) return data.error();
  const auto* b = reinterpret_cast<const unsigned char*>(data->data());
  const std::size_t size = data->size();
  std::vector<Annotation> out;
  std::int64_t t = 0;
  std::size_t i = 0;
  auto word = [&](std::size_t at) { return static_cast<unsigned>(b[at] | (b[at + 1] << 8)); };
  while (true) {
    if (i + 2 > size) return bad(file.string() + ": annotation file ends without its end mark");
    unsigned w = word(i);
    i += 2;
    unsigned code = w >> 10, interval = w & 0x3FF;
    if (code == 0 && interval == 0) break;
    if (code == 59) {  // SKIP: a 32-bit interval follows, high half first
      if (i + 4 > size) return bad(file.string() + ": truncated SKIP");
      std::int32_t skip = static_cast<std::int32_t>((word(i) << 16) | word(i + 2));
      i += 4;
      t += skip;
    } else if (code == 63) {  // AUX: `interval` bytes, padded to even
      if (i + interval > size) return bad(file.string() + ": truncated AUX");
      if (!out.empty()) out.back().aux.assign(reinterpret_cast<const char*>(b + i), interval);
      i += interval + (interval & 1);
    } else if (code == 60 || code == 61 || code == 62) {
      // NUM, SUB, CHN modify the previous annotation; not used here.
    } else {
      t += interval;
      out.push_back(Annotation{t, static_cast<int>(code), {}});
    }
  }
  return out;
}

Status write_wfdb_annotations(const std::filesystem::path& file,
                              const std::vector<Annotation>& annotations) {
  std::string out;
  auto put = [&](unsigned w) {
    out += static_cast<char>(w & 0xFF);
    out += static_cast<char>((w >> 8) & 0xFF);
  };
  std::int64_t t = 0;
  for (const Annotation& a : annotations) {
    std::int64_t d = a.sample - t;
    if (d < 0 || a.code < 1 || a.code > 49) return bad("annotations must be sorted, codes 1..49");
    if (d > 1023) {
      put(59u << 10);
      auto v = static_cast<std::uint32_t>(d);
      put(v >> 16);
      put(v & 0xFFFF);
      d = 0;
    }
    put((static_cast<unsigned>(a.code) << 10) | static_cast<unsigned>(d));
    if (!a.aux.empty()) {
      std::size_t n = std::min<std::size_t>(a.aux.size(), 255);
      put((63u << 10) | static_cast<unsigned>(n));
      out.append(a.aux, 0, n);
      if (n & 1) out += '\0';
    }
    t = a.sample;
  }
  put(0);
  std::ofstream f(file, std::ios::binary | std::ios::trunc);
  f.write(out.data(), static_cast<std::streamsize>(out.size()));
  if (!f) return make_error(Errc::io, "cannot write " + file.string());
  return Status::Ok();
}

}  // namespace yilian::ecg
