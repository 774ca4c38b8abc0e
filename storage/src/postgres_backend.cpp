// The several-node backend: PostgreSQL through libpq. Statements are written once, in the
// placeholder styles SQLite takes (?, ?N, :name); here they become $N. Parameters and results
// travel as text; PostgreSQL infers parameter types from the statement.
#include <libpq-fe.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "backend.h"

namespace yilian::storage::sql::backend {
namespace {

// A PostgreSQL error (SQLSTATE) as a yilian::Error: integrity violations and the exceptions
// our triggers raise (immutable rows, as SQLite's RAISE(ABORT) does) are conflicts;
// serialization failures, deadlocks, lost connections and shutdowns are worth retrying
// (unavailable); a full disk or exhausted memory is io.
Error pg_error(const PGresult* res, PGconn* conn, std::string_view what) {
  std::string msg(what);
  msg += ": ";
  const char* detail = res ? PQresultErrorMessage(res) : PQerrorMessage(conn);
  msg += detail && *detail ? detail : "unknown error";
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  const char* state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
  const std::string s = state ? state : "";
  Errc code = Errc::internal;
  if (s.rfind("23", 0) == 0 || s == "P0001") {
    code = Errc::conflict;
  } else if (s == "40001" || s == "40P01" || s.rfind("08", 0) == 0 || s.rfind("57P", 0) == 0 ||
             (!state && conn && PQstatus(conn) == CONNECTION_BAD)) {
    code = Errc::unavailable;
  } else if (s.rfind("53", 0) == 0 || s.rfind("58", 0) == 0) {
    code = Errc::io;
  } else if (s.rfind("XX", 0) == 0) {
    code = Errc::corrupt;
  }
  return make_error(code, std::move(msg));
}

struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using PgResult = std::unique_ptr<PGresult, ResultDeleter>;

bool is_name_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool is_name_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

}  // namespace

namespace {

// Where the quoted literal, quoted identifier or comment starting at `i` ends; `i` when none
// starts there.
std::size_t skip_quoted(std::string_view sql, std::size_t i) {
  const char c = sql[i];
  if (c == '\'' || c == '"') {  // '' and "" escape the quote
    std::size_t j = i + 1;
    while (j < sql.size()) {
      if (sql[j] == c) {
        if (j + 1 < sql.size() && sql[j + 1] == c) {
          j += 2;
          continue;
        }
        break;
      }
      ++j;
    }
    return std::min(j + 1, sql.size());
  }
  if (c == '-' && i + 1 < sql.size() && sql[i + 1] == '-') {
    const std::size_t j = sql.find('\n', i);
    return j == std::string_view::npos ? sql.size() : j;
  }
  if (c == '/' && i + 1 < sql.size() && sql[i + 1] == '*') {
    const std::size_t j = sql.find("*/", i + 2);
    return j == std::string_view::npos ? sql.size() : j + 2;
  }
  return i;
}

bool word_is(std::string_view word, const char* upper) {
  if (word.size() != std::strlen(upper)) return false;
  for (std::size_t k = 0; k < word.size(); ++k) {
    if (std::toupper(static_cast<unsigned char>(word[k])) != upper[k]) return false;
  }
  return true;
}

// True when the parenthesised list opening at `open` has a comma at its own level.
bool has_top_level_comma(std::string_view sql, std::size_t open) {
  int depth = 0;
  for (std::size_t i = open; i < sql.size();) {
    if (std::size_t q = skip_quoted(sql, i); q != i) {
      i = q;
      continue;
    }
    if (sql[i] == '(') ++depth;
    if (sql[i] == ')' && --depth == 0) return false;
    if (sql[i] == ',' && depth == 1) return true;
    ++i;
  }
  return false;
}

}  // namespace

// SQLite-style placeholders as PostgreSQL's $N, numbered as SQLite numbers them: ?N is N, a
// bare ? is one more than the largest so far, a :name keeps the number of its first use.
// Quoted strings, quoted identifiers, comments and :: casts are left alone.
std::string translate_placeholders(std::string_view sql, std::map<std::string, int>& names,
                                   int& count) {
  std::string out;
  out.reserve(sql.size() + 16);
  int max = 0;
  for (std::size_t i = 0; i < sql.size();) {
    const char c = sql[i];
    if (std::size_t end = skip_quoted(sql, i); end != i) {
      out.append(sql.substr(i, end - i));
      i = end;
    } else if (c == '?') {
      std::size_t j = i + 1;
      while (j < sql.size() && std::isdigit(static_cast<unsigned char>(sql[j]))) ++j;
      int n = j > i + 1 ? std::atoi(std::string(sql.substr(i + 1, j - i - 1)).c_str()) : max + 1;
      max = std::max(max, n);
      out += '$' + std::to_string(n);
      i = j;
    } else if (c == ':' && i + 1 < sql.size() && is_name_start(sql[i + 1]) &&
               (i == 0 || sql[i - 1] != ':')) {
      std::size_t j = i + 1;
      while (j < sql.size() && is_name_char(sql[j])) ++j;
      const std::string name(sql.substr(i, j - i));
      auto [it, fresh] = names.emplace(name, max + 1);
      if (fresh) ++max;
      out += '$' + std::to_string(it->second);
      i = j;
    } else {
      out += c;
      ++i;
    }
  }
  count = max;
  return out;
}

// The SQLite functions and operators the stores use, in PostgreSQL's words (after the
// placeholders became $N): INSERT OR IGNORE -> ON CONFLICT DO NOTHING, group_concat ->
// string_agg, instr -> strpos, char() -> chr(), two-argument min/max -> least/greatest, LIKE (ASCII
// case- insensitive in SQLite) -> ILIKE, and GLOB with a parameter -> LIKE of the pattern with its
// wildcards turned into LIKE's (case-sensitive, as GLOB is).
std::string postgres_statement(std::string_view sql) {
  std::string out;
  out.reserve(sql.size() + 32);
  bool ignore_conflicts = false;
  for (std::size_t i = 0; i < sql.size();) {
    if (std::size_t end = skip_quoted(sql, i); end != i) {
      out.append(sql.substr(i, end - i));
      i = end;
      continue;
    }
    const bool word_start =
        is_name_start(sql[i]) && (i == 0 || (!is_name_char(sql[i - 1]) && sql[i - 1] != '$'));
    if (!word_start) {
      out += sql[i++];
      continue;
    }
    std::size_t j = i;
    while (j < sql.size() && is_name_char(sql[j])) ++j;
    const std::string_view word = sql.substr(i, j - i);
    if (word_is(word, "INSERT") && word_is(sql.substr(j + 1, 2), "OR") &&
        word_is(sql.substr(j + 4, 6), "IGNORE")) {
      out += "INSERT";
      ignore_conflicts = true;
      i = j + 10;
    } else if (word_is(word, "GROUP_CONCAT")) {
      out += "string_agg";
      i = j;
    } else if (word_is(word, "INSTR")) {
      out += "strpos";
      i = j;
    } else if (word_is(word, "CHAR") && j < sql.size() && sql[j] == '(') {
      out += "chr";
      i = j;
    } else if ((word_is(word, "MIN") || word_is(word, "MAX")) && j < sql.size() && sql[j] == '(' &&
               has_top_level_comma(sql, j)) {
      out += word_is(word, "MIN") ? "least" : "greatest";
      i = j;
    } else if (word_is(word, "LIKE")) {
      out += "ILIKE";
      i = j;
    } else if (word_is(word, "GLOB")) {
      std::size_t k = j;
      while (k < sql.size() && sql[k] == ' ') ++k;
      std::size_t e = k + 1;
      while (e < sql.size() && std::isdigit(static_cast<unsigned char>(sql[e]))) ++e;
      const std::string param(sql.substr(k, e - k));
      out += "LIKE replace(replace(replace(replace(replace(replace(" + param +
             ", '[[]', '['), '!', '!!'), '%', '!%'), '_', '!_'), '*', '%'), '?', '_') "
             "ESCAPE '!'";
      i = e;
    } else {
      out.append(word);
      i = j;
    }
  }
  if (ignore_conflicts) {
    while (!out.empty() &&
           (out.back() == ';' || std::isspace(static_cast<unsigned char>(out.back())))) {
      out.pop_back();
    }
    out += " ON CONFLICT DO NOTHING";
  }
  return out;
}

namespace {

class PgConnection;

class PgStatement final : public Statement {
 public:
  // An empty name: run as a one-shot statement (parsed with each execution, nothing kept
  // on the server); otherwise prepared once per connection under that name.
  PgStatement(PgConnection& conn, std::string name, std::string sql,
              std::map<std::string, int> names, int params)
      : conn_(conn),
        name_(std::move(name)),
        sql_(std::move(sql)),
        names_(std::move(names)),
        values_(static_cast<std::size_t>(params)) {}

