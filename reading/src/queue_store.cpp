#include "yilian/reading/queue_store.h"

#include <algorithm>

#include "yilian/storage/sql.h"

namespace yilian::reading {

namespace sql = storage::sql;
using storage::Database;
using storage::SchemaStep;
using storage::write;
namespace {

constexpr const char* kTaskColumns = R"sql(
  t.id, t.study_pk, s.study_uid, t.service, t.institution_id, i.code, t.is_ecg, t.modality,
  t.priority, t.priority_reason, t.status, t.received_at, t.routed_at, t.due_at,
  coalesce(t.claimed_by, 0), coalesce(u.username, ''), coalesce(t.lease_expires_at, ''),
  coalesce(t.final_at, ''), coalesce(t.escalated_at, ''), p.patient_id, p.name, s.description,
  s.indication, s.clinical_question, t.arriving, s.num_instances
FROM reading_tasks t
JOIN studies s ON s.id = t.study_pk
JOIN patients p ON p.id = s.patient_pk
JOIN institutions i ON i.id = t.institution_id
LEFT JOIN users u ON u.id = t.claimed_by
)sql";

TaskRow read_task(const sql::Stmt& st) {
  TaskRow t;
  t.id = st.int64(0);
  t.study_pk = st.int64(1);
  t.study_uid = st.text(2);
  t.service = st.text(3);
  t.institution_id = st.int64(4);
  t.institution_code = st.text(5);
  t.is_ecg = st.int64(6) != 0;
  t.modality = st.text(7);
  t.priority = static_cast<int>(st.int64(8));
  t.priority_reason = st.text(9);
  t.status = st.text(10);
  t.received_at = st.text(11);
  t.routed_at = st.text(12);
  t.due_at = st.text(13);
  t.claimed_by = st.int64(14);
  t.claimed_by_name = st.text(15);
  t.lease_expires_at = st.text(16);
  t.final_at = st.text(17);
  t.escalated_at = st.text(18);
  t.patient_id = st.text(19);
  t.patient_name = st.text(20);
  t.description = st.text(21);
  t.indication = st.text(22);
  t.clinical_question = st.text(23);
  t.arriving = st.int64(24) != 0;
  t.instances = st.int64(25);
  return t;
}

using sql::id_list;
using sql::text_list;

std::string scope_sql(const ClaimScope& s) {
  const std::string pathology =
      s.pathology == identity::PathologyTasks::any
          ? ""
          : std::string(" AND t.service ") +
                (s.pathology == identity::PathologyTasks::only ? "=" : "<>") + " '" +
                identity::kPathologyService + "'";
  std::string c = "(t.institution_id IN (" + id_list(s.institutions) + ") OR (t.is_ecg = 0 AND " +
                  "t.institution_id IN (" + id_list(s.imaging_institutions) + ")" + pathology +
                  ") OR (t.is_ecg = 1 AND t.institution_id IN (" + id_list(s.ecg_institutions) +
                  ")))";
  if (!s.services.empty()) c += " AND t.service IN (" + text_list(s.services) + ")";
  return c;
}

using sql::query;
using sql::run;

Error not_found() { return make_error(Errc::not_found, "no such task"); }

}  // namespace

QueueStore::QueueStore(Database& db) : db_(db) {}
QueueStore::~QueueStore() = default;

Status QueueStore::write_events(sql::Db& db, const std::vector<TaskEvent>& events) {
  for (const TaskEvent& e : events) {
    if (Status s = run(db,
                       "INSERT INTO task_events(task_id, at, type, actor, detail) "
                       "VALUES(?1, ?2, ?3, ?4, ?5)",
                       [&](sql::Stmt& st) {
                         st.bind(1, e.task_id);
                         st.bind(2, e.at);
                         st.bind(3, e.type);
                         st.bind(4, e.actor);
                         st.bind(5, e.detail);
                       });
        !s)
      return s;
  }
  return Status::Ok();
}

Result<std::optional<TaskRow>> QueueStore::task_on(sql::Db& db, std::int64_t id) {
  std::optional<TaskRow> out;
  if (Status s = query(
          db, std::string("SELECT ") + kTaskColumns + " WHERE t.id = ?1",
          [&](sql::Stmt& st) { st.bind(1, id); }, [&](sql::Stmt& st) { out = read_task(st); });
      !s)
    return s.error();
  return out;
}

