#include "yilian/viewer/cine.h"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmimage/diregist.h>  // colour support for DicomImage
#include <dcmtk/dcmimgle/dcmimage.h>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>
}

#include <algorithm>
#include <memory>

#include "voi.h"

namespace yilian::viewer {
namespace {

struct FormatDeleter {
  void operator()(AVFormatContext* f) const {
    if (f->pb) avio_closep(&f->pb);
    avformat_free_context(f);
  }
};
struct CodecDeleter {
  void operator()(AVCodecContext* c) const { avcodec_free_context(&c); }
};
struct FrameDeleter {
  void operator()(AVFrame* f) const { av_frame_free(&f); }
};
struct PacketDeleter {
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct ScaleDeleter {
  void operator()(SwsContext* s) const { sws_freeContext(s); }
};

Error av_error(const char* what, int code) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {0};
  av_strerror(code, buf, sizeof buf);
  return make_error(Errc::io, std::string(what) + ": " + buf);
}

// Sends `frame` (null: flush) and writes every packet the encoder has ready.
Status encode(AVCodecContext* c, AVFrame* frame, AVFormatContext* out, AVStream* st,
              AVPacket* pkt) {
  if (int rc = avcodec_send_frame(c, frame); rc < 0) return av_error("encoding a frame", rc);
  while (true) {
    int rc = avcodec_receive_packet(c, pkt);
    if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) return Status::Ok();
    if (rc < 0) return av_error("encoding a frame", rc);
    if (pkt->duration == 0) pkt->duration = 1;  // one frame: the last one needs it too
    av_packet_rescale_ts(pkt, c->time_base, st->time_base);
    pkt->stream_index = st->index;
    rc = av_interleaved_write_frame(out, pkt);
    if (rc < 0) return av_error("writing the video", rc);
  }
}

double number(DcmDataset& ds, const DcmTagKey& tag) {
  Float64 v = 0;
  return ds.findAndGetFloat64(tag, v).good() ? v : 0;
}

}  // namespace

double cine_frame_rate(double cine_rate, double frame_time_ms, double recommended) {
  double fps = 25;
  if (cine_rate > 0) {
    fps = cine_rate;
  } else if (frame_time_ms > 0) {
    fps = 1000.0 / frame_time_ms;
  } else if (recommended > 0) {
    fps = recommended;
  }
  return std::clamp(fps, 1.0, 120.0);
}

