// An emergency case as clients see it (REST and /ws alike): the case, the current value of
// each time point with who recorded it, the full record history and every interval's clock.
#pragma once

#include <nlohmann/json.hpp>

#include "yilian/common/principal.h"
#include "yilian/common/result.h"
#include "yilian/storage/clock.h"
#include "yilian/teleconsult/case_store.h"
#include "yilian/teleconsult/emergency_rules.h"

namespace yilian::teleconsult {

Result<nlohmann::json> case_view(teleconsult::CaseStore& store, const teleconsult::CaseRow& c,
                                 storage::TimePoint now, const CaseTargets& targets);
// The same from the case's records read already (`points` oldest first, `alerted` in order):
// a list of cases reads them for all its cases at once.
nlohmann::json case_view(const teleconsult::CaseRow& c, const std::vector<TimePointRow>& points,
                         const std::vector<AlertRow>& alerted, storage::TimePoint now,
                         const CaseTargets& targets);

// `p` acknowledges the case's alert (REST and /ws alike): the first acknowledgement is kept and
// records the case's reading time point unless one is recorded; true when this one was first.
Result<bool> acknowledge_alert(teleconsult::CaseStore& store, const Principal& p,
                               const teleconsult::CaseRow& c, storage::TimePoint now);

}  // namespace yilian::teleconsult
