#include "yilian/teleconsult/case_store.h"
#include "yilian/teleconsult/consult_store.h"  // kPatientListMost

#include "store_util.h"

#include <chrono>
#include <limits>
#include <map>

#include "yilian/storage/clock.h"
#include "yilian/storage/sql.h"

namespace yilian::teleconsult {

namespace sql = storage::sql;
using sql::id_list;
using sql::query;
using sql::run;
using sql::text_list;
using storage::Database;
using storage::parse_iso8601;
using storage::SchemaStep;
using storage::to_iso8601;
using storage::write;

CaseStore::CaseStore(Database& db) : db_(db) {}
CaseStore::~CaseStore() = default;

namespace {

constexpr const char* kCaseColumns = R"sql(
  c.id, c.kind, c.status, c.institution_id, i.code, c.patient_id, c.patient_name, c.study_uid,
  coalesce(c.consult_id, 0), c.source, c.reason, c.opened_by, c.opened_at,
  coalesce(c.closed_at, ''), c.alert_service, c.acknowledged_by, c.acknowledged_at,
  c.escalated_at
FROM emergency_cases c JOIN institutions i ON i.id = c.institution_id
)sql";

CaseRow read_case(const sql::Stmt& st) {
  CaseRow c;
  c.id = st.int64(0);
  c.kind = st.text(1);
  c.status = st.text(2);
  c.institution_id = st.int64(3);
  c.institution_code = st.text(4);
  c.patient_id = st.text(5);
  c.patient_name = st.text(6);
  c.study_uid = st.text(7);
  c.consult_id = st.int64(8);
  c.source = st.text(9);
  c.reason = st.text(10);
  c.opened_by = st.text(11);
  c.opened_at = st.text(12);
  c.closed_at = st.text(13);
  c.alert_service = st.text(14);
  c.acknowledged_by = st.text(15);
  c.acknowledged_at = st.text(16);
  c.escalated_at = st.text(17);
  return c;
}

constexpr const char* kShiftColumns = R"sql(
  s.id, s.institution_id, i.code, s.service, s.role, s.user_id, u.username, s.starts_at,
  s.ends_at, s.created_by, s.created_at
)sql";

ShiftRow read_shift(const sql::Stmt& st) {
  ShiftRow s;
  s.id = st.int64(0);
  s.institution_id = st.int64(1);
  s.institution_code = st.text(2);
  s.service = st.text(3);
  s.role = st.text(4);
  s.user_id = st.int64(5);
  s.username = st.text(6);
  s.starts_at = st.text(7);
  s.ends_at = st.text(8);
  s.created_by = st.text(9);
  s.created_at = st.text(10);
  return s;
}

}  // namespace

Result<CaseRow> CaseStore::open_case(const CaseRow& c, bool& existed) {
  existed = false;
  Database::Write tx(db_);
  if (Status s = tx.begin(); !s) return s.error();
  std::int64_t id = 0;
  if (!c.study_uid.empty()) {
    if (Status s = query(
            tx.conn(), "SELECT id FROM emergency_cases WHERE study_uid = ?1 AND kind = ?2",
            [&](sql::Stmt& st) {
              st.bind(1, c.study_uid);
              st.bind(2, c.kind);
            },
            [&](sql::Stmt& st) { id = st.int64(0); });
        !s)
      return s.error();
    existed = id != 0;
  }
  if (!existed) {
    if (Status s = query(
            tx.conn(),
            "INSERT INTO emergency_cases(kind, status, institution_id, patient_id, patient_name, "
            "study_uid, consult_id, source, reason, opened_by, opened_at) "
            "VALUES(?1, 'open', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) RETURNING id",
            [&](sql::Stmt& st) {
              st.bind(1, c.kind);
              st.bind(2, c.institution_id);
              st.bind(3, c.patient_id);
              st.bind(4, c.patient_name);
              st.bind(5, c.study_uid);
              if (c.consult_id) {
                st.bind(6, c.consult_id);
              } else {
                st.bind_null(6);
              }
              st.bind(7, c.source);
              st.bind(8, c.reason);
              st.bind(9, c.opened_by);
              st.bind(10, c.opened_at);
            },
            [&](sql::Stmt& st) { id = st.int64(0); });
        !s)
      return s.error();
  }
  auto row = row_by_id(tx.conn(), kCaseColumns, "c", id, read_case);
  if (!row.ok()) return row.error();
  if (Status s = tx.commit(); !s) return s.error();
  return **row;
}

Result<std::optional<CaseRow>> CaseStore::get_case(std::int64_t id) {
  auto rd = db_.read();
  if (!rd.ok()) return rd.error();
  return row_by_id(rd->conn(), kCaseColumns, "c", id, read_case);
}