  void bind_text(int i, std::string_view text) override {
    if (auto* v = slot(i)) *v = std::string(text);
  }
  void bind_int64(int i, std::int64_t v) override {
    if (auto* s = slot(i)) *s = std::to_string(v);
  }
  void bind_null(int i) override {
    if (auto* v = slot(i)) v->reset();
  }
  int parameter_index(const char* name) const override {
    auto it = names_.find(name);
    return it == names_.end() ? 0 : it->second;
  }
  Result<bool> step() override;
  void reset() override {
    result_.reset();
    row_ = -1;
    for (auto& v : values_) v.reset();
  }
  std::string text(int col) const override {
    if (!result_ || PQgetisnull(result_.get(), row_, col)) return {};
    return std::string(PQgetvalue(result_.get(), row_, col),
                       static_cast<std::size_t>(PQgetlength(result_.get(), row_, col)));
  }
  std::int64_t int64(int col) const override {
    if (!result_ || PQgetisnull(result_.get(), row_, col)) return 0;
    const char* v = PQgetvalue(result_.get(), row_, col);
    if (std::strcmp(v, "t") == 0) return 1;  // boolean
    if (std::strcmp(v, "f") == 0) return 0;
    return std::strtoll(v, nullptr, 10);
  }
  bool is_null(int col) const override { return !result_ || PQgetisnull(result_.get(), row_, col); }

