// The reading queue's tables (schema v4): tasks, report versions, critical results, QC
// second reads and task events.
//
// Every write is one group-committed operation of storage::Database (statements strictly one
// operation at a time, so a claim is atomic under any concurrency); a call returns once its
// batch is durable, except lease operations (claim, heartbeat, release), which return as soon
// as they are in the batch. Reads see committed data only.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "yilian/common/result.h"
#include "yilian/identity/policy.h"
#include "yilian/reading/queue_settings.h"
#include "yilian/storage/database.h"

namespace yilian::reading {

struct TaskEvent {
  std::int64_t task_id = 0;
  std::string at;
  std::string type;  // received, routed, updated, claimed, heartbeat-less expiry ("expired"),
                     // released, reassigned, priority, reported, finalised, addendum,
                     // critical_sent, critical_acknowledged, escalated, critical_escalated, qc
  std::string actor;
  std::string detail;
};

struct TaskRow {
  std::int64_t id = 0;
  std::int64_t study_pk = 0;
  std::string study_uid;
  std::string service;
  std::int64_t institution_id = 0;
  std::string institution_code;
  bool is_ecg = false;
  std::string modality;
  int priority = 2;
  std::string priority_reason;
  std::string status;
  std::string received_at, routed_at, due_at;
  std::int64_t claimed_by = 0;
  std::string claimed_by_name;
  std::string lease_expires_at;
  std::string final_at;
  std::string escalated_at;
  std::string patient_id, patient_name, description;
  std::string indication;         // from the DICOM request attributes
  std::string clinical_question;  // the requesting clinician's, given over REST
  bool arriving = false;          // routed before the study was complete (edge, STAT)
  std::int64_t instances = 0;     // of the study at the hub now
};

// A study ready to be routed (facts for the rules, read from the index).
struct RoutableStudy {
  std::int64_t study_pk = 0;
  std::string study_uid;
  std::int64_t institution_id = 0;
  std::string institution_code;
  std::string modalities, body_parts, description, procedure, indication, requested_priority;
  std::string first_received_at;
};

struct NewTask {
  std::int64_t study_pk = 0;
  std::string service;
  std::int64_t institution_id = 0;
  bool is_ecg = false;
  std::string modality;
  int priority = 2;
  std::string priority_reason;
  std::string received_at;
  std::string due_at;
  // Set: the task is (true) or is no longer (false) of a study still arriving; unset: as it is
  // (a new task: not arriving).
  std::optional<bool> arriving;
};

// What a reader may claim: studies of these institutions (any kind), imaging studies of
// these, ECG studies of those; restricted to `services` when not empty.
struct ClaimScope {
  std::vector<std::int64_t> institutions, imaging_institutions, ecg_institutions;
  std::vector<std::string> services;
  // Of the imaging tasks read through `imaging_institutions`: the pathology service's only,
  // none of them, or any (identity::reader_scope).
  identity::PathologyTasks pathology = identity::PathologyTasks::any;
  bool empty() const {
    return institutions.empty() && imaging_institutions.empty() && ecg_institutions.empty();
  }
};

struct WorklistFilter {
  std::string service;
  int priority = -1;   // -1: any
  std::string status;  // "": every status but final
  std::string institution_code;
  bool overdue = false;
  std::int64_t limit = 50, offset = 0;
};

struct ReportRow {
  std::int64_t id = 0, task_id = 0, version = 0;
  std::string kind, findings, impression;
  bool critical = false;
  std::string author;
  std::string created_at;
  std::string author_display;  // the author's display name ('' when none is set)
};

struct CriticalRow {
  std::int64_t id = 0, task_id = 0;
  std::string study_uid, institution_code, created_at, acknowledged_by, acknowledged_at,
      escalated_at, impression;
};

struct TurnaroundRow {
  std::string institution_code, modality, reader;
  int priority = 2;
  std::string received_at, due_at, final_at;
};

struct PriorStudy {
  std::string study_uid, study_date, modalities, description, institution_code;
  std::string impression;  // of the newest final report, if any
};

// A study read to its final report, for the patient's record at other members.
struct ReportedStudy {
  std::int64_t task_id = 0;
  std::string study_uid, study_date, modality, description;
  std::string institution_code;  // the study's institution
  std::string read_by;           // the institution of the reader who signed the final report
  std::string final_at, impression;
};

// A reading task of one of a patient's studies and its newest report, for the patient's record.
struct PatientRead {
  std::string study_uid;
  std::int64_t task_id = 0;
  bool is_ecg = false;
  std::string service, modality, status;
  int priority = 2;
  std::string priority_reason, final_at, impression;
  std::string read_by;  // the institution of the reader who signed, when signed
  bool critical = false;
};

class QueueStore {
 public:
  // `db` must hold the migrated consortium schema.
  explicit QueueStore(storage::Database& db);
  ~QueueStore();
  QueueStore(const QueueStore&) = delete;
  QueueStore& operator=(const QueueStore&) = delete;

