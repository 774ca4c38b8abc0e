// A patient's record in time, as the clinician who serves them sees it: laboratory panels,
// imaging, pathology and ECG examinations from every member, newest first. Pure: the caller
// reads the results, the studies and their reads; this puts them in order.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

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
  std::string first_received_at;  // ISO 8601 UTC
  std::int64_t series = 0, instances = 0;
  // False when the study is listed only because its institution referred or consulted about
  // the patient: its report is shown, its images are not opened.
  bool open = true;
  std::vector<StudyRead> reads;
};

enum class EntryKind { lab, imaging, ecg, pathology };
const char* entry_kind_name(EntryKind k);
// ECG studies have ECG among their modalities, slides are SM, everything else is imaging.
EntryKind study_kind(std::string_view modalities);

// One line of the timeline: a laboratory panel (the results of one order taken from one
// specimen at one laboratory) or one study.
struct TimelineEntry {
  EntryKind kind = EntryKind::lab;
  std::string at;  // ISO 8601 UTC: the specimen time, or when the study was performed
  std::string institution;
  std::vector<std::size_t> results;  // lab: indices into the results, in the order sent (id)
  std::size_t study = 0;             // otherwise: the index of the study
};

// When a study was performed in UTC: its Study Date and Time, local time `utc_offset_minutes`
// ahead of UTC; without a valid date, when it first reached the hub.
std::string study_time_utc(const PatientStudy& s, int utc_offset_minutes);

// The entries newest first; equal times keep laboratory panels before studies, then input
// order. Results of one order from one specimen and laboratory make one panel.
std::vector<TimelineEntry> patient_timeline(const std::vector<LabResult>& results,
                                            const std::vector<PatientStudy>& studies,
                                            int utc_offset_minutes);

}  // namespace yilian::lab
