#include "test_db.h"

#include <cstdlib>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>

#include "postgres.h"
#include "schema.h"
#include "yilian/identity/audit_log.h"

namespace yilian::testing {

bool on_postgres() {
  const char* backend = std::getenv("YILIAN_TEST_BACKEND");
  const char* server = std::getenv("YILIAN_TEST_POSTGRES");
  return (backend && std::string(backend) == "postgres") || (server && *server);
}

namespace {

// `path`, or a database of the test program's PostgreSQL server when the tests run on that
// backend: one per path (a test that reopens a file reopens its database), a new one for
// each ":memory:".
std::string location(const std::filesystem::path& path) {
  if (!on_postgres()) return path.string();
  static std::mutex mu;
  static std::map<std::string, std::string> databases;
  std::lock_guard lock(mu);
  if (path != ":memory:") {
    if (auto it = databases.find(path.string()); it != databases.end()) return it->second;
  }
  std::string why;
  PostgresServer* pg = shared_postgres(&why);
  if (!pg) throw std::runtime_error("PostgreSQL: " + why);
  std::string url = pg->fresh_database();
  if (url.empty()) throw std::runtime_error("PostgreSQL: cannot create a database");
  if (path != ":memory:") databases[path.string()] = url;
  return url;
}

}  // namespace

std::unique_ptr<storage::Database> index_database(const std::filesystem::path& path, int target) {
  auto db = app::open_index_database(location(path), target);
  if (!db.ok()) throw std::runtime_error("index database: " + db.error().message);
  return std::move(db).value();
}

std::unique_ptr<storage::Database> audit_database(const std::filesystem::path& path) {
  auto db =
      storage::Database::open(path.string(), {.durable = false, .background_checkpoints = false});
  if (!db.ok()) throw std::runtime_error("audit database: " + db.error().message);
  auto v = (*db)->migrate(identity::AuditLog::schema());
  if (!v.ok()) throw std::runtime_error("audit database: " + v.error().message);
  return std::move(db).value();
}

std::unique_ptr<storage::sql::Db> raw_connection(const storage::Database& db) {
  auto c = std::make_unique<storage::sql::Db>();
  Status s = db.dialect() == storage::sql::Dialect::postgres ? c->open_postgres(db.location())
                                                             : c->open(db.location(), false);
  if (!s) throw std::runtime_error("raw connection: " + s.error().message);
  return c;
}

}  // namespace yilian::testing
