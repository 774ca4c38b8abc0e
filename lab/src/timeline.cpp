#include "yilian/lab/timeline.h"

#include <algorithm>
#include <cctype>
#include <iterator>
#include <map>
#include <tuple>

#include "yilian/identity/policy.h"
#include "yilian/lab/hl7.h"

namespace yilian::lab {

const char* entry_kind_name(EntryKind k) {
  switch (k) {
    case EntryKind::lab:
      return "lab";
    case EntryKind::imaging:
      return "imaging";
    case EntryKind::ecg:
      return "ecg";
    case EntryKind::pathology:
      return "pathology";
    case EntryKind::consult:
      return "consult";
    case EntryKind::referral:
      return "referral";
    case EntryKind::emergency:
      return "emergency";
  }
  return "imaging";
}

EntryKind study_kind(std::string_view modalities) {
  if (identity::is_ecg_study(modalities)) return EntryKind::ecg;
  if (identity::has_modality(modalities, "SM")) return EntryKind::pathology;
  return EntryKind::imaging;
}

std::string study_time_utc(const PatientStudy& s, int utc_offset_minutes) {
  // DICOM DA is YYYYMMDD; TM is HH[MM[SS[.F]]]: the digits before a fraction, whole fields only.
  std::string time = s.study_time.substr(0, s.study_time.find('.'));
  if (time.size() % 2 != 0 || time.size() > 6) time.clear();
  for (char c : time) {
    if (!std::isdigit(static_cast<unsigned char>(c))) {
      time.clear();
      break;
    }
  }
  if (s.study_date.size() == 8) {
    if (auto t = hl7_time(s.study_date + time, utc_offset_minutes)) return *t;
  }
  return s.first_received_at;
}

std::vector<TimelineEntry> patient_timeline(const std::vector<LabResult>& results,
                                            const std::vector<PatientStudy>& studies,
                                            int utc_offset_minutes,
                                            const std::vector<CareEvent>& events) {
  std::vector<TimelineEntry> out;
  // One panel per order, specimen and laboratory.
  std::map<std::tuple<std::string, std::string, std::string, std::string>, std::size_t> panels;
  for (std::size_t i = 0; i < results.size(); ++i) {
    const LabResult& r = results[i];
    const std::string& at = r.specimen_at.empty() ? r.received_at : r.specimen_at;
    auto key = std::make_tuple(r.institution_code, r.performing_lab, r.order_code, at);
    auto [it, fresh] = panels.try_emplace(key, out.size());
    if (fresh) {
      TimelineEntry e;
      e.kind = EntryKind::lab;
      e.at = at;
      e.institution = r.institution_code;
      out.push_back(std::move(e));
    }
    out[it->second].results.push_back(i);
  }
  // A panel lists its results as the laboratory sent them (stored in that order).
  for (TimelineEntry& e : out) {
    std::stable_sort(e.results.begin(), e.results.end(),
                     [&](std::size_t a, std::size_t b) { return results[a].id < results[b].id; });
  }
  for (std::size_t i = 0; i < studies.size(); ++i) {
    TimelineEntry e;
    e.kind = study_kind(studies[i].modalities);
    e.at = study_time_utc(studies[i], utc_offset_minutes);
    e.institution = studies[i].institution_code;
    e.study = i;
    out.push_back(std::move(e));
  }
  for (std::size_t i = 0; i < events.size(); ++i) {
    TimelineEntry e;
    e.kind = events[i].kind;
    e.at = events[i].at;
    e.institution = events[i].institution;
    e.event = i;
    out.push_back(std::move(e));
  }
  // ISO 8601 UTC in one format compares as text.
  std::stable_sort(out.begin(), out.end(), [](const TimelineEntry& a, const TimelineEntry& b) {
    if (a.at != b.at) return a.at > b.at;
    return a.kind == EntryKind::lab && b.kind != EntryKind::lab;
  });
  return out;
}

}  // namespace yilian::lab
