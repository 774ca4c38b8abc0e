// Rendering checked pixel by pixel against the DICOM linear VOI function (PS3.3 C.11.2.1.2).
#include "yilian/viewer/render.h"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <gtest/gtest.h>
#include <zlib.h>

extern "C" {
#include <libavformat/avformat.h>
}

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "synthetic.h"
#include "test_util.h"
#include "yilian/viewer/cine.h"
#include "yilian/viewer/ecg_render.h"

namespace yilian::viewer {
namespace {

// The synthetic CT's stored value at (x, y) of its first slice, and its HU.
double hu(int x, int y) { return static_cast<double>((x * 4 + y * 2) & 0x0fff) - 1024.0; }

// PS3.3 C.11.2.1.2.1, output range 0..255.
double voi(double x, double c, double w) {
  if (x <= c - 0.5 - (w - 1) / 2) return 0;
  if (x > c - 0.5 + (w - 1) / 2) return 255;
  return ((x - (c - 0.5)) / (w - 1) + 0.5) * 255.0;
}

cv::Mat decode(const RenderedImage& img) {
  std::vector<uchar> buf(img.bytes.begin(), img.bytes.end());
  return cv::imdecode(buf, cv::IMREAD_UNCHANGED);
}

class RenderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::CtSeriesSpec spec;
    spec.count = 1;
    spec.rows = spec.columns = 16;
    auto s = testing::write_ct_series(dir_.path(), spec);
    ASSERT_TRUE(s.ok());
    file_ = s->files[0];
  }
  testing::TempDir dir_;
  std::filesystem::path file_;
};

TEST_F(RenderTest, an_explicit_window_maps_hounsfield_units_linearly) {
  RenderOptions o;
  o.jpeg = false;  // lossless, so pixels can be compared exactly
  o.window = Window{-979, 90};
  auto img = render_frame(file_, o);
  ASSERT_TRUE(img.ok()) << img.error().message;
  EXPECT_EQ(img->content_type, "image/png");
  cv::Mat m = decode(*img);
  ASSERT_EQ(m.type(), CV_8UC1);
  ASSERT_EQ(m.cols, 16);
  ASSERT_EQ(m.rows, 16);
  int checked_mid = 0;
  for (int y = 0; y < 16; ++y) {
    for (int x = 0; x < 16; ++x) {
      double expected = voi(hu(x, y), -979, 90);
      EXPECT_NEAR(m.at<uchar>(y, x), expected, 1.0) << x << "," << y;
      if (expected > 0 && expected < 255) ++checked_mid;
    }
  }
  EXPECT_GT(checked_mid, 50);  // the window really spans the image, not just black/white
}

TEST_F(RenderTest, the_objects_own_window_is_the_default_and_monochrome1_is_inverted) {
  RenderOptions o;
  o.jpeg = false;
  auto img = render_frame(file_, o);  // window 40/80 from the object: all of it is air
  ASSERT_TRUE(img.ok());
  cv::Mat m = decode(*img);
  EXPECT_EQ(cv::countNonZero(m), 0);

  DcmFileFormat ff;
  ASSERT_TRUE(ff.loadFile(file_.c_str()).good());
  ff.getDataset()->putAndInsertString(DCM_PhotometricInterpretation, "MONOCHROME1");
  auto inverted = dir_.path() / "mono1.dcm";
  ASSERT_TRUE(ff.saveFile(inverted.c_str(), EXS_LittleEndianExplicit).good());
  o.window = Window{-979, 90};
  auto inv = render_frame(inverted, o);
  ASSERT_TRUE(inv.ok()) << inv.error().message;
  cv::Mat mi = decode(*inv);
  for (int y = 0; y < 16; ++y) {
    for (int x = 0; x < 16; ++x) {
      EXPECT_NEAR(mi.at<uchar>(y, x), 255.0 - voi(hu(x, y), -979, 90), 1.0) << x << "," << y;
    }
  }
}