Result<std::optional<TaskRow>> QueueStore::task(std::int64_t id) {
  auto rd = db_.read();
  if (!rd.ok()) return rd.error();
  return task_on(rd->conn(), id);
}

Result<std::optional<RoutableStudy>> QueueStore::routable_study(std::string_view study_uid) {
  auto rd = db_.read();
  if (!rd.ok()) return rd.error();
  std::optional<RoutableStudy> out;
  Status s = query(
      rd->conn(),
      "SELECT s.id, s.study_uid, s.institution_id, i.code, s.modalities, "
      "coalesce((SELECT group_concat(b, '\\') FROM (SELECT DISTINCT body_part AS b FROM series "
      "WHERE study_pk = s.id AND body_part <> '' ORDER BY b) AS bp), ''), s.description, "
      "s.procedure, "
      "trim(s.indication || char(10) || s.clinical_question), s.requested_priority, "
      "s.first_received_at FROM studies s "
      "JOIN institutions i ON i.id = s.institution_id WHERE s.study_uid = ?1",
      [&](sql::Stmt& st) { st.bind(1, study_uid); },
      [&](sql::Stmt& st) {
        out =
            RoutableStudy{st.int64(0), st.text(1), st.int64(2), st.text(3), st.text(4), st.text(5),
                          st.text(6),  st.text(7), st.text(8),  st.text(9), st.text(10)};
      });
  if (!s) return s.error();
  return out;
}

Result<std::vector<QueueSettingRow>> QueueStore::queue_settings() {
  auto rd = db_.read();
  if (!rd.ok()) return rd.error();
  std::vector<QueueSettingRow> out;
  if (Status s = sql::query(
          rd->conn(), "SELECT key, value, changed_by, changed_at FROM queue_settings ORDER BY key",
          [](sql::Stmt&) {},
          [&](sql::Stmt& st) {
            out.push_back(QueueSettingRow{st.text(0), st.text(1), st.text(2), st.text(3)});
          });
      !s)
    return s.error();
  return out;
}

Result<std::vector<QueueStore::Depth>> QueueStore::depth(std::string_view now) {
  auto rd = db_.read();
  if (!rd.ok()) return rd.error();
  std::vector<Depth> out;
  if (Status s = sql::query(
          rd->conn(),
          "SELECT status, priority, count(*), sum(CASE WHEN due_at < ?1 THEN 1 ELSE 0 END) "
          "FROM reading_tasks WHERE status <> 'final' GROUP BY status, priority "
          "ORDER BY status, priority",
          [&](sql::Stmt& st) { st.bind(1, now); },
          [&](sql::Stmt& st) {
            out.push_back(
                Depth{st.text(0), static_cast<int>(st.int64(1)), st.int64(2), st.int64(3)});
          });
      !s)
    return s.error();
  return out;
}

Status QueueStore::put_queue_setting(const QueueSettingRow& row) {
  Database::Write tx(db_);
  if (Status s = tx.begin(); !s) return s;
  if (Status s = run(
          tx.conn(),
          "INSERT INTO queue_settings(key, value, changed_by, changed_at) VALUES(?1, ?2, ?3, ?4) "
          "ON CONFLICT(key) DO UPDATE SET value = excluded.value, changed_by = "
          "excluded.changed_by, changed_at = excluded.changed_at",
          [&](sql::Stmt& st) {
            st.bind(1, row.key);
            st.bind(2, row.value);
            st.bind(3, row.changed_by);
            st.bind(4, row.changed_at);
          });
      !s)
    return s;
  return tx.commit(/*durable=*/true);
}

Result<bool> QueueStore::erase_queue_setting(std::string_view key) {
  Database::Write tx(db_);
  if (Status s = tx.begin(); !s) return s.error();
  int changed = 0;
  if (Status s = run(
          tx.conn(), "DELETE FROM queue_settings WHERE key = ?1",
          [&](sql::Stmt& st) { st.bind(1, key); }, &changed);
      !s)
    return s.error();
  if (Status s = tx.commit(/*durable=*/true); !s) return s.error();
  return changed > 0;
}

