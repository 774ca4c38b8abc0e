// The audit trail's storage: DIR/audit.sqlite, one append-only table. Triggers refuse
// UPDATE and DELETE; the hash chain (identity/audit.h) detects changes made around them.
// Separate from the index so that audit appends never contend with ingest commits.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "yilian/common/result.h"
#include "yilian/storage/records.h"

namespace yilian::storage {

namespace sql {
class Db;
}

class AuditLog {
 public:
  static Result<std::unique_ptr<AuditLog>> open(const std::filesystem::path& path);
  ~AuditLog();
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  // The newest record, if any.
  Result<std::optional<AuditRecord>> last();
  // Appends a record whose seq, prev_hash and hash the caller has already set.
  Status append(const AuditRecord& record);
  // Newest first, filtered.
  Result<std::vector<AuditRecord>> find(const AuditFilter& filter);
  // Every record in seq order (verification).
  Status scan(const std::function<bool(const AuditRecord&)>& visit);

 private:
  AuditLog();
  std::mutex mu_;
  std::unique_ptr<sql::Db> db_;
};

}  // namespace yilian::storage
