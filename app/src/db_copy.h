// `yilian db copy --from DIR --to postgresql://...`: an embedded install (its index, accounts,
// audit chain, reading queue and consults, in DIR's SQLite files) moved to PostgreSQL. The
// blobs stay where they are; DIR then names the database, so `serve --data DIR` continues on
// PostgreSQL (and can be joined by more nodes). The SQLite files are left as they were.
#pragma once

#include <filesystem>
#include <string>

namespace yilian::app {

// Prints each table's rows in the source and in the target, then the audit chain's check;
// 0 when every row arrived and the chain verifies.
int copy_to_postgres(const std::filesystem::path& from, const std::string& to);

}  // namespace yilian::app
