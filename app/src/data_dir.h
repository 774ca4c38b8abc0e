// The --data directory: blob store, cache, and an exclusive lock so that two processes (a
// running hub and an import, say) never recover or write the same store at once; and the
// databases: the index (with accounts, queue, consults) and the audit trail, as SQLite files
// here (index.sqlite, audit.sqlite) or in the PostgreSQL database the directory names. A data
// directory opened once with a database URL remembers it (database.url), so every later
// command on it (user, institution, import, audit) uses the same database.
//
// Several nodes: each node has a data directory of its own (lock, cache, node id) and names
// the same PostgreSQL database and the same shared blob directory; the directory remembers
// both (database.url, blobs.path) and its node id (node.id).
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

// Where the blobs of the data directory `data` are: its own, or the shared directory it
// remembers (blobs.path). Read only: for tools that do not open the directory (backup, fsck).
std::filesystem::path blob_root(const std::filesystem::path& data);
// Whether `data` keeps its databases in PostgreSQL (it remembers a database.url).
bool uses_postgres(const std::filesystem::path& data);

class DataDir {
 public:
  // `database_url` (postgresql://...) sets the directory's database; empty keeps the one it
  // has (SQLite files unless it was given a URL before). `blobs` (a directory shared by
  // several nodes) likewise sets where DICOM objects are kept; empty keeps the directory's
  // own (or the shared one it was given before).
  static Result<std::unique_ptr<DataDir>> open(const std::filesystem::path& root,
                                               const std::string& database_url = {},
                                               const std::string& blobs = {});
  // This node's id (8 hex digits), made on first use and kept.
  const std::string& node_id() const { return node_id_; }
  // The PostgreSQL URL in use, or empty for the SQLite files.
  const std::string& database_url() const { return database_url_; }
  ~DataDir();

  pacs::Index& index() { return *index_; }
  storage::Database& database() { return *database_; }
  storage::Database& audit_database() { return *audit_db_; }
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
  std::string database_url_;
  std::string node_id_;
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
