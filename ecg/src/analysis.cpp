#include "yilian/ecg/analysis.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <map>
#include <numbers>

#include "filters.h"
#include "yilian/ecg/qrs.h"

namespace yilian::ecg {
namespace {

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

double median_of(std::vector<double> v) {
  if (v.empty()) return 0;
  auto mid = v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2);
  std::nth_element(v.begin(), mid, v.end());
  return *mid;
}

// Median beats: for each lead, the sample-wise median of the beats of the dominant rhythm.
struct MedianBeats {
  std::size_t pre = 0, length = 0;  // samples before the fiducial point; total
  std::vector<std::vector<double>> leads;
};

MedianBeats median_beats(const std::vector<std::vector<float>>& leads,
                         const std::vector<std::int64_t>& beats, double fs, double rr_s) {
  MedianBeats m;
  m.pre = static_cast<std::size_t>(std::min(0.35, 0.45 * rr_s) * fs);
  const std::size_t post = static_cast<std::size_t>(std::min(0.6, 0.85 * rr_s) * fs);
  m.length = m.pre + post;
  const std::size_t n = leads.empty() ? 0 : leads[0].size();
  // Beats of the dominant rhythm: both neighbouring RR within 20 % of the median RR.
  std::vector<double> rr;
  for (std::size_t i = 1; i < beats.size(); ++i)
    rr.push_back(static_cast<double>(beats[i] - beats[i - 1]));
  const double mrr = median_of(rr);
  std::vector<std::int64_t> chosen;
  for (std::size_t i = 0; i < beats.size(); ++i) {
    const std::int64_t b = beats[i];
    if (b < static_cast<std::int64_t>(m.pre) ||
        b + static_cast<std::int64_t>(post) >= static_cast<std::int64_t>(n))
      continue;
    bool before = i == 0 || std::fabs(static_cast<double>(b - beats[i - 1]) - mrr) <= 0.2 * mrr;
    bool after = i + 1 == beats.size() ||
                 std::fabs(static_cast<double>(beats[i + 1] - b) - mrr) <= 0.2 * mrr;
    if (before && after) chosen.push_back(b);
  }
  if (chosen.size() < 3) {  // irregular rhythm: every complete beat
    chosen.clear();
    for (std::int64_t b : beats) {
      if (b >= static_cast<std::int64_t>(m.pre) &&
          b + static_cast<std::int64_t>(post) < static_cast<std::int64_t>(n))
        chosen.push_back(b);
    }
  }
  if (chosen.empty()) return m;
  std::vector<double> column(chosen.size());
  for (const auto& lead : leads) {
    std::vector<double> med(m.length);
    for (std::size_t k = 0; k < m.length; ++k) {
      for (std::size_t j = 0; j < chosen.size(); ++j)
        column[j] = lead[static_cast<std::size_t>(chosen[j]) - m.pre + k];
      med[k] = median_of(column);
    }
    m.leads.push_back(std::move(med));
  }
  return m;
}

// Contiguous lead groups (4th Universal Definition of MI) and the territory each stands for.
struct Territory {
  const char* name;
  std::vector<std::string> leads;
  std::vector<std::string> reciprocal;
};
const std::vector<Territory>& territories() {
  static const std::vector<Territory> kT = {
      {"inferior", {"II", "III", "aVF"}, {"I", "aVL"}},
      {"anterior", {"V1", "V2", "V3", "V4"}, {"II", "III", "aVF"}},
      {"lateral", {"I", "aVL", "V5", "V6"}, {"II", "III", "aVF"}},
  };
  return kT;
}

// Adjacent pairs within the groups above.
bool contiguous(const std::string& a, const std::string& b) {
  static const std::vector<std::pair<std::string, std::string>> kPairs = {
      {"II", "III"}, {"II", "aVF"}, {"III", "aVF"}, {"I", "aVL"}, {"V1", "V2"},  {"V2", "V3"},
      {"V3", "V4"},  {"V4", "V5"},  {"V5", "V6"},   {"I", "V6"},  {"aVL", "V5"}, {"I", "V5"}};
  for (const auto& [x, y] : kPairs) {
    if ((a == x && b == y) || (a == y && b == x)) return true;
  }
  return false;
}

}  // namespace

