// Analysis of a resting ECG (typically 10 s, 12 leads): rhythm from the detected beats; a
// median beat per lead; delineation of P, QRS and T on the median beats; intervals, axis and
// ST levels; and interpretation flags, each carrying the measurements that raised it. Flags
// support a reader; they never replace the reader's signed report. Pure computation.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "yilian/ecg/beat_class.h"
#include "yilian/ecg/record.h"

namespace yilian::ecg {

struct AnalysisOptions {
  double mains_hz = 50;  // China: 50; 60 elsewhere; 0: no notch
};

struct LeadMeasurement {
  std::string lead;           // standard name when recognised: I, II, III, aVR, aVL, aVF, V1..V6
  double st_j_mv = 0;         // ST level at the J point against the PR segment
  double st_j60_mv = 0;       // at J + 60 ms
  double r_mv = 0, s_mv = 0;  // largest positive and negative QRS deflections
  double terminal_mv = 0;     // mean level of the last 40 ms of the QRS (R' or S of a BBB)
};

struct Measurements {
  std::size_t beats = 0;
  double heart_rate_bpm = 0;
  double rr_ms = 0;
  double rr_irregularity = 0;  // mean |successive RR difference| / mean RR
  bool p_waves = false;        // a P wave precedes the QRS in the median beat
  std::optional<double> pr_ms, qrs_ms, qt_ms, qtc_bazett_ms, qtc_fridericia_ms, axis_deg;
  // Delineation on the median beat: samples from the median beat's start.
  std::optional<double> p_onset_ms, qrs_onset_ms, qrs_offset_ms, t_end_ms;
  std::vector<LeadMeasurement> leads;
  // Beats by class (beat_class.h) and their patterns.
  std::size_t ventricular = 0, supraventricular = 0, ventricular_couplets = 0,
              supraventricular_couplets = 0;
  bool ventricular_bigeminy = false, supraventricular_bigeminy = false;
  std::optional<double> sokolow_lyon_mv, cornell_mv;  // LVH voltage criteria
  std::optional<double> flutter_rate_bpm;             // atrial flutter waves found
  bool paced = false;                                 // pacing spikes before most beats
};

// One statement of the interpretation, with the measurements that raised it. Codes (docs/API.md
// lists them with their criteria): rhythm — sinus_rhythm, sinus_bradycardia, sinus_tachycardia,
// sinus_arrhythmia, atrial_fibrillation, atrial_flutter, paced_rhythm, irregular_rhythm,
// bradycardia, tachycardia; ectopy — pvc, pvc_couplets, ventricular_bigeminy, pac,
// pac_couplets, atrial_bigeminy; conduction — first_degree_av_block, rbbb, lbbb,
// intraventricular_conduction_delay; others — lvh, long_qt, low_voltage,
// left_axis_deviation, right_axis_deviation, extreme_axis, early_repolarisation,
// suspected_stemi, poor_quality, st_distorting_filter.
struct Flag {
  std::string code;
  std::string text;      // for the reader, in English
  std::string evidence;  // the measurements that raised it
  std::string text_zh;   // the standard Chinese diagnostic term (中文心电图诊断用语)
};

struct Analysis {
  std::vector<std::int64_t> beats;
  std::vector<BeatClass> beat_classes;  // one per beat
  Measurements measurements;
  std::vector<Flag> flags;
  bool has(const std::string& code) const;
};

// "ii", "AVF", "V1", "MLII" -> the standard name ("II", "aVF", "V1"); others unchanged.
std::string standard_lead_name(const std::string& name);

// One line for the page: "HR 61  PR 160  QRS 75  QT/QTc 368/370  Axis 52" ("-" for unknown).
std::string measurement_summary(const Measurements& m);

Analysis analyze(const Record& record, const Patient& patient = {},
                 const AnalysisOptions& options = {});

// The ECG report's statements: every one the analysis may propose (its flag codes, with the
// base wording; a proposal adds details such as the territory) and the common ones a reader
// adds that the analysis does not propose. Codes are a-z and '_', unique.
struct Statement {
  const char* code;
  const char* text;     // English
  const char* text_zh;  // the standard Chinese term
  bool automated;       // the analysis proposes it
};
const std::vector<Statement>& statement_catalogue();

}  // namespace yilian::ecg
