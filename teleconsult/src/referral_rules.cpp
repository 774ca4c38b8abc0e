#include "yilian/teleconsult/referral_rules.h"

#include <algorithm>

#include "yilian/identity/policy.h"
#include "yilian/storage/clock.h"

namespace yilian::teleconsult {
namespace {

bool higher(const std::string& level) { return level == "lead" || level == "county"; }

std::string next_day(const std::string& today) {
  auto t = storage::parse_iso8601(today + "T00:00:00Z");
  return t ? storage::to_iso8601(*t + std::chrono::hours(24)).substr(0, 10) : today;
}

}  // namespace

std::optional<std::string> referral_route_problem(std::string_view direction,
                                                  const identity::InstitutionInfo& from,
                                                  const identity::InstitutionInfo& to) {
  if (from.id == to.id) return "a referral goes to another institution";
  if (direction == "up") {
    if (from.parent_code == to.code || (higher(to.level) && !higher(from.level)) ||
        (to.level == "lead" && from.level == "county"))
      return std::nullopt;
    return to.code + " is not above " + from.code + " in the consortium";
  }
  if (direction == "down") {
    if (to.parent_code == from.code || (higher(from.level) && !higher(to.level)) ||
        (from.level == "lead" && to.level == "county"))
      return std::nullopt;
    return to.code + " is not below " + from.code + " in the consortium";
  }
  return "direction is up or down";
}

std::chrono::hours answer_within(std::string_view urgency) {
  return urgency == "urgent" ? std::chrono::hours(2) : std::chrono::hours(24);
}

bool works_at(const Principal& p, std::int64_t institution) {
  return identity::has_clinical_role(p) &&
         (p.institution_id == institution || std::find(p.credentialed.begin(), p.credentialed.end(),
                                                       institution) != p.credentialed.end());
}

bool may_see_referral(const Principal& p, const teleconsult::ReferralRow& r) {
  return works_at(p, r.from_institution) || works_at(p, r.to_institution);
}

std::optional<ReferralAction> parse_referral_action(std::string_view s) {
  if (s == "accept") return ReferralAction::accept;
  if (s == "reject") return ReferralAction::reject;
  if (s == "schedule") return ReferralAction::schedule;
  if (s == "arrive") return ReferralAction::arrive;
  if (s == "complete") return ReferralAction::complete;
  if (s == "cancel") return ReferralAction::cancel;
  return std::nullopt;
}

Result<teleconsult::ReferralChange> decide_referral(ReferralAction a,
                                                    const teleconsult::ReferralRow& r,
                                                    const Principal& p, const std::string& text,
                                                    const std::string& today) {
  teleconsult::ReferralChange c;
  c.actor = p.username;
  c.detail = text;
  const bool receiving = works_at(p, r.to_institution);
  auto step = [&](const char* from, const char* to, const char* type,
                  bool by_receiver) -> Result<teleconsult::ReferralChange> {
    if (by_receiver ? !receiving : !works_at(p, r.from_institution)) {
      return make_error(Errc::permission_denied,
                        by_receiver ? "the receiving institution answers a referral"
                                    : "the sending institution cancels a referral");
    }
    if (r.status != from) {
      return make_error(Errc::conflict,
                        std::string("cannot ") + type + " a referral that is " + r.status);
    }
    c.status = to;
    c.type = type;
    return c;
  };
  switch (a) {
    case ReferralAction::accept:
      return step("requested", "accepted", "accepted", true);
    case ReferralAction::reject:
      if (text.find_first_not_of(" \t\r\n") == std::string::npos)
        return make_error(Errc::invalid_argument, "rejecting a referral needs a reason");
      c.answer = text;
      return step("requested", "rejected", "rejected", true);
    case ReferralAction::schedule: {
      auto s = step("accepted", "scheduled", "scheduled", true);
      if (!s.ok()) return s;
      s->take_slot = true;
      s->slot_from = r.urgency == "urgent" ? today : next_day(today);
      return s;
    }
    case ReferralAction::arrive:
      return step("scheduled", "arrived", "arrived", true);
    case ReferralAction::complete:
      return step("arrived", "completed", "completed", true);
    case ReferralAction::cancel:
      if (!works_at(p, r.from_institution))
        return make_error(Errc::permission_denied, "the sending institution cancels a referral");
      if (r.status != "requested" && r.status != "accepted" && r.status != "scheduled")
        return make_error(Errc::conflict, "cannot cancel a referral that is " + r.status);
      c.status = "cancelled";
      c.type = "cancelled";
      c.answer = text;
      return c;
  }
  return make_error(Errc::invalid_argument, "unknown action");
}

}  // namespace yilian::teleconsult
