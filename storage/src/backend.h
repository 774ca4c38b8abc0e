// The two database backends behind sql.h (private to storage): a connection prepares
// statements and runs scripts; a statement binds 1-based parameters, steps through its rows
// and reads columns. Each backend translates its own error codes to yilian::Error, here and
// nowhere else.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "yilian/common/result.h"
#include "yilian/storage/sql.h"

namespace yilian::storage::sql::backend {

class Statement {
 public:
  virtual ~Statement() = default;
  virtual void bind_text(int i, std::string_view text) = 0;
  virtual void bind_int64(int i, std::int64_t v) = 0;
  virtual void bind_null(int i) = 0;
  // The index of a named parameter (":name"); 0 when the statement does not use it.
  virtual int parameter_index(const char* name) const = 0;
  virtual Result<bool> step() = 0;
  // Ready to run again; bindings cleared.
  virtual void reset() = 0;
  virtual std::string text(int col) const = 0;
  virtual std::int64_t int64(int col) const = 0;
  virtual bool is_null(int col) const = 0;
};

class Connection {
 public:
  virtual ~Connection() = default;
  virtual Dialect dialect() const = 0;
  // Runs one or more statements that return no rows.
  virtual Status exec(const char* sql) = 0;
  virtual int changes() const = 0;
  // `reused`: the statement will run many times (Db::cached), so the server may keep it
  // prepared; otherwise it runs once or a few times and leaves nothing behind on the server.
  virtual Result<std::unique_ptr<Statement>> prepare(const char* sql, bool reused) = 0;
  // True inside a transaction a failed statement has aborted (PostgreSQL: only ROLLBACK is
  // accepted, and COMMIT would roll back without an error); SQLite has no such state.
  virtual bool transaction_failed() const { return false; }
  // A command without rows whose outcome can wait (BEGIN, SAVEPOINT, RELEASE): PostgreSQL
  // sends it with the next statement or script, in the same round trip; SQLite runs it now.
  virtual Status defer(const char* sql) { return exec(sql); }
  // A session setting (SET ...): run now and again on every new connection that replaces this
  // one after a loss (PostgreSQL).
  virtual Status session(const char* sql) { return exec(sql); }
};

// PostgreSQL's $N for the SQLite placeholder styles (?, ?N, :name), numbered as SQLite
// numbers them; `names` receives each name's number, `count` the highest number.
std::string translate_placeholders(std::string_view sql, std::map<std::string, int>& names,
                                   int& count);
// The SQLite functions and operators the stores use, in PostgreSQL's words (the rules are
// listed in postgres_backend.cpp); applied after translate_placeholders.
std::string postgres_statement(std::string_view sql);

// The PostgreSQL form of a schema step written for SQLite (postgres_ddl.cpp lists the rules:
// row ids, 64-bit integers, WITHOUT ROWID, NOCASE indexes, strftime defaults, refusing
// triggers).
std::string postgres_ddl(std::string_view sqlite);

Result<std::unique_ptr<Connection>> open_sqlite(const std::string& path, bool read_only);
Result<std::unique_ptr<Connection>> open_postgres(const std::string& url);

}  // namespace yilian::storage::sql::backend