 private:
  std::optional<std::string>* slot(int i) {
    if (i < 1 || static_cast<std::size_t>(i) > values_.size()) return nullptr;
    return &values_[static_cast<std::size_t>(i - 1)];
  }

  PgConnection& conn_;
  std::string name_, sql_;
  std::map<std::string, int> names_;
  std::vector<std::optional<std::string>> values_;
  PgResult result_;
  int row_ = -1;
  std::uint64_t prepared_generation_ = 0;  // the connection's generation it was prepared on
};

class PgConnection final : public Connection {
 public:
  explicit PgConnection(PGconn* c) : c_(c) {}
  ~PgConnection() override { PQfinish(c_); }

  Dialect dialect() const override { return Dialect::postgres; }

  // Like a statement (run), a script outside a transaction that finds the connection broken
  // runs once more on a new one. Deferred commands go first, in the same round trip.
  Status exec(const char* sql) override {
    std::string text;
    for (const std::string& cmd : pending_) text += cmd + "; ";
    text += postgres_statement(sql);
    for (int attempt = 0;; ++attempt) {
      if (Status s = usable(); !s) return s;
      if (lost_) {  // only the caller's ROLLBACK ends the lost transaction
        pending_.clear();
        if (std::string_view(sql) != "ROLLBACK") return lost_transaction();
        lost_ = false;
        return Status::Ok();
      }
      const bool idle = PQtransactionStatus(c_) == PQTRANS_IDLE;
      PgResult r(PQexec(c_, text.c_str()));
      note_transaction();
      const auto st = PQresultStatus(r.get());
      if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY) {
        changes_ = std::atoi(PQcmdTuples(r.get()));
        pending_.clear();
        return Status::Ok();
      }
      if (attempt == 0 && idle && PQstatus(c_) == CONNECTION_BAD) continue;
      pending_.clear();
      return pg_error(r.get(), c_, "executing SQL");
    }
  }
  Status defer(const char* sql) override {
    pending_.emplace_back(sql);
    return Status::Ok();
  }

