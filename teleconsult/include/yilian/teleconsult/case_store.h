// Emergency cases (chest pain, stroke; schema v6) with their key time points (append-only: a
// correction is a newer record of the same point). Writes are group-committed operations of
// storage::Database; reads see committed data only.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
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
  // The alert: the on-call service it went to ('' when no one was on call and everyone who
  // may see the case was alerted), who acknowledged it and when, when it escalated.
  std::string alert_service, acknowledged_by, acknowledged_at, escalated_at;
};

// One shift of an on-call roster.
struct ShiftRow {
  std::int64_t id = 0;
  std::int64_t institution_id = 0;
  std::string institution_code;
  std::string service;  // cardiology, ecg, neurology, radiology
  std::string role;     // primary, backup
  std::int64_t user_id = 0;
  std::string username, starts_at, ends_at, created_by, created_at;
  int depth = 0;  // on_call(): 0 the case's own institution, 1 its parent, ...
};

// Whom a case's alert reached.
struct AlertRow {
  std::int64_t user_id = 0;
  std::string username, stage, alerted_at;  // stage: on_call, escalation
};

struct TimePointRow {
  std::int64_t id = 0;
  std::string point, at, recorded_by, recorded_at, note;
};

// A case with every record of its time points (oldest first), for the centres' statistics.
struct CaseRecords {
  CaseRow c;
  std::vector<TimePointRow> points;
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
  // Cases of the institutions, open ones first, newest first, at most `limit`: of one `status`
  // (open, closed; empty: both) and one `kind` (a centre; empty: every one) opened in [from, to)
  // (ISO 8601 UTC; empty: no bound), numbered below `before_id` (0: no bound; the next page of
  // one status' list, which is ordered by number).
  struct Filter {
    std::string status, kind, from, to;
    std::int64_t before_id = 0;
    std::int64_t limit = 500;
  };
  Result<std::vector<CaseRow>> cases(const std::vector<std::int64_t>& institutions,
                                     const Filter& filter);
  // A patient's cases at the given institutions (the patient's Patient ID there), newest first,
  // at most kPatientListMost (consult_store.h).
  Result<std::vector<CaseRow>> patient_cases(std::string_view patient_id,
                                             const std::vector<std::int64_t>& institutions);
  // Every case opened in [from, to) (ISO 8601 UTC) with its time points, oldest case first.
  Result<std::vector<CaseRecords>> cases_opened(std::string_view from, std::string_view to);
  Status record_time_point(std::int64_t case_id, const TimePointRow& tp);
  // Every record, oldest first (the newest of a point is its current value).
  Result<std::vector<TimePointRow>> time_points(std::int64_t case_id);
  // The same for several cases in one read: case id -> its records (cases without any absent).
  Result<std::map<std::int64_t, std::vector<TimePointRow>>> time_points(
      const std::vector<std::int64_t>& case_ids);
  Status close_case(std::int64_t case_id, std::string_view now);
  Result<std::vector<CaseRow>> open_cases();

  // On-call rosters. Shifts of an institution that end after `from` (all when empty).
  Result<std::vector<ShiftRow>> shifts(std::int64_t institution_id, std::string_view from);
  Result<ShiftRow> add_shift(const ShiftRow& s);
  Result<bool> remove_shift(std::int64_t id);
  // Who is on call for `service` at `at` for a case of `institution_id`: the shifts of that
  // institution and of the institutions above it (parent, its parent, ...), nearest first,
  // primary before backup; disabled users left out.
  Result<std::vector<ShiftRow>> on_call(std::int64_t institution_id, std::string_view service,
                                        std::string_view at);

  // A case's alert. set_alert_service() once, when the alert goes to an on-call service.
  Status set_alert_service(std::int64_t case_id, std::string_view service);
  Status record_alert(std::int64_t case_id, std::int64_t user_id, std::string_view stage,
                      std::string_view at);
  Result<std::vector<AlertRow>> alerts(std::int64_t case_id);
  // The same for several cases in one read: case id -> who was alerted (cases without absent).
  Result<std::map<std::int64_t, std::vector<AlertRow>>> alerts(
      const std::vector<std::int64_t>& case_ids);
  // The first acknowledgement counts: true when this one did, false when the case was
  // acknowledged already.
  Result<bool> acknowledge(std::int64_t case_id, std::string_view username, std::string_view at);
  Status mark_escalated(std::int64_t case_id, std::string_view at);

 private:
  storage::Database& db_;
};

}  // namespace yilian::teleconsult