Result<CineInfo> encode_cine(const std::filesystem::path& dicom, const std::filesystem::path& mp4) {
  DcmFileFormat ff;
  if (OFCondition c = ff.loadFile(dicom.c_str()); c.bad()) {
    return make_error(Errc::io, std::string("cannot read the stored object: ") + c.text());
  }
  DcmDataset& ds = *ff.getDataset();
  Sint32 count = 1;
  (void)ds.findAndGetSint32(DCM_NumberOfFrames, count);
  if (count < 2) return make_error(Errc::invalid_argument, "not a multi-frame object");
  if (!ds.tagExists(DCM_PixelData)) {
    return make_error(Errc::invalid_argument, "the object has no pixel data");
  }
  CineInfo info;
  info.frames_per_second = cine_frame_rate(number(ds, DCM_CineRate), number(ds, DCM_FrameTime),
                                           number(ds, DCM_RecommendedDisplayFrameRate));
  DicomImage image(&ff, ds.getOriginalXfer(), CIF_UsePartialAccessToPixelData, 0, 0);
  if (image.getStatus() != EIS_Normal) {
    return make_error(Errc::invalid_argument,
                      std::string("cannot decode: ") + DicomImage::getString(image.getStatus()));
  }
  const bool mono = image.isMonochrome();
  if (mono) apply_voi(image, std::nullopt);
  const int w = static_cast<int>(image.getWidth()), h = static_cast<int>(image.getHeight());
  info.frames = static_cast<int>(image.getFrameCount());
  info.width = w & ~1;  // 4:2:0 needs even sizes
  info.height = h & ~1;
  if (info.width < 2 || info.height < 2)
    return make_error(Errc::invalid_argument, "frames too small");

  const AVCodec* codec = avcodec_find_encoder_by_name("libx264");
  if (!codec) codec = avcodec_find_encoder(AV_CODEC_ID_H264);
  if (!codec) return make_error(Errc::unavailable, "no H.264 encoder in this FFmpeg");

  AVFormatContext* raw_out = nullptr;
  if (int rc = avformat_alloc_output_context2(&raw_out, nullptr, "mp4", mp4.c_str()); rc < 0)
    return av_error("creating the MP4", rc);
  std::unique_ptr<AVFormatContext, FormatDeleter> out(raw_out);
  AVStream* st = avformat_new_stream(out.get(), nullptr);
  std::unique_ptr<AVCodecContext, CodecDeleter> enc(avcodec_alloc_context3(codec));
  if (!st || !enc) return make_error(Errc::internal, "out of memory");
  const AVRational rate = av_d2q(info.frames_per_second, 100000);
  enc->width = info.width;
  enc->height = info.height;
  enc->pix_fmt = AV_PIX_FMT_YUV420P;
  enc->time_base = av_inv_q(rate);
  enc->framerate = rate;
  enc->gop_size = std::max(1, static_cast<int>(info.frames_per_second));  // a key frame a second
  if (out->oformat->flags & AVFMT_GLOBALHEADER) enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  (void)av_opt_set(enc->priv_data, "preset", "veryfast", 0);
  (void)av_opt_set(enc->priv_data, "crf", "18", 0);  // visually lossless for review
  if (int rc = avcodec_open2(enc.get(), codec, nullptr); rc < 0)
    return av_error("opening the encoder", rc);
  if (int rc = avcodec_parameters_from_context(st->codecpar, enc.get()); rc < 0)
    return av_error("describing the stream", rc);
  st->time_base = enc->time_base;
  if (int rc = avio_open(&out->pb, mp4.c_str(), AVIO_FLAG_WRITE); rc < 0)
    return av_error("opening the MP4 file", rc);
  AVDictionary* opts = nullptr;
  av_dict_set(&opts, "movflags", "+faststart", 0);
  int rc = avformat_write_header(out.get(), &opts);
  av_dict_free(&opts);
  if (rc < 0) return av_error("writing the MP4 header", rc);

  std::unique_ptr<SwsContext, ScaleDeleter> scale(
      sws_getContext(w, h, mono ? AV_PIX_FMT_GRAY8 : AV_PIX_FMT_RGB24, info.width, info.height,
                     AV_PIX_FMT_YUV420P, SWS_BILINEAR, nullptr, nullptr, nullptr));
  std::unique_ptr<AVFrame, FrameDeleter> frame(av_frame_alloc());
  std::unique_ptr<AVPacket, PacketDeleter> pkt(av_packet_alloc());
  if (!scale || !frame || !pkt) return make_error(Errc::internal, "out of memory");
  frame->format = AV_PIX_FMT_YUV420P;
  frame->width = info.width;
  frame->height = info.height;
  if (int r = av_frame_get_buffer(frame.get(), 0); r < 0) return av_error("frame buffer", r);

  for (int i = 0; i < info.frames; ++i) {
    const auto* data =
        static_cast<const std::uint8_t*>(image.getOutputData(8, static_cast<unsigned long>(i)));
    if (!data) return make_error(Errc::invalid_argument, "a frame could not be decoded");
    if (int r = av_frame_make_writable(frame.get()); r < 0) return av_error("frame buffer", r);
    const std::uint8_t* src[1] = {data};
    const int stride[1] = {mono ? w : 3 * w};
    sws_scale(scale.get(), src, stride, 0, h, frame->data, frame->linesize);
    frame->pts = i;
    if (Status s = encode(enc.get(), frame.get(), out.get(), st, pkt.get()); !s) return s.error();
  }
  if (Status s = encode(enc.get(), nullptr, out.get(), st, pkt.get()); !s) return s.error();
  if (int r = av_write_trailer(out.get()); r < 0) return av_error("finishing the MP4", r);
  return info;
}

}  // namespace yilian::viewer
