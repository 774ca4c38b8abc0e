// Databases for store tests: the index database with the whole consortium schema (as the hub
// opens it) and an audit database. A database that cannot be opened throws, which fails the
// test that asked for it.
#pragma once

#include <climits>
#include <filesystem>
#include <memory>

#include "yilian/storage/database.h"

namespace yilian::testing {

// True when the store tests run on PostgreSQL (YILIAN_TEST_BACKEND=postgres, or the folder of
// a running test server in YILIAN_TEST_POSTGRES, as ctest's "postgres." runs set): every
// database below is then a new database of the test program's
// own PostgreSQL server, whatever path is asked for.
bool on_postgres();

// ":memory:" gives a private in-memory database; `target`: the schema version to migrate it to.
std::unique_ptr<storage::Database> index_database(const std::filesystem::path& path = ":memory:",
                                                  int target = INT_MAX);
std::unique_ptr<storage::Database> audit_database(const std::filesystem::path& path);

// A connection of its own to `db`'s database, outside every store: what someone with access
// to the database (not the hub) can do. Throws when it cannot be opened.
std::unique_ptr<storage::sql::Db> raw_connection(const storage::Database& db);

}  // namespace yilian::testing