Status QueueStore::set_clinical_question(std::string_view study_uid, std::string_view question) {
  Database::Write tx(db_);
  if (Status s = tx.begin(); !s) return s;
  int changed = 0;
  if (Status s = run(
          tx.conn(), "UPDATE studies SET clinical_question = ?2 WHERE study_uid = ?1",
          [&](sql::Stmt& st) {
            st.bind(1, study_uid);
            st.bind(2, question);
          },
          &changed);
      !s)
    return s;
  if (changed == 0) return make_error(Errc::not_found, "no such study");
  return tx.commit(/*durable=*/true);
}

Result<std::vector<std::string>> QueueStore::studies_without_task(std::string_view before,
                                                                  std::string_view since) {
  auto rd = db_.read();
  if (!rd.ok()) return rd.error();
  std::vector<std::string> out;
  Status s = query(
      rd->conn(),
      "SELECT study_uid FROM studies s WHERE last_received_at < ?1 AND last_received_at >= ?2 "
      "AND NOT EXISTS (SELECT 1 FROM reading_tasks t WHERE t.study_pk = s.id) "
      "ORDER BY last_received_at",
      [&](sql::Stmt& st) {
        st.bind(1, before);
        st.bind(2, since);
      },
      [&](sql::Stmt& st) { out.push_back(st.text(0)); });
  if (!s) return s.error();
  return out;
}

Result<std::vector<std::pair<std::int64_t, bool>>> QueueStore::study_tasks(std::int64_t study_pk) {
  auto rd = db_.read();
  if (!rd.ok()) return rd.error();
  std::vector<std::pair<std::int64_t, bool>> out;
  Status s = query(
      rd->conn(), "SELECT id, arriving FROM reading_tasks WHERE study_pk = ?1 ORDER BY id",
      [&](sql::Stmt& st) { st.bind(1, study_pk); },
      [&](sql::Stmt& st) { out.emplace_back(st.int64(0), st.int64(1) != 0); });
  if (!s) return s.error();
  return out;
}

Result<std::pair<std::int64_t, std::vector<TaskEvent>>> QueueStore::upsert_task(
    const NewTask& t, std::string_view now) {
  // Two writers routing the same study at once (two nodes, or two operations side by side on
  // PostgreSQL): the one whose insert loses the race finds the winner's task on a second try.
  auto r = upsert_task_once(t, now);
  if (!r.ok() && r.error().code == Errc::conflict) r = upsert_task_once(t, now);
  return r;
}

