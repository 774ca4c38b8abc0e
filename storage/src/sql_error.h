#pragma once

#include <sqlite3.h>

#include <string_view>

#include "yilian/common/result.h"

namespace yilian::storage::sql {

// A SQLite result code as a yilian::Error (busy -> unavailable, constraint -> conflict, ...).
Error sqlite_error(sqlite3* db, int rc, std::string_view what);

}  // namespace yilian::storage::sql
