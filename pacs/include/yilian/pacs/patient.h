// Who a Patient ID names at a member, from the index's patient rows and identity's one rule
// (identity/patient.h): what a reader's priors and an edge clinic's priors list.
#pragma once

#include <string_view>

#include "yilian/common/result.h"
#include "yilian/identity/patient.h"
#include "yilian/pacs/index.h"

namespace yilian::pacs {

// The person `patient_id` names at the member `institution_code`, decided over every member's
// patient row of that ID (not only the studies someone may read): the members whose studies
// of the ID are that person's.
Result<identity::PatientIdentity> person_at(Index& index, std::string_view patient_id,
                                            std::string_view institution_code,
                                            std::string_view national_issuer);

}  // namespace yilian::pacs
