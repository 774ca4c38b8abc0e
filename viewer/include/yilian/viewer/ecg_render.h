// A 12-lead ECG drawn as on paper: 25 mm/s, 10 mm/mV, a millimetre grid (5 mm lines
// darker), a 1 mV calibration pulse at the start of each row, lead labels, a header line
// (patient and acquisition), a measurements line, and under the paper the interpretation's
// statements and a footer (who signed, when). Text is drawn with a CJK font from Debian
// (fonts-wqy-microhei) so that Chinese names and statements print; without one, ASCII only.
// PNG out.
#pragma once

#include <string>
#include <vector>

#include "yilian/common/result.h"
#include "yilian/ecg/record.h"

namespace yilian::viewer {

struct EcgRenderOptions {
  std::string layout = "3x4+II";        // or "12x1", "6x2"
  double px_per_mm = 4;                 // 4 px/mm is about 100 dpi
  std::string header;                   // e.g. "ZHANG^WEI  M 56y  2026-11-22 08:41  Township A"
  std::string measurements;             // e.g. "HR 61  PR 160  QRS 75  QT/QTc 368/370  Axis 52"
  std::vector<std::string> statements;  // one line each, under the paper
  std::string footer;                   // e.g. who signed the report and when
  std::string font_file;  // a TrueType/OpenType font with CJK glyphs; empty: Debian's known ones
  bool pdf = false;       // also the page as a one-page PDF at true size (EcgImage::pdf)
  std::string title;      // the PDF's title
};

// The CJK font render_ecg() uses when none is given, or "" when none is installed.
std::string default_cjk_font();

struct EcgImage {
  std::string png;
  std::string pdf;  // when asked for: printed at actual size, 25 mm/s and 10 mm/mV hold
  int width = 0, height = 0;
  // Where the page's paper area starts and each drawn row's baseline, for checks and
  // overlays: pixel coordinates.
  int paper_x = 0, paper_y = 0;
  std::vector<int> row_baselines;
  bool cjk = false;  // text was drawn with a CJK font
};

// Errors: invalid_argument (unknown layout, a record without the leads the layout needs
// unless they can be derived: I, II, III, aVR, aVL, aVF from any two limb leads).
Result<EcgImage> render_ecg(const ecg::Record& record, const EcgRenderOptions& options = {});

}  // namespace yilian::viewer
