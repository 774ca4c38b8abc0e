// The --data directory: index, accounts, audit trail (audit.sqlite), blob store, and an
// exclusive lock so that two processes
// (a running hub and an import, say) never recover or write the same store at once.
#pragma once

#include <filesystem>
#include <memory>

#include "yilian/common/result.h"
#include "yilian/identity/audit.h"
#include "yilian/storage/accounts.h"
#include "yilian/storage/audit_log.h"
#include "yilian/storage/blob_store.h"
#include "yilian/storage/consult_store.h"
#include "yilian/storage/index.h"
#include "yilian/storage/queue_store.h"

namespace yilian::app {

class DataDir {
 public:
  static Result<std::unique_ptr<DataDir>> open(const std::filesystem::path& root);
  ~DataDir();

  storage::Index& index() { return *index_; }
  storage::BlobStore& blobs() { return *blobs_; }
  storage::Accounts& accounts() { return *accounts_; }
  storage::QueueStore& queue() { return *queue_; }
  storage::ConsultStore& consults() { return *consults_; }
  identity::Auditor& auditor() { return *auditor_; }

 private:
  DataDir() = default;
  int lock_fd_ = -1;
  std::unique_ptr<storage::Index> index_;
  std::unique_ptr<storage::BlobStore> blobs_;
  std::unique_ptr<storage::Accounts> accounts_;
  std::unique_ptr<storage::QueueStore> queue_;
  std::unique_ptr<storage::ConsultStore> consults_;
  std::unique_ptr<storage::AuditLog> audit_log_;
  std::unique_ptr<identity::Auditor> auditor_;
};

}  // namespace yilian::app
