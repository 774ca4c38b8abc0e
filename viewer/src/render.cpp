#include "yilian/viewer/render.h"

#include "jpeg2000.h"
#include "voi.h"
#include "yilian/viewer/pixel_frames.h"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dccodec.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcmetinf.h>
#include <dcmtk/dcmdata/dcostrmb.h>
#include <dcmtk/dcmdata/dcpixel.h>
#include <dcmtk/dcmdata/dcpixseq.h>
#include <dcmtk/dcmdata/dcpxitem.h>
#include <dcmtk/dcmdata/dcrledrg.h>
#include <dcmtk/dcmdata/dcrleerg.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmdata/dcxfer.h>
#include <dcmtk/dcmimage/diregist.h>  // colour support for DicomImage
#include <dcmtk/dcmimgle/dcmimage.h>
#include <dcmtk/dcmjpeg/djdecode.h>
#include <dcmtk/dcmjpeg/djencode.h>
#include <dcmtk/dcmjpls/djdecode.h>
#include <dcmtk/dcmjpls/djencode.h>

extern "C" {
#include <libavutil/log.h>
}

#include <algorithm>
#include <memory>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <set>

namespace yilian::viewer {

void register_codecs() {
  av_log_set_level(AV_LOG_ERROR);  // FFmpeg's encoder statistics are not for the hub's log
  DJDecoderRegistration::registerCodecs();
  DJLSDecoderRegistration::registerCodecs();
  DcmRLEDecoderRegistration::registerCodecs();
  DJEncoderRegistration::registerCodecs();
  DJLSEncoderRegistration::registerCodecs();
  DcmRLEEncoderRegistration::registerCodecs();
}

void unregister_codecs() {
  DJDecoderRegistration::cleanup();
  DJLSDecoderRegistration::cleanup();
  DcmRLEDecoderRegistration::cleanup();
  DJEncoderRegistration::cleanup();
  DJLSEncoderRegistration::cleanup();
  DcmRLEEncoderRegistration::cleanup();
}

std::optional<Window> window_preset(std::string_view name) {
  struct Preset {
    std::string_view name;
    Window window;
  };
  static constexpr Preset kPresets[] = {{"brain", {40, 80}},        {"subdural", {75, 215}},
                                        {"stroke", {40, 40}},       {"lung", {-600, 1500}},
                                        {"mediastinum", {50, 350}}, {"bone", {400, 1800}},
                                        {"abdomen", {50, 400}},     {"liver", {60, 150}}};
  for (const Preset& p : kPresets) {
    if (p.name == name) return p.window;
  }
  return std::nullopt;
}

void apply_voi(DicomImage& image, const std::optional<Window>& window) {
  if (window) {
    image.setWindow(window->center, std::max(1.0, window->width));
  } else if (image.getWindowCount() > 0) {
    image.setWindow(0);
  } else if (image.getVoiLutCount() > 0) {
    image.setVoiLut(0);
  } else {
    image.setMinMaxWindow();
  }
}

Result<std::string> encapsulated_frame(DcmPixelSequence& seq, std::uint32_t index,
                                       std::uint32_t frames) {
  auto start = [&](std::uint32_t i) -> Result<Uint32> {
    Uint32 item = 0;
    if (DcmCodec::determineStartFragment(i, static_cast<Sint32>(frames), &seq, item).bad()) {
      return make_error(Errc::invalid_argument,
                        "the frames of this object cannot be told apart as stored");
    }
    return item;
  };
  auto first = start(index);
  if (!first.ok()) return first.error();
  Uint32 end = static_cast<Uint32>(seq.card());
  if (index + 1 < frames) {
    auto next = start(index + 1);
    if (!next.ok()) return next.error();
    end = *next;
  }
  std::string out;
  for (Uint32 i = *first; i < end; ++i) {
    DcmPixelItem* item = nullptr;
    if (seq.getItem(item, i).bad() || !item) break;
    if (item->getLength() == 0) continue;
    Uint8* data = nullptr;
    if (item->getUint8Array(data).bad() || !data) {
      return make_error(Errc::io, "cannot read a pixel data fragment");
    }
    out.append(reinterpret_cast<const char*>(data), item->getLength());
  }
  return out;
}

Result<std::string> decode_jpeg2000_frame(DcmDataset& ds, std::uint32_t index,
                                          std::uint32_t frames) {
  DcmElement* element = nullptr;
  if (ds.findAndGetElement(DCM_PixelData, element).bad() || !element) {
    return make_error(Errc::invalid_argument, "the object has no pixel data");
  }
  DcmPixelSequence* seq = nullptr;
  if (static_cast<DcmPixelData*>(element)
          ->getEncapsulatedRepresentation(ds.getOriginalXfer(), nullptr, seq)
          .bad() ||
      !seq) {
    return make_error(Errc::invalid_argument, "the JPEG 2000 pixel data cannot be read");
  }
  Uint16 samples = 1, allocated = 8, rows = 0, columns = 0;
  (void)ds.findAndGetUint16(DCM_SamplesPerPixel, samples);
  (void)ds.findAndGetUint16(DCM_BitsAllocated, allocated);
  (void)ds.findAndGetUint16(DCM_Rows, rows);
  (void)ds.findAndGetUint16(DCM_Columns, columns);
  auto bits = encapsulated_frame(*seq, index, frames);
  if (!bits.ok()) return bits.error();
  auto decoded = decode_jpeg2000(*bits);
  if (!decoded.ok()) return decoded.error();
  if (static_cast<int>(samples) != decoded->components || (allocated > 8) != decoded->wide ||
      decoded->width != columns || decoded->height != rows) {
    return make_error(Errc::invalid_argument,
                      "the JPEG 2000 frame does not match the object's pixel description");
  }
  return std::move(decoded->pixels);
}

namespace {

bool is_jpeg2000(E_TransferSyntax x) {
  return x == EXS_JPEG2000LosslessOnly || x == EXS_JPEG2000 ||
         x == EXS_JPEG2000MulticomponentLosslessOnly || x == EXS_JPEG2000Multicomponent;
}

// DCMTK has no JPEG 2000 decoder: OpenJPEG decodes the frames [first, first + count), and a
// copy of the data set holds them as native pixel data (for rendering, one frame goes through
// the same LUT pipeline as any other object).
Result<std::unique_ptr<DcmFileFormat>> decode_jpeg2000_frames(DcmDataset& ds, std::uint32_t first,
                                                              std::uint32_t count,
                                                              std::uint32_t frames) {
  Uint16 samples = 1, allocated = 8;
  (void)ds.findAndGetUint16(DCM_SamplesPerPixel, samples);
  (void)ds.findAndGetUint16(DCM_BitsAllocated, allocated);
  DecodedFrame decoded;  // every frame's samples, one after the other
  decoded.wide = allocated > 8;
  for (std::uint32_t frame = first; frame < first + count; ++frame) {
    auto one = decode_jpeg2000_frame(ds, frame, frames);
    if (!one.ok()) return one.error();
    decoded.pixels += *one;
  }
  auto out = std::make_unique<DcmFileFormat>();
  DcmDataset* copy = out->getDataset();
  for (unsigned long i = 0; i < ds.card(); ++i) {
    DcmElement* e = ds.getElement(i);
    if (e->getTag() == DCM_PixelData) continue;
    if (copy->insert(static_cast<DcmElement*>(e->clone())).bad()) {
      return make_error(Errc::internal, "cannot copy the data set");
    }
  }
  if (count > 1 || copy->tagExists(DCM_NumberOfFrames))
    (void)copy->putAndInsertString(DCM_NumberOfFrames, std::to_string(count).c_str());
  if (samples == 3) {
    (void)copy->putAndInsertString(DCM_PhotometricInterpretation, "RGB");
    (void)copy->putAndInsertUint16(DCM_PlanarConfiguration, 0);
  }
  const std::size_t bytes = decoded.pixels.size();
  const auto* data = reinterpret_cast<const Uint8*>(decoded.pixels.data());
  OFCondition c =
      decoded.wide
          ? copy->putAndInsertUint16Array(DCM_PixelData, reinterpret_cast<const Uint16*>(data),
                                          static_cast<unsigned long>(bytes / 2))
          : copy->putAndInsertUint8Array(DCM_PixelData, data, static_cast<unsigned long>(bytes));
  if (c.bad()) return make_error(Errc::internal, "cannot hold the decoded frame");
  copy->transferInit();
  copy->transferEnd();
  return out;
}

}  // namespace

bool is_jpeg2000(const std::string& transfer_syntax_uid) {
  return is_jpeg2000(DcmXfer(transfer_syntax_uid.c_str()).getXfer());
}

Result<std::unique_ptr<DcmFileFormat>> decode_to_native(const std::filesystem::path& file) {
  auto ff = std::make_unique<DcmFileFormat>();
  OFCondition c = ff->loadFile(file.c_str());
  if (c.bad())
    return make_error(Errc::io, std::string("cannot read the stored object: ") + c.text());
  DcmDataset* ds = ff->getDataset();
  const E_TransferSyntax xfer = ds->getOriginalXfer();
  if (ds->tagExists(DCM_PixelData) && is_jpeg2000(xfer)) {
    Sint32 frames = 1;
    (void)ds->findAndGetSint32(DCM_NumberOfFrames, frames);
    const auto n = static_cast<std::uint32_t>(std::max<Sint32>(frames, 1));
    auto decoded = decode_jpeg2000_frames(*ds, 0, n, n);
    if (!decoded.ok()) return decoded.error();
    DcmMetaInfo* meta = (*decoded)->getMetaInfo();
    for (unsigned long i = 0; i < ff->getMetaInfo()->card(); ++i) {
      (void)meta->insert(static_cast<DcmElement*>(ff->getMetaInfo()->getElement(i)->clone()), true);
    }
    (*decoded)->getDataset()->chooseRepresentation(EXS_LittleEndianExplicit, nullptr);
    return std::move(*decoded);
  }
  if (ds->chooseRepresentation(EXS_LittleEndianExplicit, nullptr).bad() ||
      !ds->canWriteXfer(EXS_LittleEndianExplicit)) {
    return make_error(Errc::invalid_argument, std::string("no decoder for the stored syntax ") +
                                                  DcmXfer(xfer).getXferName());
  }
  return ff;
}

bool lossless_target(const std::string& transfer_syntax_uid) {
  static const std::set<std::string> kTargets = {
      UID_LittleEndianExplicitTransferSyntax, UID_LittleEndianImplicitTransferSyntax,
      UID_JPEGLSLosslessTransferSyntax, UID_JPEGProcess14SV1TransferSyntax,
      UID_RLELosslessTransferSyntax};
  return kTargets.count(transfer_syntax_uid) > 0;
}

Result<std::unique_ptr<DcmFileFormat>> transcode(const std::filesystem::path& file,
                                                 const std::string& transfer_syntax_uid) {
  if (!lossless_target(transfer_syntax_uid)) {
    return make_error(Errc::invalid_argument, "objects are not encoded in " + transfer_syntax_uid);
  }
  auto ff = decode_to_native(file);
  if (!ff.ok()) return ff.error();
  const E_TransferSyntax target = DcmXfer(transfer_syntax_uid.c_str()).getXfer();
  DcmDataset* ds = (*ff)->getDataset();
  if (ds->chooseRepresentation(target, nullptr).bad() || !ds->canWriteXfer(target)) {
    return make_error(Errc::invalid_argument,
                      "this object's pixels cannot be encoded in " + transfer_syntax_uid);
  }
  return ff;
}

Result<std::string> part10_bytes(DcmFileFormat& ff, const std::string& transfer_syntax_uid) {
  const E_TransferSyntax xfer = DcmXfer(transfer_syntax_uid.c_str()).getXfer();
  if (xfer == EXS_Unknown || !ff.getDataset()->canWriteXfer(xfer)) {
    return make_error(Errc::invalid_argument,
                      "the object cannot be written in " + transfer_syntax_uid);
  }
  std::string out;
  std::string buffer(64 * 1024, '\0');
  DcmOutputBufferStream stream(buffer.data(), static_cast<offile_off_t>(buffer.size()));
  ff.transferInit();
  OFCondition c = EC_StreamNotifyClient;
  while (c == EC_StreamNotifyClient) {
    c = ff.write(stream, xfer, EET_ExplicitLength, nullptr);
    void* data = nullptr;
    offile_off_t length = 0;
    stream.flushBuffer(data, length);
    out.append(static_cast<const char*>(data), static_cast<std::size_t>(length));
  }
  ff.transferEnd();
  if (c.bad())
    return make_error(Errc::internal, std::string("cannot write the object: ") + c.text());
  return out;
}

Result<RenderedImage> render_frame(const std::filesystem::path& file, const RenderOptions& opts) {
  DcmFileFormat ff;
  OFCondition c = ff.loadFile(file.c_str());
  if (c.bad())
    return make_error(Errc::io, std::string("cannot read the stored object: ") + c.text());
  DcmDataset* ds = ff.getDataset();
  if (!ds->tagExists(DCM_PixelData)) {
    return make_error(Errc::invalid_argument, "the object has no pixel data");
  }
  Sint32 frames = 1;
  (void)ds->findAndGetSint32(DCM_NumberOfFrames, frames);
  if (frames < 1) frames = 1;
  if (opts.frame >= static_cast<std::uint32_t>(frames)) {
    return make_error(Errc::not_found, "the object has " + std::to_string(frames) + " frame(s)");
  }
  E_TransferSyntax xfer = ds->getOriginalXfer();
  std::unique_ptr<DcmFileFormat> decoded;  // a JPEG 2000 frame, decoded; outlives `image`
  std::unique_ptr<DicomImage> image;
  if (is_jpeg2000(xfer)) {
    auto d = decode_jpeg2000_frames(*ds, opts.frame, 1, static_cast<std::uint32_t>(frames));
    if (!d.ok()) return d.error();
    decoded = std::move(*d);
    image = std::make_unique<DicomImage>(decoded.get(), EXS_LittleEndianExplicit, 0UL, 0UL, 1UL);
  } else {
    image = std::make_unique<DicomImage>(&ff, xfer, CIF_UsePartialAccessToPixelData, opts.frame, 1);
  }
  if (image->getStatus() != EIS_Normal) {
    return make_error(Errc::invalid_argument,
                      std::string("cannot render: ") + DicomImage::getString(image->getStatus()));
  }
  const int w = static_cast<int>(image->getWidth());
  const int h = static_cast<int>(image->getHeight());
  const bool mono = image->isMonochrome();
  if (mono) apply_voi(*image, opts.window);
  const void* data = image->getOutputData(8, 0, 0);
  if (!data) return make_error(Errc::invalid_argument, "the frame could not be decoded");
  cv::Mat pixels;
  if (mono) {
    pixels = cv::Mat(h, w, CV_8UC1, const_cast<void*>(data)).clone();
  } else {
    cv::Mat rgb(h, w, CV_8UC3, const_cast<void*>(data));
    cv::cvtColor(rgb, pixels, cv::COLOR_RGB2BGR);  // OpenCV encodes BGR
  }
  image.reset();

  if ((opts.max_width > 0 && w > opts.max_width) || (opts.max_height > 0 && h > opts.max_height)) {
    double sx = opts.max_width > 0 ? static_cast<double>(opts.max_width) / w : 1e9;
    double sy = opts.max_height > 0 ? static_cast<double>(opts.max_height) / h : 1e9;
    double s = std::min(sx, sy);
    cv::Size size(std::max(1, static_cast<int>(w * s + 0.5)),
                  std::max(1, static_cast<int>(h * s + 0.5)));
    cv::Mat scaled;
    cv::resize(pixels, scaled, size, 0, 0, cv::INTER_AREA);
    pixels = scaled;
  }

  RenderedImage out;
  out.width = pixels.cols;
  out.height = pixels.rows;
  std::vector<uchar> buf;
  std::vector<int> params;
  if (opts.jpeg) {
    params = {cv::IMWRITE_JPEG_QUALITY, std::clamp(opts.quality, 1, 100)};
    out.content_type = "image/jpeg";
  } else {
    out.content_type = "image/png";
  }
  if (!cv::imencode(opts.jpeg ? ".jpg" : ".png", pixels, buf, params)) {
    return make_error(Errc::internal, "image encoding failed");
  }
  out.bytes.assign(reinterpret_cast<const char*>(buf.data()), buf.size());
  return out;
}

}  // namespace yilian::viewer
