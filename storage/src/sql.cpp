#include "yilian/storage/sql.h"

#include "backend.h"

namespace yilian::storage::sql {

namespace {
Error not_open() { return make_error(Errc::internal, "database connection not open"); }
}  // namespace

Db::Db() = default;

Db::~Db() {
  cache_.clear();  // statements are finalized before the connection closes
  one_shot_.clear();
}

Result<Stmt*> Db::cached(const std::string& sql) {
  auto it = cache_.find(sql);
  if (it != cache_.end()) {
    it->second->reset();
    return it->second.get();
  }
  if (!conn_) return not_open();
  // Statements whose text carries values (id lists) would grow the cache without end; past
  // kMaxCached the new ones run as one-shot statements, the last kRecentOneShot of them kept
  // alive for callers still holding them.
  const bool keep = cache_.size() < kMaxCached;
  auto prepared = conn_->prepare(sql.c_str(), keep);
  if (!prepared.ok()) return prepared.error();
  auto st = std::make_unique<Stmt>();
  st->s_ = std::move(*prepared);
  Stmt* raw = st.get();
  if (keep) {
    cache_.emplace(sql, std::move(st));
  } else {
    one_shot_.push_back(std::move(st));
    if (one_shot_.size() > kRecentOneShot) one_shot_.pop_front();
  }
  return raw;
}

Status Db::open(const std::string& path, bool read_only) {
  auto c = backend::open_sqlite(path, read_only);
  if (!c.ok()) return c.error();
  cache_.clear();
  one_shot_.clear();
  conn_ = std::move(*c);
  return Status::Ok();
}

Status Db::open_postgres(const std::string& url) {
  auto c = backend::open_postgres(url);
  if (!c.ok()) return c.error();
  cache_.clear();
  one_shot_.clear();
  conn_ = std::move(*c);
  return Status::Ok();
}

Dialect Db::dialect() const { return conn_ ? conn_->dialect() : Dialect::sqlite; }

int Db::changes() const { return conn_ ? conn_->changes() : 0; }

bool Db::transaction_failed() const { return conn_ && conn_->transaction_failed(); }

Status Db::session(const char* sql) {
  if (!conn_) return not_open();
  return conn_->session(sql);
}

Status Db::defer(const char* sql) {
  if (!conn_) return not_open();
  return conn_->defer(sql);
}

Status Db::exec(const char* sql) {
  if (!conn_) return not_open();
  return conn_->exec(sql);
}

Stmt::Stmt() = default;
Stmt::~Stmt() = default;
Stmt::Stmt(Stmt&& o) noexcept = default;
Stmt& Stmt::operator=(Stmt&& o) noexcept = default;

Status Stmt::prepare(Db& conn, const char* sql) {
  if (!conn.conn_) return not_open();
  auto s = conn.conn_->prepare(sql, false);
  if (!s.ok()) return s.error();
  s_ = std::move(*s);
  return Status::Ok();
}

void Stmt::bind(int i, std::string_view text) { s_->bind_text(i, text); }
void Stmt::bind(int i, std::int64_t v) { s_->bind_int64(i, v); }
void Stmt::bind_named(const char* name, std::string_view text) {
  bind(s_->parameter_index(name), text);
}
void Stmt::bind_named(const char* name, std::int64_t v) { bind(s_->parameter_index(name), v); }
void Stmt::bind(int i, const std::optional<std::int64_t>& v) {
  if (v) {
    s_->bind_int64(i, *v);
  } else {
    s_->bind_null(i);
  }
}
void Stmt::bind_null(int i) { s_->bind_null(i); }

Result<bool> Stmt::step() { return s_->step(); }

Status Stmt::run() {
  auto r = step();
  s_->reset();
  if (!r.ok()) return r.error();
  return Status::Ok();
}

void Stmt::reset() { s_->reset(); }

bool Stmt::is_null(int col) const { return s_->is_null(col); }
std::string Stmt::text(int col) const { return s_->text(col); }
std::int64_t Stmt::int64(int col) const { return s_->int64(col); }
std::optional<std::int64_t> Stmt::opt_int64(int col) const {
  if (s_->is_null(col)) return std::nullopt;
  return s_->int64(col);
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
