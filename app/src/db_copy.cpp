#include "db_copy.h"

#include <cstdio>

#include "data_dir.h"
#include "schema.h"
#include "yilian/identity/audit_log.h"
#include "yilian/storage/copy.h"

namespace yilian::app {
namespace {

int fail(const std::string& what) {
  std::fprintf(stderr, "db copy: %s\n", what.c_str());
  return 1;
}

// Copies `from` into `to`, printing each table; false when a table came out short.
bool copy_and_report(storage::Database& from, storage::Database& to, const char* what,
                     std::string* error) {
  // Node registrations and the lease belong to running nodes, not to the install.
  auto copied = storage::copy_tables(
      from, to, {"yilian_schema", "cluster_nodes", "cluster_leases"},
      [what](const storage::TableCopy& t) {
        std::printf("%-6s %-28s %10lld %10lld%s\n", what, t.table.c_str(),
                    static_cast<long long>(t.source_rows), static_cast<long long>(t.copied_rows),
                    t.source_rows == t.copied_rows ? "" : "  MISSING ROWS");
        std::fflush(stdout);
      });
  if (!copied.ok()) {
    *error = copied.error().message;
    return false;
  }
  for (const storage::TableCopy& t : *copied) {
    auto now = storage::count_rows(to, t.table);
    if (!now.ok() || *now != t.source_rows) {
      *error = t.table + ": " + std::to_string(t.source_rows) + " rows in the source, " +
               (now.ok() ? std::to_string(*now) : now.error().message) + " in the target";
      return false;
    }
  }
  return true;
}

}  // namespace

int copy_to_postgres(const std::filesystem::path& from, const std::string& to) {
  if (!storage::is_postgres_url(to)) return fail("--to must be a postgresql:// URL");
  {
    std::error_code ec;
    if (!std::filesystem::exists(from / "index.sqlite", ec)) {
      return fail(from.string() + " has no embedded database (index.sqlite)");
    }
    auto dd = DataDir::open(from);
    if (!dd.ok()) return fail(dd.error().message);
    if (!(*dd)->database_url().empty()) {
      return fail(from.string() + " already uses " + (*dd)->database_url());
    }
    // The target at the same schema versions as the source (both migrated to this build's).
    auto index = open_index_database(to);
    if (!index.ok()) return fail(index.error().message);
    auto audit = storage::Database::open(
        to, {.durable = true, .background_checkpoints = false, .history = "audit"});
    if (!audit.ok()) return fail(audit.error().message);
    if (auto v = (*audit)->migrate(identity::AuditLog::schema()); !v.ok()) {
      return fail(v.error().message);
    }
    std::printf("%-6s %-28s %10s %10s\n", "", "table", "source", "copied");
    std::string error;
    if (!copy_and_report((*dd)->database(), **index, "index", &error) ||
        !copy_and_report((*dd)->audit_database(), **audit, "audit", &error)) {
      return fail(error + "\nnothing in " + from.string() +
                  " was changed; drop the target database and copy again");
    }
  }
  // From now on the data directory names the database.
  auto moved = DataDir::open(from, to);
  if (!moved.ok()) return fail(moved.error().message);
  auto report = (*moved)->auditor().verify();
  if (!report.ok()) return fail(report.error().message);
  if (!report->intact) {
    std::printf("audit trail BROKEN at record %lld: %s\n",
                static_cast<long long>(report->first_bad_seq), report->problem.c_str());
    return 3;
  }
  std::printf("audit trail intact: %lld records\n%s now uses %s\n",
              static_cast<long long>(report->records), from.string().c_str(), to.c_str());
  return 0;
}

}  // namespace yilian::app
