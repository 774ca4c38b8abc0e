// The database seam: connections, the one transaction and group-commit scheme every store
// uses, background checkpoints, and the schema migration runner. Stores (the DICOM index,
// accounts, the reading queue, consults, ...) live in their domain modules and reach the
// database only through this class and sql.h, so a second backend is added here.
//
// Writes on SQLite: one write connection. Every write is one operation (Write) of the open
// batch: it runs inside a savepoint of the batch's transaction, statements strictly one
// operation at a time, and the last operation of a batch to finish commits it (one device
// flush for the whole batch) while new operations gather for the next batch. Write::commit()
// returns once the batch is durable (or, for an operation that need not survive a power cut,
// as soon as it is in the batch).
//
// Writes on PostgreSQL: a pool of write connections (max_writers); every operation is its own
// transaction on a connection of its own, so operations run side by side (as they do across
// nodes) and PostgreSQL's group commit shares WAL flushes between them. Row locks, unique
// constraints and single-statement updates keep them consistent; a store must not rely on
// its operations running one at a time.
//
// On both, a Write opened on a thread that already holds one joins it as a nested savepoint
// and becomes durable with it.
//
// Reads: a small pool of read-only connections that see committed data only, so reads never
// wait for a commit.
//
// Backends: a SQLite file (the embedded default; WAL, one writer process) or a PostgreSQL
// database named by a postgresql:// URL, which several hub nodes share. The batching above is
// per process on both.
#pragma once

#include <atomic>
#include <climits>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "yilian/common/result.h"
#include "yilian/storage/sql.h"

namespace yilian::storage {

// One step of the schema history. The history is one sequence (PRAGMA user_version on
// SQLite, a row of yilian_schema on PostgreSQL) whose steps are owned by the module whose
// tables they create or change; never edit a released step: append a new one with the next
// number.
struct SchemaStep {
  int version;          // schema version after this step
  const char* owner;    // the module that owns the tables ("pacs", "identity", ...)
  const char* summary;  // one line, for the log
  const char* sql;      // SQLite
  // The same step for PostgreSQL, where the rules that derive it from `sql` do not suffice
  // (storage/src/postgres_ddl.cpp); null: derived.
  const char* postgres_sql = nullptr;
};

struct DatabaseOptions {
  // true: a commit is on the disk when it returns (synchronous=FULL); false: it survives a
  // crash of the process but not of the machine (synchronous=NORMAL, WAL).
  bool durable = true;
  // The write-ahead log is copied back into the database once a second by a thread of its
  // own (PASSIVE: never blocking a writer) instead of by whichever commit crosses the
  // threshold (that copy and its flush took a live-chat batch 50-100 ms).
  bool background_checkpoints = true;
  // A busy hub always has a reader somewhere, so the log may never start over from its
  // beginning and keeps growing (a 30-minute soak took it to 121 MiB). Above this size the
  // checkpointer waits briefly (0.25 s at most, writers held meanwhile) for the readers of
  // older snapshots to finish, copies everything back and truncates the log; when a reader
  // does not finish in time it tries again a second later. 0: never.
  std::uint64_t wal_limit_bytes = 64u << 20;
  std::size_t max_readers = 8;
  // PostgreSQL: write connections open at once (operations beyond wait for one).
  std::size_t max_writers = 8;
  // The name of this database's schema history on PostgreSQL, where several histories share
  // one database (the consortium's and the audit trail's).
  std::string history = "index";
};

// True for a postgresql:// (or postgres://) URL rather than a file path.
bool is_postgres_url(std::string_view location);

// A consistent copy of the SQLite database `from` (which a running hub may be writing: the
// copy is one read transaction's view, through SQLite's online backup) into the new file `to`,
// flushed to disk. Errors: io, not_found (no such database).
Status snapshot_sqlite(const std::string& from, const std::string& to);

class Database {
 public:
  // Opens (creating if needed) the SQLite database at `location`; ":memory:" gives a private
  // in-memory database shared by this object's connections (tests). A postgresql:// URL opens
  // that PostgreSQL database instead.
  static Result<std::unique_ptr<Database>> open(const std::string& location,
                                                DatabaseOptions options = {});
  sql::Dialect dialect() const { return dialect_; }
  // Where it is: the SQLite file (or in-memory URI) or the PostgreSQL URL.
  const std::string& location() const { return uri_; }
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Applies every step above the database's version, in order, each in its own transaction,
  // up to `target`; returns the resulting version. `steps` must be numbered 1..N without
  // gaps. A database newer than `steps` is refused (Errc::corrupt).
  Result<int> migrate(std::span<const SchemaStep> steps, int target = INT_MAX);
  int schema_version();

