#include "yilian/viewer/render.h"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcrledrg.h>
#include <dcmtk/dcmimage/diregist.h>  // colour support for DicomImage
#include <dcmtk/dcmimgle/dcmimage.h>
#include <dcmtk/dcmjpeg/djdecode.h>
#include <dcmtk/dcmjpls/djdecode.h>

#include <algorithm>
#include <memory>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

namespace yilian::viewer {

void register_codecs() {
  DJDecoderRegistration::registerCodecs();
  DJLSDecoderRegistration::registerCodecs();
  DcmRLEDecoderRegistration::registerCodecs();
}

void unregister_codecs() {
  DJDecoderRegistration::cleanup();
  DJLSDecoderRegistration::cleanup();
  DcmRLEDecoderRegistration::cleanup();
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
  auto image =
      std::make_unique<DicomImage>(&ff, xfer, CIF_UsePartialAccessToPixelData, opts.frame, 1);
  if (image->getStatus() != EIS_Normal) {
    return make_error(Errc::invalid_argument,
                      std::string("cannot render: ") + DicomImage::getString(image->getStatus()));
  }
  const int w = static_cast<int>(image->getWidth());
  const int h = static_cast<int>(image->getHeight());
  const bool mono = image->isMonochrome();
  if (mono) {
    if (opts.window) {
      image->setWindow(opts.window->center, std::max(1.0, opts.window->width));
    } else if (image->getWindowCount() > 0) {
      image->setWindow(0);
    } else if (image->getVoiLutCount() > 0) {
      image->setVoiLut(0);
    } else {
      image->setMinMaxWindow();
    }
  }
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
