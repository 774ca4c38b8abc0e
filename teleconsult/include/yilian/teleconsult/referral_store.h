// Referrals between member institutions (schema v6), their events and the receiving
// institutions' daily quotas. Changes take a `decide` function: the rules live in
// referral_rules.h, the store applies the answer atomically.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "yilian/common/result.h"
#include "yilian/storage/database.h"
#include "yilian/teleconsult/consult_store.h"  // ConsultEvent

namespace yilian::teleconsult {

struct ReferralRow {
  std::int64_t id = 0;
  std::string direction, urgency;  // up/down; routine/urgent
  std::string patient_id, patient_name;
  std::int64_t from_institution = 0, to_institution = 0;
  std::string from_code, to_code;
  std::string requested_by, reason, status, answer, slot_date;
  std::string discharge_summary, follow_up_plan;
  std::string studies = "[]";  // JSON array of study UIDs
  std::string created_at, updated_at, answer_due_at, escalated_at;
};

// What a referral action changes; filled by the rules. A schedule takes the first day from
// `slot_from` whose referral quota at the receiving institution is not used up.
struct ReferralChange {
  std::string status;
  std::optional<std::string> answer;
  bool take_slot = false;
  std::string slot_from;  // YYYY-MM-DD
  int slot_days = 30;     // how far ahead to look
  std::string type, actor, detail;
};

class ReferralStore {
 public:
  // `db` must hold the migrated consortium schema.
  explicit ReferralStore(storage::Database& db);
  ~ReferralStore();
  ReferralStore(const ReferralStore&) = delete;
  ReferralStore& operator=(const ReferralStore&) = delete;

  // Referrals between member institutions.
  Result<ReferralRow> create_referral(const ReferralRow& r);
  Result<std::optional<ReferralRow>> get_referral(std::int64_t id);
  // Referrals from or to these institutions, newest first; `status` empty: any.
  Result<std::vector<ReferralRow>> referrals(const std::vector<std::int64_t>& institutions,
                                             const std::string& status);
  // The institutions that referred this patient to one of `to_institutions` (a referral not
  // rejected or cancelled): their results and reports reach the receiving doctors.
  Result<std::vector<std::int64_t>> referring_institutions(
      std::string_view patient_id, const std::vector<std::int64_t>& to_institutions);
  // The referrals of this patient from these institutions, newest first (at most
  // kPatientListMost).
  Result<std::vector<ReferralRow>> patient_referrals(
      std::string_view patient_id, const std::vector<std::int64_t>& from_institutions);
  Result<ReferralRow> change_referral(
      std::int64_t id, const std::function<Result<ReferralChange>(const ReferralRow&)>& decide,
      std::string_view now);
  Result<std::vector<ConsultEvent>> referral_events(std::int64_t id);
  Status set_referral_quota(std::int64_t institution_id, int daily);
  // Unanswered referrals past their due time, not yet escalated; marks them escalated.
  Result<std::vector<ReferralRow>> escalate_referrals(std::string_view now);

  // Referrals made in [from, to) (ISO 8601), counted by sending and receiving institution,
  // direction and status (the consortium dashboard).
  struct ReferralCount {
    std::string from, to, direction, status;
    std::int64_t count = 0;
  };
  Result<std::vector<ReferralCount>> referral_counts(std::string_view from, std::string_view to);

 private:
  storage::Database& db_;
};

}  // namespace yilian::teleconsult