Result<std::vector<CaseRow>> CaseStore::cases(const std::vector<std::int64_t>& institutions,
                                              const Filter& filter) {
  std::vector<CaseRow> out;
  auto rd = db_.read();
  if (!rd.ok()) return rd.error();
  // Each condition given is one more parameter, numbered in order.
  std::string where = " WHERE c.institution_id IN (" + id_list(institutions) + ")";
  std::vector<const std::string*> params;
  for (const auto& [value, condition] :
       {std::pair{&filter.status, " AND c.status = ?"}, std::pair{&filter.kind, " AND c.kind = ?"},
        std::pair{&filter.from, " AND c.opened_at >= ?"},
        std::pair{&filter.to, " AND c.opened_at < ?"}}) {
    if (value->empty()) continue;
    params.push_back(value);
    where += condition + std::to_string(params.size());
  }
  const int before = static_cast<int>(params.size()) + 1;
  if (filter.before_id > 0) where += " AND c.id < ?" + std::to_string(before);
  const int limit = before + (filter.before_id > 0 ? 1 : 0);
  if (Status s = query(
          rd->conn(),
          std::string("SELECT ") + kCaseColumns + where +
              " ORDER BY c.status DESC, c.id DESC LIMIT ?" + std::to_string(limit),
          [&](sql::Stmt& st) {
            for (std::size_t i = 0; i < params.size(); ++i)
              st.bind(static_cast<int>(i) + 1, *params[i]);
            if (filter.before_id > 0) st.bind(before, filter.before_id);
            st.bind(limit, filter.limit);
          },
          [&](sql::Stmt& st) { out.push_back(read_case(st)); });
      !s)
    return s.error();
  return out;
}

Result<std::vector<CaseRow>> CaseStore::patient_cases(
    std::string_view patient_id, const std::vector<std::int64_t>& institutions) {
  std::vector<CaseRow> out;
  auto rd = db_.read();
  if (!rd.ok()) return rd.error();
  if (Status s = query(
          rd->conn(),
          std::string("SELECT ") + kCaseColumns +
              " WHERE c.patient_id = ?1 AND c.institution_id IN (" + id_list(institutions) +
              ") ORDER BY c.id DESC LIMIT " + std::to_string(kPatientListMost),
          [&](sql::Stmt& st) { st.bind(1, patient_id); },
          [&](sql::Stmt& st) { out.push_back(read_case(st)); });
      !s)
    return s.error();
  return out;
}

Result<std::vector<CaseRecords>> CaseStore::cases_opened(std::string_view from,
                                                         std::string_view to) {
  std::vector<CaseRecords> out;
  std::vector<std::int64_t> ids;
  {
    auto rd = db_.read();
    if (!rd.ok()) return rd.error();
    if (Status s = query(
            rd->conn(),
            std::string("SELECT ") + kCaseColumns +
                " WHERE c.opened_at >= ?1 AND c.opened_at < ?2 ORDER BY c.id",
            [&](sql::Stmt& st) {
              st.bind(1, from);
              st.bind(2, to);
            },
            [&](sql::Stmt& st) {
              ids.push_back(st.int64(0));
              out.push_back({read_case(st), {}});
            });
        !s)
      return s.error();
  }
  auto points = time_points(ids);
  if (!points.ok()) return points.error();
  for (CaseRecords& r : out) {
    if (auto it = points->find(r.c.id); it != points->end()) r.points = std::move(it->second);
  }
  return out;
}

Status CaseStore::record_time_point(std::int64_t case_id, const TimePointRow& tp) {
  return write(db_, [&](sql::Db& db) -> Status {
    int changed = 0;
    Status s = run(
        db,
        "INSERT INTO emergency_time_points(case_id, point, at, recorded_by, recorded_at, note) "
        "SELECT ?1, ?2, ?3, ?4, ?5, ?6 WHERE EXISTS (SELECT 1 FROM emergency_cases WHERE id = ?1)",
        [&](sql::Stmt& st) {
          st.bind(1, case_id);
          st.bind(2, tp.point);
          st.bind(3, tp.at);
          st.bind(4, tp.recorded_by);
          st.bind(5, tp.recorded_at);
          st.bind(6, tp.note);
        },
        &changed);
    if (!s) return s;
    if (changed == 0) return make_error(Errc::not_found, "no such emergency case");
    return Status::Ok();
  });
}

Result<std::vector<TimePointRow>> CaseStore::time_points(std::int64_t case_id) {
  auto all = time_points(std::vector<std::int64_t>{case_id});
  if (!all.ok()) return all.error();
  auto it = all->find(case_id);
  return it != all->end() ? std::move(it->second) : std::vector<TimePointRow>{};
}

