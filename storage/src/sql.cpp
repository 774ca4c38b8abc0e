#include "yilian/storage/sql.h"

#include <sqlite3.h>

#include "sql_error.h"

namespace yilian::storage::sql {

Error sqlite_error(sqlite3* db, int rc, std::string_view what) {
  std::string msg(what);
  msg += ": ";
  msg += db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  Errc code = Errc::internal;
  switch (rc & 0xff) {
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
      code = Errc::io;
      break;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      code = Errc::unavailable;
      break;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      code = Errc::corrupt;
      break;
    case SQLITE_CONSTRAINT:
      code = Errc::conflict;
      break;
    default:
      break;
  }
  return make_error(code, std::move(msg));
}

Db::~Db() {
  cache_.clear();  // statements are finalized before the connection closes
  if (db_) sqlite3_close_v2(db_);
}

Result<Stmt*> Db::cached(const std::string& sql) {
  auto it = cache_.find(sql);
  if (it != cache_.end()) {
    it->second->reset();
    return it->second.get();
  }
  auto st = std::make_unique<Stmt>();
  if (Status s = st->prepare(*this, sql.c_str()); !s) return s.error();
  Stmt* raw = st.get();
  cache_.emplace(sql, std::move(st));
  return raw;
}

Status Db::open(const std::string& path, bool read_only) {
  int flags = read_only ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  flags |= SQLITE_OPEN_NOMUTEX;
  if (path == ":memory:" || path.rfind("file:", 0) == 0) flags |= SQLITE_OPEN_URI;
  int rc = sqlite3_open_v2(path.c_str(), &db_, flags, nullptr);
  if (rc != SQLITE_OK) {
    Error e = sqlite_error(db_, rc, "opening index " + path);
    sqlite3_close_v2(db_);
    db_ = nullptr;
    return e;
  }
  sqlite3_busy_timeout(db_, 10000);
  sqlite3_extended_result_codes(db_, 1);
  return Status::Ok();
}

int Db::changes() const { return sqlite3_changes(db_); }

Status Db::exec(const char* sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    Error e = sqlite_error(nullptr, rc, "executing SQL");
    e.message = "executing SQL: " + msg;
    return e;
  }
  return Status::Ok();
}

Stmt::~Stmt() {
  if (s_) sqlite3_finalize(s_);
}

Stmt& Stmt::operator=(Stmt&& o) noexcept {
  if (this != &o) {
    if (s_) sqlite3_finalize(s_);
    db_ = o.db_;
    s_ = o.s_;
    o.s_ = nullptr;
  }
  return *this;
}

Status Stmt::prepare(Db& conn, const char* sql) {
  sqlite3* db = conn.native();
  db_ = db;
  if (s_) sqlite3_finalize(s_);
  s_ = nullptr;
  int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s_, nullptr);
  if (rc != SQLITE_OK) return sqlite_error(db, rc, std::string("preparing ") + sql);
  return Status::Ok();
}

void Stmt::bind(int i, std::string_view text) {
  sqlite3_bind_text(s_, i, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
}
void Stmt::bind(int i, std::int64_t v) { sqlite3_bind_int64(s_, i, v); }
void Stmt::bind_named(const char* name, std::string_view text) {
  bind(sqlite3_bind_parameter_index(s_, name), text);
}
void Stmt::bind_named(const char* name, std::int64_t v) {
  bind(sqlite3_bind_parameter_index(s_, name), v);
}
void Stmt::bind(int i, const std::optional<std::int64_t>& v) {
  if (v) {
    sqlite3_bind_int64(s_, i, *v);
  } else {
    sqlite3_bind_null(s_, i);
  }
}
void Stmt::bind_null(int i) { sqlite3_bind_null(s_, i); }

Result<bool> Stmt::step() {
  int rc = sqlite3_step(s_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  Error e = sqlite_error(db_, rc, "executing statement");
  sqlite3_reset(s_);
  return e;
}

Status Stmt::run() {
  auto r = step();
  sqlite3_reset(s_);
  sqlite3_clear_bindings(s_);
  if (!r.ok()) return r.error();
  return Status::Ok();
}

void Stmt::reset() {
  sqlite3_reset(s_);
  sqlite3_clear_bindings(s_);
}

std::string Stmt::text(int col) const {
  const unsigned char* p = sqlite3_column_text(s_, col);
  if (!p) return {};
  return std::string(reinterpret_cast<const char*>(p),
                     static_cast<std::size_t>(sqlite3_column_bytes(s_, col)));
}
std::int64_t Stmt::int64(int col) const { return sqlite3_column_int64(s_, col); }
std::optional<std::int64_t> Stmt::opt_int64(int col) const {
  if (sqlite3_column_type(s_, col) == SQLITE_NULL) return std::nullopt;
  return sqlite3_column_int64(s_, col);
}

std::string id_list(std::span<const std::int64_t> ids) {
  if (ids.empty()) return "NULL";
  std::string out;
  for (std::int64_t id : ids) {
    if (!out.empty()) out += ',';
    out += std::to_string(id);
  }
  return out;
}

std::string text_list(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& s : items) {
    if (!out.empty()) out += ',';
    out += '\'';
    for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
    out += '\'';
  }
  return out.empty() ? "NULL" : out;
}

Status run(Db& db, const std::string& q, const std::function<void(Stmt&)>& bind, int* changed) {
  auto st = db.cached(q);
  if (!st.ok()) return st.error();
  bind(**st);
  if (Status s = (*st)->run(); !s) return s;
  if (changed) *changed = db.changes();
  return Status::Ok();
}

}  // namespace yilian::storage::sql