Result<std::pair<std::int64_t, std::vector<TaskEvent>>> QueueStore::upsert_task_once(
    const NewTask& t, std::string_view now) {
  Database::Write tx(db_);
  if (Status s = tx.begin(); !s) return s.error();
  std::vector<TaskEvent> events;
  std::optional<std::pair<std::int64_t, int>> existing;
  bool was_arriving = false;
  if (Status s = query(
          tx.conn(),
          "SELECT id, priority, arriving FROM reading_tasks WHERE study_pk = ?1 AND service = ?2",
          [&](sql::Stmt& st) {
            st.bind(1, t.study_pk);
            st.bind(2, t.service);
          },
          [&](sql::Stmt& st) {
            existing = {st.int64(0), static_cast<int>(st.int64(1))};
            was_arriving = st.int64(2) != 0;
          });
      !s)
    return s.error();
  std::int64_t id = 0;
  if (!existing) {
    if (Status s = query(
            tx.conn(),
            "INSERT INTO reading_tasks(study_pk, service, institution_id, is_ecg, modality, "
            "priority, priority_reason, status, received_at, routed_at, due_at, arriving) "
            "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, 'queued', ?8, ?9, ?10, ?11) RETURNING id",
            [&](sql::Stmt& st) {
              st.bind(1, t.study_pk);
              st.bind(2, t.service);
              st.bind(3, t.institution_id);
              st.bind(4, std::int64_t{t.is_ecg ? 1 : 0});
              st.bind(5, t.modality);
              st.bind(6, std::int64_t{t.priority});
              st.bind(7, t.priority_reason);
              st.bind(8, t.received_at);
              st.bind(9, now);
              st.bind(10, t.due_at);
              st.bind(11, std::int64_t{t.arriving.value_or(false) ? 1 : 0});
            },
            [&](sql::Stmt& st) { id = st.int64(0); });
        !s)
      return s.error();
    events.push_back({id, t.received_at, "received", "", ""});
    events.push_back({id, std::string(now), "routed", "",
                      t.service + ", priority " + std::to_string(t.priority) +
                          (t.priority_reason.empty() ? "" : " (" + t.priority_reason + ")") +
                          (t.arriving.value_or(false) ? ", still arriving" : "")});
  } else {
    id = existing->first;
    bool raise = t.priority < existing->second;
    if (Status s = run(tx.conn(),
                       raise ? "UPDATE reading_tasks SET modality = ?2, priority = ?3, "
                               "priority_reason = ?4, due_at = min(due_at, ?5) WHERE id = ?1"
                             : "UPDATE reading_tasks SET modality = ?2 WHERE id = ?1",
                       [&](sql::Stmt& st) {
                         st.bind(1, id);
                         st.bind(2, t.modality);
                         if (raise) {
                           st.bind(3, std::int64_t{t.priority});
                           st.bind(4, t.priority_reason);
                           st.bind(5, t.due_at);
                         }
                       });
        !s)
      return s.error();
    events.push_back({id, std::string(now), "updated", "",
                      raise ? "priority raised: " + t.priority_reason : "more instances"});
    if (t.arriving && *t.arriving != was_arriving) {
      if (Status s = run(tx.conn(), "UPDATE reading_tasks SET arriving = ?2 WHERE id = ?1",
                         [&](sql::Stmt& st) {
                           st.bind(1, id);
                           st.bind(2, std::int64_t{*t.arriving ? 1 : 0});
                         });
          !s)
        return s.error();
      events.push_back({id, std::string(now), "updated", "",
                        *t.arriving ? "instances arriving again" : "all instances arrived"});
    }
  }
  if (Status s = write_events(tx.conn(), events); !s) return s.error();
  if (Status s = tx.commit(); !s) return s.error();
  return std::make_pair(id, std::move(events));
}

Result<std::optional<TaskRow>> QueueStore::claim_next(const ClaimScope& scope, std::int64_t user,
                                                      const std::string& user_name,
                                                      std::string_view now,
                                                      std::string_view lease_until,
                                                      std::vector<TaskEvent>* events) {
  if (scope.empty()) return std::optional<TaskRow>{};
  Database::Write tx(db_);
  if (Status s = tx.begin(); !s) return s.error();
  std::vector<TaskEvent> ev;
  // Abandoned claims return to the queue (checked at most once a second: leases are minutes).
  std::string sweep_second(now.substr(0, 19));
  bool sweep = false;
  {
    std::lock_guard lock(sweep_mu_);
    sweep = sweep_second != last_sweep_;
    if (sweep) last_sweep_ = sweep_second;
  }
  if (sweep)
    if (Status s = query(
            tx.conn(),
            "UPDATE reading_tasks SET status = 'queued', claimed_by = NULL, lease_expires_at = "
            "NULL "
            "WHERE status = 'claimed' AND lease_expires_at < ?1 RETURNING id",
            [&](sql::Stmt& st) { st.bind(1, now); },
            [&](sql::Stmt& st) {
              ev.push_back({st.int64(0), std::string(now), "expired", "", ""});
            });
        !s)
      return s.error();
  std::optional<std::int64_t> id;
  std::string q =
      "UPDATE reading_tasks SET status = 'claimed', claimed_by = ?1, lease_expires_at = ?2 "
      "WHERE id = (SELECT t.id FROM reading_tasks t WHERE t.status = 'queued' AND " +
      scope_sql(scope) + " ORDER BY t.status, t.priority, t.due_at, t.id LIMIT 1" +
      // Readers on several nodes: a task another transaction is claiming right now is passed
      // over, not waited for (and then found taken).
      (db_.dialect() == sql::Dialect::postgres ? " FOR UPDATE SKIP LOCKED" : "") + ") RETURNING id";
  if (Status s = query(
          tx.conn(), q,
          [&](sql::Stmt& st) {
            st.bind(1, user);
            st.bind(2, lease_until);
          },
          [&](sql::Stmt& st) { id = st.int64(0); });
      !s)
    return s.error();
  if (id) ev.push_back({*id, std::string(now), "claimed", user_name, "claim next"});
  if (Status s = write_events(tx.conn(), ev); !s) return s.error();
  std::optional<TaskRow> row;
  if (id) {
    auto t = task_on(tx.conn(), *id);
    if (!t.ok()) return t.error();
    row = std::move(*t);
  }
  if (Status s = tx.commit(/*durable=*/false); !s) return s.error();
  if (events) *events = ev;
  return row;
}

