#include "data_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include "schema.h"

namespace yilian::app {

Result<std::unique_ptr<DataDir>> DataDir::open(const std::filesystem::path& root) {
  std::unique_ptr<DataDir> d(new DataDir());
  std::error_code ec;
  std::filesystem::create_directories(root, ec);
  if (ec) return make_error(Errc::io, "cannot create " + root.string() + ": " + ec.message());
  std::filesystem::path lock = root / "LOCK";
  d->lock_fd_ = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
  if (d->lock_fd_ < 0) return make_error(Errc::io, "cannot open " + lock.string());
  if (::flock(d->lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    return make_error(Errc::unavailable,
                      "data directory " + root.string() + " is in use by another yilian process");
  }
  d->blobs_ = std::make_unique<storage::BlobStore>(root);
  if (Status s = d->blobs_->init(); !s) return s.error();
  auto db = open_index_database(root / "index.sqlite");
  if (!db.ok()) return db.error();
  d->database_ = std::move(db).value();
  d->index_ = pacs::Index::open(*d->database_);
  d->accounts_ = std::make_unique<identity::Accounts>(*d->database_);
  d->queue_ = std::make_unique<reading::QueueStore>(*d->database_);
  d->consults_ = std::make_unique<teleconsult::ConsultStore>(*d->database_);
  d->cases_ = std::make_unique<teleconsult::CaseStore>(*d->database_);
  d->referrals_ = std::make_unique<teleconsult::ReferralStore>(*d->database_);
  d->notifications_ = std::make_unique<teleconsult::NotificationStore>(*d->database_);
  // NORMAL in WAL mode for the audit trail: a process crash loses nothing; a power loss may
  // lose the newest records, never the chain's consistency.
  auto audit_db = storage::Database::open((root / "audit.sqlite").string(),
                                          {.durable = false, .background_checkpoints = false});
  if (!audit_db.ok()) return audit_db.error();
  d->audit_db_ = std::move(audit_db).value();
  if (auto v = d->audit_db_->migrate(identity::AuditLog::schema()); !v.ok()) return v.error();
  d->audit_log_ = std::make_unique<identity::AuditLog>(*d->audit_db_);
  auto auditor =
      identity::Auditor::open(*d->audit_log_, [] { return std::chrono::system_clock::now(); });
  if (!auditor.ok()) return auditor.error();
  d->auditor_ = std::move(auditor).value();
  return d;
}

DataDir::~DataDir() {
  auditor_.reset();
  audit_log_.reset();
  notifications_.reset();
  referrals_.reset();
  cases_.reset();
  consults_.reset();
  queue_.reset();
  accounts_.reset();
  index_.reset();
  audit_db_.reset();
  database_.reset();
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the flock
}

}  // namespace yilian::app