TEST_F(RenderTest, viewport_fits_the_box_and_jpeg_quality_trades_size) {
  RenderOptions o;
  o.max_width = 8;
  o.max_height = 4;
  auto small = render_frame(file_, o);
  ASSERT_TRUE(small.ok());
  EXPECT_EQ(small->content_type, "image/jpeg");
  EXPECT_EQ(small->width, 4);
  EXPECT_EQ(small->height, 4);
  cv::Mat m = decode(*small);
  EXPECT_EQ(m.cols, 4);
  RenderOptions frame;
  frame.frame = 1;
  EXPECT_EQ(render_frame(file_, frame).error().code, Errc::not_found);
  EXPECT_FALSE(render_frame(dir_.path() / "missing.dcm", {}).ok());
}

TEST(Render, compressed_real_world_files_decode) {
  register_codecs();
  const std::filesystem::path dir = PYDICOM_TEST_FILES;
  for (const char* name :
       {"MR_small_jpeg_ls_lossless.dcm", "MR_small_RLE.dcm", "JPEG-lossy.dcm",
        "SC_rgb_jpeg_dcmtk.dcm", "SC_rgb_rle_2frame.dcm", "MR_small_jp2klossless.dcm"}) {
    auto img = render_frame(dir / name, {});
    ASSERT_TRUE(img.ok()) << name << ": " << img.error().message;
    cv::Mat m = decode(*img);
    EXPECT_GT(m.cols, 0) << name;
    if (std::string(name).rfind("SC_rgb", 0) == 0) {
      EXPECT_EQ(m.channels(), 3);
    }
  }
  unregister_codecs();
}

// Lossless compression must not change a single rendered pixel: the same MR image stored
// uncompressed, as JPEG-LS, RLE and JPEG 2000 (decoded by OpenJPEG) renders identically.
TEST(Render, lossless_syntaxes_render_exactly_like_the_uncompressed_original) {
  register_codecs();
  const std::filesystem::path dir = PYDICOM_TEST_FILES;
  RenderOptions o;
  o.jpeg = false;
  o.window = Window{600, 1200};
  auto reference = render_frame(dir / "MR_small.dcm", o);
  ASSERT_TRUE(reference.ok()) << reference.error().message;
  cv::Mat want = decode(*reference);
  for (const char* name :
       {"MR_small_jpeg_ls_lossless.dcm", "MR_small_RLE.dcm", "MR_small_jp2klossless.dcm"}) {
    auto img = render_frame(dir / name, o);
    ASSERT_TRUE(img.ok()) << name << ": " << img.error().message;
    cv::Mat got = decode(*img);
    ASSERT_EQ(got.size(), want.size()) << name;
    EXPECT_EQ(cv::norm(got, want, cv::NORM_INF), 0.0) << name;
  }
  unregister_codecs();
}

}  // namespace
}  // namespace yilian::viewer

namespace yilian::viewer {
namespace {

TEST(Render, window_presets_name_the_reading_rooms_ct_windows) {
  auto lung = window_preset("lung");
  ASSERT_TRUE(lung.has_value());
  EXPECT_EQ(lung->center, -600);
  EXPECT_EQ(lung->width, 1500);
  EXPECT_EQ(window_preset("brain")->width, 80);
  for (const char* n : {"subdural", "stroke", "mediastinum", "bone", "abdomen", "liver"}) {
    EXPECT_TRUE(window_preset(n).has_value()) << n;
  }
  EXPECT_FALSE(window_preset("Lung").has_value());
  EXPECT_FALSE(window_preset("").has_value());
}

TEST(Cine, the_frame_rate_comes_from_cine_rate_then_frame_time_then_the_recommendation) {
  EXPECT_DOUBLE_EQ(cine_frame_rate(30, 40, 10), 30);
  EXPECT_DOUBLE_EQ(cine_frame_rate(0, 40, 10), 25);
  EXPECT_DOUBLE_EQ(cine_frame_rate(0, 0, 10), 10);
  EXPECT_DOUBLE_EQ(cine_frame_rate(0, 0, 0), 25);
  EXPECT_DOUBLE_EQ(cine_frame_rate(1000, 0, 0), 120);
}

// The MP4 holds every frame at the object's rate: FFmpeg reads it back.
TEST(Cine, a_multiframe_ultrasound_becomes_an_h264_mp4_at_its_frame_rate) {
  yilian::testing::TempDir dir;
  auto us = yilian::testing::write_us_cine(dir.path() / "us.dcm", 30, 64, 48, 30);
  ASSERT_TRUE(us.ok());
  auto info = encode_cine(us->file, dir.path() / "us.mp4");
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->frames, 30);
  EXPECT_EQ(info->width, 64);
  EXPECT_EQ(info->height, 48);

