// The authorisation rules, one place for every entry point (REST, DICOMweb, WebSocket,
// DICOM query/retrieve). Pure functions of a principal and the facts about an object:
// no I/O, so the whole access matrix is unit-tested.
//
// Who sees which studies:
//   - every clinical role (township doctor, radiologist, pathologist, ECG reader,
//     cardiologist, QC reviewer) sees the studies of their own institution and of the
//     institutions they are credentialed at;
//   - radiologists, pathologists and QC reviewers also see the imaging studies (slides are
//     imaging studies), ECG readers, cardiologists and QC reviewers the ECG studies, of the
//     institutions that the reading services of their institutions cover;
//   - every clinical role sees a study shared with them or their institution through a
//     consult or a referral, until the share expires;
//   - an admin manages institutions, users and the audit trail but sees no patient data
//     unless they also hold a clinical role.
#pragma once

#include <string_view>
#include <vector>

#include "yilian/common/principal.h"
#include "yilian/identity/records.h"

namespace yilian::identity {

// Whether `modality` is one of a study's '\' separated modalities ("CT\\SR").
bool has_modality(std::string_view modalities, std::string_view modality);
// ECG studies have ECG among their modalities ("ECG", "ECG\\SR"); everything else is
// imaging. Mirrors the SQL in storage's study scope.
bool is_ecg_study(std::string_view modalities);

bool has_clinical_role(const Principal& p);
// The institutions a clinician works for: the home one, those credentialed at, and those the
// reading services of these cover (their patients' consults, cases and results).
std::vector<std::int64_t> served_institutions(const Principal& p);
bool may_read_study(const Principal& p, const identity::StudyAccessFacts& study);
// Sharing needs access through institution or reading service, not through a share.
bool may_share_study(const Principal& p, const identity::StudyAccessFacts& study);
identity::StudyScope study_scope(const Principal& p, std::string now);
// The institutions whose shares reach this principal.
std::vector<std::int64_t> share_institutions(const Principal& p);

// The pathology centre's reading service: whole-slide images (modality SM) are read there.
inline constexpr const char* kPathologyService = "pathology";

// Who reads a reading task: radiologists read imaging tasks, pathologists the imaging tasks of
// the pathology service (and radiologists who are not also pathologists none of those), ECG
// readers and cardiologists ECG tasks, of their own institutions and of those their
// institutions' reading services cover; a reader who works named services (subspecialty
// queues) reads only tasks of those.
struct TaskFacts {
  std::int64_t institution_id = 0;
  bool is_ecg = false;
  std::string_view service;
};
bool reads_task(const Principal& p, const TaskFacts& task);
// Which imaging tasks of the pathology service a scope holds.
enum class PathologyTasks { any, only, none };
// The same rule as sets (for queries): a task is read by `p` exactly when its institution is
// in the list for its kind, if `services` is not empty its service is one of them, and an
// imaging task's service is or is not the pathology service as `pathology` says.
struct ReaderScope {
  std::vector<std::int64_t> imaging_institutions, ecg_institutions;
  std::vector<std::string> services;
  PathologyTasks pathology = PathologyTasks::any;
};
// Whether an imaging task of `service` is within `which`.
bool pathology_allows(PathologyTasks which, std::string_view service);
ReaderScope reader_scope(const Principal& p);

bool may_administer(const Principal& p);
bool may_read_audit(const Principal& p);
// The consortium's statistics (aggregates, no patient data): readers, QC reviewers, admins.
bool may_read_statistics(const Principal& p);

}  // namespace yilian::identity
