#include "data_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <fstream>

#include "schema.h"

namespace yilian::app {

namespace {

// The database URL a data directory remembers (database.url), written durably when it changes.
Result<std::string> remembered_url(const std::filesystem::path& root, const std::string& given) {
  const std::filesystem::path file = root / "database.url";
  if (given.empty()) {
    std::ifstream in(file);
    std::string url;
    std::getline(in, url);
    return url;
  }
  if (!storage::is_postgres_url(given)) {
    return make_error(Errc::invalid_argument, "the database must be a postgresql:// URL");
  }
  const std::filesystem::path tmp = root / "database.url.tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << given << "\n";
    if (!out.flush()) return make_error(Errc::io, "cannot write " + tmp.string());
  }
  if (Status s = storage::fsync_path(tmp, false); !s) return s.error();
  std::error_code ec;
  std::filesystem::rename(tmp, file, ec);
  if (ec) return make_error(Errc::io, "cannot write " + file.string() + ": " + ec.message());
  if (Status s = storage::fsync_path(root, true); !s) return s.error();
  return given;
}

}  // namespace

Result<std::unique_ptr<DataDir>> DataDir::open(const std::filesystem::path& root,
                                               const std::string& database_url) {
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
  auto url = remembered_url(root, database_url);
  if (!url.ok()) return url.error();
  d->database_url_ = *url;
  const bool postgres = !url->empty();
  auto db = open_index_database(postgres ? *url : (root / "index.sqlite").string());
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
  // lose the newest records, never the chain's consistency. On PostgreSQL the audit trail is
  // its own history in the same database.
  auto audit_db = storage::Database::open(
      postgres ? *url : (root / "audit.sqlite").string(),
      {.durable = false, .background_checkpoints = false, .history = "audit"});
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
