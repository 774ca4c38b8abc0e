#include "yilian/teleconsult/case_store.h"

#include "store_util.h"

#include <chrono>
#include <limits>

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
  coalesce(c.closed_at, '')
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
  return c;
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
                                              bool open_only) {
  std::vector<CaseRow> out;
  auto rd = db_.read();
  if (!rd.ok()) return rd.error();
  if (Status s = query(
          rd->conn(),
          std::string("SELECT ") + kCaseColumns + " WHERE c.institution_id IN (" +
              id_list(institutions) + ")" + (open_only ? " AND c.status = 'open'" : "") +
              " ORDER BY c.status DESC, c.id DESC LIMIT 500",
          [](sql::Stmt&) {}, [&](sql::Stmt& st) { out.push_back(read_case(st)); });
      !s)
    return s.error();
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
  std::vector<TimePointRow> out;
  auto rd = db_.read();
  if (!rd.ok()) return rd.error();
  if (Status s = query(
          rd->conn(),
          "SELECT id, point, at, recorded_by, recorded_at, note FROM emergency_time_points "
          "WHERE case_id = ?1 ORDER BY id",
          [&](sql::Stmt& st) { st.bind(1, case_id); },
          [&](sql::Stmt& st) {
            out.push_back(
                {st.int64(0), st.text(1), st.text(2), st.text(3), st.text(4), st.text(5)});
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

}  // namespace yilian::teleconsult
