// Emergency cases (chest pain, stroke; schema v6) with their key time points (append-only: a
// correction is a newer record of the same point). Writes are group-committed operations of
// storage::Database; reads see committed data only.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "yilian/common/result.h"
#include "yilian/storage/database.h"

namespace yilian::teleconsult {

struct CaseRow {
  std::int64_t id = 0;
  std::string kind;    // chest_pain, stroke
  std::string status;  // open, closed
  std::int64_t institution_id = 0;
  std::string institution_code;
  std::string patient_id, patient_name, study_uid;
  std::int64_t consult_id = 0;
  std::string source;  // manual, ecg_stemi, stat_ct
  std::string reason, opened_by, opened_at, closed_at;
};

struct TimePointRow {
  std::int64_t id = 0;
  std::string point, at, recorded_by, recorded_at, note;
};

class CaseStore {
 public:
  // `db` must hold the migrated consortium schema.
  explicit CaseStore(storage::Database& db);
  ~CaseStore();
  CaseStore(const CaseStore&) = delete;
  CaseStore& operator=(const CaseStore&) = delete;

  // Emergency cases. open_case() with a study UID is idempotent per (study, kind): `existed`
  // tells whether the case was already open (an ECG and its resend open one case).
  Result<CaseRow> open_case(const CaseRow& c, bool& existed);
  Result<std::optional<CaseRow>> get_case(std::int64_t id);
  Result<std::vector<CaseRow>> cases(const std::vector<std::int64_t>& institutions, bool open_only);
  Status record_time_point(std::int64_t case_id, const TimePointRow& tp);
  // Every record, oldest first (the newest of a point is its current value).
  Result<std::vector<TimePointRow>> time_points(std::int64_t case_id);
  Status close_case(std::int64_t case_id, std::string_view now);
  Result<std::vector<CaseRow>> open_cases();

 private:
  storage::Database& db_;
};

}  // namespace yilian::teleconsult
