#include "data_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

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
  auto idx = storage::Index::open(root / "index.sqlite");
  if (!idx.ok()) return idx.error();
  d->index_ = std::move(idx).value();
  auto accounts = storage::Accounts::open(root / "index.sqlite");
  if (!accounts.ok()) return accounts.error();
  d->accounts_ = std::move(accounts).value();
  auto queue = storage::QueueStore::open(root / "index.sqlite");
  if (!queue.ok()) return queue.error();
  d->queue_ = std::move(queue).value();
  auto consults = storage::ConsultStore::open(root / "index.sqlite");
  if (!consults.ok()) return consults.error();
  d->consults_ = std::move(consults).value();
  auto log = storage::AuditLog::open(root / "audit.sqlite");
  if (!log.ok()) return log.error();
  d->audit_log_ = std::move(log).value();
  auto auditor =
      identity::Auditor::open(*d->audit_log_, [] { return std::chrono::system_clock::now(); });
  if (!auditor.ok()) return auditor.error();
  d->auditor_ = std::move(auditor).value();
  return d;
}

DataDir::~DataDir() {
  auditor_.reset();
  audit_log_.reset();
  consults_.reset();
  queue_.reset();
  accounts_.reset();
  index_.reset();
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the flock
}

}  // namespace yilian::app
