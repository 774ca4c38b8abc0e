#include "yilian/pacs/dataset_limits.h"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdicent.h>
#include <dcmtk/dcmdata/dcdict.h>
#include <dcmtk/dcmdata/dctag.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace yilian::pacs {
namespace {

constexpr std::uint32_t kUndefined = 0xFFFFFFFFu;
constexpr const char* kDeflated = "1.2.840.10008.1.2.1.99";
constexpr const char* kImplicitLE = "1.2.840.10008.1.2";
constexpr const char* kExplicitBE = "1.2.840.10008.1.2.2";

Error broken(std::string msg) { return make_error(Errc::invalid_argument, std::move(msg)); }

// Sequential bytes with cheap skipping: a file read through a buffer, or memory.
class Source {
 public:
  virtual ~Source() = default;
  // Exactly n bytes into out, or false at the end of the data.
  virtual bool read(void* out, std::size_t n) = 0;
  // Exactly n bytes into out without consuming them.
  virtual bool peek(void* out, std::size_t n) = 0;
  // Skips n bytes; false when fewer remain.
  virtual bool skip(std::uint64_t n) = 0;
  virtual std::uint64_t position() const = 0;
  virtual std::uint64_t size() const = 0;
  bool at_end() const { return position() >= size(); }
  // Up to n bytes; how many were read (0 at the end).
  std::size_t read_some(void* out, std::size_t n) {
    const auto k = static_cast<std::size_t>(std::min<std::uint64_t>(n, size() - position()));
    return k > 0 && read(out, k) ? k : 0;
  }
};

class MemorySource final : public Source {
 public:
  explicit MemorySource(std::string_view data) : data_(data) {}
  bool read(void* out, std::size_t n) override {
    if (data_.size() - pos_ < n) return false;
    std::memcpy(out, data_.data() + pos_, n);
    pos_ += n;
    return true;
  }
  bool peek(void* out, std::size_t n) override {
    if (data_.size() - pos_ < n) return false;
    std::memcpy(out, data_.data() + pos_, n);
    return true;
  }
  bool skip(std::uint64_t n) override {
    if (data_.size() - pos_ < n) return false;
    pos_ += n;
    return true;
  }
  std::uint64_t position() const override { return pos_; }
  std::uint64_t size() const override { return data_.size(); }

 private:
  std::string_view data_;
  std::size_t pos_ = 0;
};

class FileSource final : public Source {
 public:
  explicit FileSource(std::FILE* f) : f_(f) {
    if (std::fseek(f_, 0, SEEK_END) == 0) size_ = static_cast<std::uint64_t>(std::ftell(f_));
    std::rewind(f_);
  }
  bool read(void* out, std::size_t n) override {
    if (size_ - pos_ < n) return false;
    if (std::fread(out, 1, n, f_) != n) return false;
    pos_ += n;
    return true;
  }
  bool peek(void* out, std::size_t n) override {
    if (size_ - pos_ < n || std::fread(out, 1, n, f_) != n) return false;
    return fseeko(f_, static_cast<off_t>(pos_), SEEK_SET) == 0;
  }
  bool skip(std::uint64_t n) override {
    if (size_ - pos_ < n) return false;
    pos_ += n;
    return fseeko(f_, static_cast<off_t>(pos_), SEEK_SET) == 0;
  }
  std::uint64_t position() const override { return pos_; }
  std::uint64_t size() const override { return size_; }

 private:
  std::FILE* f_;
  std::uint64_t size_ = 0, pos_ = 0;
};

struct Encoding {
  bool explicit_vr = true;
  bool big_endian = false;
};

std::uint16_t u16(const unsigned char* p, bool be) {
  return be ? static_cast<std::uint16_t>(p[0] << 8 | p[1])
            : static_cast<std::uint16_t>(p[1] << 8 | p[0]);
}
std::uint32_t u32(const unsigned char* p, bool be) {
  return be ? (std::uint32_t{p[0]} << 24 | std::uint32_t{p[1]} << 16 | std::uint32_t{p[2]} << 8 |
               p[3])
            : (std::uint32_t{p[3]} << 24 | std::uint32_t{p[2]} << 16 | std::uint32_t{p[1]} << 8 |
               p[0]);
}

bool long_length_vr(const char vr[2]) {
  static constexpr std::array<const char*, 13> kLong = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ",
                                                        "UC", "UN", "UR", "UT", "SV", "UV"};
  for (const char* v : kLong) {
    if (vr[0] == v[0] && vr[1] == v[1]) return true;
  }
  return false;
}

