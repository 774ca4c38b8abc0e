// Who one Patient ID names, the one rule for every part of the hub that puts a patient's
// records together (the patient's record and laboratory results, a reader's priors, an edge
// clinic's priors). Pure.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace yilian::identity {

// Who one Patient ID names. A member's own Patient ID names a person at that member only: two
// members may give the same number to different people. Under the consortium's national
// issuer (a resident ID) it names the same person at every member that uses it.
struct PatientIdentity {
  bool national = false;
  std::vector<std::string> institutions;  // the members whose records are this person's
  std::string name, birth_date, sex;      // from the first record that has them
  // Whether the member's records are this person's.
  bool holds(std::string_view institution) const;
};

// Where the ID was found: a study (with its issuer) or a laboratory result (issuer empty:
// it is the person the member's studies of that ID are about).
struct PatientRecordSource {
  std::string institution, issuer, name, birth_date, sex;
};

// The people the ID names among `sources` (in their order: newest first reads best): one for
// the members that issued it under `national_issuer` (when that is set), and one for each
// other member.
std::vector<PatientIdentity> patient_identities(const std::vector<PatientRecordSource>& sources,
                                                std::string_view national_issuer);

// The person among `people` whose records `institution`'s are; with none, that member's own
// patient, found nowhere else.
PatientIdentity person_at(const std::vector<PatientIdentity>& people, std::string_view institution);

}  // namespace yilian::identity
