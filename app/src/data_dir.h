// The --data directory: index, accounts, audit trail (audit.sqlite), blob store, and an
// exclusive lock so that two processes
// (a running hub and an import, say) never recover or write the same store at once.
#pragma once

#include <filesystem>
#include <memory>

#include "yilian/common/result.h"
#include "yilian/identity/accounts.h"
#include "yilian/identity/audit.h"
#include "yilian/identity/audit_log.h"
#include "yilian/pacs/index.h"
#include "yilian/reading/queue_store.h"
#include "yilian/storage/blob_store.h"
#include "yilian/storage/database.h"
#include "yilian/teleconsult/stores.h"

namespace yilian::app {

class DataDir {
 public:
  static Result<std::unique_ptr<DataDir>> open(const std::filesystem::path& root);
  ~DataDir();

  pacs::Index& index() { return *index_; }
  storage::BlobStore& blobs() { return *blobs_; }
  identity::Accounts& accounts() { return *accounts_; }
  reading::QueueStore& queue() { return *queue_; }
  teleconsult::ConsultStore& consults() { return *consults_; }
  teleconsult::CaseStore& cases() { return *cases_; }
  teleconsult::ReferralStore& referrals() { return *referrals_; }
  teleconsult::NotificationStore& notifications() { return *notifications_; }
  teleconsult::Stores teleconsult_stores() {
    return {*consults_, *cases_, *referrals_, *notifications_};
  }
  identity::Auditor& auditor() { return *auditor_; }

 private:
  DataDir() = default;
  int lock_fd_ = -1;
  std::unique_ptr<storage::Database> database_;  // index.sqlite
  std::unique_ptr<storage::Database> audit_db_;  // audit.sqlite
  std::unique_ptr<pacs::Index> index_;
  std::unique_ptr<storage::BlobStore> blobs_;
  std::unique_ptr<identity::Accounts> accounts_;
  std::unique_ptr<reading::QueueStore> queue_;
  std::unique_ptr<teleconsult::ConsultStore> consults_;
  std::unique_ptr<teleconsult::CaseStore> cases_;
  std::unique_ptr<teleconsult::ReferralStore> referrals_;
  std::unique_ptr<teleconsult::NotificationStore> notifications_;
  std::unique_ptr<identity::AuditLog> audit_log_;
  std::unique_ptr<identity::Auditor> auditor_;
};

}  // namespace yilian::app
