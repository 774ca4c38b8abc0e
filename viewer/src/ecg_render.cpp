#include "yilian/viewer/ecg_render.h"

#include "pdf_page.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <opencv2/freetype.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "yilian/ecg/analysis.h"

namespace yilian::viewer {
namespace {

constexpr double kMmPerSecond = 25, kMmPerMv = 10;

struct Cell {
  std::string lead;
  double t0 = 0, seconds = 2.5;  // the stretch of the record shown
  int row = 0;
  double x_mm = 0;  // where the cell starts on the paper, after the calibration pulse
};

}  // namespace

std::string default_cjk_font() {
  for (const char* f : {"/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
                        "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
                        "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
                        "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf"}) {
    std::error_code ec;
    if (std::filesystem::exists(f, ec)) return f;
  }
  return "";
}

Result<EcgImage> render_ecg(const ecg::Record& record, const EcgRenderOptions& o) {
  if (record.leads.empty() || record.sampling_hz <= 0)
    return make_error(Errc::invalid_argument, "the ECG has no leads");
  std::map<std::string, const std::vector<float>*> by_name;
  for (const auto& l : record.leads) by_name.emplace(ecg::standard_lead_name(l.name), &l.mv);
  // Derive missing limb leads from I and II (Einthoven, Goldberger) when those exist.
  std::map<std::string, std::vector<float>> derived;
  if (by_name.count("I") && by_name.count("II")) {
    const auto& i = *by_name["I"];
    const auto& ii = *by_name["II"];
    const std::size_t n = std::min(i.size(), ii.size());
    auto make = [&](const char* name, auto f) {
      if (by_name.count(name)) return;
      std::vector<float> v(n);
      for (std::size_t k = 0; k < n; ++k) v[k] = f(i[k], ii[k]);
      derived[name] = std::move(v);
    };
    make("III", [](float a, float b) { return b - a; });
    make("aVR", [](float a, float b) { return -(a + b) / 2; });
    make("aVL", [](float a, float b) { return a - b / 2; });
    make("aVF", [](float a, float b) { return b - a / 2; });
    for (auto& [name, v] : derived) by_name[name] = &v;
  }
  const double seconds = static_cast<double>(record.samples()) / record.sampling_hz;
  std::vector<Cell> cells;
  int rows = 0;
  static const char* kOrder[] = {"I",  "II", "III", "aVR", "aVL", "aVF",
                                 "V1", "V2", "V3",  "V4",  "V5",  "V6"};
  auto column_layout = [&](int cols, int per_col, bool rhythm) {
    const double w = std::min(10.0, seconds) / cols;
    for (int c = 0; c < cols; ++c) {
      for (int r = 0; r < per_col; ++r) {
        cells.push_back({kOrder[c * per_col + r], c * w, w, r, c * w * kMmPerSecond});
      }
    }
    rows = per_col;
    if (rhythm) cells.push_back({"II", 0, std::min(10.0, seconds), rows++, 0});
  };
  if (o.layout == "3x4+II" || o.layout == "3x4") {
    column_layout(4, 3, o.layout == "3x4+II");
  } else if (o.layout == "6x2") {
    column_layout(2, 6, false);
  } else if (o.layout == "12x1") {
    column_layout(1, 12, false);
  } else {
    return make_error(Errc::invalid_argument, "layout must be 3x4+II, 3x4, 6x2 or 12x1");
  }
  for (const Cell& c : cells) {
    if (!by_name.count(c.lead))
      return make_error(Errc::invalid_argument, "the ECG has no lead " + c.lead);
  }

  const double px = o.px_per_mm;
  const double row_mm = o.layout == "12x1" ? 20 : (o.layout == "6x2" ? 25 : 40);
  const double cal_mm = 10;  // calibration pulse and its margin
  const double paper_w_mm = cal_mm + std::min(10.0, seconds) * kMmPerSecond + 5;
  const double paper_h_mm = rows * row_mm + 5;
  const int header_px = static_cast<int>(std::lround(16 * px));
  const double line_mm = 5.5;  // one line of text under the paper
  const std::size_t lines_below = o.statements.size() + (o.footer.empty() ? 0 : 1);
  const int below_px = static_cast<int>(std::lround((lines_below * line_mm + 2) * px));
  EcgImage out;
  out.paper_x = static_cast<int>(std::lround(5 * px));
  out.paper_y = header_px;
  out.width = out.paper_x + static_cast<int>(std::lround(paper_w_mm * px)) + out.paper_x;
  out.height = header_px + static_cast<int>(std::lround(paper_h_mm * px)) + out.paper_x + below_px;
  cv::Mat img(out.height, out.width, CV_8UC3, cv::Scalar(255, 255, 255));
  auto X = [&](double mm) { return out.paper_x + static_cast<int>(std::lround(mm * px)); };
  auto Y = [&](double mm) { return out.paper_y + static_cast<int>(std::lround(mm * px)); };

  // The grid: every millimetre faint, every 5 mm stronger (BGR).
  const cv::Scalar minor(220, 220, 255), major(150, 150, 240);
  for (int mm = 0; mm <= static_cast<int>(paper_w_mm); ++mm)
    cv::line(img, {X(mm), Y(0)}, {X(mm), Y(paper_h_mm)}, mm % 5 ? minor : major, 1);
  for (int mm = 0; mm <= static_cast<int>(paper_h_mm); ++mm)
    cv::line(img, {X(0), Y(mm)}, {X(paper_w_mm), Y(mm)}, mm % 5 ? minor : major, 1);

  const cv::Scalar ink(0, 0, 0);
  const double font = 0.09 * px;
  for (int r = 0; r < rows; ++r) {
    const double base = (r + 0.6) * row_mm;
    out.row_baselines.push_back(Y(base));
    // 1 mV for 0.2 s.
    std::vector<cv::Point> pulse = {{X(1), Y(base)},      {X(3), Y(base)}, {X(3), Y(base - 10)},
                                    {X(8), Y(base - 10)}, {X(8), Y(base)}, {X(cal_mm), Y(base)}};
    cv::polylines(img, pulse, false, ink, std::max(1, static_cast<int>(px / 3)), cv::LINE_AA);
  }
  for (const Cell& c : cells) {
    const auto& v = *by_name[c.lead];
    const double base = (c.row + 0.6) * row_mm;
    const auto a = static_cast<std::size_t>(c.t0 * record.sampling_hz);
    const auto b =
        std::min(v.size(), static_cast<std::size_t>((c.t0 + c.seconds) * record.sampling_hz));
    std::vector<cv::Point> trace;
    trace.reserve(b - a);
    for (std::size_t k = a; k < b; ++k) {
      const double t = static_cast<double>(k - a) / record.sampling_hz;
      const double mv = std::clamp(static_cast<double>(v[k]), -3.0, 3.0);
      trace.emplace_back(X(cal_mm + c.x_mm + t * kMmPerSecond), Y(base - mv * kMmPerMv));
    }
    cv::polylines(img, trace, false, ink, std::max(1, static_cast<int>(px / 3)), cv::LINE_AA);
    cv::putText(img, c.lead, {X(cal_mm + c.x_mm + 1), Y(base - 0.45 * row_mm)},
                cv::FONT_HERSHEY_SIMPLEX, font, ink, 1, cv::LINE_AA);
    if (c.x_mm > 0)  // a tick where the columns meet
      cv::line(img, {X(cal_mm + c.x_mm), Y(base - 3)}, {X(cal_mm + c.x_mm), Y(base + 3)}, ink, 1);
  }
  // Text: with the CJK font when there is one (Chinese names and statements), else ASCII.
  cv::Ptr<cv::freetype::FreeType2> ft;
  const std::string font_file = o.font_file.empty() ? default_cjk_font() : o.font_file;
  if (!font_file.empty()) {
    try {
      ft = cv::freetype::createFreeType2();
      ft->loadFontData(font_file, 0);
    } catch (const cv::Exception& e) {
      spdlog::warn("ECG page: font {} unusable ({}); text drawn in ASCII", font_file, e.what());
      ft.release();
    }
  }
  out.cjk = static_cast<bool>(ft);
  const int text_px = static_cast<int>(std::lround(3.2 * px));  // 3.2 mm high
  auto text = [&](const std::string& s, int x, int y) {
    if (ft) {
      ft->putText(img, s, {x, y}, text_px, ink, -1, cv::LINE_AA, true);
    } else {
      std::string ascii;
      for (unsigned char ch : s) ascii += ch < 0x80 ? static_cast<char>(ch) : '?';
      cv::putText(img, ascii, {x, y}, cv::FONT_HERSHEY_SIMPLEX, font, ink, 1, cv::LINE_AA);
    }
  };
  const std::string scale = "25 mm/s  10 mm/mV";
  text(o.header.empty() ? scale : o.header + "   " + scale, out.paper_x, static_cast<int>(6 * px));
  if (!o.measurements.empty()) text(o.measurements, out.paper_x, static_cast<int>(12 * px));
  int y = Y(paper_h_mm) + static_cast<int>(std::lround((line_mm + 1) * px));
  for (const std::string& s : o.statements) {
    text(s, out.paper_x, y);
    y += static_cast<int>(std::lround(line_mm * px));
  }
  if (!o.footer.empty()) text(o.footer, out.paper_x, y);
  std::vector<uchar> buf;
  if (!cv::imencode(".png", img, buf)) return make_error(Errc::internal, "PNG encoding failed");
  out.png.assign(reinterpret_cast<const char*>(buf.data()), buf.size());
  if (o.pdf) {
    cv::Mat rgb;
    cv::cvtColor(img, rgb, img.channels() == 1 ? cv::COLOR_GRAY2RGB : cv::COLOR_BGR2RGB);
    out.pdf = image_pdf(rgb.data, rgb.cols, rgb.rows, o.px_per_mm, o.title);
    if (out.pdf.empty()) return make_error(Errc::internal, "PDF encoding failed");
  }
  return out;
}

}  // namespace yilian::viewer
