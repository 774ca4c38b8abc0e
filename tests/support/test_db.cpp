#include "test_db.h"

#include <stdexcept>

#include "schema.h"
#include "yilian/identity/audit_log.h"

namespace yilian::testing {

std::unique_ptr<storage::Database> index_database(const std::filesystem::path& path) {
  auto db = app::open_index_database(path);
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

}  // namespace yilian::testing