  AVFormatContext* fmt = nullptr;
  ASSERT_EQ(avformat_open_input(&fmt, (dir.path() / "us.mp4").c_str(), nullptr, nullptr), 0);
  ASSERT_GE(avformat_find_stream_info(fmt, nullptr), 0);
  ASSERT_EQ(fmt->nb_streams, 1u);
  const AVStream* st = fmt->streams[0];
  EXPECT_EQ(st->codecpar->codec_id, AV_CODEC_ID_H264);
  EXPECT_EQ(st->codecpar->width, 64);
  EXPECT_EQ(st->codecpar->height, 48);
  EXPECT_NEAR(av_q2d(st->avg_frame_rate), 30.0, 0.01);
  AVPacket* pkt = av_packet_alloc();
  int packets = 0;
  while (av_read_frame(fmt, pkt) >= 0) {
    ++packets;
    av_packet_unref(pkt);
  }
  av_packet_free(&pkt);
  avformat_close_input(&fmt);
  EXPECT_EQ(packets, 30);

  // A single frame is not cine.
  auto ct = yilian::testing::write_ct_series(dir.path() / "ct", {});
  ASSERT_TRUE(ct.ok());
  auto refused = encode_cine(ct->files[0], dir.path() / "ct.mp4");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, Errc::invalid_argument);
}

}  // namespace
}  // namespace yilian::viewer

