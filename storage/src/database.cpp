#include "yilian/storage/database.h"

#include <filesystem>

#include "backend.h"

#include <chrono>
#include <cstdint>
#include <string>

namespace yilian::storage {
namespace {

// A batch stops gathering at this many operations (bounded latency for the first one).
constexpr int kMaxBatch = 512;

// Undoes an operation's statements back to its savepoint and drops the savepoint.
void undo_to(sql::Db& conn, const std::string& savepoint) {
  (void)conn.exec(("ROLLBACK TO " + savepoint + "; RELEASE " + savepoint).c_str());
}

Error committed_after_failure() {
  return make_error(Errc::internal, "write operation committed after a failed statement");
}

}  // namespace

bool is_postgres_url(std::string_view location) {
  return location.rfind("postgresql://", 0) == 0 || location.rfind("postgres://", 0) == 0;
}

Result<std::unique_ptr<Database>> Database::open(const std::string& location,
                                                 DatabaseOptions options) {
  std::unique_ptr<Database> db(new Database());
  if (Status s = db->open_impl(location, options); !s) return s.error();
  return db;
}

Status Database::open_impl(const std::string& location, const DatabaseOptions& options) {
  options_ = options;
  uri_ = location;
  if (is_postgres_url(location)) {
    dialect_ = sql::Dialect::postgres;
    auto w = connect(false);
    if (!w.ok()) return w.error();
    writer_ = std::move(*w);
    return Status::Ok();  // PostgreSQL checkpoints by itself
  }
  const bool memory = uri_ == ":memory:";
  if (memory) {
    // Every connection of this object must see the same in-memory database.
    uri_ = "file:yilian-mem-" + std::to_string(reinterpret_cast<std::uintptr_t>(this)) +
           "?mode=memory&cache=shared";
  }
  writer_ = std::make_unique<sql::Db>();
  if (Status s = writer_->open(uri_, false); !s) return s;
  if (!memory) {
    if (Status s = writer_->exec("PRAGMA journal_mode=WAL"); !s) return s;
  }
  std::string pragmas = std::string("PRAGMA foreign_keys=ON; PRAGMA synchronous=") +
                        (options.durable ? "FULL;" : "NORMAL;");
  if (Status s = writer_->exec(pragmas.c_str()); !s) return s;
  if (options.background_checkpoints && !memory) {
    if (Status s = writer_->exec("PRAGMA wal_autocheckpoint=0"); !s) return s;
    checkpoint_conn_ = std::make_unique<sql::Db>();
    if (Status s = checkpoint_conn_->open(uri_, false); !s) return s;
    checkpointer_ = std::thread([this] { checkpoints(); });
  }
  return Status::Ok();
}

// A new connection: the writer (durability as configured) or a reader (sees committed data,
// refuses writes).
Result<std::unique_ptr<sql::Db>> Database::connect(bool reader) {
  auto c = std::make_unique<sql::Db>();
  if (dialect_ == sql::Dialect::postgres) {
    if (Status s = c->open_postgres(uri_); !s) return s.error();
    const char* setup = reader             ? "SET default_transaction_read_only = on"
                        : options_.durable ? "SET synchronous_commit = on"
                                           : "SET synchronous_commit = off";
    if (Status s = c->session(setup); !s) return s.error();
    return c;
  }
  if (Status s = c->open(uri_, false); !s) return s.error();
  if (reader) {
    if (Status s = c->exec("PRAGMA query_only=ON"); !s) return s.error();
  }
  return c;
}

Database::~Database() {
  {
    std::lock_guard lock(checkpoint_mu_);
    stop_checkpoints_ = true;
  }
  checkpoint_cv_.notify_all();
  if (checkpointer_.joinable()) checkpointer_.join();
}

void Database::checkpoints() {
  std::unique_lock lock(checkpoint_mu_);
  while (!checkpoint_cv_.wait_for(lock, std::chrono::seconds(1),
                                  [this] { return stop_checkpoints_; })) {
    lock.unlock();
    (void)checkpoint_conn_->exec("PRAGMA wal_checkpoint(PASSIVE)");
    if (options_.wal_limit_bytes > 0) {
      std::error_code ec;
      const auto wal = std::filesystem::file_size(uri_ + "-wal", ec);
      if (!ec && wal > options_.wal_limit_bytes) {
        (void)checkpoint_conn_->exec(
            "PRAGMA busy_timeout=250; PRAGMA wal_checkpoint(TRUNCATE); PRAGMA busy_timeout=10000");
      }
    }
    lock.lock();
  }
}

Result<Database::Read> Database::read() {
  {
    std::lock_guard lock(readers_mu_);
    if (!idle_readers_.empty()) {
      std::unique_ptr<sql::Db> c = std::move(idle_readers_.back());
      idle_readers_.pop_back();
      return Read(*this, std::move(c));
    }
  }
  auto c = connect(true);
  if (!c.ok()) return c.error();
  return Read(*this, std::move(*c));
}

Database::Read::~Read() {
  if (!conn_) return;
  std::lock_guard lock(db_->readers_mu_);
  if (db_->idle_readers_.size() < db_->options_.max_readers) {
    db_->idle_readers_.push_back(std::move(conn_));
  }
}

Database::Counters Database::counters() {
  std::lock_guard lock(batch_mu_);
  return counters_;
}

// --- group commit ---------------------------------------------------------------------------

Status Database::Write::begin() {
  Database& d = db_;
  if (d.dialect_ == sql::Dialect::postgres) return begin_pooled();
  conn_ = d.writer_.get();
  // A thread that already holds the write connection (an operation in progress) nests.
  // conn_owner_ is only ever equal to this thread's id while this thread holds conn_mu_.
  if (d.conn_owner_.load(std::memory_order_relaxed) == std::this_thread::get_id()) {
    nested_ = true;
    savepoint_ = "op" + std::to_string(++d.nesting_);
    if (Status s = d.writer_->exec(("SAVEPOINT " + savepoint_).c_str()); !s) {
      --d.nesting_;
      done_ = true;
      return s;
    }
    begun_ = true;
    return Status::Ok();
  }
  {
    std::unique_lock lock(d.batch_mu_);
    d.batch_cv_.wait(lock, [&] { return !d.committing_ && d.batch_size_ < kMaxBatch; });
    ++d.in_batch_;
    ++d.batch_size_;
    ++d.counters_.operations;
    batch_ = d.batch_id_;
  }
  d.conn_mu_.lock();
  d.conn_owner_.store(std::this_thread::get_id(), std::memory_order_relaxed);
  begun_ = true;
  savepoint_ = "op0";
  auto fail = [&](Status s) {
    d.conn_owner_.store(std::thread::id{}, std::memory_order_relaxed);
    d.conn_mu_.unlock();
    done_ = true;
    (void)finish(true);
    return s;
  };
  if (!d.open_) {
    if (Status s = d.writer_->exec("BEGIN IMMEDIATE"); !s) return fail(s);
    d.open_ = true;
  }
  if (Status s = d.writer_->exec("SAVEPOINT op0"); !s) return fail(s);
  return Status::Ok();
}

Database::Write::~Write() {
  if (!begun_ || done_) return;
  Database& d = db_;
  if (d.dialect_ == sql::Dialect::postgres) {
    if (nested_) {
      undo_to(*conn_, savepoint_);
      leave_nested();
      return;
    }
    const bool broken = !conn_->exec("ROLLBACK").ok();
    release_pooled(broken);
    return;
  }
  undo_to(*d.writer_, savepoint_);
  if (nested_) {
    --d.nesting_;
    return;
  }
  d.conn_owner_.store(std::thread::id{}, std::memory_order_relaxed);
  d.conn_mu_.unlock();
  (void)finish(true);
}

Status Database::Write::commit(bool durable) {
  Database& d = db_;
  if (d.dialect_ == sql::Dialect::postgres) return commit_pooled(durable);
  Status released = d.writer_->exec(("RELEASE " + savepoint_).c_str());
  if (!released.ok()) undo_to(*d.writer_, savepoint_);
  done_ = true;
  if (nested_) {
    --d.nesting_;
    return released;
  }
  d.conn_owner_.store(std::thread::id{}, std::memory_order_relaxed);
  d.conn_mu_.unlock();
  Status batch = finish(durable);
  return released.ok() ? batch : released;
}

// Leaves the batch; the last one out commits it, the others wait for that commit (unless they
// need not be durable).
Status Database::Write::finish(bool wait) {
  Database& d = db_;
  std::unique_lock lock(d.batch_mu_);
  if (--d.in_batch_ > 0) {
    if (!wait) return Status::Ok();
    d.batch_cv_.wait(lock, [&] { return d.committed_id_ >= batch_; });
    return d.last_commit_;
  }
  d.committing_ = true;
  lock.unlock();
  Status st;
  {
    std::lock_guard conn(d.conn_mu_);
    if (d.open_) st = d.writer_->exec("COMMIT");
    if (!st.ok()) (void)d.writer_->exec("ROLLBACK");
    d.open_ = false;
  }
  lock.lock();
  d.last_commit_ = st;
  d.committed_id_ = batch_;
  d.committing_ = false;
  d.batch_size_ = 0;
  ++d.batch_id_;
  ++d.counters_.batches;
  lock.unlock();
  d.batch_cv_.notify_all();
  return st;
}

// --- PostgreSQL: one transaction per operation on pooled connections -------------------------

Status Database::Write::begin_pooled() {
  Database& d = db_;
  const auto me = std::this_thread::get_id();
  bool connect = false;
  {
    std::unique_lock lock(d.pool_mu_);
    for (Held& h : d.held_) {
      if (h.thread != me) continue;
      nested_ = true;
      conn_ = h.conn;
      savepoint_ = "op" + std::to_string(++h.nesting);
      break;
    }
    if (!nested_) {
      d.pool_cv_.wait(lock, [&] {
        return !d.idle_writers_.empty() || d.writers_open_ < d.options_.max_writers;
      });
      if (!d.idle_writers_.empty()) {
        pooled_ = std::move(d.idle_writers_.back());
        d.idle_writers_.pop_back();
      } else {
        ++d.writers_open_;
        connect = true;
      }
    }
  }
  if (nested_) {
    if (Status s = conn_->defer(("SAVEPOINT " + savepoint_).c_str()); !s) {
      leave_nested();
      done_ = true;
      return s;
    }
    begun_ = true;
    return Status::Ok();
  }
  if (connect) {
    auto c = d.connect(false);
    if (!c.ok()) {
      {
        std::lock_guard lock(d.pool_mu_);
        --d.writers_open_;
      }
      d.pool_cv_.notify_one();
      done_ = true;
      return c.error();
    }
    pooled_ = std::move(*c);
  }
  conn_ = pooled_.get();
  {
    std::lock_guard lock(d.pool_mu_);
    d.held_.push_back({me, conn_, 0});
  }
  // Sent with the operation's first statement (one round trip fewer per operation).
  if (Status s = conn_->defer("BEGIN"); !s) {
    done_ = true;
    release_pooled(false);  // the connection re-opens itself on its next use
    return s;
  }
  begun_ = true;
  {
    std::lock_guard lock(d.batch_mu_);
    ++d.counters_.operations;
  }
  return Status::Ok();
}

Status Database::Write::commit_pooled(bool durable) {
  Database& d = db_;
  done_ = true;
  if (nested_) {
    // A failed statement of this operation aborted the transaction: undo to the savepoint.
    // Otherwise the release cannot fail and goes with the next statement.
    Status released = conn_->transaction_failed() ? Status(committed_after_failure())
                                                  : conn_->defer(("RELEASE " + savepoint_).c_str());
    if (!released.ok()) undo_to(*conn_, savepoint_);
    leave_nested();
    return released;
  }
  Status st;
  if (conn_->transaction_failed()) {
    // A statement failed and the caller went on: COMMIT would quietly roll back.
    st = committed_after_failure();
  } else if (!durable) {
    // Survives a crash of this process (the server has it), not necessarily a power cut.
    st = conn_->exec("SET LOCAL synchronous_commit = off; COMMIT");
  } else {
    st = conn_->exec("COMMIT");
  }
  bool broken = false;
  if (!st.ok()) broken = !conn_->exec("ROLLBACK").ok();
  release_pooled(broken);
  {
    std::lock_guard lock(d.batch_mu_);
    ++d.counters_.batches;
  }
  return st;
}

// A nested operation on a pooled connection ends.
void Database::Write::leave_nested() {
  std::lock_guard lock(db_.pool_mu_);
  for (Held& h : db_.held_)
    if (h.conn == conn_) --h.nesting;
}

// Back to the pool; a connection that cannot even roll back is closed instead (a new one is
// opened when needed).
void Database::Write::release_pooled(bool broken) {
  Database& d = db_;
  {
    std::lock_guard lock(d.pool_mu_);
    std::erase_if(d.held_, [&](const Held& h) { return h.conn == conn_; });
    if (broken) {
      --d.writers_open_;
    } else {
      d.idle_writers_.push_back(std::move(pooled_));
    }
  }
  pooled_.reset();
  conn_ = nullptr;
  d.pool_cv_.notify_one();
}

// --- migrations -----------------------------------------------------------------------------

Result<int> Database::user_version() {
  std::lock_guard lock(conn_mu_);
  if (dialect_ == sql::Dialect::postgres) {
    // Under the migration lock: nodes starting together would race on the catalog.
    if (Status s = writer_->exec("BEGIN; SELECT pg_advisory_xact_lock(1498696777);"
                                 " CREATE TABLE IF NOT EXISTS yilian_schema ("
                                 "history TEXT PRIMARY KEY, version INTEGER NOT NULL); COMMIT");
        !s) {
      (void)writer_->exec("ROLLBACK");
      return s.error();
    }
    std::int64_t v = 0;
    if (Status s = sql::query(
            *writer_, "SELECT version FROM yilian_schema WHERE history = ?1",
            [&](sql::Stmt& st) { st.bind(1, options_.history); },
            [&](sql::Stmt& st) { v = st.int64(0); });
        !s)
      return s.error();
    return static_cast<int>(v);
  }
  std::int64_t v = 0;
  if (Status s = sql::query(
          *writer_, "PRAGMA user_version", [](sql::Stmt&) {},
          [&](sql::Stmt& st) { v = st.int64(0); });
      !s)
    return s.error();
  return static_cast<int>(v);
}

int Database::schema_version() {
  auto v = user_version();
  return v.ok() ? *v : 0;
}

Result<int> Database::migrate(std::span<const SchemaStep> steps, int target) {
  for (std::size_t i = 0; i < steps.size(); ++i) {
    if (steps[i].version != static_cast<int>(i) + 1) {
      return make_error(Errc::internal, "schema history is not numbered 1.." +
                                            std::to_string(steps.size()) + " at step " +
                                            std::to_string(i + 1));
    }
  }
  auto current = user_version();
  if (!current.ok()) return current.error();
  int version = *current;
  if (version > static_cast<int>(steps.size())) {
    return make_error(Errc::corrupt, "index schema version " + std::to_string(version) +
                                         " is newer than this build understands (" +
                                         std::to_string(steps.size()) + ")");
  }
  if (dialect_ == sql::Dialect::postgres) return migrate_postgres(steps, target);
  std::lock_guard lock(conn_mu_);
  for (const SchemaStep& m : steps) {
    if (m.version <= version || m.version > target) continue;
    if (Status s = writer_->exec("BEGIN IMMEDIATE"); !s) return s.error();
    Status s = writer_->exec(m.sql);
    if (s.ok()) {
      std::string pragma = "PRAGMA user_version = " + std::to_string(m.version);
      s = writer_->exec(pragma.c_str());
    }
    if (s.ok()) s = writer_->exec("COMMIT");
    if (!s.ok()) {
      (void)writer_->exec("ROLLBACK");
      return make_error(s.error().code, "schema migration to v" + std::to_string(m.version) + " (" +
                                            m.owner + ") failed: " + s.error().message);
    }
    version = m.version;
  }
  return version;
}

// Several nodes may start at once: each step runs in a transaction that first takes one
// advisory lock and reads the version again, so a step is applied exactly once, by whichever
// node gets there first.
Result<int> Database::migrate_postgres(std::span<const SchemaStep> steps, int target) {
  std::lock_guard lock(conn_mu_);
  int version = 0;
  for (const SchemaStep& m : steps) {
    if (m.version > target) break;
    auto fail = [&](const Error& e) {
      (void)writer_->exec("ROLLBACK");
      return make_error(e.code, "schema migration to v" + std::to_string(m.version) + " (" +
                                    m.owner + ") failed: " + e.message);
    };
    if (Status s = writer_->exec("BEGIN"); !s) return fail(s.error());
    // 1498696777 is "YILI" (0x59494c49): the one lock every node's migration takes.
    if (Status s = writer_->exec("SELECT pg_advisory_xact_lock(1498696777)"); !s)
      return fail(s.error());
    std::int64_t current = 0;
    if (Status s = sql::query(
            *writer_, "SELECT version FROM yilian_schema WHERE history = ?1",
            [&](sql::Stmt& st) { st.bind(1, options_.history); },
            [&](sql::Stmt& st) { current = st.int64(0); });
        !s)
      return fail(s.error());
    if (current >= m.version) {
      if (Status s = writer_->exec("COMMIT"); !s) return fail(s.error());
      version = static_cast<int>(current);
      continue;
    }
    const std::string ddl =
        m.postgres_sql ? std::string(m.postgres_sql) : sql::backend::postgres_ddl(m.sql);
    if (Status s = writer_->exec(ddl.c_str()); !s) return fail(s.error());
    if (Status s = sql::run(*writer_,
                            "INSERT INTO yilian_schema(history, version) VALUES(?1, ?2) "
                            "ON CONFLICT (history) DO UPDATE SET version = excluded.version",
                            [&](sql::Stmt& st) {
                              st.bind(1, options_.history);
                              st.bind(2, static_cast<std::int64_t>(m.version));
                            });
        !s)
      return fail(s.error());
    if (Status s = writer_->exec("COMMIT"); !s) return fail(s.error());
    version = m.version;
  }
  return version;
}

}  // namespace yilian::storage