// Whether the data dictionary knows `tag` as a sequence (implicit VR carries no VR).
bool dictionary_sequence(std::uint16_t group, std::uint16_t element) {
  const DcmDataDictionary& dict = dcmDataDict.rdlock();
  const DcmDictEntry* e = dict.findEntry(DcmTagKey(group, element), nullptr);
  bool sq = e && e->getEVR() == EVR_SQ;
  dcmDataDict.rdunlock();
  return sq;
}

// One open sequence or item.
struct Frame {
  bool item = false;             // an item (else a sequence)
  bool fragments = false;        // a sequence of encapsulated pixel data fragments
  bool implicit_inside = false;  // an undefined-length UN sequence: its items are implicit VR
  std::uint64_t end = 0;         // where a defined-length frame ends
  bool defined = false;
  std::uint32_t last_tag = 0;  // an item's last data element, for the order check
  bool top_pixel = false;      // the fragments of the data set's own Pixel Data
};

// Walks a data set from the source's position to its end; `layout`, when given, receives
// where the data set's own Pixel Data value (or its fragments) lies.
Status walk(Source& src, Encoding enc, const DatasetLimits& limits,
            PixelDataLayout* layout = nullptr) {
  std::vector<Frame> stack;
  std::uint64_t elements = 0, out_of_order = 0;
  std::uint32_t sequences = 0;
  std::uint32_t top_last_tag = 0;  // the data set's last data element
  unsigned char h[12];

  auto implicit_here = [&] {
    for (auto it = stack.rbegin(); it != stack.rend(); ++it) {
      if (it->implicit_inside) return true;
    }
    return !enc.explicit_vr;
  };

  while (true) {
    // Close every defined-length frame that ends here.
    while (!stack.empty() && stack.back().defined && src.position() >= stack.back().end) {
      if (src.position() > stack.back().end) return broken("an element runs past its sequence");
      if (!stack.back().item) --sequences;
      stack.pop_back();
    }
    if (src.at_end()) break;
    if (!src.read(h, 4)) return broken("data set is truncated");
    const bool be = enc.big_endian;
    const std::uint16_t group = u16(h, be), element = u16(h + 2, be);
    if (++elements > limits.max_elements) {
      return broken("data set holds more than " + std::to_string(limits.max_elements) +
                    " elements");
    }
    const bool in_sequence = !stack.empty() && !stack.back().item;

    if (group == 0xFFFE) {
      if (!src.read(h + 4, 4)) return broken("data set is truncated");
      const std::uint32_t len = u32(h + 4, be);
      if (element == 0xE000) {  // item
        if (!in_sequence) return broken("an item outside a sequence");
        if (stack.back().fragments) {
          if (len == kUndefined) return broken("a pixel data fragment of undefined length");
          if (layout && stack.size() == 1 && stack.back().top_pixel) {
            layout->fragments.push_back({src.position(), len});
          }
          if (!src.skip(len)) return broken("data set is truncated");
          continue;
        }
        Frame f;
        f.item = true;
        f.defined = len != kUndefined;
        f.end = src.position() + (f.defined ? len : 0);
        stack.push_back(f);
      } else if (element == 0xE00D) {  // item delimitation
        if (stack.empty() || !stack.back().item || stack.back().defined)
          return broken("an item delimiter without an open item");
        stack.pop_back();
      } else if (element == 0xE0DD) {  // sequence delimitation
        if (!in_sequence || stack.back().defined)
          return broken("a sequence delimiter without an open sequence");
        --sequences;
        stack.pop_back();
      } else {
        return broken("an unknown delimitation tag");
      }
      continue;
    }
    if (in_sequence) return broken("a data element directly inside a sequence");
    // Elements come in ascending tag order. DCMTK files one that does not by searching the
    // item for its place, so many of them cost time quadratic in the element count; a few
    // (old devices) are tolerated.
    {
      std::uint32_t& last = stack.empty() ? top_last_tag : stack.back().last_tag;
      const std::uint32_t tag = std::uint32_t{group} << 16 | element;
      if (tag <= last && (last != 0 || tag == 0) && ++out_of_order > limits.max_out_of_order) {
        return broken("more than " + std::to_string(limits.max_out_of_order) +
                      " data elements out of tag order");
      }
      last = std::max(last, tag);
    }

    std::uint32_t len = 0;
    bool sequence = false, unknown_sequence = false;
    if (implicit_here()) {
      if (!src.read(h + 4, 4)) return broken("data set is truncated");
      len = u32(h + 4, be);
      sequence = len == kUndefined || dictionary_sequence(group, element);
    } else {
      if (!src.read(h + 4, 2)) return broken("data set is truncated");
      const char vr[2] = {static_cast<char>(h[4]), static_cast<char>(h[5])};
      if (long_length_vr(vr)) {
        if (!src.read(h + 6, 6)) return broken("data set is truncated");
        len = u32(h + 8, be);
      } else {
        if (!src.read(h + 6, 2)) return broken("data set is truncated");
        len = u16(h + 6, be);
      }
      sequence = vr[0] == 'S' && vr[1] == 'Q';
      unknown_sequence = vr[0] == 'U' && vr[1] == 'N' && len == kUndefined;
      if (len == kUndefined && !sequence && !unknown_sequence &&
          !(group == 0x7FE0 && element == 0x0010) && !(vr[0] == 'O' && vr[1] == 'B')) {
        return broken("undefined length on an element that cannot have one");
      }
    }
    const bool pixel_fragments = group == 0x7FE0 && element == 0x0010 && len == kUndefined;
    if (sequence || unknown_sequence || pixel_fragments || len == kUndefined) {
      if (++sequences > limits.max_depth) {
        return broken("sequences nested deeper than " + std::to_string(limits.max_depth));
      }
      Frame f;
      f.fragments = pixel_fragments || (len == kUndefined && !sequence && !unknown_sequence);
      f.implicit_inside = unknown_sequence;
      f.top_pixel = pixel_fragments && stack.empty();
      if (f.top_pixel && layout) layout->encapsulated = true;
      f.defined = len != kUndefined;
      f.end = src.position() + (f.defined ? len : 0);
      stack.push_back(f);
      continue;
    }
    if (layout && stack.empty() && group == 0x0028 && len <= 16 &&
        (element == 0x0002 || element == 0x0004 || element == 0x0006 || element == 0x0008 ||
         element == 0x0010 || element == 0x0011 || element == 0x0100)) {
      unsigned char v[16];
      if (!src.read(v, len)) return broken("data set is truncated");
      if (element == 0x0004) {  // Photometric Interpretation, CS
        std::string& p = layout->photometric;
        p.assign(reinterpret_cast<const char*>(v), len);
        while (!p.empty() && (p.back() == ' ' || p.back() == '\0')) p.pop_back();
      } else if (element == 0x0008) {  // Number of Frames, IS
        std::uint64_t n = 0;
        for (std::uint32_t k = 0; k < len; ++k) {
          if (v[k] >= '0' && v[k] <= '9' && n < (1ull << 40)) n = n * 10 + (v[k] - '0');
        }
        layout->number_of_frames = n;
      } else if (len == 2) {
        const std::uint16_t x = u16(v, be);
        (element == 0x0002   ? layout->samples_per_pixel
         : element == 0x0006 ? layout->planar_configuration
         : element == 0x0010 ? layout->rows
         : element == 0x0011 ? layout->columns
                             : layout->bits_allocated) = x;
      }
      continue;
    }
    if (layout && stack.empty() && group == 0x7FE0 && element == 0x0010) {
      layout->encapsulated = false;
      layout->fragments = {{src.position(), len}};
    }
    if (!src.skip(len))
      return broken("data set is truncated (an element's length runs past the end)");
  }
  for (const Frame& f : stack) {
    if (!f.defined) return broken("data set is truncated (an open sequence or item)");
  }
  return Status::Ok();
}

