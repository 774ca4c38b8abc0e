// A patient's record in time, as the clinician who serves them sees it: laboratory panels,
// imaging, pathology and ECG examinations from every member, newest first. Pure: the caller
// reads the results, the studies and their reads; this puts them in order.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "yilian/identity/patient.h"
#include "yilian/lab/results.h"

namespace yilian::lab {

// A reading of a study (one reading task) and its newest signed report.
struct StudyRead {
  std::string study_uid;
  std::int64_t task_id = 0;
  bool is_ecg = false;
  std::string service, modality, status;  // status: queued, claimed, preliminary, final
  std::string priority;                   // stat, urgent, routine
  std::string priority_reason;
  std::string final_at;    // ISO 8601 UTC; empty before the final report
  std::string impression;  // of the newest preliminary, final or addendum report
  std::string read_by;     // the institution of the reader who signed it
  bool critical = false;   // a report of this reading flagged a critical result
};

// An examination of the patient at a member: a study of the index.
struct PatientStudy {
  std::string study_uid, study_date, study_time, modalities, description, institution_code;
  std::string issuer;                                         // Issuer of Patient ID
  std::string patient_name, patient_birth_date, patient_sex;  // as the study names the patient
  std::string first_received_at;                              // ISO 8601 UTC
  std::int64_t series = 0, instances = 0;
  // False when the study is listed only because its institution referred or consulted about
  // the patient: its report is shown, its images are not opened.
  bool open = true;
  std::vector<StudyRead> reads;
};

enum class EntryKind { lab, imaging, ecg, pathology, consult, referral, emergency };
const char* entry_kind_name(EntryKind k);
// ECG studies have ECG among their modalities, slides are SM, everything else is imaging.
EntryKind study_kind(std::string_view modalities);

// A consult about the patient, a referral of the patient, or an emergency case (chest pain,
// stroke, ...) of the patient, as the timeline lists it.
struct CareEvent {
  EntryKind kind = EntryKind::consult;  // consult, referral or emergency
  std::int64_t id = 0;
  std::string at;           // ISO 8601 UTC: when it was asked, or the case opened
  std::string institution;  // the patient's member: the one that asked, referred, or has the case
  std::string patient_name;
  std::string other;      // consult: the specialty asked; referral: the receiving member;
                          // emergency: the kind of case
  std::string direction;  // referral: up or down
  std::string urgency, status;
  std::string text;    // the consult's question, the referral's reason, the case's reason
  std::string answer;  // the consult's opinion, the referral's answer
  std::string by;      // consult: the specialist who took it; referral and case: who opened it
  // consult: the clinician takes part in it (its room opens for them); emergency: the
  // clinician's centre serves the case (open, it is on their emergency board; closed, its
  // review opens for them).
  bool open = false;
  // emergency: what opened the case (manual, ecg_stemi, stat_ct), who acknowledged its alert
  // and when, when it closed, and its key time points (the current value of each, by time).
  std::string source, acknowledged_by, acknowledged_at, closed_at;
  struct Point {
    std::string point, at;
  };
  std::vector<Point> points;
};

// One line of the timeline: a laboratory panel (the results of one order taken from one
// specimen at one laboratory), one study, or one consult or referral.
struct TimelineEntry {
  EntryKind kind = EntryKind::lab;
  std::string at;  // ISO 8601 UTC: the specimen time, when the study was performed, or asked
  std::string institution;
  std::vector<std::size_t> results;  // lab: indices into the results, in the order sent (id)
  std::size_t study = 0;             // a study: the index of the study
  std::size_t event = 0;             // a consult or referral: the index of the event
};

// When a study was performed in UTC: its Study Date and Time, local time `utc_offset_minutes`
// ahead of UTC; without a valid date, when it first reached the hub.
std::string study_time_utc(const PatientStudy& s, int utc_offset_minutes);

// The entries newest first; equal times keep laboratory panels before studies, then input
// order. Results of one order from one specimen and laboratory make one panel.
std::vector<TimelineEntry> patient_timeline(const std::vector<LabResult>& results,
                                            const std::vector<PatientStudy>& studies,
                                            int utc_offset_minutes,
                                            const std::vector<CareEvent>& events = {});

// Who the patient is (identity/patient.h): the one rule for which records are one person's.
using identity::patient_identities;
using identity::PatientIdentity;
using identity::PatientRecordSource;

}  // namespace yilian::lab
