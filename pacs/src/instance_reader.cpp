#include "instance_reader.h"

#include "yilian/common/text.h"
#include "yilian/pacs/charset.h"

#include "yilian/viewer/pixel_frames.h"
#include "yilian/viewer/render.h"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcistrmb.h>
#include <dcmtk/dcmdata/dcjson.h>
#include <dcmtk/dcmdata/dcpixel.h>
#include <dcmtk/dcmdata/dcpixseq.h>
#include <dcmtk/dcmdata/dcpxitem.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmdata/dcxfer.h>

#include <cstdio>
#include <set>
#include <sstream>

namespace yilian::pacs {
namespace {

// Values larger than this stay on disk until asked for; binary ones are sent by reference.
constexpr Uint32 kInlineLimit = 1024;

std::string hex_tag(const DcmTagKey& t) {
  char buf[9];
  std::snprintf(buf, sizeof buf, "%04X%04X", t.getGroup(), t.getElement());
  return buf;
}

bool is_binary(DcmEVR vr) {
  switch (vr) {
    case EVR_OB:
    case EVR_OW:
    case EVR_OF:
    case EVR_OD:
    case EVR_OL:
    case EVR_OV:
    case EVR_UN:
    case EVR_ox:
    case EVR_px:
      return true;
    default:
      return false;
  }
}

// The bytes of a binary value, whatever its VR (little endian on this host).
const void* raw_value(DcmElement& e) {
  OFCondition c;
  switch (e.getTag().getEVR()) {
    case EVR_OW: {
      Uint16* v = nullptr;
      c = e.getUint16Array(v);
      return c.good() ? v : nullptr;
    }
    case EVR_OF: {
      Float32* v = nullptr;
      c = e.getFloat32Array(v);
      return c.good() ? v : nullptr;
    }
    case EVR_OD: {
      Float64* v = nullptr;
      c = e.getFloat64Array(v);
      return c.good() ? v : nullptr;
    }
    case EVR_OL: {
      Uint32* v = nullptr;
      c = e.getUint32Array(v);
      return c.good() ? v : nullptr;
    }
    default: {
      Uint8* v = nullptr;
      c = e.getUint8Array(v);
      return c.good() ? v : nullptr;
    }
  }
}

// Compact DICOM JSON where the chosen top-level binary values are BulkDataURIs. DCMTK only
// tells the tag, so the nesting depth is tracked to leave nested values (icon images) inline.
class BulkDataFormat : public DcmJsonFormatCompact {
 public:
  BulkDataFormat(std::set<DcmTagKey> tags, std::string base)
      : DcmJsonFormatCompact(OFFalse), tags_(std::move(tags)), base_(std::move(base)) {}

  OFBool asBulkDataURI(const DcmTagKey& tag, OFString& uri) override {
    if (depth_ != 0 || !tags_.count(tag)) return OFFalse;
    uri = (base_ + "/" + hex_tag(tag)).c_str();
    return OFTrue;
  }
  void increaseIndention() override { ++depth_; }
  void decreaseIndention() override { --depth_; }

