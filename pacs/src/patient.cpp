#include "yilian/pacs/patient.h"

#include <vector>

namespace yilian::pacs {

Result<identity::PatientIdentity> person_at(Index& index, std::string_view patient_id,
                                            std::string_view institution_code,
                                            std::string_view national_issuer) {
  auto rows = index.patient_rows(patient_id);
  if (!rows.ok()) return rows.error();
  std::vector<identity::PatientRecordSource> sources;
  sources.reserve(rows->size());
  for (PatientRow& r : *rows) {
    sources.push_back({std::move(r.institution_code), std::move(r.issuer), std::move(r.name),
                       std::move(r.birth_date), std::move(r.sex)});
  }
  return identity::person_at(identity::patient_identities(sources, national_issuer),
                             institution_code);
}

}  // namespace yilian::pacs
