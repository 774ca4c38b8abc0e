#include "yilian/ecg/analysis.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <map>
#include <numbers>

#include "filters.h"
#include "yilian/ecg/beat_class.h"
#include "yilian/ecg/qrs.h"

namespace yilian::ecg {
namespace {

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
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

void add(Analysis& a, std::string code, std::string text, std::string evidence, std::string zh) {
  a.flags.push_back({std::move(code), std::move(text), std::move(evidence), std::move(zh)});
}

const LeadMeasurement* find_lead(const Measurements& m, const char* name) {
  for (const LeadMeasurement& l : m.leads) {
    if (l.lead == name) return &l;
  }
  return nullptr;
}

// The fraction of beats with a pacing spike (a jump of >= 1 mV from one sample to the next
// that comes back within 4 ms, in any lead) in the 150 ms before the beat.
double paced_fraction(const Record& r, const std::vector<std::int64_t>& beats) {
  const double fs = r.sampling_hz;
  if (fs < 400 || beats.empty()) return 0;  // spikes need a fast sampling rate to show
  const auto before = static_cast<std::int64_t>(0.15 * fs);
  const auto back = std::max<std::int64_t>(1, static_cast<std::int64_t>(0.004 * fs));
  std::size_t paced = 0;
  for (std::int64_t b : beats) {
    bool spike = false;
    for (const Lead& l : r.leads) {
      const auto n = static_cast<std::int64_t>(l.mv.size());
      for (std::int64_t k = std::max<std::int64_t>(1, b - before);
           k < std::min(b, n - back) && !spike; ++k) {
        const float jump =
            l.mv[static_cast<std::size_t>(k)] - l.mv[static_cast<std::size_t>(k - 1)];
        if (std::fabs(jump) < 1.0f) continue;
        const float after =
            l.mv[static_cast<std::size_t>(k + back)] - l.mv[static_cast<std::size_t>(k - 1)];
        spike = std::fabs(after) < 0.5f * std::fabs(jump);
      }
      if (spike) break;
    }
    paced += spike;
  }
  return static_cast<double>(paced) / static_cast<double>(beats.size());
}

// Atrial flutter waves: on lead II (or the first lead) with the QRS complexes blanked and
// high-passed at 2.5 Hz, a spectral peak at 3.5-6.5 Hz (210-390/min) that, with its harmonic,
// holds two thirds of the 2.5-12 Hz power and is at least 0.05 mV. (Subtracting the median beat
// would not do: flutter waves are locked to the QRS complexes they conduct to, whatever the
// conduction ratio, and would cancel with it.) Returns the flutter rate per minute.
std::optional<double> flutter_rate(const Record& r, const std::vector<std::vector<float>>& filtered,
                                   const std::vector<std::int64_t>& beats) {
  const double fs = r.sampling_hz;
  std::size_t li = 0;
  for (std::size_t i = 0; i < r.leads.size(); ++i) {
    if (standard_lead_name(r.leads[i].name) == "II") li = i;
  }
  if (filtered.empty() || beats.size() < 3) return std::nullopt;
  std::vector<float> x = filtered[li];
  const auto n = static_cast<std::int64_t>(x.size());
  // The QRS complexes blanked (a line across each), then high-passed: T waves lose most of
  // their power below 2.5 Hz.
  const auto a0 = static_cast<std::int64_t>(0.06 * fs), b0 = static_cast<std::int64_t>(0.08 * fs);
  for (std::int64_t b : beats) {
    const std::int64_t lo = std::max<std::int64_t>(0, b - a0), hi = std::min(n - 1, b + b0);
    for (std::int64_t k = lo; k <= hi; ++k) {
      const double f = hi > lo ? static_cast<double>(k - lo) / static_cast<double>(hi - lo) : 0;
      x[static_cast<std::size_t>(k)] = static_cast<float>(
          x[static_cast<std::size_t>(lo)] +
          f * (x[static_cast<std::size_t>(hi)] - x[static_cast<std::size_t>(lo)]));
    }
  }
  filtfilt(x, {Biquad::high_pass(2.5, fs), Biquad::low_pass(std::min(15.0, 0.4 * fs), fs)});
  // Down to ~50 Hz (block means; the signal is low-passed at 15 Hz) so that the spectrum costs
  // little, then the power at 0.1 Hz steps (the record is ~10 s: 0.1 Hz resolution).
  const auto step = std::max<std::size_t>(1, static_cast<std::size_t>(fs / 50));
  const double fs_d = fs / static_cast<double>(step);
  std::vector<double> y;
  for (std::size_t k = 0; k + step <= x.size(); k += step) {
    double sum = 0;
    for (std::size_t j = k; j < k + step; ++j) sum += x[j];
    y.push_back(sum / static_cast<double>(step));
  }
  if (y.size() < 50) return std::nullopt;
  const auto m = static_cast<double>(y.size());
  auto power = [&](double hz) {  // Goertzel
    const double w = 2 * std::numbers::pi * hz / fs_d, c = 2 * std::cos(w);
    double s1 = 0, s2 = 0;
    for (double v : y) {
      const double s0 = v + c * s1 - s2;
      s2 = s1;
      s1 = s0;
    }
    return (s1 * s1 + s2 * s2 - c * s1 * s2) / m;
  };
  double total = 0, peak = 0, peak_hz = 0;
  std::vector<std::pair<double, double>> spectrum;
  for (double hz = 2.5; hz <= 12.0; hz += 0.1) {
    const double p = power(hz);
    spectrum.emplace_back(hz, p);
    total += p;
    if (hz >= 3.5 && hz <= 6.5 && p > peak) peak = p, peak_hz = hz;
  }
  double near = 0;
  for (const auto& [hz, p] : spectrum) {
    if (std::fabs(hz - peak_hz) <= 0.25 || std::fabs(hz - 2 * peak_hz) <= 0.25) near += p;
  }
  // Amplitude of the peak component (mV): 2 sqrt(P / n) for a sine of P = n A^2 / 4.
  const double amp = 2 * std::sqrt(peak / m);
  if (total > 0 && near / total >= 0.65 && amp >= 0.05) return peak_hz * 60;
  return std::nullopt;
}

// Early repolarisation rather than an infarction: mild (< 0.2 mV at J) elevation spread over
// more than one territory and no reciprocal depression anywhere.
bool early_repolarisation_pattern(const Measurements& m, const std::vector<std::string>& elevated,
                                  bool no_reciprocal) {
  if (!no_reciprocal || elevated.empty()) return false;
  for (const auto& name : elevated) {
    const LeadMeasurement* l = find_lead(m, name.c_str());
    if (!l || l->st_j_mv >= 0.2) return false;
  }
  int territories_hit = 0;
  for (const Territory& t : territories()) {
    int count = 0;
    for (const auto& l : t.leads) count += std::count(elevated.begin(), elevated.end(), l) > 0;
    territories_hit += count >= 2;
  }
  // Reciprocal depression is looked for everywhere, not only opposite one territory.
  for (const LeadMeasurement& l : m.leads) {
    if (l.lead != "aVR" && l.lead != "V1" && l.st_j_mv <= -0.05) return false;
  }
  return territories_hit >= 2;
}

// Runs in a sequence of beat classes: couplets (exactly two in a row) and bigeminy (the class
// on every other beat for at least three cycles).
void patterns(const std::vector<BeatClass>& c, BeatClass k, std::size_t& count,
              std::size_t& couplets, bool& bigeminy) {
  count = 0;
  couplets = 0;
  bigeminy = false;
  std::size_t run = 0, alternating = 0;
  for (std::size_t i = 0; i < c.size(); ++i) {
    if (c[i] == k) {
      ++count;
      ++run;
    } else {
      if (run == 2) ++couplets;
      run = 0;
    }
    if (i >= 1 && (c[i] == k) != (c[i - 1] == k)) {
      if (++alternating >= 5) bigeminy = true;  // N k N k N k: five alternations
    } else {
      alternating = 0;
    }
  }
  if (run == 2) ++couplets;
}

void rhythm_statements(const Record& record, Analysis& a, const Patient& patient,
                       const std::vector<std::vector<float>>& filtered,
                       const std::vector<std::string>& off) {
  Measurements& m = a.measurements;
  (void)off;
  const double fs = record.sampling_hz;
  const std::string hr = fmt("HR %.0f/min", m.heart_rate_bpm);
  if (m.beats < 2) return;

  // Beat classes and their patterns.
  a.beat_classes = classify_beats(record, a.beats);
  patterns(a.beat_classes, BeatClass::V, m.ventricular, m.ventricular_couplets,
           m.ventricular_bigeminy);
  patterns(a.beat_classes, BeatClass::S, m.supraventricular, m.supraventricular_couplets,
           m.supraventricular_bigeminy);
  // The RR of beats between two dominant beats (sinus arrhythmia is judged on them alone).
  std::vector<double> nn;
  for (std::size_t i = 1; i < a.beats.size(); ++i) {
    if (a.beat_classes[i] == BeatClass::N && a.beat_classes[i - 1] == BeatClass::N)
      nn.push_back(static_cast<double>(a.beats[i] - a.beats[i - 1]) / fs);
  }

  m.paced = paced_fraction(record, a.beats) >= 0.5;
  m.flutter_rate_bpm = m.paced ? std::nullopt : flutter_rate(record, filtered, a.beats);
  const bool irregular = m.rr_irregularity > 0.1;
  const bool af = !m.paced && !m.flutter_rate_bpm && irregular && !m.p_waves;
  const bool sinus = !m.paced && !m.flutter_rate_bpm && !af && m.p_waves && m.pr_ms &&
                     *m.pr_ms >= 80 && *m.pr_ms <= 400;
  const std::string ev_rr = fmt(", RR irregularity %.2f", m.rr_irregularity);

  // Rhythm.
  if (m.paced) {
    add(a, "paced_rhythm", "Paced rhythm", hr + ", pacing spikes before most beats", "起搏心律");
  } else if (m.flutter_rate_bpm) {
    add(a, "atrial_flutter", "Atrial flutter",
        fmt("flutter waves %.0f/min", *m.flutter_rate_bpm) + ", " + hr, "心房扑动");
  } else if (af) {
    add(a, "atrial_fibrillation", "Atrial fibrillation", hr + ev_rr + ", no P waves", "心房颤动");
  } else if (sinus) {
    const std::string ev = hr + fmt(", PR %.0f ms", *m.pr_ms);
    if (m.heart_rate_bpm < 60) {
      add(a, "sinus_bradycardia", "Sinus bradycardia", ev, "窦性心动过缓");
    } else if (m.heart_rate_bpm > 100) {
      add(a, "sinus_tachycardia", "Sinus tachycardia", ev, "窦性心动过速");
    } else {
      add(a, "sinus_rhythm", "Sinus rhythm", ev + ev_rr, "窦性心律");
    }
    if (nn.size() >= 3) {
      auto [lo, hi] = std::minmax_element(nn.begin(), nn.end());
      if (*hi - *lo > 0.12)
        add(a, "sinus_arrhythmia", "Sinus arrhythmia",
            fmt("RR between sinus beats %.0f", 1000 * *lo) + fmt("-%.0f ms", 1000 * *hi),
            "窦性心律不齐");
    }
  } else {
    if (irregular) {
      add(a, "irregular_rhythm",
          m.p_waves ? "Irregular rhythm" : "Irregular rhythm without P waves", ev_rr.substr(2),
          "心律不齐");
    }
    if (m.heart_rate_bpm < 60) add(a, "bradycardia", "Bradycardia", hr, "心动过缓");
    if (m.heart_rate_bpm > 100) add(a, "tachycardia", "Tachycardia", hr, "心动过速");
  }

  // Ectopic beats (not in atrial fibrillation or flutter, where "premature" has no meaning for
  // supraventricular beats; not in paced rhythm).
  const std::string of = " of " + std::to_string(m.beats) + " beats";
  if (!m.paced && m.ventricular > 0) {
    add(a, "pvc", "Premature ventricular complexes", std::to_string(m.ventricular) + of,
        "室性早搏");
    if (m.ventricular_couplets > 0)
      add(a, "pvc_couplets", "Ventricular couplets",
          std::to_string(m.ventricular_couplets) + " couplets", "成对室性早搏");
    if (m.ventricular_bigeminy)
      add(a, "ventricular_bigeminy", "Ventricular bigeminy", "every other beat ventricular",
          "室性早搏二联律");
  }
  if (!m.paced && !af && !m.flutter_rate_bpm && m.supraventricular > 0) {
    add(a, "pac", "Premature atrial complexes", std::to_string(m.supraventricular) + of,
        "房性早搏");
    if (m.supraventricular_couplets > 0)
      add(a, "pac_couplets", "Atrial couplets",
          std::to_string(m.supraventricular_couplets) + " couplets", "成对房性早搏");
    if (m.supraventricular_bigeminy)
      add(a, "atrial_bigeminy", "Atrial bigeminy", "every other beat supraventricular premature",
          "房性早搏二联律");
  }

  // Conduction.
  if (sinus && *m.pr_ms > 200)
    add(a, "first_degree_av_block", "First-degree AV block", fmt("PR %.0f ms (> 200)", *m.pr_ms),
        "一度房室传导阻滞");
  const LeadMeasurement *v1 = find_lead(m, "V1"), *l1 = find_lead(m, "I"), *v6 = find_lead(m, "V6");
  bool lbbb = false;
  if (!m.paced && m.qrs_ms && *m.qrs_ms >= 120) {
    const std::string ev = fmt("QRS %.0f ms", *m.qrs_ms);
    auto term = [](const LeadMeasurement* l) { return l ? l->terminal_mv : 0.0; };
    if (v1 && term(v1) > 0.05 && ((l1 && term(l1) < -0.05) || (v6 && term(v6) < -0.05))) {
      add(a, "rbbb", "Complete right bundle branch block",
          ev + fmt(", terminal R' in V1 %+.2f mV", term(v1)), "完全性右束支传导阻滞");
    } else if (v1 && term(v1) < -0.05 && v1->r_mv + v1->s_mv < 0 && l1 && term(l1) > 0.05 && v6 &&
               term(v6) > 0.05) {
      lbbb = true;
      add(a, "lbbb", "Complete left bundle branch block", ev + ", QS/rS in V1, broad R in I and V6",
          "完全性左束支传导阻滞");
    } else {
      add(a, "intraventricular_conduction_delay", "Nonspecific intraventricular conduction delay",
          ev, "非特异性室内传导阻滞");
    }
  }

  // Voltage.
  const LeadMeasurement *v5 = find_lead(m, "V5"), *v3 = find_lead(m, "V3"),
                        *avl = find_lead(m, "aVL");
  if (v1 && (v5 || v6))
    m.sokolow_lyon_mv = -v1->s_mv + std::max(v5 ? v5->r_mv : 0.0, v6 ? v6->r_mv : 0.0);
  if (avl && v3) m.cornell_mv = avl->r_mv - v3->s_mv;
  if (!m.paced && !lbbb) {
    const double cornell_limit = patient.sex == 'F' ? 2.0 : 2.8;
    std::string ev;
    if (m.sokolow_lyon_mv && *m.sokolow_lyon_mv >= 3.5)
      ev = fmt("Sokolow-Lyon SV1+RV5/6 %.2f mV (>= 3.5)", *m.sokolow_lyon_mv);
    if (m.cornell_mv && *m.cornell_mv > cornell_limit)
      ev += (ev.empty() ? "" : "; ") + fmt("Cornell RaVL+SV3 %.2f mV", *m.cornell_mv) +
            fmt(" (> %.1f)", cornell_limit);
    if (!ev.empty())
      add(a, "lvh", "Left ventricular hypertrophy (voltage criteria)", ev,
          "左心室肥厚（电压标准）");
  }
  {
    double limb = 0, chest = 0;  // the largest QRS (peak to peak) of each group
    int nl = 0, nc = 0;
    for (const LeadMeasurement& l : m.leads) {
      if (std::find(off.begin(), off.end(), l.lead) != off.end()) continue;
      const double pp = l.r_mv - l.s_mv;
      if (l.lead == "I" || l.lead == "II" || l.lead == "III" || l.lead == "aVR" ||
          l.lead == "aVL" || l.lead == "aVF") {
        limb = std::max(limb, pp);
        ++nl;
      } else if (l.lead.size() == 2 && l.lead[0] == 'V') {
        chest = std::max(chest, pp);
        ++nc;
      }
    }
    // The largest QRS of each group is under the limit: every lead of the group is.
    std::string ev, zh;
    if (nl == 6 && limb < 0.5) ev = fmt("limb leads QRS <= %.2f mV", limb), zh = "肢体导联低电压";
    if (nc == 6 && chest < 1.0) {
      ev += (ev.empty() ? "" : "; ") + fmt("chest leads QRS <= %.2f mV", chest);
      zh = zh.empty() ? "胸导联低电压" : "肢体导联及胸导联低电压";
    }
    if (!ev.empty()) add(a, "low_voltage", "Low QRS voltage", ev, zh);
  }

  // Axis and QT.
  if (m.axis_deg && !m.paced) {
    const double ax = *m.axis_deg;
    const std::string ev = fmt("QRS axis %.0f degrees", ax);
    if (ax < -90) {
      add(a, "extreme_axis", "Extreme axis deviation", ev, "电轴极度偏移（不确定电轴）");
    } else if (ax < -30) {
      add(a, "left_axis_deviation", "Left axis deviation", ev, "电轴左偏");
    } else if (ax > 90) {
      add(a, "right_axis_deviation", "Right axis deviation", ev, "电轴右偏");
    }
  }
  if (m.qtc_bazett_ms) {
    const double limit = patient.sex == 'F' ? 470 : (patient.sex == 'M' ? 450 : 460);
    if (*m.qtc_bazett_ms > limit)
      add(a, "long_qt", "Long QT",
          fmt("QTc (Bazett) %.0f ms", *m.qtc_bazett_ms) + fmt(" > %.0f ms", limit) +
              fmt(", QT %.0f ms", *m.qt_ms),
          "QT间期延长");
  }
}

}  // namespace

const std::vector<Statement>& statement_catalogue() {
  static const std::vector<Statement> kCatalogue = {
      // Proposed by the analysis.
      {"sinus_rhythm", "Sinus rhythm", "窦性心律", true},
      {"sinus_bradycardia", "Sinus bradycardia", "窦性心动过缓", true},
      {"sinus_tachycardia", "Sinus tachycardia", "窦性心动过速", true},
      {"sinus_arrhythmia", "Sinus arrhythmia", "窦性心律不齐", true},
      {"atrial_fibrillation", "Atrial fibrillation", "心房颤动", true},
      {"atrial_flutter", "Atrial flutter", "心房扑动", true},
      {"paced_rhythm", "Paced rhythm", "起搏心律", true},
      {"irregular_rhythm", "Irregular rhythm", "心律不齐", true},
      {"bradycardia", "Bradycardia", "心动过缓", true},
      {"tachycardia", "Tachycardia", "心动过速", true},
      {"pvc", "Premature ventricular complexes", "室性早搏", true},
      {"pvc_couplets", "Ventricular couplets", "成对室性早搏", true},
      {"ventricular_bigeminy", "Ventricular bigeminy", "室性早搏二联律", true},
      {"pac", "Premature atrial complexes", "房性早搏", true},
      {"pac_couplets", "Atrial couplets", "成对房性早搏", true},
      {"atrial_bigeminy", "Atrial bigeminy", "房性早搏二联律", true},
      {"first_degree_av_block", "First-degree AV block", "一度房室传导阻滞", true},
      {"rbbb", "Complete right bundle branch block", "完全性右束支传导阻滞", true},
      {"lbbb", "Complete left bundle branch block", "完全性左束支传导阻滞", true},
      {"intraventricular_conduction_delay", "Nonspecific intraventricular conduction delay",
       "非特异性室内传导延迟", true},
      {"lvh", "Left ventricular hypertrophy (voltage criteria)", "左心室肥厚（电压标准）", true},
      {"low_voltage", "Low QRS voltage", "QRS低电压", true},
      {"left_axis_deviation", "Left axis deviation", "电轴左偏", true},
      {"right_axis_deviation", "Right axis deviation", "电轴右偏", true},
      {"extreme_axis", "Extreme axis deviation", "电轴极度偏移", true},
      {"long_qt", "Long QT", "QT间期延长", true},
      {"suspected_stemi", "Suspected STEMI", "疑似急性ST段抬高型心肌梗死", true},
      {"early_repolarisation", "Early repolarisation pattern", "早期复极改变", true},
      {"poor_quality", "Poor signal quality", "信号质量差", true},
      {"st_distorting_filter", "Recorded with a monitoring high-pass filter", "采用监护滤波记录",
       true},
      // Added by readers.
      {"normal_ecg", "Normal ECG", "正常心电图", false},
      {"st_t_abnormality", "ST-T abnormality", "ST-T改变", false},
      {"t_wave_abnormality", "T-wave abnormality", "T波改变", false},
      {"second_degree_av_block", "Second-degree AV block", "二度房室传导阻滞", false},
      {"third_degree_av_block", "Third-degree (complete) AV block", "三度房室传导阻滞", false},
      {"incomplete_rbbb", "Incomplete right bundle branch block", "不完全性右束支传导阻滞", false},
      {"left_anterior_fascicular_block", "Left anterior fascicular block", "左前分支阻滞", false},
      {"rvh", "Right ventricular hypertrophy", "右心室肥厚", false},
      {"old_myocardial_infarction", "Old myocardial infarction", "陈旧性心肌梗死", false},
      {"myocardial_ischaemia", "Myocardial ischaemia", "心肌缺血", false},
      {"pre_excitation", "Ventricular pre-excitation (WPW pattern)", "心室预激（预激综合征）",
       false},
      {"junctional_rhythm", "Junctional rhythm", "交界性心律", false},
      {"supraventricular_tachycardia", "Supraventricular tachycardia", "室上性心动过速", false},
      {"ventricular_tachycardia", "Ventricular tachycardia", "室性心动过速", false},
      {"sinus_pause", "Sinus pause", "窦性停搏", false},
      {"clockwise_rotation", "Clockwise rotation", "顺钟向转位", false},
  };
  return kCatalogue;
}

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
    a.flags.push_back({"poor_quality", "Too short or empty: cannot be analysed",
                       "samples=" + std::to_string(n), "记录过短或为空，无法分析"});
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
      const std::size_t term_from = offs > on + at_ms(40) ? offs - at_ms(40) : on;
      for (std::size_t k = term_from; k < offs; ++k) lm.terminal_mv += mb.leads[li][k] - iso[li];
      lm.terminal_mv /= static_cast<double>(std::max<std::size_t>(1, offs - term_from));
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
    a.flags.push_back({"poor_quality", "Poor signal quality: repeat the ECG if the findings matter",
                       ev, "信号质量差，必要时请重新描记"});
  }
  // A high-pass above 0.05 Hz (a monitoring filter, often 0.5 Hz) shifts the ST segment: the
  // ST levels, and a STEMI decision on them, are then not reliable (AHA/ACC/HRS 2007).
  {
    double worst = 0;
    for (const Lead& l : record.leads) worst = std::max(worst, l.filter_low_hz.value_or(0));
    if (worst > 0.05 + 1e-9) {
      a.flags.push_back({"st_distorting_filter",
                         "Recorded with a monitoring high-pass filter: ST levels may be distorted",
                         fmt("device high-pass %.2f Hz (diagnostic ST needs 0.05 Hz)", worst),
                         "采用监护滤波记录，ST段测量可能失真"});
    }
  }
  rhythm_statements(record, a, patient, filtered, off);

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
    static const std::map<std::string, std::string> kZhTerritory = {
        {"inferior", "下壁"}, {"anterior", "前壁"}, {"lateral", "侧壁"}};
    std::string zh;
    for (const auto& t : terr) zh += kZhTerritory.at(t);
    if (early_repolarisation_pattern(m, stemi_leads, reciprocal.empty())) {
      a.flags.push_back(
          {"early_repolarisation",
           "Early repolarisation pattern: mild ST elevation in several territories without "
           "reciprocal depression; STEMI not suggested, compare with a previous ECG",
           ev,
           "早期复极改变：多个导联组ST段轻度抬高，无对应导联压低，不支持ST段抬高型心肌梗死，"
           "建议与既往心电图对比"});
    } else {
      a.flags.push_back({"suspected_stemi", text, ev,
                         "疑似急性ST段抬高型心肌梗死" + (zh.empty() ? "" : "（" + zh + "）")});
    }
  }
  return a;
}

}  // namespace yilian::ecg
