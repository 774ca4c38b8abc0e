// Databases for store tests: the index database with the whole consortium schema (as the hub
// opens it) and an audit database. A database that cannot be opened throws, which fails the
// test that asked for it.
#pragma once

#include <filesystem>
#include <memory>

#include "yilian/storage/database.h"

namespace yilian::testing {

// ":memory:" gives a private in-memory database.
std::unique_ptr<storage::Database> index_database(const std::filesystem::path& path = ":memory:");
std::unique_ptr<storage::Database> audit_database(const std::filesystem::path& path);

}  // namespace yilian::testing
