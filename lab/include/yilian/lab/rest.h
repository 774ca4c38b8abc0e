// The laboratory's REST routes: results posted as FHIR R4 (Observation, Bundle), a patient's
// results with their recognition, the patient's timeline (results, imaging, pathology and ECG
// examinations with their reports), a doctor taking a recognised result instead of repeating
// the test, and the repeats avoided by institution.
#pragma once

#include <functional>
#include <string_view>
#include <vector>

#include "yilian/common/principal.h"
#include "yilian/common/result.h"
#include "yilian/lab/results.h"
#include "yilian/lab/timeline.h"
#include "yilian/net/http.h"

namespace yilian::identity {
class AuthService;
}
namespace yilian::pacs {
class Index;
}

namespace yilian::lab {

// The institutions whose results about this patient a clinician reaches besides those they
// work for: the senders of the patient's referrals to them, the requesters of consults about
// the patient they take part in.
using PatientReach =
    std::function<Result<std::vector<std::int64_t>>(const Principal&, std::string_view patient)>;

// The imaging studies of the patient at these institutions read to a final report.
using ReportsOf = std::function<Result<std::vector<ImagingReport>>(
    std::string_view patient, const std::vector<std::int64_t>& institutions)>;

// The readings of the patient's studies (every institution; the caller keeps those of the
// studies it lists).
using ReadsOf = std::function<Result<std::vector<StudyRead>>(std::string_view patient)>;

// The consults about the patient asked by these institutions, the referrals of the patient from
// them and the patient's emergency cases at them, as `p` sees them (a consult opens for its
// participants, an open case for the centres that serve it).
using CareOf = std::function<Result<std::vector<CareEvent>>(
    const Principal& p, std::string_view patient, const std::vector<std::int64_t>& institutions)>;

// What the routes learn about a patient from the other modules; each may be left out.
struct PatientSources {
  PatientReach reach;
  ReportsOf reports;
  ReadsOf reads;
  CareOf care;
  // The most events of one kind `care` gives (the newest); 0: it gives them all.
  std::size_t care_most = 0;
  pacs::Index* index = nullptr;  // the patient's studies, for the timeline
  // The Issuer of Patient ID under which an ID names the same person at every member
  // ([queue] national_id_issuer); empty: every member's IDs are its own.
  std::string national_issuer;
};

void register_lab_routes(http::Router& router, LabStore& store, const LabOptions& options,
                         identity::AuthService& auth, PatientSources sources = {});

}  // namespace yilian::lab
