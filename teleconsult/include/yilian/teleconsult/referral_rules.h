// Two-way referral (双向转诊) between member institutions. Pure: no I/O.
//
//   requested ──accept──> accepted ──schedule──> scheduled ──arrive──> arrived ──complete──>
//   completed
//       └──reject (reason)──> rejected          (slot from the receiving institution's daily
//   cancel (sending side) from requested, accepted or scheduled ──> cancelled     referral quota)
//
// Up-referral goes toward the lead hospital (to the sender's parent, or to a lead or county
// hospital); down-referral the other way and carries the discharge summary and follow-up plan.
// The receiving side answers; an unanswered request escalates after 2 h (urgent) or 24 h.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "yilian/common/principal.h"
#include "yilian/common/result.h"
#include "yilian/pacs/records.h"
#include "yilian/teleconsult/referral_store.h"

namespace yilian::teleconsult {

// Why a referral between these institutions in this direction is not allowed, or nothing.
std::optional<std::string> referral_route_problem(std::string_view direction,
                                                  const identity::InstitutionInfo& from,
                                                  const identity::InstitutionInfo& to);
std::chrono::hours answer_within(std::string_view urgency);

bool works_at(const Principal& p, std::int64_t institution);
bool may_see_referral(const Principal& p, const teleconsult::ReferralRow& r);

enum class ReferralAction { accept, reject, schedule, arrive, complete, cancel };
std::optional<ReferralAction> parse_referral_action(std::string_view s);

// `today` (YYYY-MM-DD) is where a schedule starts looking for a slot (the next day for a
// routine referral).
Result<teleconsult::ReferralChange> decide_referral(ReferralAction a,
                                                    const teleconsult::ReferralRow& r,
                                                    const Principal& p, const std::string& text,
                                                    const std::string& today);

}  // namespace yilian::teleconsult