  // Queue settings set on the administration screens (queue_settings.h), by key; put replaces,
  // erase goes back to the configuration file's value (false: there was none).
  Result<std::vector<QueueSettingRow>> queue_settings();
  Status put_queue_setting(const QueueSettingRow& row);
  Result<bool> erase_queue_setting(std::string_view key);

  // Open tasks (not final) counted by status and priority: {status, priority, count}; and
  // how many of them are past their due time at `now`. Aggregates only, no patient data.
  struct Depth {
    std::string status;
    int priority = 0;
    std::int64_t count = 0;
    std::int64_t overdue = 0;
  };
  Result<std::vector<Depth>> depth(std::string_view now);

  Result<std::optional<RoutableStudy>> routable_study(std::string_view study_uid);
  // The study's tasks: id, and whether it is still arriving.
  Result<std::vector<std::pair<std::int64_t, bool>>> study_tasks(std::int64_t study_pk);
  // The requesting clinician's question for a study; not_found for an unknown study.
  Status set_clinical_question(std::string_view study_uid, std::string_view question);
  // Studies with no task whose newest instance arrived before `before` (start-up catch-up).
  // Studies whose last instance came before `before` (and, when given, not before `since`)
  // that have no task.
  Result<std::vector<std::string>> studies_without_task(std::string_view before,
                                                        std::string_view since = {});

  // Creates the task (study, service) or, when it exists, refreshes its modality and raises
  // its priority if the new one is more urgent. Returns the task id and the events written.
  Result<std::pair<std::int64_t, std::vector<TaskEvent>>> upsert_task(const NewTask& t,
                                                                      std::string_view now);

  // Expired leases go back to the queue first; then the most urgent eligible queued task
  // (priority, due time, arrival) is claimed for `user` until `lease_until`.
  Result<std::optional<TaskRow>> claim_next(const ClaimScope& scope, std::int64_t user,
                                            const std::string& user_name, std::string_view now,
                                            std::string_view lease_until,
                                            std::vector<TaskEvent>* events);
  // Claims one task: queued, lease expired, or already held by `user` (renewed).
  Result<TaskRow> claim(std::int64_t task_id, std::int64_t user, const std::string& user_name,
                        std::string_view now, std::string_view lease_until,
                        std::vector<TaskEvent>* events);
  Status heartbeat(std::int64_t task_id, std::int64_t user, std::string_view lease_until);
  Status release(std::int64_t task_id, std::int64_t user, const std::string& user_name,
                 std::string_view now, std::vector<TaskEvent>* events);
  Status reassign(std::int64_t task_id, std::int64_t to_user, const std::string& actor,
                  const std::string& to_name, const std::string& reason, std::string_view now,
                  std::string_view lease_until, std::vector<TaskEvent>* events);
  Status set_priority(std::int64_t task_id, int priority, const std::string& reason,
                      std::string_view due_at, const std::string& actor, std::string_view now,
                      std::vector<TaskEvent>* events);

