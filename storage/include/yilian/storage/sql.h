// The statement layer every store writes its SQL against: a connection, prepared statements
// with positional and named parameters, and list literals. Two backends: SQLite (embedded, the
// default) and PostgreSQL (several nodes). Statements use SQLite's placeholder styles (?, ?N,
// :name) on both; each backend's error codes become yilian::Error inside storage/ and no store
// sees a backend type.
// Stores do not open connections or transactions themselves: storage::Database (database.h)
// hands out connections and runs the one transaction and group-commit scheme.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "yilian/common/result.h"

namespace yilian::storage::sql {

class Stmt;
namespace backend {
class Connection;
class Statement;
}  // namespace backend

enum class Dialect { sqlite, postgres };

class Db {
 public:
  Db();
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  // A SQLite database file (or a file: URI).
  Status open(const std::string& path, bool read_only);
  // A PostgreSQL database (a libpq connection URI, postgresql://...).
  Status open_postgres(const std::string& url);
  Dialect dialect() const;
  // Runs one or more statements that return no rows.
  Status exec(const char* sql);
  // Rows changed by the last statement run on this connection.
  int changes() const;
  // True inside a transaction a failed statement has aborted (PostgreSQL only).
  bool transaction_failed() const;
  // Runs a command without rows (BEGIN, SAVEPOINT, RELEASE) now (SQLite) or with the next
  // statement in one round trip (PostgreSQL: its failure shows as that statement's).
  Status defer(const char* sql);
  // A session setting (SET ...), made again whenever a lost connection is replaced.
  Status session(const char* sql);
  // A prepared statement for `sql`, prepared once per connection and reset (bindings
  // cleared) on every call. The caller holds whatever serialises use of this connection.
  // At most kMaxCached texts are kept; beyond them a statement is prepared for this call
  // (valid until kRecentOneShot later such calls).
  Result<Stmt*> cached(const std::string& sql);
  static constexpr std::size_t kMaxCached = 512;
  static constexpr std::size_t kRecentOneShot = 16;

 private:
  friend class Stmt;
  std::unique_ptr<backend::Connection> conn_;
  std::unordered_map<std::string, std::unique_ptr<Stmt>> cache_;
  std::deque<std::unique_ptr<Stmt>> one_shot_;
};

class Stmt {
 public:
  Stmt();
  ~Stmt();
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  Stmt(Stmt&& o) noexcept;
  Stmt& operator=(Stmt&& o) noexcept;

  Status prepare(Db& db, const char* sql);

  // Binding, 1-based. Empty optional or empty text binds NULL only where noted.
  void bind(int i, std::string_view text);
  void bind(int i, std::int64_t v);
  void bind(int i, const std::optional<std::int64_t>& v);
  void bind_null(int i);
  // Named parameters (":name"); a name the statement does not use is ignored.
  void bind_named(const char* name, std::string_view text);
  void bind_named(const char* name, std::int64_t v);

  // Returns true when a row is available, false when done.
  Result<bool> step();
  // Steps a statement expected to produce no row.
  Status run();
  void reset();

  std::string text(int col) const;
  std::int64_t int64(int col) const;
  std::optional<std::int64_t> opt_int64(int col) const;
  bool is_null(int col) const;

 private:
  friend class Db;
  std::unique_ptr<backend::Statement> s_;
};

// Runs `q` (prepared once per connection, see Db::cached): `bind` fills the parameters,
// `row` sees every result row. The statement is reset afterwards.
template <typename Bind, typename Row>
Status query(Db& db, const std::string& q, Bind&& bind, Row&& row) {
  auto st = db.cached(q);
  if (!st.ok()) return st.error();
  bind(**st);
  while (true) {
    auto r = (*st)->step();
    if (!r.ok()) {
      (*st)->reset();
      return r.error();
    }
    if (!*r) {
      (*st)->reset();
      return Status::Ok();
    }
    row(**st);
  }
}

// SQL list literals for IN (...): integer ids formatted as numbers, words quoted as SQL string
// literals (quotes doubled). An empty list becomes NULL, which matches nothing.
std::string id_list(std::span<const std::int64_t> ids);
std::string text_list(const std::vector<std::string>& items);

// Runs a statement that returns no rows; `changed` receives the number of rows it changed.
Status run(Db& db, const std::string& q, const std::function<void(Stmt&)>& bind,
           int* changed = nullptr);

}  // namespace yilian::storage::sql