// Inflates a deflated data set (RFC 1951, no header), bounded.
Result<std::string> inflate_all(Source& src, std::uint64_t max) {
  z_stream z{};
  if (inflateInit2(&z, -MAX_WBITS) != Z_OK) return broken("cannot inflate the data set");
  std::string out;
  std::array<unsigned char, 65536> in{};
  std::array<char, 65536> buf{};
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    std::size_t n = src.read_some(in.data(), in.size());
    if (n == 0) break;
    z.next_in = in.data();
    z.avail_in = static_cast<uInt>(n);
    do {
      z.next_out = reinterpret_cast<Bytef*>(buf.data());
      z.avail_out = static_cast<uInt>(buf.size());
      rc = inflate(&z, Z_NO_FLUSH);
      if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
        inflateEnd(&z);
        return broken("the deflated data set is corrupt");
      }
      out.append(buf.data(), buf.size() - z.avail_out);
      if (out.size() > max) {
        inflateEnd(&z);
        return broken("the deflated data set inflates past the size limit");
      }
    } while (z.avail_out == 0);
  }
  inflateEnd(&z);
  return out;
}

// The data set from the source's position on, in transfer syntax `ts`.
Status check_dataset(Source& src, std::string_view ts, const DatasetLimits& limits,
                     PixelDataLayout* layout = nullptr) {
  if (ts == kDeflated) {
    auto inflated = inflate_all(src, limits.max_inflated);
    if (!inflated.ok()) return inflated.error();
    if (layout) return broken("a deflated data set's pixel data has no place in the file");
    MemorySource mem(*inflated);
    return walk(mem, Encoding{true, false}, limits);
  }
  return walk(src, Encoding{ts != kImplicitLE, ts == kExplicitBE}, limits, layout);
}

