// Helpers shared by the teleconsult stores (private).
#pragma once

#include <optional>
#include <string>
#include <utility>

#include "yilian/common/result.h"
#include "yilian/storage/sql.h"

namespace yilian::teleconsult {

// The row `select` (columns, FROM, no WHERE) finds with `alias`.id = id, read by `read`.
template <typename Read>
auto row_by_id(storage::sql::Db& db, const char* select, const char* alias, std::int64_t id,
               Read read)
    -> Result<std::optional<decltype(read(std::declval<const storage::sql::Stmt&>()))>> {
  std::optional<decltype(read(std::declval<const storage::sql::Stmt&>()))> out;
  if (Status s = storage::sql::query(
          db, std::string("SELECT ") + select + " WHERE " + alias + ".id = ?1",
          [&](storage::sql::Stmt& st) { st.bind(1, id); },
          [&](storage::sql::Stmt& st) { out = read(st); });
      !s)
    return s.error();
  return out;
}

}  // namespace yilian::teleconsult