Result<TaskRow> QueueStore::claim(std::int64_t task_id, std::int64_t user,
                                  const std::string& user_name, std::string_view now,
                                  std::string_view lease_until, std::vector<TaskEvent>* events) {
  Database::Write tx(db_);
  if (Status s = tx.begin(); !s) return s.error();
  int changed = 0;
  if (Status s = run(
          tx.conn(),
          "UPDATE reading_tasks SET status = 'claimed', claimed_by = ?2, "
          "lease_expires_at = ?3 WHERE id = ?1 AND (status = 'queued' OR "
          "(status = 'claimed' AND (claimed_by = ?2 OR lease_expires_at < ?4)))",
          [&](sql::Stmt& st) {
            st.bind(1, task_id);
            st.bind(2, user);
            st.bind(3, lease_until);
            st.bind(4, now);
          },
          &changed);
      !s)
    return s.error();
  auto t = task_on(tx.conn(), task_id);
  if (!t.ok()) return t.error();
  if (!t->has_value()) return not_found();
  if (changed == 0) {
    if ((*t)->status == "claimed") {
      return make_error(Errc::conflict, "task is held by " + (*t)->claimed_by_name);
    }
    return make_error(Errc::conflict, "task is " + (*t)->status + " and cannot be claimed");
  }
  std::vector<TaskEvent> ev{{task_id, std::string(now), "claimed", user_name, ""}};
  if (Status s = write_events(tx.conn(), ev); !s) return s.error();
  if (Status s = tx.commit(/*durable=*/false); !s) return s.error();
  if (events) *events = ev;
  return std::move(**t);
}

Status QueueStore::heartbeat(std::int64_t task_id, std::int64_t user,
                             std::string_view lease_until) {
  Database::Write tx(db_);
  if (Status s = tx.begin(); !s) return s;
  int changed = 0;
  if (Status s = run(
          tx.conn(),
          "UPDATE reading_tasks SET lease_expires_at = ?3 WHERE id = ?1 AND "
          "claimed_by = ?2 AND status IN ('claimed', 'preliminary')",
          [&](sql::Stmt& st) {
            st.bind(1, task_id);
            st.bind(2, user);
            st.bind(3, lease_until);
          },
          &changed);
      !s)
    return s;
  if (changed == 0) return make_error(Errc::conflict, "you do not hold this task");
  return tx.commit(/*durable=*/false);
}

Status QueueStore::release(std::int64_t task_id, std::int64_t user, const std::string& user_name,
                           std::string_view now, std::vector<TaskEvent>* events) {
  Database::Write tx(db_);
  if (Status s = tx.begin(); !s) return s;
  int changed = 0;
  if (Status s = run(
          tx.conn(),
          "UPDATE reading_tasks SET status = 'queued', claimed_by = NULL, "
          "lease_expires_at = NULL WHERE id = ?1 AND claimed_by = ?2 AND "
          "status = 'claimed'",
          [&](sql::Stmt& st) {
            st.bind(1, task_id);
            st.bind(2, user);
          },
          &changed);
      !s)
    return s;
  if (changed == 0) return make_error(Errc::conflict, "you do not hold this task");
  std::vector<TaskEvent> ev{{task_id, std::string(now), "released", user_name, ""}};
  if (Status s = write_events(tx.conn(), ev); !s) return s;
  if (events) *events = ev;
  return tx.commit(/*durable=*/false);
}