Status check(Source& src, const DatasetLimits& limits, PixelDataLayout* layout = nullptr) {
  unsigned char pre[132];
  if (!src.read(pre, sizeof pre) || std::memcmp(pre + 128, "DICM", 4) != 0) {
    return broken("not a DICOM Part 10 file (no DICM prefix)");
  }
  // File meta information: explicit VR little endian, group 0002.
  std::string ts;
  unsigned char h[12];
  while (true) {
    if (!src.peek(h, 2)) return broken("file meta information is truncated");
    if (u16(h, false) != 0x0002) break;  // the data set starts here
    if (!src.read(h, 8)) return broken("file meta information is truncated");
    const char vr[2] = {static_cast<char>(h[4]), static_cast<char>(h[5])};
    std::uint32_t len = u16(h + 6, false);
    if (long_length_vr(vr)) {
      if (!src.read(h + 8, 4)) return broken("file meta information is truncated");
      len = u32(h + 8, false);
      if (len == kUndefined) return broken("file meta information has an undefined length");
    }
    if (u16(h + 2, false) == 0x0010 && len <= 64) {
      ts.resize(len);
      if (!src.read(ts.data(), len)) return broken("file meta information is truncated");
      while (!ts.empty() && (ts.back() == '\0' || ts.back() == ' ')) ts.pop_back();
    } else if (!src.skip(len)) {
      return broken("file meta information is truncated");
    }
  }
  if (layout) layout->transfer_syntax_uid = ts;
  return check_dataset(src, ts, limits, layout);
}

}  // namespace

Status check_part10_structure(std::string_view file, const DatasetLimits& limits) {
  MemorySource src(file);
  return check(src, limits);
}

Status check_dataset_structure(std::string_view dataset, std::string_view transfer_syntax_uid,
                               const DatasetLimits& limits) {
  MemorySource src(dataset);
  return check_dataset(src, transfer_syntax_uid, limits);
}

Status check_part10_file(const std::filesystem::path& file, const DatasetLimits& limits) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(file.c_str(), "rb"), &std::fclose);
  if (!f) return make_error(Errc::io, "cannot read received file " + file.string());
  FileSource src(f.get());
  return check(src, limits);
}

Result<PixelDataLayout> pixel_data_layout(const std::filesystem::path& file,
                                          const DatasetLimits& limits) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(file.c_str(), "rb"), &std::fclose);
  if (!f) return make_error(Errc::io, "cannot read stored file " + file.string());
  FileSource src(f.get());
  PixelDataLayout layout;
  if (Status s = check(src, limits, &layout); !s) return s.error();
  if (layout.fragments.empty()) return make_error(Errc::not_found, "the object has no pixel data");
  return layout;
}

}  // namespace yilian::pacs
