#pragma once

#include <span>

#include "sqlite_util.h"

namespace yilian::storage {

struct Migration {
  int version;          // schema version after this step
  const char* summary;  // one line, for the log
  const char* sql;
};

// Every schema step, in order. Never edit a released step: append a new one.
std::span<const Migration> migrations();

// Applies every step above the database's PRAGMA user_version, each in its own
// transaction, and returns the resulting version.
Result<int> migrate(sql::Db& db);
// Applies steps up to and including `target` only (tests build older schemas with it).
Result<int> migrate_to(sql::Db& db, int target);

}  // namespace yilian::storage
