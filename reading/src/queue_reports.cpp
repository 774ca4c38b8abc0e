// The reading queue's reports, critical results, QC reviews and turnaround figures (the task
// side is in queue_store.cpp).
#include <algorithm>
#include <set>

#include "yilian/reading/queue_store.h"
#include "yilian/storage/sql.h"

namespace yilian::reading {

namespace sql = storage::sql;
using sql::id_list;
using sql::query;
using sql::run;
using storage::Database;
using storage::write;

namespace {

Error not_found() { return make_error(Errc::not_found, "no such task"); }

}  // namespace

Result<ReportRow> QueueStore::add_report(
    const NewReport& r,
    const std::function<Result<std::string>(const std::string&, std::int64_t)>& decide,
    std::string_view now, std::vector<TaskEvent>* events) {
  Database::Write tx(db_);
  if (Status s = tx.begin(); !s) return s.error();
  // Only what the decision and the critical result need (not the full task row).
  std::optional<TaskRow> found;
  if (Status s = query(
          tx.conn(),
          "SELECT t.status, coalesce(t.claimed_by, 0), t.institution_id, i.code FROM "
          "reading_tasks t JOIN institutions i ON i.id = t.institution_id WHERE t.id = ?1",
          [&](sql::Stmt& st) { st.bind(1, r.task_id); },
          [&](sql::Stmt& st) {
            TaskRow row;
            row.status = st.text(0);
            row.claimed_by = st.int64(1);
            row.institution_id = st.int64(2);
            row.institution_code = st.text(3);
            found = std::move(row);
          });
      !s)
    return s.error();
  if (!found) return not_found();
  std::optional<TaskRow>* t = &found;
  auto next = decide((*t)->status, (*t)->claimed_by);
  if (!next.ok()) return next.error();
  ReportRow row;
  if (Status s = query(
          tx.conn(),
          "INSERT INTO reports(task_id, version, kind, findings, impression, critical, author_id, "
          "created_at) VALUES(?1, (SELECT coalesce(max(version), 0) + 1 FROM reports WHERE "
          "task_id = ?1), ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id, version",
          [&](sql::Stmt& st) {
            st.bind(1, r.task_id);
            st.bind(2, r.kind);
            st.bind(3, r.findings);
            st.bind(4, r.impression);
            st.bind(5, std::int64_t{r.critical ? 1 : 0});
            st.bind(6, r.author);
            st.bind(7, now);
          },
          [&](sql::Stmt& st) {
            row.id = st.int64(0);
            row.version = st.int64(1);
          });
      !s)
    return s.error();
  row.task_id = r.task_id;
  row.kind = r.kind;
  row.findings = r.findings;
  row.impression = r.impression;
  row.critical = r.critical;
  row.author = r.author_name;
  row.created_at = std::string(now);
  bool finalising = *next == "final" && (*t)->status != "final";
  if (Status s = run(tx.conn(),
                     finalising ? "UPDATE reading_tasks SET status = ?2, reported_by = ?3, "
                                  "final_at = ?4, lease_expires_at = NULL WHERE id = ?1"
                                : "UPDATE reading_tasks SET status = ?2 WHERE id = ?1",
                     [&](sql::Stmt& st) {
                       st.bind(1, r.task_id);
                       st.bind(2, *next);
                       if (finalising) {
                         st.bind(3, r.author);
                         st.bind(4, now);
                       }
                     });
      !s)
    return s.error();
  std::vector<TaskEvent> ev;
  const std::string type = r.kind == "draft"         ? "draft"
                           : r.kind == "preliminary" ? "reported"
                           : r.kind == "final"       ? "finalised"
                                                     : "addendum";
  ev.push_back(
      {r.task_id, std::string(now), type, r.author_name, "version " + std::to_string(row.version)});
  if (r.critical && r.kind != "draft") {
    std::int64_t critical_id = 0;
    if (Status s = query(
            tx.conn(),
            "INSERT INTO critical_results(task_id, report_id, institution_id, created_at) "
            "VALUES(?1, ?2, ?3, ?4) RETURNING id",
            [&](sql::Stmt& st) {
              st.bind(1, r.task_id);
              st.bind(2, row.id);
              st.bind(3, (*t)->institution_id);
              st.bind(4, now);
            },
            [&](sql::Stmt& st) { critical_id = st.int64(0); });
        !s)
      return s.error();
    ev.push_back(
        {r.task_id, std::string(now), "critical_sent", r.author_name,
         "critical result " + std::to_string(critical_id) + " to " + (*t)->institution_code});
  }
  if (r.kind == "final" && r.statements) {
    const std::vector<std::string>& proposed = r.statements->first;
    const std::vector<std::string>& signed_list = r.statements->second;
    std::set<std::string> codes(proposed.begin(), proposed.end());
    codes.insert(signed_list.begin(), signed_list.end());
    for (const std::string& code : codes) {
      auto in = [&code](const std::vector<std::string>& v) {
        return std::find(v.begin(), v.end(), code) != v.end();
      };
      if (Status s = run(tx.conn(),
                         "INSERT INTO ecg_statement_reviews(report_id, task_id, code, proposed, "
                         "kept, signed_at) VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
                         [&](sql::Stmt& st) {
                           st.bind(1, row.id);
                           st.bind(2, r.task_id);
                           st.bind(3, code);
                           st.bind(4, std::int64_t{in(proposed) ? 1 : 0});
                           st.bind(5, std::int64_t{in(signed_list) ? 1 : 0});
                           st.bind(6, now);
                         });
          !s)
        return s.error();
    }
  }
  if (finalising && r.qc) {
    if (Status s =
            run(tx.conn(), "INSERT OR IGNORE INTO qc_reviews(task_id, sampled_at) VALUES(?1, ?2)",
                [&](sql::Stmt& st) {
                  st.bind(1, r.task_id);
                  st.bind(2, now);
                });
        !s)
      return s.error();
    ev.push_back({r.task_id, std::string(now), "qc", "", "sampled for a second reading"});
  }
  if (Status s = write_events(tx.conn(), ev); !s) return s.error();
  if (Status s = tx.commit(); !s) return s.error();
  if (events) *events = ev;
  return row;
}

Result<std::vector<QueueStore::StatementAgreement>> QueueStore::statement_agreement(
    std::string_view from, std::string_view to) {
  auto rd = db_.read();
  if (!rd.ok()) return rd.error();
  std::vector<StatementAgreement> out;
  Status s = query(
      rd->conn(),
      "SELECT code, sum(proposed), sum(CASE WHEN proposed = 1 AND kept = 1 THEN 1 ELSE 0 END), "
      "sum(CASE WHEN proposed = 0 AND kept = 1 THEN 1 ELSE 0 END) FROM ecg_statement_reviews "
      "WHERE signed_at >= ?1 AND signed_at < ?2 GROUP BY code ORDER BY sum(proposed) DESC, code",
      [&](sql::Stmt& st) {
        st.bind(1, from);
        st.bind(2, to);
      },
      [&](sql::Stmt& st) {
        out.push_back({st.text(0), st.int64(1), st.int64(2), st.int64(3)});
      });
  if (!s) return s.error();
  return out;
}

namespace {

// Report versions with their authors: the rows `where` (SQL after the joins, `?1` bound to
// `key`) selects, in its order.
template <typename Key>
Result<std::vector<ReportRow>> report_rows(storage::Database& db, const char* joins_where,
                                           const Key& key) {
  auto rd = db.read();
  if (!rd.ok()) return rd.error();
  std::vector<ReportRow> out;
  Status s = query(
      rd->conn(),
      std::string("SELECT r.id, r.task_id, r.version, r.kind, r.findings, r.impression, "
                  "r.critical, u.username, r.created_at, u.display_name FROM reports r "
                  "JOIN users u ON u.id = r.author_id ") +
          joins_where,
      [&](sql::Stmt& st) { st.bind(1, key); },
      [&](sql::Stmt& st) {
        out.push_back({st.int64(0), st.int64(1), st.int64(2), st.text(3), st.text(4), st.text(5),
                       st.int64(6) != 0, st.text(7), st.text(8), st.text(9)});
      });
  if (!s) return s.error();
  return out;
}

}  // namespace

Result<std::vector<ReportRow>> QueueStore::reports(std::int64_t task_id) {
  return report_rows(db_, "WHERE r.task_id = ?1 ORDER BY r.version", task_id);
}

Result<std::vector<ReportRow>> QueueStore::signed_ecg_reports(std::string_view study_uid) {
  return report_rows(db_,
                     "JOIN reading_tasks t ON t.id = r.task_id JOIN studies s ON s.id = t.study_pk "
                     "WHERE s.study_uid = ?1 AND t.is_ecg = 1 AND r.kind IN ('final', 'addendum') "
                     "ORDER BY r.task_id, r.version",
                     study_uid);
}

Result<std::vector<CriticalRow>> QueueStore::critical_results(
    bool open_only, const std::vector<std::int64_t>& institutions) {
  auto rd = db_.read();
  if (!rd.ok()) return rd.error();
  std::vector<CriticalRow> out;
  std::string q =
      "SELECT c.id, c.task_id, s.study_uid, i.code, c.created_at, coalesce(u.username, ''), "
      "coalesce(c.acknowledged_at, ''), coalesce(c.escalated_at, ''), r.impression "
      "FROM critical_results c JOIN reading_tasks t ON t.id = c.task_id "
      "JOIN studies s ON s.id = t.study_pk JOIN institutions i ON i.id = c.institution_id "
      "JOIN reports r ON r.id = c.report_id LEFT JOIN users u ON u.id = c.acknowledged_by "
      "WHERE c.institution_id IN (" +
      id_list(institutions) + ")" + (open_only ? " AND c.acknowledged_at IS NULL" : "") +
      " ORDER BY c.id DESC LIMIT 500";
  Status s = query(
      rd->conn(), q, [](sql::Stmt&) {},
      [&](sql::Stmt& st) {
        out.push_back({st.int64(0), st.int64(1), st.text(2), st.text(3), st.text(4), st.text(5),
                       st.text(6), st.text(7), st.text(8)});
      });
  if (!s) return s.error();
  return out;
}

Status QueueStore::acknowledge_critical(std::int64_t id,
                                        const std::vector<std::int64_t>& user_institutions,
                                        std::int64_t user, const std::string& user_name,
                                        std::string_view now, std::vector<TaskEvent>* events) {
  Database::Write tx(db_);
  if (Status s = tx.begin(); !s) return s;
  std::optional<std::int64_t> task;
  std::string q =
      "UPDATE critical_results SET acknowledged_by = ?2, acknowledged_at = ?3 "
      "WHERE id = ?1 AND acknowledged_at IS NULL AND institution_id IN (" +
      id_list(user_institutions) + ") RETURNING task_id";
  if (Status s = query(
          tx.conn(), q,
          [&](sql::Stmt& st) {
            st.bind(1, id);
            st.bind(2, user);
            st.bind(3, now);
          },
          [&](sql::Stmt& st) { task = st.int64(0); });
      !s)
    return s;
  if (!task) {
    return make_error(Errc::conflict, "no open critical result with this id for your institution");
  }
  std::vector<TaskEvent> ev{{*task, std::string(now), "critical_acknowledged", user_name,
                             "critical result " + std::to_string(id)}};
  if (Status s = write_events(tx.conn(), ev); !s) return s;
  if (events) *events = ev;
  return tx.commit();
}

Status QueueStore::record_qc(std::int64_t task_id, std::int64_t reviewer,
                             const std::string& reviewer_name, const std::string& agreement,
                             const std::string& comment, std::string_view now,
                             std::vector<TaskEvent>* events) {
  if (agreement != "agree" && agreement != "minor" && agreement != "major") {
    return make_error(Errc::invalid_argument, "agreement must be agree, minor or major");
  }
  Database::Write tx(db_);
  if (Status s = tx.begin(); !s) return s;
  int changed = 0;
  if (Status s = run(
          tx.conn(),
          "UPDATE qc_reviews SET reviewer_id = ?2, agreement = ?3, comment = ?4, "
          "reviewed_at = ?5 WHERE task_id = ?1 AND reviewed_at IS NULL",
          [&](sql::Stmt& st) {
            st.bind(1, task_id);
            st.bind(2, reviewer);
            st.bind(3, agreement);
            st.bind(4, comment);
            st.bind(5, now);
          },
          &changed);
      !s)
    return s;
  if (changed == 0) return make_error(Errc::conflict, "this task has no open QC review");
  std::vector<TaskEvent> ev{{task_id, std::string(now), "qc", reviewer_name, agreement}};
  if (Status s = write_events(tx.conn(), ev); !s) return s;
  if (events) *events = ev;
  return tx.commit();
}

Result<std::vector<TurnaroundRow>> QueueStore::finals(std::string_view from, std::string_view to) {
  auto rd = db_.read();
  if (!rd.ok()) return rd.error();
  std::vector<TurnaroundRow> out;
  Status s = query(
      rd->conn(),
      "SELECT i.code, t.modality, coalesce(u.username, ''), t.priority, t.received_at, t.due_at, "
      "t.final_at FROM reading_tasks t JOIN institutions i ON i.id = t.institution_id "
      "LEFT JOIN users u ON u.id = t.reported_by WHERE t.status = 'final' AND "
      "t.final_at >= ?1 AND t.final_at < ?2",
      [&](sql::Stmt& st) {
        st.bind(1, from);
        st.bind(2, to);
      },
      [&](sql::Stmt& st) {
        out.push_back({st.text(0), st.text(1), st.text(2), static_cast<int>(st.int64(3)),
                       st.text(4), st.text(5), st.text(6)});
      });
  if (!s) return s.error();
  return out;
}

Result<std::vector<std::pair<std::string, std::int64_t>>> QueueStore::daily_volume(
    std::string_view from, std::string_view to) {
  auto rd = db_.read();
  if (!rd.ok()) return rd.error();
  std::vector<std::pair<std::string, std::int64_t>> out;
  Status s = query(
      rd->conn(),
      "SELECT substr(received_at, 1, 10) AS day, count(*) FROM reading_tasks "
      "WHERE received_at >= ?1 AND received_at < ?2 GROUP BY day ORDER BY day",
      [&](sql::Stmt& st) {
        st.bind(1, from);
        st.bind(2, to);
      },
      [&](sql::Stmt& st) { out.emplace_back(st.text(0), st.int64(1)); });
  if (!s) return s.error();
  return out;
}

}  // namespace yilian::reading