  // Runs one statement: prepared under `name` (prepared first on this connection's first
  // use), or one-shot when `name` is empty; deferred commands and a needed prepare go in the
  // same round trip (pipeline). A statement outside a transaction that finds its connection
  // broken (the server restarted, the network cut) runs once more on a new connection; inside
  // a transaction the transaction is gone with the connection, and the caller learns it
  // (unavailable).
  Result<PgResult> run(const std::string& name, const std::string& sql,
                       const std::vector<const char*>& params, std::uint64_t& generation) {
    for (int attempt = 0;; ++attempt) {
      if (Status s = usable(); !s) return s.error();
      if (lost_) {
        pending_.clear();
        return lost_transaction().error();
      }
      const bool idle = PQtransactionStatus(c_) == PQTRANS_IDLE;
      const bool prepared = name.empty() || prepared_here(generation);
      auto r = pending_.empty() && prepared ? run_alone(name, sql, params)
                                            : run_pipelined(name, sql, params, generation);
      note_transaction();
      if (r.ok()) {
        pending_.clear();
        return r;
      }
      if (attempt == 0 && idle && PQstatus(c_) == CONNECTION_BAD) continue;
      pending_.clear();
      return r.error();
    }
  }

  // Whether a statement last prepared at `generation` is prepared on the connection as it is now
  // (0: never prepared; a reconnect starts a new generation).
  bool prepared_here(std::uint64_t generation) const {
    return generation != 0 && generation == generation_;
  }

  int changes() const override { return changes_; }
  bool transaction_failed() const override {
    return lost_ || (PQstatus(c_) != CONNECTION_OK && in_transaction_) ||
           PQtransactionStatus(c_) == PQTRANS_INERROR;
  }
  Status session(const char* sql) override {
    session_ = sql;
    return exec(sql);
  }

  Result<std::unique_ptr<Statement>> prepare(const char* sql, bool reused) override {
    std::map<std::string, int> names;
    int count = 0;
    std::string translated = postgres_statement(translate_placeholders(sql, names, count));
    auto st = std::make_unique<PgStatement>(
        *this, reused ? "y" + std::to_string(++statements_) : std::string(), std::move(translated),
        std::move(names), count);
    return std::unique_ptr<Statement>(std::move(st));
  }

  // A lost connection (a database restart, a network cut) is re-opened on next use; the
  // statements prepared on it are prepared again (generation).
  // A transaction open when the connection was lost is gone with it (lost_): statements
  // would otherwise run on the new connection outside any transaction and a COMMIT would
  // report success. The session's settings are made again on the new connection.
  Status usable() {
    if (PQstatus(c_) == CONNECTION_OK) return Status::Ok();
    lost_ = lost_ || in_transaction_;
    in_transaction_ = false;
    PQreset(c_);
    if (PQstatus(c_) != CONNECTION_OK) return pg_error(nullptr, c_, "reconnecting to PostgreSQL");
    ++generation_;
    if (!session_.empty()) {
      PgResult r(PQexec(c_, session_.c_str()));
      if (PQresultStatus(r.get()) != PGRES_COMMAND_OK)
        return pg_error(r.get(), c_, "restoring the session's settings");
    }
    return Status::Ok();
  }
  void note_transaction() {
    if (PQstatus(c_) == CONNECTION_OK) in_transaction_ = PQtransactionStatus(c_) != PQTRANS_IDLE;
  }
  static Status lost_transaction() {
    return make_error(Errc::unavailable,
                      "the connection to PostgreSQL was lost inside a transaction, which is "
                      "rolled back");
  }
  Result<PgResult> run_alone(const std::string& name, const std::string& sql,
                             const std::vector<const char*>& params) {
    const int n = static_cast<int>(params.size());
    PgResult r(name.empty()
                   ? PQexecParams(c_, sql.c_str(), n, nullptr, params.data(), nullptr, nullptr, 0)
                   : PQexecPrepared(c_, name.c_str(), n, params.data(), nullptr, nullptr, 0));
    const auto st = PQresultStatus(r.get());
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) return r;
    return pg_error(r.get(), c_, "executing statement");
  }