Result<std::map<std::int64_t, std::vector<TimePointRow>>> CaseStore::time_points(
    const std::vector<std::int64_t>& case_ids) {
  std::map<std::int64_t, std::vector<TimePointRow>> out;
  if (case_ids.empty()) return out;
  auto rd = db_.read();
  if (!rd.ok()) return rd.error();
  if (Status s = query(
          rd->conn(),
          "SELECT case_id, id, point, at, recorded_by, recorded_at, note FROM "
          "emergency_time_points WHERE case_id IN (" +
              id_list(case_ids) + ") ORDER BY id",
          [](sql::Stmt&) {},
          [&](sql::Stmt& st) {
            out[st.int64(0)].push_back(
                {st.int64(1), st.text(2), st.text(3), st.text(4), st.text(5), st.text(6)});
          });
      !s)
    return s.error();
  return out;
}

Result<std::vector<CaseRow>> CaseStore::open_cases() {
  std::vector<CaseRow> out;
  auto rd = db_.read();
  if (!rd.ok()) return rd.error();
  if (Status s = query(
          rd->conn(),
          std::string("SELECT ") + kCaseColumns + " WHERE c.status = 'open' ORDER BY c.id",
          [](sql::Stmt&) {}, [&](sql::Stmt& st) { out.push_back(read_case(st)); });
      !s)
    return s.error();
  return out;
}

Status CaseStore::close_case(std::int64_t case_id, std::string_view now) {
  return write(db_, [&](sql::Db& db) {
    return run(db,
               "UPDATE emergency_cases SET status = 'closed', closed_at = ?2 "
               "WHERE id = ?1 AND status = 'open'",
               [&](sql::Stmt& st) {
                 st.bind(1, case_id);
                 st.bind(2, now);
               });
  });
}

Result<std::vector<ShiftRow>> CaseStore::shifts(std::int64_t institution_id,
                                                std::string_view from) {
  std::vector<ShiftRow> out;
  auto rd = db_.read();
  if (!rd.ok()) return rd.error();
  if (Status s = query(
          rd->conn(),
          std::string("SELECT ") + kShiftColumns +
              " FROM oncall_shifts s JOIN institutions i ON i.id = s.institution_id "
              "JOIN users u ON u.id = s.user_id WHERE s.institution_id = ?1 AND s.ends_at > ?2 "
              "ORDER BY s.starts_at, s.service, s.role DESC LIMIT 1000",
          [&](sql::Stmt& st) {
            st.bind(1, institution_id);
            st.bind(2, from);
          },
          [&](sql::Stmt& st) { out.push_back(read_shift(st)); });
      !s)
    return s.error();
  return out;
}

Result<ShiftRow> CaseStore::add_shift(const ShiftRow& s) {
  Database::Write tx(db_);
  if (Status st = tx.begin(); !st) return st.error();
  std::int64_t id = 0;
  if (Status st = query(
          tx.conn(),
          "INSERT INTO oncall_shifts(institution_id, service, role, user_id, starts_at, ends_at, "
          "created_by, created_at) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING id",
          [&](sql::Stmt& q) {
            q.bind(1, s.institution_id);
            q.bind(2, s.service);
            q.bind(3, s.role);
            q.bind(4, s.user_id);
            q.bind(5, s.starts_at);
            q.bind(6, s.ends_at);
            q.bind(7, s.created_by);
            q.bind(8, s.created_at);
          },
          [&](sql::Stmt& q) { id = q.int64(0); });
      !st)
    return st.error();
  std::optional<ShiftRow> row;
  if (Status st = query(
          tx.conn(),
          std::string("SELECT ") + kShiftColumns +
              " FROM oncall_shifts s JOIN institutions i ON i.id = s.institution_id "
              "JOIN users u ON u.id = s.user_id WHERE s.id = ?1",
          [&](sql::Stmt& q) { q.bind(1, id); }, [&](sql::Stmt& q) { row = read_shift(q); });
      !st)
    return st.error();
  if (!row) return make_error(Errc::internal, "the new shift cannot be read back");
  if (Status st = tx.commit(); !st) return st.error();
  return *row;
}

Result<bool> CaseStore::remove_shift(std::int64_t id) {
  int changed = 0;
  Status s = write(db_, [&](sql::Db& db) {
    return run(
        db, "DELETE FROM oncall_shifts WHERE id = ?1", [&](sql::Stmt& st) { st.bind(1, id); },
        &changed);
  });
  if (!s) return s.error();
  return changed > 0;
}

