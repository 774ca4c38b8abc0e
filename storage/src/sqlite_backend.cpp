// The embedded backend: SQLite.
#include <sqlite3.h>

#include "backend.h"

namespace yilian::storage::sql::backend {
namespace {

// A SQLite result code as a yilian::Error (busy -> unavailable, constraint -> conflict, ...).
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

class SqliteStatement final : public Statement {
 public:
  SqliteStatement(sqlite3* db, sqlite3_stmt* s) : db_(db), s_(s) {}
  ~SqliteStatement() override { sqlite3_finalize(s_); }

  // An empty text is a text (as on PostgreSQL), also when the view has no data pointer:
  // SQLite would bind NULL for that.
  void bind_text(int i, std::string_view text) override {
    sqlite3_bind_text(s_, i, text.data() ? text.data() : "", static_cast<int>(text.size()),
                      SQLITE_TRANSIENT);
  }
  void bind_int64(int i, std::int64_t v) override { sqlite3_bind_int64(s_, i, v); }
  void bind_null(int i) override { sqlite3_bind_null(s_, i); }
  int parameter_index(const char* name) const override {
    return sqlite3_bind_parameter_index(s_, name);
  }
  Result<bool> step() override {
    const int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    Error e = sqlite_error(db_, rc, "executing statement");
    sqlite3_reset(s_);
    return e;
  }
  void reset() override {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  std::string text(int col) const override {
    const unsigned char* p = sqlite3_column_text(s_, col);
    if (!p) return {};
    return std::string(reinterpret_cast<const char*>(p),
                       static_cast<std::size_t>(sqlite3_column_bytes(s_, col)));
  }
  std::int64_t int64(int col) const override { return sqlite3_column_int64(s_, col); }
  bool is_null(int col) const override { return sqlite3_column_type(s_, col) == SQLITE_NULL; }

 private:
  sqlite3* db_;
  sqlite3_stmt* s_;
};

class SqliteConnection final : public Connection {
 public:
  explicit SqliteConnection(sqlite3* db) : db_(db) {}
  ~SqliteConnection() override { sqlite3_close_v2(db_); }

  Dialect dialect() const override { return Dialect::sqlite; }
  Status exec(const char* sql) override {
    char* err = nullptr;
    const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
    if (rc != SQLITE_OK) {
      std::string msg = err ? err : sqlite3_errstr(rc);
      sqlite3_free(err);
      Error e = sqlite_error(nullptr, rc, "executing SQL");
      e.message = "executing SQL: " + msg;
      return e;
    }
    return Status::Ok();
  }
  int changes() const override { return sqlite3_changes(db_); }
  Result<std::unique_ptr<Statement>> prepare(const char* sql, bool reused) override {
    sqlite3_stmt* s = nullptr;
    const int rc =
        sqlite3_prepare_v3(db_, sql, -1, reused ? SQLITE_PREPARE_PERSISTENT : 0, &s, nullptr);
    if (rc != SQLITE_OK) return sqlite_error(db_, rc, std::string("preparing ") + sql);
    return std::unique_ptr<Statement>(std::make_unique<SqliteStatement>(db_, s));
  }

 private:
  sqlite3* db_;
};

}  // namespace

Result<std::unique_ptr<Connection>> open_sqlite(const std::string& path, bool read_only) {
  int flags = read_only ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  flags |= SQLITE_OPEN_NOMUTEX;
  if (path == ":memory:" || path.rfind("file:", 0) == 0) flags |= SQLITE_OPEN_URI;
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) {
    Error e = sqlite_error(db, rc, "opening index " + path);
    sqlite3_close_v2(db);
    return e;
  }
  sqlite3_busy_timeout(db, 10000);
  sqlite3_extended_result_codes(db, 1);
  return std::unique_ptr<Connection>(std::make_unique<SqliteConnection>(db));
}

}  // namespace yilian::storage::sql::backend

namespace yilian::storage {

Status snapshot_sqlite(const std::string& from, const std::string& to) {
  sqlite3* src = nullptr;
  sqlite3* dst = nullptr;
  auto close = [&] {
    if (dst) sqlite3_close(dst);
    if (src) sqlite3_close(src);
  };
  int rc = sqlite3_open_v2(from.c_str(), &src, SQLITE_OPEN_READONLY, nullptr);
  if (rc != SQLITE_OK) {
    Error e = sql::backend::sqlite_error(src, rc, "opening " + from);
    close();
    return rc == SQLITE_CANTOPEN ? make_error(Errc::not_found, e.message) : e;
  }
  sqlite3_busy_timeout(src, 10000);
  rc = sqlite3_open_v2(to.c_str(), &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  if (rc != SQLITE_OK) {
    Error e = sql::backend::sqlite_error(dst, rc, "creating " + to);
    close();
    return e;
  }
  sqlite3_exec(dst, "PRAGMA synchronous=FULL", nullptr, nullptr, nullptr);
  sqlite3_backup* b = sqlite3_backup_init(dst, "main", src, "main");
  if (!b) {
    Error e = sql::backend::sqlite_error(dst, sqlite3_errcode(dst), "backing up " + from);
    close();
    return e;
  }
  // All pages in one step: one read transaction, so one consistent view of the source.
  do {
    rc = sqlite3_backup_step(b, -1);
    if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) sqlite3_sleep(50);
  } while (rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED);
  sqlite3_backup_finish(b);
  if (rc != SQLITE_DONE) {
    Error e = sql::backend::sqlite_error(dst, rc, "backing up " + from);
    close();
    return e;
  }
  close();
  return Status::Ok();
}

}  // namespace yilian::storage
