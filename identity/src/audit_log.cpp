#include "yilian/identity/audit_log.h"

#include <string>

#include "yilian/storage/sql.h"

namespace yilian::identity {

namespace sql = storage::sql;
using storage::Database;
using storage::SchemaStep;
using storage::write;
namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS audit(
  seq               INTEGER PRIMARY KEY,
  at                TEXT NOT NULL,
  actor             TEXT NOT NULL,
  actor_institution TEXT NOT NULL,
  address           TEXT NOT NULL,
  action            TEXT NOT NULL,
  object_type       TEXT NOT NULL,
  object_id         TEXT NOT NULL,
  outcome           TEXT NOT NULL,
  detail            TEXT NOT NULL,
  prev_hash         TEXT NOT NULL,
  hash              TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_at ON audit(at);
CREATE INDEX IF NOT EXISTS audit_actor ON audit(actor, seq);
CREATE INDEX IF NOT EXISTS audit_object ON audit(object_id, seq);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
  BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
  BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
)sql";

constexpr SchemaStep kAuditSchema[] = {
    {1, "identity", "the audit table, append-only", kSchema},
};

constexpr const char* kColumns =
    "seq, at, actor, actor_institution, address, action, object_type, object_id, outcome, "
    "detail, prev_hash, hash";

AuditRecord read_record(const sql::Stmt& st) {
  return AuditRecord{st.int64(0), st.text(1), st.text(2), st.text(3), st.text(4),  st.text(5),
                     st.text(6),  st.text(7), st.text(8), st.text(9), st.text(10), st.text(11)};
}

}  // namespace

AuditLog::AuditLog(Database& db) : db_(db) {}
AuditLog::~AuditLog() = default;

std::span<const SchemaStep> AuditLog::schema() { return kAuditSchema; }

Result<std::optional<AuditRecord>> AuditLog::last() {
  auto rd = db_.read();
  if (!rd.ok()) return rd.error();
  sql::Db& db = rd->conn();
  sql::Stmt st;
  std::string q = std::string("SELECT ") + kColumns + " FROM audit ORDER BY seq DESC LIMIT 1";
  if (Status s = st.prepare(db, q.c_str()); !s) return s.error();
  auto row = st.step();
  if (!row.ok()) return row.error();
  if (!*row) return std::optional<AuditRecord>{};
  return std::optional<AuditRecord>(read_record(st));
}

Status AuditLog::append(std::span<const AuditRecord> records) {
  Database::Write tx(db_);
  if (Status s = tx.begin(); !s) return s;
  sql::Stmt st;
  if (Status s = st.prepare(tx.conn(),
                            "INSERT INTO audit(seq, at, actor, actor_institution, address, action, "
                            "object_type, object_id, outcome, detail, prev_hash, hash) "
                            "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)");
      !s)
    return s;
  for (const AuditRecord& r : records) {
    st.reset();
    st.bind(1, r.seq);
    st.bind(2, r.at);
    st.bind(3, r.actor);
    st.bind(4, r.actor_institution);
    st.bind(5, r.address);
    st.bind(6, r.action);
    st.bind(7, r.object_type);
    st.bind(8, r.object_id);
    st.bind(9, r.outcome);
    st.bind(10, r.detail);
    st.bind(11, r.prev_hash);
    st.bind(12, r.hash);
    if (Status s = st.run(); !s) return s;
  }
  return tx.commit();
}

Result<std::vector<AuditRecord>> AuditLog::find(const AuditFilter& f) {
  auto rd = db_.read();
  if (!rd.ok()) return rd.error();
  sql::Db& db = rd->conn();
  std::string q = std::string("SELECT ") + kColumns +
                  " FROM audit WHERE (?1 = '' OR actor = ?1) "
                  "AND (?2 = '' OR action = ?2 OR action LIKE ?9 ESCAPE '\\') "
                  "AND (?3 = '' OR object_id = ?3) AND (?4 = '' OR at >= ?4) "
                  "AND (?5 = '' OR at < ?5) AND (?6 = 0 OR seq < ?6) "
                  "AND (?8 = '' OR actor_institution = ?8) "
                  "ORDER BY seq DESC LIMIT ?7";
  sql::Stmt st;
  if (Status s = st.prepare(db, q.c_str()); !s) return s.error();
  st.bind(1, f.actor);
  st.bind(2, f.action);
  st.bind(3, f.object_id);
  st.bind(4, f.from);
  st.bind(5, f.to);
  st.bind(6, f.before_seq);
  st.bind(7, f.limit);
  st.bind(8, f.institution);
  // "user." -> every action that begins with it (LIKE's wildcards in it escaped).
  std::string prefix;
  if (!f.action.empty() && f.action.back() == '.') {
    for (char c : f.action) {
      if (c == '%' || c == '_' || c == '\\') prefix += '\\';
      prefix += c;
    }
    prefix += '%';
  }
  st.bind(9, prefix);
  std::vector<AuditRecord> out;
  while (true) {
    auto row = st.step();
    if (!row.ok()) return row.error();
    if (!*row) break;
    out.push_back(read_record(st));
  }
  return out;
}

Status AuditLog::scan(const std::function<bool(const AuditRecord&)>& visit) {
  auto rd = db_.read();
  if (!rd.ok()) return rd.error();
  sql::Db& db = rd->conn();
  std::string q = std::string("SELECT ") + kColumns + " FROM audit ORDER BY seq";
  sql::Stmt st;
  if (Status s = st.prepare(db, q.c_str()); !s) return s;
  while (true) {
    auto row = st.step();
    if (!row.ok()) return row.error();
    if (!*row || !visit(read_record(st))) return Status::Ok();
  }
}

}  // namespace yilian::identity