  // One operation of the current write batch (see above). Use: begin(), statements on
  // conn(), commit(); leaving without commit() rolls this operation back alone.
  class Write {
   public:
    explicit Write(Database& db) : db_(db) {}
    ~Write();
    Write(const Write&) = delete;
    Write& operator=(const Write&) = delete;
    Status begin();
    sql::Db& conn() { return *conn_; }
    // Keeps the operation in the batch and returns once the batch is durable; durable =
    // false returns as soon as the operation is in the batch, visible to every later one.
    Status commit(bool durable = true);

   private:
    Status finish(bool wait);
    Status begin_pooled();
    Status commit_pooled(bool durable);
    void release_pooled(bool broken);
    void leave_nested();
    Database& db_;
    sql::Db* conn_ = nullptr;
    std::unique_ptr<sql::Db> pooled_;  // PostgreSQL: this operation's connection (outermost)
    std::uint64_t batch_ = 0;
    std::string savepoint_;
    bool begun_ = false, done_ = false, nested_ = false;
  };

  // A read connection, held until destroyed.
  class Read {
   public:
    ~Read();
    Read(Read&& o) noexcept : db_(o.db_), conn_(std::move(o.conn_)) {}
    Read(const Read&) = delete;
    Read& operator=(const Read&) = delete;
    sql::Db& conn() { return *conn_; }

   private:
    friend class Database;
    Read(Database& db, std::unique_ptr<sql::Db> conn) : db_(&db), conn_(std::move(conn)) {}
    Database* db_;
    std::unique_ptr<sql::Db> conn_;
  };
  Result<Read> read();

  // Counters for tests and the status page.
  struct Counters {
    std::uint64_t batches = 0, operations = 0;
  };
  Counters counters();

 private:
  Database() = default;
  Status open_impl(const std::string& location, const DatabaseOptions& options);
  Result<std::unique_ptr<sql::Db>> connect(bool reader);
  Result<int> migrate_postgres(std::span<const SchemaStep> steps, int target);
  void checkpoints();
  Result<int> user_version();

  std::string uri_;
  DatabaseOptions options_;
  sql::Dialect dialect_ = sql::Dialect::sqlite;

  // Group commit state, guarded by batch_mu_.
  std::mutex batch_mu_;
  std::condition_variable batch_cv_;
  bool committing_ = false;
  int in_batch_ = 0;    // operations registered in the open batch and not yet finished
  int batch_size_ = 0;  // operations registered in the open batch
  std::uint64_t batch_id_ = 1, committed_id_ = 0;
  Status last_commit_;  // outcome of batch committed_id_
  Counters counters_;
  // One operation's statements at a time on writer_; the holder's thread, for nesting.
  std::mutex conn_mu_;
  std::atomic<std::thread::id> conn_owner_{};  // set while holding conn_mu_
  int nesting_ = 0;                            // nested Writes of the owner (conn_mu_)
  bool open_ = false;                          // BEGIN issued for the current batch (conn_mu_)
  std::unique_ptr<sql::Db> writer_;

  // PostgreSQL write connections (pool_mu_): idle ones, how many exist, and which thread
  // holds which (for nesting).
  struct Held {
    std::thread::id thread;
    sql::Db* conn;
    int nesting;
  };
  std::mutex pool_mu_;
  std::condition_variable pool_cv_;
  std::vector<std::unique_ptr<sql::Db>> idle_writers_;
  std::size_t writers_open_ = 0;
  std::vector<Held> held_;

  std::mutex readers_mu_;
  std::vector<std::unique_ptr<sql::Db>> idle_readers_;

  std::unique_ptr<sql::Db> checkpoint_conn_;
  std::mutex checkpoint_mu_;
  std::condition_variable checkpoint_cv_;
  bool stop_checkpoints_ = false;  // guarded by checkpoint_mu_
  std::thread checkpointer_;
};

// Runs `f(sql::Db&)` (returning Status or Result<T>) as one write operation: committed,
// durable when `durable`, if it succeeds; rolled back alone if it fails.
template <typename F>
auto write(Database& db, F&& f, bool durable = true) -> decltype(f(std::declval<sql::Db&>())) {
  Database::Write w(db);
  if (Status s = w.begin(); !s) return s.error();
  auto r = f(w.conn());
  if (!r.ok()) return r;
  if (Status s = w.commit(durable); !s) return s.error();
  return r;
}

// Runs `f(sql::Db&)` on a read connection.
template <typename F>
auto read(Database& db, F&& f) -> decltype(f(std::declval<sql::Db&>())) {
  auto r = db.read();
  if (!r.ok()) return r.error();
  return f(r->conn());
}

}  // namespace yilian::storage
