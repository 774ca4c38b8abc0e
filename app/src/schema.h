// The index database as the hub uses it: every module's schema steps in one history.
#pragma once

#include <climits>
#include <filesystem>
#include <memory>
#include <vector>

#include "yilian/common/result.h"
#include "yilian/storage/database.h"

namespace yilian::app {

// Every module's steps (pacs, identity, reading, teleconsult), ordered by version.
std::vector<storage::SchemaStep> consortium_schema();

// Opens (creating if needed) the index database at `path` (":memory:" for a private one)
// and migrates it to `target` (default: the newest version).
Result<std::unique_ptr<storage::Database>> open_index_database(const std::filesystem::path& path,
                                                               int target = INT_MAX);

}  // namespace yilian::app
