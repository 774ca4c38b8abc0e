// The audit trail's storage: DIR/audit.sqlite, one append-only table. Triggers refuse
// UPDATE and DELETE; the hash chain (identity/audit.h) detects changes made around them.
// Separate from the index so that audit appends never contend with ingest commits.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <vector>

#include "yilian/common/result.h"
#include "yilian/identity/records.h"
#include "yilian/storage/database.h"

namespace yilian::identity {

class AuditLog {
 public:
  // `db` is the audit database (its own file), migrated with schema(). Opened durable like
  // every store of acknowledged data: a record is on the disk once append() returns.
  explicit AuditLog(storage::Database& db);
  ~AuditLog();
  static std::span<const storage::SchemaStep> schema();
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  // The newest record, if any.
  Result<std::optional<AuditRecord>> last();
  // Appends records whose seq, prev_hash and hash the caller has already set, in one
  // transaction (all or none).
  Status append(std::span<const AuditRecord> records);
  // Newest first, filtered.
  Result<std::vector<AuditRecord>> find(const AuditFilter& filter);
  // Every record in seq order (verification).
  Status scan(const std::function<bool(const AuditRecord&)>& visit);

 private:
  storage::Database& db_;
};

}  // namespace yilian::identity