  Result<PgResult> run_pipelined(const std::string& name, const std::string& sql,
                                 const std::vector<const char*>& params,
                                 std::uint64_t& generation) {
    const int n = static_cast<int>(params.size());
    const bool prepare = !name.empty() && !prepared_here(generation);
    if (PQenterPipelineMode(c_) != 1) return pg_error(nullptr, c_, "entering pipeline mode");
    bool sent = true;
    for (const std::string& cmd : pending_) {
      sent =
          sent && PQsendQueryParams(c_, cmd.c_str(), 0, nullptr, nullptr, nullptr, nullptr, 0) == 1;
    }
    if (prepare) sent = sent && PQsendPrepare(c_, name.c_str(), sql.c_str(), n, nullptr) == 1;
    sent =
        sent &&
        (name.empty()
             ? PQsendQueryParams(c_, sql.c_str(), n, nullptr, params.data(), nullptr, nullptr, 0)
             : PQsendQueryPrepared(c_, name.c_str(), n, params.data(), nullptr, nullptr, 0)) == 1;
    sent = sent && PQpipelineSync(c_) == 1;
    std::optional<Error> error;
    if (!sent) error = pg_error(nullptr, c_, "sending to PostgreSQL");
    // Results in order: each query's end with a null, the sync point ends the pipeline.
    const std::size_t last = pending_.size() + (prepare ? 1 : 0);  // the statement's place
    PgResult out;
    std::size_t q = 0;
    for (std::size_t nulls = 0; sent && nulls <= last + 1;) {
      PGresult* raw = PQgetResult(c_);
      if (!raw) {
        ++q;
        ++nulls;
        if (PQstatus(c_) == CONNECTION_BAD) break;
        continue;
      }
      PgResult r(raw);
      const auto st = PQresultStatus(raw);
      if (st == PGRES_PIPELINE_SYNC) break;
      if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        if (q == last) {
          out = std::move(r);
        } else if (prepare && q + 1 == last) {
          generation = generation_;
        }
      } else if (!error) {
        error = pg_error(raw, c_,
                         q == last                  ? std::string("executing statement")
                         : prepare && q + 1 == last ? "preparing " + sql
                         : q < pending_.size()      ? "running " + pending_[q]
                                                    : std::string("running a pipeline"));
      }
    }
    for (int i = 0; i < 4 && PQexitPipelineMode(c_) != 1; ++i) PQclear(PQgetResult(c_));
    if (error) return *error;
    if (!out) return pg_error(nullptr, c_, "no result for the statement");
    return out;
  }

  void set_changes(int n) { changes_ = n; }

 private:
  PGconn* c_;
  std::vector<std::string> pending_;  // deferred commands, sent before the next statement
  std::string session_;               // settings made again on every new connection
  bool in_transaction_ = false;       // as of the last command the server answered
  bool lost_ = false;                 // see usable()
  int changes_ = 0;
  std::uint64_t statements_ = 0;
  std::uint64_t generation_ = 1;
};

Result<bool> PgStatement::step() {
  if (!result_) {
    std::vector<const char*> params(values_.size());
    for (std::size_t i = 0; i < values_.size(); ++i) {
      params[i] = values_[i] ? values_[i]->c_str() : nullptr;
    }
    auto r = conn_.run(name_, sql_, params, prepared_generation_);
    if (!r.ok()) return r.error();
    result_ = std::move(*r);
    conn_.set_changes(std::atoi(PQcmdTuples(result_.get())));
    row_ = -1;
  }
  ++row_;
  return row_ < PQntuples(result_.get());
}

}  // namespace

Result<std::unique_ptr<Connection>> open_postgres(const std::string& url) {
  PGconn* c = PQconnectdb(url.c_str());
  if (PQstatus(c) != CONNECTION_OK) {
    Error e = pg_error(nullptr, c, "connecting to PostgreSQL");
    e.code = Errc::unavailable;
    PQfinish(c);
    return e;
  }
  auto conn = std::make_unique<PgConnection>(c);
  // Notices (e.g. "relation already exists, skipping") are not errors; keep them off stderr.
  PQsetNoticeProcessor(
      c, [](void*, const char*) {}, nullptr);
  return std::unique_ptr<Connection>(std::move(conn));
}

}  // namespace yilian::storage::sql::backend