Result<std::vector<ShiftRow>> CaseStore::on_call(std::int64_t institution_id,
                                                 std::string_view service, std::string_view at) {
  std::vector<ShiftRow> out;
  auto rd = db_.read();
  if (!rd.ok()) return rd.error();
  if (Status s = query(
          rd->conn(),
          std::string("WITH RECURSIVE chain(id, depth) AS ("
                      "  SELECT CAST(?1 AS BIGINT), 0"
                      "  UNION ALL"
                      "  SELECT i.parent_id, chain.depth + 1 FROM institutions i"
                      "  JOIN chain ON i.id = chain.id"
                      "  WHERE i.parent_id IS NOT NULL AND chain.depth < 8) "
                      "SELECT ") +
              kShiftColumns +
              ", chain.depth FROM oncall_shifts s JOIN chain ON chain.id = s.institution_id "
              "JOIN institutions i ON i.id = s.institution_id JOIN users u ON u.id = s.user_id "
              "WHERE s.service = ?2 AND s.starts_at <= ?3 AND s.ends_at > ?3 AND u.disabled = 0 "
              "ORDER BY chain.depth, s.role DESC, s.starts_at, s.id",
          [&](sql::Stmt& st) {
            st.bind(1, institution_id);
            st.bind(2, service);
            st.bind(3, at);
          },
          [&](sql::Stmt& st) {
            ShiftRow r = read_shift(st);
            r.depth = static_cast<int>(st.int64(11));
            out.push_back(std::move(r));
          });
      !s)
    return s.error();
  return out;
}

Status CaseStore::set_alert_service(std::int64_t case_id, std::string_view service) {
  return write(db_, [&](sql::Db& db) {
    return run(db, "UPDATE emergency_cases SET alert_service = ?2 WHERE id = ?1",
               [&](sql::Stmt& st) {
                 st.bind(1, case_id);
                 st.bind(2, service);
               });
  });
}

Status CaseStore::record_alert(std::int64_t case_id, std::int64_t user_id, std::string_view stage,
                               std::string_view at) {
  return write(db_, [&](sql::Db& db) {
    return run(db,
               "INSERT INTO case_alerts(case_id, user_id, stage, alerted_at) "
               "VALUES(?1, ?2, ?3, ?4) ON CONFLICT(case_id, user_id) DO NOTHING",
               [&](sql::Stmt& st) {
                 st.bind(1, case_id);
                 st.bind(2, user_id);
                 st.bind(3, stage);
                 st.bind(4, at);
               });
  });
}

Result<std::vector<AlertRow>> CaseStore::alerts(std::int64_t case_id) {
  auto all = alerts(std::vector<std::int64_t>{case_id});
  if (!all.ok()) return all.error();
  auto it = all->find(case_id);
  return it != all->end() ? std::move(it->second) : std::vector<AlertRow>{};
}

Result<std::map<std::int64_t, std::vector<AlertRow>>> CaseStore::alerts(
    const std::vector<std::int64_t>& case_ids) {
  std::map<std::int64_t, std::vector<AlertRow>> out;
  if (case_ids.empty()) return out;
  auto rd = db_.read();
  if (!rd.ok()) return rd.error();
  if (Status s = query(
          rd->conn(),
          "SELECT a.case_id, a.user_id, u.username, a.stage, a.alerted_at FROM case_alerts a "
          "JOIN users u ON u.id = a.user_id WHERE a.case_id IN (" +
              id_list(case_ids) + ") ORDER BY a.alerted_at, u.username",
          [](sql::Stmt&) {},
          [&](sql::Stmt& st) {
            out[st.int64(0)].push_back({st.int64(1), st.text(2), st.text(3), st.text(4)});
          });
      !s)
    return s.error();
  return out;
}

Result<bool> CaseStore::acknowledge(std::int64_t case_id, std::string_view username,
                                    std::string_view at) {
  int changed = 0;
  Status s = write(db_, [&](sql::Db& db) {
    return run(
        db,
        "UPDATE emergency_cases SET acknowledged_by = ?2, acknowledged_at = ?3 "
        "WHERE id = ?1 AND acknowledged_at = ''",
        [&](sql::Stmt& st) {
          st.bind(1, case_id);
          st.bind(2, username);
          st.bind(3, at);
        },
        &changed);
  });
  if (!s) return s.error();
  return changed > 0;
}

Status CaseStore::mark_escalated(std::int64_t case_id, std::string_view at) {
  return write(db_, [&](sql::Db& db) {
    return run(db,
               "UPDATE emergency_cases SET escalated_at = ?2 WHERE id = ?1 AND escalated_at = ''",
               [&](sql::Stmt& st) {
                 st.bind(1, case_id);
                 st.bind(2, at);
               });
  });
}

}  // namespace yilian::teleconsult