Status QueueStore::reassign(std::int64_t task_id, std::int64_t to_user, const std::string& actor,
                            const std::string& to_name, const std::string& reason,
                            std::string_view now, std::string_view lease_until,
                            std::vector<TaskEvent>* events) {
  Database::Write tx(db_);
  if (Status s = tx.begin(); !s) return s;
  int changed = 0;
  if (Status s = run(
          tx.conn(),
          "UPDATE reading_tasks SET status = CASE WHEN status = 'queued' THEN "
          "'claimed' ELSE status END, claimed_by = ?2, lease_expires_at = ?3 "
          "WHERE id = ?1 AND status <> 'final'",
          [&](sql::Stmt& st) {
            st.bind(1, task_id);
            st.bind(2, to_user);
            st.bind(3, lease_until);
          },
          &changed);
      !s)
    return s;
  if (changed == 0) return make_error(Errc::conflict, "no open task with this id");
  std::vector<TaskEvent> ev{
      {task_id, std::string(now), "reassigned", actor, to_name + ": " + reason}};
  if (Status s = write_events(tx.conn(), ev); !s) return s;
  if (events) *events = ev;
  return tx.commit();
}

Status QueueStore::set_priority(std::int64_t task_id, int priority, const std::string& reason,
                                std::string_view due_at, const std::string& actor,
                                std::string_view now, std::vector<TaskEvent>* events) {
  Database::Write tx(db_);
  if (Status s = tx.begin(); !s) return s;
  int changed = 0;
  if (Status s = run(
          tx.conn(),
          "UPDATE reading_tasks SET priority = ?2, priority_reason = ?3, "
          "due_at = min(due_at, ?4), escalated_at = NULL WHERE id = ?1 AND "
          "status <> 'final' AND priority > ?2",
          [&](sql::Stmt& st) {
            st.bind(1, task_id);
            st.bind(2, std::int64_t{priority});
            st.bind(3, reason);
            st.bind(4, due_at);
          },
          &changed);
      !s)
    return s;
  if (changed == 0) {
    return make_error(Errc::conflict,
                      "only an open task's priority can be raised, and only to a more urgent one");
  }
  std::vector<TaskEvent> ev{{task_id, std::string(now), "priority", actor,
                             "raised to " + std::to_string(priority) + ": " + reason}};
  if (Status s = write_events(tx.conn(), ev); !s) return s;
  if (events) *events = ev;
  return tx.commit();
}

Result<std::vector<TaskEvent>> QueueStore::escalate(std::string_view now,
                                                    std::string_view critical_before) {
  Database::Write tx(db_);
  if (Status s = tx.begin(); !s) return s.error();
  std::vector<TaskEvent> ev;
  if (Status s = query(
          tx.conn(),
          "UPDATE reading_tasks SET escalated_at = ?1 WHERE escalated_at IS NULL AND "
          "due_at < ?1 AND status <> 'final' RETURNING id, due_at",
          [&](sql::Stmt& st) { st.bind(1, now); },
          [&](sql::Stmt& st) {
            ev.push_back(
                {st.int64(0), std::string(now), "escalated", "", "past due " + st.text(1)});
          });
      !s)
    return s.error();
  if (Status s = query(
          tx.conn(),
          "UPDATE critical_results SET escalated_at = ?1 WHERE escalated_at IS NULL AND "
          "acknowledged_at IS NULL AND created_at < ?2 RETURNING task_id, id",
          [&](sql::Stmt& st) {
            st.bind(1, now);
            st.bind(2, critical_before);
          },
          [&](sql::Stmt& st) {
            ev.push_back({st.int64(0), std::string(now), "critical_escalated", "",
                          "critical result " + std::to_string(st.int64(1)) + " not acknowledged"});
          });
      !s)
    return s.error();
  if (Status s = write_events(tx.conn(), ev); !s) return s.error();
  if (Status s = tx.commit(); !s) return s.error();
  return ev;
}

