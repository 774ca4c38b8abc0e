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
  return d;
}

DataDir::~DataDir() {
  index_.reset();
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the flock
}

}  // namespace yilian::app