 private:
  std::set<DcmTagKey> tags_;
  std::string base_;
  int depth_ = 0;
};

Result<DcmFileFormat*> load(DcmFileFormat& ff, const std::filesystem::path& file) {
  OFCondition c = ff.loadFile(file.c_str(), EXS_Unknown, EGL_noChange, kInlineLimit);
  if (c.bad())
    return make_error(Errc::io, std::string("cannot read the stored object: ") + c.text());
  return &ff;
}

std::string xfer_uid(E_TransferSyntax x) { return DcmXfer(x).getXferID(); }

}  // namespace

std::string frame_media_type(const std::string& ts) {
  DcmXfer x(ts.c_str());
  if (!x.isEncapsulated()) return "";
  if (ts == UID_JPEGProcess1TransferSyntax || ts == UID_JPEGProcess2_4TransferSyntax ||
      ts == UID_JPEGProcess14TransferSyntax || ts == UID_JPEGProcess14SV1TransferSyntax)
    return "image/jpeg";
  if (ts == UID_JPEGLSLosslessTransferSyntax || ts == UID_JPEGLSLossyTransferSyntax)
    return "image/jls";
  if (ts == UID_JPEG2000LosslessOnlyTransferSyntax || ts == UID_JPEG2000TransferSyntax)
    return "image/jp2";
  if (ts == UID_RLELosslessTransferSyntax) return "image/x-dicom-rle";
  if (ts == UID_MPEG2MainProfileAtMainLevelTransferSyntax ||
      ts == UID_MPEG2MainProfileAtHighLevelTransferSyntax)
    return "video/mpeg2";
  if (ts.rfind("1.2.840.10008.1.2.4.10", 0) == 0) return "video/mp4";
  return "application/octet-stream";
}

std::optional<std::string> part10_study_uid(std::string_view bytes) {
  DcmInputBufferStream in;
  in.setBuffer(bytes.data(), static_cast<offile_off_t>(bytes.size()));
  in.setEos();
  DcmFileFormat ff;
  ff.transferInit();
  OFCondition c = ff.read(in, EXS_Unknown, EGL_noChange, kInlineLimit);
  ff.transferEnd();
  OFString uid;
  if (c.bad() || ff.getDataset()->findAndGetOFString(DCM_StudyInstanceUID, uid).bad())
    return std::nullopt;
  std::string out = uid.c_str();
  while (!out.empty() && (out.back() == ' ' || out.back() == '\0')) out.pop_back();
  return out;
}

Result<std::string> instance_metadata_json(const std::filesystem::path& file,
                                           const std::string& bulk_uri_base) {
  // JSON is UTF-8: convert from the object's character set. Objects that declare none, or
  // one their bytes are not in (GB18030 at Chinese sites, very often), are read again as
  // GB18030, and whatever is still not UTF-8 is replaced: the answer is always valid JSON.
  std::string out;
  for (int attempt = 0; attempt < 2; ++attempt) {
    DcmFileFormat ff;
    if (auto l = load(ff, file); !l.ok()) return l.error();
    DcmDataset* ds = ff.getDataset();
    std::set<DcmTagKey> bulk;
    for (unsigned long i = 0; i < ds->card(); ++i) {
      DcmElement* e = ds->getElement(i);
      if (e->getTag() == DCM_PixelData ||
          (is_binary(e->getTag().getEVR()) && e->getLength() > kInlineLimit)) {
        bulk.insert(e->getTag());
      }
    }
    if (attempt == 1) {
      (void)ds->putAndInsertString(DCM_SpecificCharacterSet, TextDecoding{}.charset.c_str());
      (void)ds->convertToUTF8();
    } else if (ds->convertToUTF8().bad()) {
      continue;
    }
    BulkDataFormat format(std::move(bulk), bulk_uri_base);
    std::ostringstream json;
    json << '{';  // DCMTK writes the members of the data set's object, not its braces
    OFCondition c = ds->writeJson(json, format);
    if (c.bad()) return make_error(Errc::io, std::string("cannot write DICOM JSON: ") + c.text());
    json << '}';
    out = json.str();
    if (is_valid_utf8(out)) return out;
  }
  return to_valid_utf8(out);
}

namespace {

Result<std::vector<Frame>> frames_of(DcmDataset* ds, const std::vector<std::uint32_t>& numbers,
                                     bool keep_stored) {
  DcmElement* element = nullptr;
  if (ds->findAndGetElement(DCM_PixelData, element).bad() || !element) {
    return make_error(Errc::invalid_argument, "the object has no pixel data");
  }
  auto* pixels = static_cast<DcmPixelData*>(element);
  Sint32 count = 1;
  (void)ds->findAndGetSint32(DCM_NumberOfFrames, count);
  const Uint32 frames = count < 1 ? 1u : static_cast<Uint32>(count);
  for (std::uint32_t n : numbers) {
    if (n < 1 || n > frames) {
      return make_error(Errc::not_found, "frame " + std::to_string(n) + " of " +
                                             std::to_string(frames) + " does not exist");
    }
  }
  const E_TransferSyntax stored = ds->getOriginalXfer();
  const DcmXfer stored_xfer(stored);
  std::vector<Frame> out;
  if (stored_xfer.isEncapsulated() && keep_stored) {
    DcmPixelSequence* seq = nullptr;
    if (pixels->getEncapsulatedRepresentation(stored, nullptr, seq).bad() || !seq) {
      return make_error(Errc::invalid_argument, "the compressed pixel data cannot be read");
    }
    for (std::uint32_t n : numbers) {
      auto bytes = viewer::encapsulated_frame(*seq, n - 1, frames);
      if (!bytes.ok()) return bytes.error();
      out.push_back({std::move(*bytes), xfer_uid(stored), frame_media_type(xfer_uid(stored))});
    }
    return out;
  }
  if (viewer::is_jpeg2000(xfer_uid(stored))) {  // DCMTK has no codec: the asked frames only
    for (std::uint32_t n : numbers) {
      auto decoded = viewer::decode_jpeg2000_frame(*ds, n - 1, frames);
      if (!decoded.ok()) return decoded.error();
      out.push_back({std::move(*decoded), UID_LittleEndianExplicitTransferSyntax,
                     "application/octet-stream"});
    }
    return out;
  }
  Uint32 size = 0;
  if (pixels->getUncompressedFrameSize(ds, size).bad() || size == 0) {
    return make_error(Errc::invalid_argument, "the pixel data description is incomplete");
  }
  for (std::uint32_t n : numbers) {
    Frame f;
    f.bytes.resize(size);
    Uint32 start = 0;
    OFString colour;
    OFCondition c = pixels->getUncompressedFrame(ds, n - 1, start, f.bytes.data(), size, colour);
    if (c.bad()) {
      return make_error(Errc::invalid_argument,
                        std::string("cannot decode frame ") + std::to_string(n) + ": " + c.text());
    }
    f.transfer_syntax_uid = UID_LittleEndianExplicitTransferSyntax;
    f.media_type = "application/octet-stream";
    out.push_back(std::move(f));
  }
  return out;
}

}  // namespace

Result<std::vector<Frame>> read_frames(const std::filesystem::path& file,
                                       const std::vector<std::uint32_t>& numbers,
                                       bool keep_stored) {
  DcmFileFormat ff;
  if (auto l = load(ff, file); !l.ok()) return l.error();
  return frames_of(ff.getDataset(), numbers, keep_stored);
}

Result<std::vector<Frame>> read_frames(std::string_view part10,
                                       const std::vector<std::uint32_t>& numbers) {
  DcmInputBufferStream in;
  in.setBuffer(part10.data(), static_cast<offile_off_t>(part10.size()));
  in.setEos();
  DcmFileFormat ff;
  ff.transferInit();
  OFCondition c = ff.read(in, EXS_Unknown, EGL_noChange);
  ff.transferEnd();
  if (c.bad()) return make_error(Errc::invalid_argument, std::string("unreadable: ") + c.text());
  return frames_of(ff.getDataset(), numbers, true);
}

Result<std::vector<Frame>> read_bulk_data(const std::filesystem::path& file, std::uint32_t tag) {
  const DcmTagKey key(static_cast<Uint16>(tag >> 16), static_cast<Uint16>(tag & 0xFFFF));
  if (key == DCM_PixelData) {
    DcmFileFormat ff;
    if (auto l = load(ff, file); !l.ok()) return l.error();
    Sint32 count = 1;
    (void)ff.getDataset()->findAndGetSint32(DCM_NumberOfFrames, count);
    std::vector<std::uint32_t> all;
    for (Sint32 i = 1; i <= std::max<Sint32>(count, 1); ++i) all.push_back(static_cast<Uint32>(i));
    auto frames = read_frames(file, all, true);
    if (!frames.ok()) return frames.error();
    if (!frames->empty() && frames->front().media_type == "application/octet-stream") {
      // Native pixel data is one value, not one part per frame.
      Frame whole{std::string(), frames->front().transfer_syntax_uid, "application/octet-stream"};
      for (Frame& f : *frames) whole.bytes += f.bytes;
      return std::vector<Frame>{std::move(whole)};
    }
    return frames;
  }
  DcmFileFormat ff;
  if (auto l = load(ff, file); !l.ok()) return l.error();
  DcmElement* e = nullptr;
  if (ff.getDataset()->findAndGetElement(key, e, OFFalse).bad() || !e ||
      !is_binary(e->getTag().getEVR())) {
    return make_error(Errc::not_found, "the object has no bulk data under this tag");
  }
  Frame f;
  if (e->getLength() > 0) {
    const void* data = raw_value(*e);
    if (!data) return make_error(Errc::io, "cannot read the bulk data value");
    f.bytes.assign(static_cast<const char*>(data), e->getLength());
  }
  f.transfer_syntax_uid = UID_LittleEndianExplicitTransferSyntax;
  f.media_type = "application/octet-stream";
  return std::vector<Frame>{std::move(f)};
}

}  // namespace yilian::pacs