Result<std::pair<std::vector<TaskRow>, std::int64_t>> QueueStore::worklist(const WorklistFilter& f,
                                                                           const ClaimScope& scope,
                                                                           std::string_view now) {
  std::pair<std::vector<TaskRow>, std::int64_t> out{{}, 0};
  if (scope.empty()) return out;
  auto rd = db_.read();
  if (!rd.ok()) return rd.error();
  std::string where = scope_sql(scope);
  where += f.status.empty() ? " AND t.status <> 'final'" : " AND t.status = :status";
  if (!f.service.empty()) where += " AND t.service = :service";
  if (f.priority >= 0) where += " AND t.priority = :priority";
  if (!f.institution_code.empty()) where += " AND i.code = :institution";
  if (f.overdue) where += " AND t.due_at < :now AND t.status <> 'final'";
  auto bind = [&](sql::Stmt& st) {
    st.bind_named(":status", f.status);
    st.bind_named(":service", f.service);
    st.bind_named(":priority", std::int64_t{f.priority});
    st.bind_named(":institution", f.institution_code);
    st.bind_named(":now", now);
    st.bind_named(":limit", f.limit);
    st.bind_named(":offset", f.offset);
  };
  std::string count =
      "SELECT count(*) FROM reading_tasks t JOIN institutions i ON i.id = t.institution_id "
      "WHERE " +
      where;
  if (Status s = query(rd->conn(), count, bind, [&](sql::Stmt& st) { out.second = st.int64(0); });
      !s)
    return s.error();
  std::string q = std::string("SELECT ") + kTaskColumns + " WHERE " + where +
                  " ORDER BY t.priority, t.due_at, t.id LIMIT :limit OFFSET :offset";
  if (Status s =
          query(rd->conn(), q, bind, [&](sql::Stmt& st) { out.first.push_back(read_task(st)); });
      !s)
    return s.error();
  return out;
}

Result<std::vector<TaskEvent>> QueueStore::events(std::int64_t task_id) {
  auto rd = db_.read();
  if (!rd.ok()) return rd.error();
  std::vector<TaskEvent> out;
  Status s = query(
      rd->conn(),
      "SELECT task_id, at, type, actor, detail FROM task_events WHERE task_id = ?1 ORDER BY id",
      [&](sql::Stmt& st) { st.bind(1, task_id); },
      [&](sql::Stmt& st) {
        out.push_back({st.int64(0), st.text(1), st.text(2), st.text(3), st.text(4)});
      });
  if (!s) return s.error();
  return out;
}

Result<std::vector<PriorStudy>> QueueStore::priors(std::int64_t task_id,
                                                   const std::vector<std::string>& held) {
  auto rd = db_.read();
  if (!rd.ok()) return rd.error();
  std::vector<PriorStudy> out;
  if (held.empty()) return out;
  std::string members;
  for (std::size_t k = 0; k < held.size(); ++k) {
    members += (k ? ", ?" : "?") + std::to_string(k + 2);
  }
  Status s = query(
      rd->conn(),
      "SELECT s.study_uid, s.study_date, s.modalities, s.description, i.code, "
      "coalesce((SELECT r.impression FROM reading_tasks rt JOIN reports r ON r.task_id = rt.id "
      "WHERE rt.study_pk = s.id AND r.kind IN ('final', 'addendum') ORDER BY r.id DESC LIMIT 1), "
      "'') FROM reading_tasks t JOIN studies ts ON ts.id = t.study_pk JOIN patients tp ON tp.id "
      "= ts.patient_pk JOIN patients p ON p.patient_id = tp.patient_id JOIN studies s ON "
      "s.patient_pk = p.id AND s.id <> ts.id JOIN institutions i ON i.id = s.institution_id "
      "WHERE t.id = ?1 AND i.code IN (" +
          members + ") ORDER BY s.study_date DESC, s.first_received_at DESC LIMIT 100",
      [&](sql::Stmt& st) {
        st.bind(1, task_id);
        for (std::size_t k = 0; k < held.size(); ++k) st.bind(static_cast<int>(k + 2), held[k]);
      },
      [&](sql::Stmt& st) {
        out.push_back({st.text(0), st.text(1), st.text(2), st.text(3), st.text(4), st.text(5)});
      });
  if (!s) return s.error();
  return out;
}

