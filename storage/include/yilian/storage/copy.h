// Moving an embedded install to PostgreSQL: every row of a SQLite database copied into the
// same tables of a PostgreSQL database migrated to the same schema version.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "yilian/common/result.h"
#include "yilian/storage/database.h"

namespace yilian::storage {

struct TableCopy {
  std::string table;
  std::int64_t source_rows = 0, copied_rows = 0;
};

// Copies every table of `from` (SQLite) but those in `skip` into `to` (PostgreSQL, at the
// same schema version and without rows in those tables): parents before the tables that
// refer to them, row ids kept (each table's id counter then continues after them), values as
// they are. A row that cannot be written stops the copy with its table named; what was
// copied before stays, so the target must be a fresh database to try again. `progress` is
// told each table with its row count as it is finished.
Result<std::vector<TableCopy>> copy_tables(
    Database& from, Database& to, const std::vector<std::string>& skip,
    const std::function<void(const TableCopy&)>& progress = {});

// The rows of `table` now.
Result<std::int64_t> count_rows(Database& db, const std::string& table);

}  // namespace yilian::storage