namespace yilian::viewer {
namespace {

// Paper geometry, pixel by pixel: 25 mm/s, 10 mm/mV, the calibration pulse, the grid.
TEST(EcgRender, a_twelve_lead_page_is_drawn_at_true_scale) {
  ecg::Record r;
  r.sampling_hz = 500;
  for (const char* name : {"I", "II", "V1", "V2", "V3", "V4", "V5", "V6"}) {
    r.leads.push_back({name, std::vector<float>(5000, 0.f)});
  }
  for (std::size_t k = 500; k < 600; ++k) r.leads[1].mv[k] = 1.f;  // II: 1 mV from 1.0 to 1.2 s
  EcgRenderOptions o;
  o.px_per_mm = 4;
  auto img = render_ecg(r, o);  // III, aVR, aVL, aVF derived from I and II
  ASSERT_TRUE(img.ok()) << img.error().message;
  std::vector<uchar> buf(img->png.begin(), img->png.end());
  cv::Mat m = cv::imdecode(buf, cv::IMREAD_COLOR);
  ASSERT_EQ(m.cols, img->width);
  ASSERT_EQ(img->row_baselines.size(), 4u);  // 3 rows of 4 leads + the rhythm strip
  const int base = img->row_baselines[3];
  auto dark = [&](int x, int y) {
    cv::Vec3b p = m.at<cv::Vec3b>(y, x);
    return p[0] < 80 && p[1] < 80 && p[2] < 80;
  };
  auto top_of_ink = [&](int x) {
    for (int y = base - 80; y <= base + 5; ++y) {
      if (dark(x, y)) return y;
    }
    return -1;
  };
  // The pulse of lead II: 1.1 s after the strip's start (after the 10 mm calibration area)
  // is 1.1 s x 25 mm/s = 27.5 mm, i.e. 110 px; 1 mV is 10 mm = 40 px above the baseline.
  const int x_pulse = img->paper_x + (10 + 27) * 4 + 2;
  EXPECT_NEAR(top_of_ink(x_pulse), base - 40, 2);
  // Before the pulse the trace lies on the baseline.
  EXPECT_NEAR(top_of_ink(img->paper_x + (10 + 12) * 4), base, 2);
  // The calibration pulse: 1 mV high between 3 and 8 mm.
  EXPECT_NEAR(top_of_ink(img->paper_x + 5 * 4), base - 40, 2);
  // A 5 mm grid line is red-tinted, darker than a 1 mm one.
  cv::Vec3b major = m.at<cv::Vec3b>(img->paper_y + 2, img->paper_x + 25 * 4);
  cv::Vec3b minor = m.at<cv::Vec3b>(img->paper_y + 2, img->paper_x + 26 * 4);
  EXPECT_GT(major[2], major[0]);
  EXPECT_LT(major[0], minor[0]);

  EcgRenderOptions bad;
  bad.layout = "4x4";
  EXPECT_FALSE(render_ecg(r, bad).ok());
  ecg::Record only_v;
  only_v.sampling_hz = 500;
  only_v.leads.push_back({"V1", std::vector<float>(5000, 0.f)});
  EXPECT_FALSE(render_ecg(only_v).ok());
}

// Chinese names and statements print as Chinese (the CJK font from Debian): two different
// statements give different ink where they are written; in ASCII both would be "????".
TEST(EcgRender, chinese_names_and_statements_are_drawn_with_a_cjk_font) {
  ASSERT_FALSE(default_cjk_font().empty()) << "fonts-wqy-microhei (scripts/install-deps.sh)";
  ecg::Record r;
  r.sampling_hz = 500;
  for (const char* lead :
       {"I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"})
    r.leads.push_back({lead, std::vector<float>(5000, 0.f)});
  auto page = [&](const std::string& statement) {
    EcgRenderOptions o;
    o.header = "张伟 (P001)  M 56y  2026-12-04 09:15  城关镇卫生院";
    o.measurements = "HR 72  PR 160  QRS 90  QT/QTc 380/410  Axis 52";
    o.statements = {statement, "QT间期延长"};
    o.footer = "报告医师 王医生  2026-12-04 09:20";
    auto img = render_ecg(r, o);
    EXPECT_TRUE(img.ok()) << img.error().message;
    return img.ok() ? *img : EcgImage{};
  };
  EcgImage a = page("窦性心律"), b = page("心房颤动");
  EXPECT_TRUE(a.cjk);
  ASSERT_EQ(a.height, b.height);
  cv::Mat ma = cv::imdecode(std::vector<uchar>(a.png.begin(), a.png.end()), cv::IMREAD_COLOR);
  cv::Mat mb = cv::imdecode(std::vector<uchar>(b.png.begin(), b.png.end()), cv::IMREAD_COLOR);
  ASSERT_FALSE(ma.empty());
  ASSERT_EQ(ma.size(), mb.size());
  // Three lines of text under the paper: the first differs, the others are the same.
  const int line = static_cast<int>(5.5 * 4);
  const int first = a.height - 3 * line - 8 * 4 / 2;
  cv::Mat diff;
  cv::absdiff(ma, mb, diff);
  cv::Mat gray;
  cv::extractChannel(diff, gray, 0);
  EXPECT_GT(cv::countNonZero(gray(cv::Rect(0, first - line, gray.cols, 2 * line))), 50);
  EXPECT_EQ(cv::countNonZero(gray(cv::Rect(0, 0, gray.cols, a.paper_y))), 0);
  // The header has ink in Chinese glyphs: more than an ASCII "?" per character would leave.
  cv::Mat ga;
  cv::extractChannel(ma(cv::Rect(0, 0, ma.cols, a.paper_y)), ga, 0);
  EXPECT_GT(cv::countNonZero(ga < 128), 400);
}

// The PDF page, read by a reader nobody here wrote (poppler's pdftoppm) at the page's own
// resolution, gives back the PNG's pixels: the page prints at true size and loses nothing.
TEST(EcgRender, the_pdf_page_is_the_png_page_at_true_size) {
  ecg::Record r;
  r.sampling_hz = 500;
  for (const char* lead :
       {"I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"}) {
    r.leads.push_back({lead, std::vector<float>(5000, 0.f)});
    for (std::size_t k = 400; k < 5000; k += 400) r.leads.back().mv[k] = 1.2f;
  }
  EcgRenderOptions o;
  o.px_per_mm = 4;
  o.header = "李梅 (P002)  F 63y  2026-12-04 10:02  城关镇卫生院";
  o.statements = {"窦性心律"};
  o.footer = "报告医师：王医生　签发时间：2026-12-04 10:30（北京时间）";
  o.pdf = true;
  o.title = "心电图 " + o.header + "\xff\xc0";  // with bytes that are not UTF-8
  auto img = render_ecg(r, o);
  ASSERT_TRUE(img.ok()) << img.error().message;
  const std::string& pdf = img->pdf;
  ASSERT_EQ(pdf.rfind("%PDF-1.4\n", 0), 0u);
  ASSERT_TRUE(pdf.ends_with("%%EOF\n"));
  // The title in UTF-16BE: "心电图" (5FC3 7535 56FE), the bad bytes as U+FFFD.
  const std::size_t title = pdf.find("/Title <FEFF5FC3753556FE");
  ASSERT_NE(title, std::string::npos);
  EXPECT_NE(pdf.find("FFFDFFFD>", title), std::string::npos);
  // Every object the cross-reference table lists starts where it says.
  ASSERT_NE(pdf.rfind("\nxref\n0 7\n"), std::string::npos);
  const std::size_t xref = pdf.rfind("\nxref\n0 7\n") + 1;
  EXPECT_EQ(pdf.substr(pdf.rfind("startxref\n") + 10, std::to_string(xref).size()),
            std::to_string(xref));
  for (int obj = 1; obj <= 6; ++obj) {
    const std::size_t at = std::stoul(pdf.substr(xref + 9 + 20 * obj, 10));
    EXPECT_EQ(pdf.substr(at, std::to_string(obj).size() + 6), std::to_string(obj) + " 0 obj")
        << obj;
  }

  testing::TempDir dir;
  { std::ofstream(dir.path() / "page.pdf", std::ios::binary) << pdf; }
  // True size: the page is the image at 4 px/mm.
  const std::size_t box = pdf.find("/MediaBox [0 0 ");
  ASSERT_NE(box, std::string::npos);
  double w_pt = 0, h_pt = 0;
  ASSERT_EQ(std::sscanf(pdf.c_str() + box, "/MediaBox [0 0 %lf %lf]", &w_pt, &h_pt), 2);
  EXPECT_NEAR(w_pt * 25.4 / 72, img->width / 4.0, 0.01);
  EXPECT_NEAR(h_pt * 25.4 / 72, img->height / 4.0, 0.01);
  const std::string cmd = "pdftoppm -scale-to-x " + std::to_string(img->width) + " -scale-to-y " +
                          std::to_string(img->height) + " -png '" +
                          (dir.path() / "page.pdf").string() + "' '" +
                          (dir.path() / "back").string() + "'";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd << " (poppler-utils, scripts/install-deps.sh)";
  cv::Mat back = cv::imread((dir.path() / "back-1.png").string(), cv::IMREAD_COLOR);
  cv::Mat png =
      cv::imdecode(std::vector<uchar>(img->png.begin(), img->png.end()), cv::IMREAD_COLOR);
  ASSERT_FALSE(back.empty());
  ASSERT_FALSE(png.empty());
  ASSERT_EQ(back.size(), png.size());
  // The reader resamples fine grid lines a little; blurred alike, the pages match.
  cv::Mat a, b, diff;
  cv::GaussianBlur(back, a, cv::Size(7, 7), 0);
  cv::GaussianBlur(png, b, cv::Size(7, 7), 0);
  cv::absdiff(a, b, diff);
  const cv::Scalar m = cv::mean(diff);
  EXPECT_LT(m[0] + m[1] + m[2], 12.0) << m;  // 5.3 here
  // And the image in the PDF is the PNG's pixels exactly (lossless).
  const std::size_t image = pdf.find("/Subtype /Image");
  ASSERT_NE(image, std::string::npos);
  const std::size_t from = pdf.find("stream\n", image) + 7;
  const std::size_t to = pdf.find("\nendstream", from);
  std::vector<unsigned char> rgb(static_cast<std::size_t>(png.total()) * 3);
  uLongf size = rgb.size();
  ASSERT_EQ(uncompress(rgb.data(), &size, reinterpret_cast<const Bytef*>(pdf.data() + from),
                       static_cast<uLong>(to - from)),
            Z_OK);
  ASSERT_EQ(size, rgb.size());
  cv::Mat expected;
  cv::cvtColor(png, expected, cv::COLOR_BGR2RGB);
  EXPECT_EQ(std::memcmp(rgb.data(), expected.data, rgb.size()), 0);
}

}  // namespace
}  // namespace yilian::viewer