Result<std::vector<PatientRead>> QueueStore::patient_reads(std::string_view patient_id) {
  auto rd = db_.read();
  if (!rd.ok()) return rd.error();
  std::vector<PatientRead> out;
  Status s = query(
      rd->conn(),
      "SELECT s.study_uid, t.id, t.is_ecg, t.service, t.modality, t.status, t.priority, "
      "t.priority_reason, coalesce(t.final_at, ''), coalesce((SELECT r.impression FROM reports r "
      "WHERE r.task_id = t.id AND r.kind <> 'draft' ORDER BY r.id DESC LIMIT 1), ''), "
      "coalesce(ri.code, ''), EXISTS(SELECT 1 FROM reports r WHERE r.task_id = t.id AND "
      "r.kind <> 'draft' AND r.critical <> 0) "
      "FROM reading_tasks t JOIN studies s ON s.id = t.study_pk JOIN patients p ON "
      "p.id = s.patient_pk LEFT JOIN users u ON u.id = t.reported_by LEFT JOIN institutions ri "
      "ON ri.id = u.institution_id WHERE p.patient_id = ?1 ORDER BY t.id DESC LIMIT 400",
      [&](sql::Stmt& st) { st.bind(1, patient_id); },
      [&](sql::Stmt& st) {
        PatientRead r;
        r.study_uid = st.text(0);
        r.task_id = st.int64(1);
        r.is_ecg = st.int64(2) != 0;
        r.service = st.text(3);
        r.modality = st.text(4);
        r.status = st.text(5);
        r.priority = static_cast<int>(st.int64(6));
        r.priority_reason = st.text(7);
        r.final_at = st.text(8);
        r.impression = st.text(9);
        r.read_by = st.text(10);
        r.critical = st.int64(11) != 0;
        out.push_back(std::move(r));
      });
  if (!s) return s.error();
  return out;
}

Result<std::vector<ReportedStudy>> QueueStore::reported_studies(
    std::string_view patient_id, const std::vector<std::int64_t>& institutions) {
  auto rd = db_.read();
  if (!rd.ok()) return rd.error();
  std::vector<ReportedStudy> out;
  Status s = query(
      rd->conn(),
      "SELECT t.id, s.study_uid, s.study_date, t.modality, s.description, i.code, ri.code, "
      "t.final_at, coalesce((SELECT r.impression FROM reports r WHERE r.task_id = t.id AND "
      "r.kind IN ('final', 'addendum') ORDER BY r.id DESC LIMIT 1), '') "
      "FROM reading_tasks t JOIN studies s ON s.id = t.study_pk JOIN patients p ON "
      "p.id = s.patient_pk JOIN institutions i ON i.id = t.institution_id JOIN users u ON "
      "u.id = t.reported_by JOIN institutions ri ON ri.id = u.institution_id "
      "WHERE p.patient_id = ?1 AND t.status = 'final' AND t.is_ecg = 0 AND t.institution_id IN (" +
          sql::id_list(institutions) + ") ORDER BY t.final_at DESC LIMIT 200",
      [&](sql::Stmt& st) { st.bind(1, patient_id); },
      [&](sql::Stmt& st) {
        out.push_back({st.int64(0), st.text(1), st.text(2), st.text(3), st.text(4), st.text(5),
                       st.text(6), st.text(7), st.text(8)});
      });
  if (!s) return s.error();
  return out;
}

Status QueueStore::bulk_insert(const std::vector<NewTask>& tasks, std::string_view now) {
  Database::Write tx(db_);
  if (Status s = tx.begin(); !s) return s;
  auto cached = tx.conn().cached(
      "INSERT INTO reading_tasks(study_pk, service, institution_id, is_ecg, "
      "modality, priority, priority_reason, status, received_at, routed_at, "
      "due_at) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, 'queued', ?8, ?9, ?10)");
  if (!cached.ok()) return cached.error();
  sql::Stmt& st = **cached;
  for (const NewTask& t : tasks) {
    st.bind(1, t.study_pk);
    st.bind(2, t.service);
    st.bind(3, t.institution_id);
    st.bind(4, std::int64_t{t.is_ecg ? 1 : 0});
    st.bind(5, t.modality);
    st.bind(6, std::int64_t{t.priority});
    st.bind(7, t.priority_reason);
    st.bind(8, t.received_at);
    st.bind(9, now);
    st.bind(10, t.due_at);
    if (Status s = st.run(); !s) return s;
  }
  if (Status s = tx.commit(); !s) return s;
  // The planner's figures for the grown table (PostgreSQL would gather them later by itself).
  if (db_.dialect() != sql::Dialect::postgres) return Status::Ok();
  return storage::write(db_, [](sql::Db& db) { return db.exec("ANALYZE reading_tasks"); });
}

}  // namespace yilian::reading
