#include "yilian/identity/patient.h"

#include <algorithm>
#include <iterator>

namespace yilian::identity {

bool PatientIdentity::holds(std::string_view institution) const {
  return std::find(institutions.begin(), institutions.end(), institution) != institutions.end();
}

std::vector<PatientIdentity> patient_identities(const std::vector<PatientRecordSource>& sources,
                                                std::string_view national_issuer) {
  std::vector<std::string> national;  // the members that issued it nationally
  if (!national_issuer.empty()) {
    for (const PatientRecordSource& s : sources) {
      if (s.issuer == national_issuer &&
          std::find(national.begin(), national.end(), s.institution) == national.end())
        national.push_back(s.institution);
    }
  }
  std::vector<PatientIdentity> out;
  for (const PatientRecordSource& s : sources) {
    const bool is_national =
        std::find(national.begin(), national.end(), s.institution) != national.end();
    auto it = std::find_if(out.begin(), out.end(), [&](const PatientIdentity& p) {
      return is_national ? p.national : !p.national && p.institutions.front() == s.institution;
    });
    if (it == out.end()) {
      PatientIdentity p;
      p.national = is_national;
      p.institutions = is_national ? national : std::vector<std::string>{s.institution};
      out.push_back(std::move(p));
      it = std::prev(out.end());
    }
    if (it->name.empty()) it->name = s.name;
    if (it->birth_date.empty()) it->birth_date = s.birth_date;
    if (it->sex.empty()) it->sex = s.sex;
  }
  return out;
}

PatientIdentity person_at(const std::vector<PatientIdentity>& people,
                          std::string_view institution) {
  auto it = std::find_if(people.begin(), people.end(),
                         [&](const PatientIdentity& p) { return p.holds(institution); });
  if (it != people.end()) return *it;
  PatientIdentity own;
  own.institutions = {std::string(institution)};
  return own;
}

}  // namespace yilian::identity