std::string measurement_summary(const Measurements& m) {
  auto v = [](const std::optional<double>& x) {
    return x ? std::to_string(static_cast<long>(std::lround(*x))) : std::string("-");
  };
  return "HR " + std::to_string(static_cast<long>(std::lround(m.heart_rate_bpm))) + "  PR " +
         v(m.pr_ms) + "  QRS " + v(m.qrs_ms) + "  QT/QTc " + v(m.qt_ms) + "/" + v(m.qtc_bazett_ms) +
         "  Axis " + v(m.axis_deg);
}

bool Analysis::has(const std::string& code) const {
  return std::any_of(flags.begin(), flags.end(), [&](const Flag& f) { return f.code == code; });
}

std::string standard_lead_name(const std::string& name) {
  std::string u;
  for (char c : name) {
    if (!std::isspace(static_cast<unsigned char>(c)) && c != '-' && c != '_')
      u += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  if (u.rfind("LEAD", 0) == 0) u = u.substr(4);
  static const std::map<std::string, std::string> kNames = {
      {"I", "I"},     {"II", "II"}, {"III", "III"}, {"AVR", "aVR"}, {"AVL", "aVL"},
      {"AVF", "aVF"}, {"V1", "V1"}, {"V2", "V2"},   {"V3", "V3"},   {"V4", "V4"},
      {"V5", "V5"},   {"V6", "V6"}, {"MLII", "II"}, {"MLI", "I"},   {"MLIII", "III"}};
  auto it = kNames.find(u);
  return it == kNames.end() ? name : it->second;
}

Analysis analyze(const Record& record, const Patient& patient, const AnalysisOptions& options) {
  Analysis a;
  Measurements& m = a.measurements;
  const double fs = record.sampling_hz;
  const std::size_t n = record.samples();
  if (record.leads.empty() || n < static_cast<std::size_t>(2 * fs)) {
    a.flags.push_back(
        {"poor_quality", "Too short or empty: cannot be analysed", "samples=" + std::to_string(n)});
    return a;
  }

  // Signal quality per lead: off (flat), saturated (stuck at its extremes), noisy.
  std::vector<std::string> off, saturated, noisy;
  for (const Lead& l : record.leads) {
    auto [lo, hi] = std::minmax_element(l.mv.begin(), l.mv.end());
    const std::string name = standard_lead_name(l.name);
    if (*hi - *lo < 0.02f) {
      off.push_back(name);
      continue;
    }
    std::size_t at_rail = 0;
    for (float v : l.mv) at_rail += (v == *lo || v == *hi);
    if (at_rail > n / 20) saturated.push_back(name);
  }

  // Beats are found on three leads that see the heart from different sides (II, V2, V5, or
  // the first three): as reliable as all twelve, and a quarter of the work.
  {
    Record three;
    three.sampling_hz = fs;
    for (const char* want : {"II", "V2", "V5"}) {
      for (const Lead& l : record.leads) {
        if (standard_lead_name(l.name) == want) three.leads.push_back(l);
      }
    }
    if (three.leads.size() < 3) {
      three.leads.assign(record.leads.begin(),
                         record.leads.begin() + static_cast<std::ptrdiff_t>(
                                                    std::min<std::size_t>(3, record.leads.size())));
    }
    a.beats = detect_qrs(three);
  }
  m.beats = a.beats.size();
  std::vector<double> rr;
  for (std::size_t i = 1; i < a.beats.size(); ++i)
    rr.push_back(static_cast<double>(a.beats[i] - a.beats[i - 1]) / fs);
  if (!rr.empty()) {
    double sum = 0, diff = 0;
    for (double v : rr) sum += v;
    const double mean = sum / static_cast<double>(rr.size());
    for (std::size_t i = 1; i < rr.size(); ++i) diff += std::fabs(rr[i] - rr[i - 1]);
    m.rr_ms = 1000 * mean;
    m.heart_rate_bpm = 60 / mean;
    m.rr_irregularity = rr.size() > 1 ? diff / static_cast<double>(rr.size() - 1) / mean : 0;
  }

  // Diagnostic filtering that leaves the ST segment alone: baseline wander is removed by
  // subtracting a line through one knot per beat (the level 80 ms before its R wave) rather
  // than by a high-pass filter, which would bend the ST level; then the mains notch and a
  // 100 Hz low-pass (the diagnostic band: a narrower one would smear the QRS onset and end).
  std::vector<std::vector<float>> filtered;
  std::vector<Biquad> chain = {Biquad::low_pass(std::min(100.0, 0.4 * fs), fs)};
  if (options.mains_hz > 0 && options.mains_hz < fs / 2)
    chain.push_back(Biquad::notch(options.mains_hz, fs));
  const auto knot_at = static_cast<std::int64_t>(0.08 * fs),
             knot_half = static_cast<std::int64_t>(0.01 * fs);
  for (const Lead& l : record.leads) {
    std::vector<float> x = l.mv;
    filtfilt(x, chain);
    // Noise: what the diagnostic filters took away (muscle, mains), as an RMS level.
    const std::string name = standard_lead_name(l.name);
    if (std::find(off.begin(), off.end(), name) == off.end()) {
      double hf = 0;
      for (std::size_t k = 0; k < n; ++k) hf += (l.mv[k] - x[k]) * (l.mv[k] - x[k]);
      if (std::sqrt(hf / static_cast<double>(n)) > 0.08) noisy.push_back(name);
    }
    std::vector<std::pair<double, double>> knots;
    for (std::int64_t b : a.beats) {
      const std::int64_t c = b - knot_at;
      if (c - knot_half < 0) continue;
      double sum = 0;
      for (std::int64_t k = c - knot_half; k <= c + knot_half; ++k)
        sum += x[static_cast<std::size_t>(k)];
      knots.emplace_back(static_cast<double>(c), sum / static_cast<double>(2 * knot_half + 1));
    }
    if (knots.size() >= 2) {
      std::size_t j = 0;
      for (std::size_t k = 0; k < n; ++k) {
        const double t = static_cast<double>(k);
        while (j + 2 < knots.size() && t > knots[j + 1].first) ++j;
        const auto& [t0, v0] = knots[j];
        const auto& [t1, v1] = knots[j + 1];
        const double f = std::clamp((t - t0) / (t1 - t0), 0.0, 1.0);
        x[k] -= static_cast<float>(v0 + (v1 - v0) * f);
      }
    }
    filtered.push_back(std::move(x));
  }

  const double rr_s = rr.empty() ? 1.0 : median_of(rr);
  MedianBeats mb = median_beats(filtered, a.beats, fs, rr_s);
  std::vector<std::string> names;
  for (const Lead& l : record.leads) names.push_back(standard_lead_name(l.name));

  if (!mb.leads.empty() && mb.length > 0) {
    const std::size_t len = mb.length, r0 = mb.pre;
    auto ms = [&](std::size_t samples) { return 1000.0 * static_cast<double>(samples) / fs; };
    auto at_ms = [&](double t) { return static_cast<std::size_t>(t * fs / 1000.0); };
    // Spatial velocity: how fast the leads change together.
    std::vector<double> sv(len, 0.0);
    for (std::size_t li = 0; li < mb.leads.size(); ++li) {
      if (std::find(off.begin(), off.end(), names[li]) != off.end()) continue;
      const auto& x = mb.leads[li];
      for (std::size_t k = 1; k + 1 < len; ++k) sv[k] += std::fabs(x[k + 1] - x[k - 1]) * fs / 2;
    }
    // Smoothed over 8 ms so that noise does not break a quiet stretch.
    {
      const std::size_t w = std::max<std::size_t>(1, at_ms(8));
      std::vector<double> smooth(len, 0.0);
      double run = 0;
      for (std::size_t k = 0; k < len; ++k) {
        run += sv[k];
        if (k >= w) run -= sv[k - w];
        if (k >= w / 2) smooth[k - w / 2] = run / static_cast<double>(w);
      }
      sv.swap(smooth);
    }
    // QRS: around the fiducial point, where the velocity stays above 5 % of its peak.
    const std::size_t near = at_ms(60);
    double peak = 0;
    for (std::size_t k = r0 > near ? r0 - near : 1; k < std::min(len - 1, r0 + near); ++k)
      peak = std::max(peak, sv[k]);
    const double thr = 0.05 * peak;
    const std::size_t hold = std::max<std::size_t>(2, at_ms(8));
    auto quiet_from = [&](std::size_t k, int dir) {
      std::size_t run = 0;
      while (k > 1 && k + 2 < len) {
        run = sv[k] < thr ? run + 1 : 0;
        if (run >= hold) return dir < 0 ? k + hold - 1 : k - hold + 1;
        k = dir < 0 ? k - 1 : k + 1;
      }
      return k;
    };
    const std::size_t on = quiet_from(r0, -1), offs = quiet_from(r0, +1);
    m.qrs_onset_ms = ms(on);
    m.qrs_offset_ms = ms(offs);
    m.qrs_ms = ms(offs - on);

    // Isoelectric level per lead: the PR segment just before the QRS.
    const std::size_t iso_a = on > at_ms(30) ? on - at_ms(30) : 0,
                      iso_b = on > at_ms(8) ? on - at_ms(8) : on;
    std::vector<double> iso(mb.leads.size(), 0.0);
    for (std::size_t li = 0; li < mb.leads.size(); ++li) {
      double s = 0;
      for (std::size_t k = iso_a; k <= iso_b; ++k) s += mb.leads[li][k];
      iso[li] = s / static_cast<double>(iso_b - iso_a + 1);
    }

    // T wave: in the lead where it is largest; its end by the tangent at the steepest return.
    const std::size_t t_from = std::min(len - 1, offs + at_ms(80));
    std::size_t best_lead = 0, t_peak = t_from;
    double t_amp = 0;
    for (std::size_t li = 0; li < mb.leads.size(); ++li) {
      const double st_level = mb.leads[li][std::min(len - 1, offs + at_ms(40))];
      for (std::size_t k = t_from; k < len - 1; ++k) {
        const double d = std::fabs(mb.leads[li][k] - 0.5 * (st_level + iso[li]));
        if (d > t_amp) {
          t_amp = d;
          best_lead = li;
          t_peak = k;
        }
      }
    }
    if (t_amp > 0.05) {
      const auto& x = mb.leads[best_lead];
      const double sign = x[t_peak] > iso[best_lead] ? 1 : -1;
      std::size_t steep = t_peak;
      double slope = 0;
      const std::size_t h = std::max<std::size_t>(1, at_ms(8));  // slope over 16 ms: noise
      for (std::size_t k = t_peak + 1; k + h < len; ++k) {
        const double s = -sign * (x[k + h] - x[k - h]) / static_cast<double>(2 * h);
        if (s > slope) {
          slope = s;
          steep = k;
        }
        if (sign * (x[k] - iso[best_lead]) < 0.1 * t_amp) break;
      }
      if (slope > 0) {
        const double t_end =
            static_cast<double>(steep) + sign * (x[steep] - iso[best_lead]) / slope;
        if (t_end > static_cast<double>(t_peak) && t_end < static_cast<double>(len)) {
          m.t_end_ms = 1000.0 * t_end / fs;
          m.qt_ms = *m.t_end_ms - *m.qrs_onset_ms;
          m.qtc_bazett_ms = *m.qt_ms / std::sqrt(rr_s);
          m.qtc_fridericia_ms = *m.qt_ms / std::cbrt(rr_s);
        }
      }
    }

    // P wave: the largest deflection 300 to 40 ms before the QRS, in any lead; its onset where
    // the spatial velocity falls under a fifth of its peak within the wave.
    const std::size_t p_a = on > at_ms(300) ? on - at_ms(300) : 1,
                      p_b = on > at_ms(40) ? on - at_ms(40) : 1;
    // In each lead, the largest deflection of the window counts as a P wave only if it rises
    // from the baseline inside the window (a deflection still high at the window's start is
    // the previous T wave or drift); the largest such wave gives the onset: back from its apex
    // to where it is within a tenth of its amplitude of the baseline.
    double p_amp = 0;
    std::size_t p_on = 0;
    for (std::size_t li = 0; li < mb.leads.size() && p_b > p_a; ++li) {
      const auto& x = mb.leads[li];
      std::size_t peak = p_a;
      for (std::size_t k = p_a; k < p_b; ++k) {
        if (std::fabs(x[k] - iso[li]) > std::fabs(x[peak] - iso[li])) peak = k;
      }
      const double amp = std::fabs(x[peak] - iso[li]);
      if (amp < 0.05 || amp <= p_amp) continue;
      std::size_t k = peak;
      while (k > p_a && std::fabs(x[k] - iso[li]) > 0.1 * amp) --k;
      if (k == p_a) continue;  // never came down to the baseline
      // The onset against the level just before the wave (the TP segment), which may differ
      // from the PR segment's (atrial repolarisation pulls the PR segment down).
      const std::size_t tp_end = std::min(p_a + at_ms(20), peak);
      double before = 0;
      for (std::size_t j = p_a; j < tp_end; ++j) before += x[j];
      before /= static_cast<double>(std::max<std::size_t>(1, tp_end - p_a));
      const double rise = std::fabs(x[peak] - before);
      std::size_t onset = peak;
      while (onset > p_a && std::fabs(x[onset] - before) > 0.1 * rise) --onset;
      p_amp = amp;
      p_on = onset;
    }
    if (p_amp > 0) {
      m.p_waves = true;
      m.p_onset_ms = ms(p_on);
      m.pr_ms = ms(on - p_on);
    }

    // Per-lead QRS amplitudes and ST levels.
    const std::size_t j = offs, j60 = std::min(len - 1, offs + at_ms(60));
    double net_i = 0, net_avf = 0, net_ii = 0, net_iii = 0;
    bool have_i = false, have_avf = false, have_ii = false, have_iii = false;
    for (std::size_t li = 0; li < mb.leads.size(); ++li) {
      LeadMeasurement lm;
      lm.lead = names[li];
      for (std::size_t k = on; k <= offs; ++k) {
        lm.r_mv = std::max(lm.r_mv, mb.leads[li][k] - iso[li]);
        lm.s_mv = std::min(lm.s_mv, mb.leads[li][k] - iso[li]);
      }
      lm.st_j_mv = mb.leads[li][j] - iso[li];
      lm.st_j60_mv = mb.leads[li][j60] - iso[li];
      const double net = lm.r_mv + lm.s_mv;
      if (lm.lead == "I") net_i = net, have_i = true;
      if (lm.lead == "aVF") net_avf = net, have_avf = true;
      if (lm.lead == "II") net_ii = net, have_ii = true;
      if (lm.lead == "III") net_iii = net, have_iii = true;
      m.leads.push_back(lm);
    }
    if (!have_i && have_ii && have_iii) net_i = net_ii - net_iii, have_i = true;
    if (!have_avf && have_ii && have_iii) net_avf = (net_ii + net_iii) / 2, have_avf = true;
    if (have_i && have_avf && (net_i != 0 || net_avf != 0))
      m.axis_deg = std::atan2(net_avf, net_i) * 180 / std::numbers::pi;
  }

  // Flags, each with its evidence.
  const std::string hr = fmt("HR %.0f/min", m.heart_rate_bpm);
  if (!off.empty() || !saturated.empty() || !noisy.empty() || m.beats < 2) {
    std::string ev;
    auto list = [&](const char* what, const std::vector<std::string>& v) {
      if (v.empty()) return;
      ev += std::string(ev.empty() ? "" : "; ") + what + ":";
      for (const auto& s : v) ev += " " + s;
    };
    list("lead off", off);
    list("saturated", saturated);
    list("noisy", noisy);
    if (m.beats < 2) ev += std::string(ev.empty() ? "" : "; ") + "fewer than 2 beats found";
    a.flags.push_back(
        {"poor_quality", "Poor signal quality: repeat the ECG if the findings matter", ev});
  }
  // A high-pass above 0.05 Hz (a monitoring filter, often 0.5 Hz) shifts the ST segment: the
  // ST levels, and a STEMI decision on them, are then not reliable (AHA/ACC/HRS 2007).
  {
    double worst = 0;
    for (const Lead& l : record.leads) worst = std::max(worst, l.filter_low_hz.value_or(0));
    if (worst > 0.05 + 1e-9) {
      a.flags.push_back({"st_distorting_filter",
                         "Recorded with a monitoring high-pass filter: ST levels may be distorted",
                         fmt("device high-pass %.2f Hz (diagnostic ST needs 0.05 Hz)", worst)});
    }
  }
  if (m.beats >= 2) {
    const bool irregular = m.rr_irregularity > 0.1;
    if (irregular) {
      a.flags.push_back({"irregular_rhythm",
                         m.p_waves
                             ? "Irregular rhythm"
                             : "Irregular rhythm without P waves: possible atrial fibrillation",
                         fmt("RR irregularity %.2f", m.rr_irregularity) +
                             (m.p_waves ? ", P waves present" : ", no P waves")});
    } else if (m.p_waves && m.pr_ms && *m.pr_ms >= 100 && *m.pr_ms <= 300) {
      a.flags.push_back(
          {"sinus_rhythm", "Sinus rhythm",
           hr + fmt(", PR %.0f ms", *m.pr_ms) + fmt(", RR irregularity %.2f", m.rr_irregularity)});
    }
    if (m.heart_rate_bpm < 60) a.flags.push_back({"bradycardia", "Bradycardia", hr});
    if (m.heart_rate_bpm > 100) a.flags.push_back({"tachycardia", "Tachycardia", hr});
  }
  if (m.qrs_ms && *m.qrs_ms >= 120)
    a.flags.push_back({"wide_qrs", "Wide QRS (bundle branch block or ventricular conduction)",
                       fmt("QRS %.0f ms", *m.qrs_ms)});
  if (m.qtc_bazett_ms) {
    const double limit = patient.sex == 'F' ? 470 : (patient.sex == 'M' ? 450 : 460);
    if (*m.qtc_bazett_ms > limit)
      a.flags.push_back({"long_qt", "Long QT",
                         fmt("QTc (Bazett) %.0f ms", *m.qtc_bazett_ms) + fmt(" > %.0f ms", limit) +
                             fmt(", QT %.0f ms", *m.qt_ms)});
  }

  // Suspected STEMI (4th Universal Definition of MI): new J-point elevation in at least two
  // contiguous leads, >= 0.1 mV except V2-V3, where >= 0.2 mV for men >= 40, >= 0.25 mV for
  // men < 40, >= 0.15 mV for women (unknown: the men's >= 40 limit).
  auto limit = [&](const std::string& lead) {
    if (lead != "V2" && lead != "V3") return 0.1;
    if (patient.sex == 'F') return 0.15;
    if (patient.sex == 'M' && patient.age && *patient.age < 40) return 0.25;
    return 0.2;
  };
  std::map<std::string, const LeadMeasurement*> by_name;
  for (const LeadMeasurement& lm : m.leads) by_name[lm.lead] = &lm;
  std::vector<std::string> elevated;
  for (const LeadMeasurement& lm : m.leads) {
    if (std::find(off.begin(), off.end(), lm.lead) != off.end()) continue;
    if (lm.st_j_mv >= limit(lm.lead) - 1e-9) elevated.push_back(lm.lead);
  }
  std::vector<std::string> stemi_leads;
  for (const auto& x : elevated) {
    for (const auto& y : elevated) {
      if (x != y && contiguous(x, y) &&
          std::find(stemi_leads.begin(), stemi_leads.end(), x) == stemi_leads.end())
        stemi_leads.push_back(x);
    }
  }
  if (!stemi_leads.empty()) {
    std::string ev = "ST elevation at J:";
    for (const auto& l : stemi_leads) ev += " " + l + fmt(" %+.2f mV", by_name[l]->st_j_mv);
    std::vector<std::string> terr;
    std::vector<std::string> reciprocal;
    for (const Territory& t : territories()) {
      int count = 0;
      for (const auto& l : t.leads)
        count += std::count(stemi_leads.begin(), stemi_leads.end(), l) > 0;
      if (count < 2) continue;
      terr.push_back(t.name);
      for (const auto& r : t.reciprocal) {
        auto it = by_name.find(r);
        if (it != by_name.end() && it->second->st_j_mv <= -0.05)
          reciprocal.push_back(r + fmt(" %+.2f mV", it->second->st_j_mv));
      }
    }
    std::string text = "Suspected STEMI";
    if (!terr.empty()) {
      text += " (";
      for (std::size_t i = 0; i < terr.size(); ++i) text += (i ? ", " : "") + terr[i];
      text += ")";
    }
    if (!reciprocal.empty()) {
      ev += "; reciprocal depression:";
      for (const auto& r : reciprocal) ev += " " + r;
    }
    a.flags.push_back({"suspected_stemi", text, ev});
  }
  return a;
}

}  // namespace yilian::ecg