  // Appends a report version in one transaction. `decide(status, claimed_by)` returns the
  // new task status or an error (the state machine lives in pacs). A critical flag on a
  // preliminary or final report creates a critical result; `qc` samples a final for QC.
  struct NewReport {
    std::int64_t task_id = 0;
    std::string kind, findings, impression;
    bool critical = false;
    std::int64_t author = 0;
    std::string author_name;
    bool qc = false;
    // An ECG report: the statements the automated analysis proposed and those the reader
    // signed (kept with a final report, for the agreement statistics).
    std::optional<std::pair<std::vector<std::string>, std::vector<std::string>>> statements;
  };
  Result<ReportRow> add_report(
      const NewReport& r,
      const std::function<Result<std::string>(const std::string& status, std::int64_t claimed_by)>&
          decide,
      std::string_view now, std::vector<TaskEvent>* events);
  Result<std::vector<ReportRow>> reports(std::int64_t task_id);
  // The signed versions (final, then addenda) of the ECG reading task of a study, oldest first;
  // empty while none is signed.
  Result<std::vector<ReportRow>> signed_ecg_reports(std::string_view study_uid);

  // Per statement code, over final ECG reports signed in [from, to): how often the analysis
  // proposed it, how often the reader kept what was proposed, and how often the reader added it.
  struct StatementAgreement {
    std::string code;
    std::int64_t proposed = 0, kept = 0, added = 0;
  };
  Result<std::vector<StatementAgreement>> statement_agreement(std::string_view from,
                                                              std::string_view to);

  Result<std::vector<CriticalRow>> critical_results(bool open_only,
                                                    const std::vector<std::int64_t>& institutions);
  // Only users of the requesting institution acknowledge.
  Status acknowledge_critical(std::int64_t id, const std::vector<std::int64_t>& user_institutions,
                              std::int64_t user, const std::string& user_name, std::string_view now,
                              std::vector<TaskEvent>* events);

  Status record_qc(std::int64_t task_id, std::int64_t reviewer, const std::string& reviewer_name,
                   const std::string& agreement, const std::string& comment, std::string_view now,
                   std::vector<TaskEvent>* events);

  // Marks overdue tasks and unacknowledged critical results older than `critical_before`.
  Result<std::vector<TaskEvent>> escalate(std::string_view now, std::string_view critical_before);

  Result<std::optional<TaskRow>> task(std::int64_t id);
  Result<std::pair<std::vector<TaskRow>, std::int64_t>> worklist(const WorklistFilter& f,
                                                                 const ClaimScope& scope,
                                                                 std::string_view now);
  Result<std::vector<TaskEvent>> events(std::int64_t task_id);
  Result<std::vector<TurnaroundRow>> finals(std::string_view from, std::string_view to);
  Result<std::vector<std::pair<std::string, std::int64_t>>> daily_volume(std::string_view from,
                                                                         std::string_view to);
  // Other studies of the task's Patient ID at the members `held` (codes: those whose records of
  // the ID are the task's patient, pacs::person_at), newest first, at most 100.
  Result<std::vector<PriorStudy>> priors(std::int64_t task_id,
                                         const std::vector<std::string>& held);
  // The imaging studies (not ECG) of this patient at these institutions read to a final
  // report, newest first, with the newest final (or addendum) impression.
  // The reading tasks of every study of patients with this patient ID (at most 400, newest
  // first), each with the impression of its newest preliminary, final or addendum report.
  Result<std::vector<PatientRead>> patient_reads(std::string_view patient_id);
  Result<std::vector<ReportedStudy>> reported_studies(
      std::string_view patient_id, const std::vector<std::int64_t>& institutions);

  // Bench/test helper: inserts many tasks in one transaction.
  Status bulk_insert(const std::vector<NewTask>& tasks, std::string_view now);

 private:
  Result<std::pair<std::int64_t, std::vector<TaskEvent>>> upsert_task_once(const NewTask& t,
                                                                           std::string_view now);
  Status write_events(storage::sql::Db& db, const std::vector<TaskEvent>& events);
  // On the write connection inside an operation, or on a read connection.
  Result<std::optional<TaskRow>> task_on(storage::sql::Db& db, std::int64_t id);

  storage::Database& db_;
  std::mutex sweep_mu_;     // claims run side by side on PostgreSQL
  std::string last_sweep_;  // second of the last expired-lease sweep (sweep_mu_)
};

}  // namespace yilian::reading
