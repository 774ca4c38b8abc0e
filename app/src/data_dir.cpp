#include "data_dir.h"

#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <fstream>

#include "schema.h"
#include "yilian/storage/cluster.h"

namespace yilian::app {

namespace {

// A setting a data directory remembers in the one-line file `name` (database.url, blobs.path,
// node.id), written durably when it changes; `given` empty reads what is there.
Result<std::string> remembered(const std::filesystem::path& root, const std::string& name,
                               const std::string& given) {
  const std::filesystem::path file = root / name;
  if (given.empty()) {
    std::ifstream in(file);
    std::string value;
    std::getline(in, value);
    return value;
  }
  if (Status s = storage::write_file_durably(file, given + "\n"); !s) return s.error();
  return given;
}

}  // namespace

std::filesystem::path blob_root(const std::filesystem::path& data) {
  auto shared = remembered(data, "blobs.path", {});
  return shared.ok() && !shared->empty() ? std::filesystem::path(*shared) : data;
}

bool uses_postgres(const std::filesystem::path& data) {
  auto url = remembered(data, "database.url", {});
  return url.ok() && !url->empty();
}

Result<std::unique_ptr<DataDir>> DataDir::open(const std::filesystem::path& root,
                                               const std::string& database_url,
                                               const std::string& blobs) {
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
  if (!database_url.empty() && !storage::is_postgres_url(database_url)) {
    return make_error(Errc::invalid_argument, "the database must be a postgresql:// URL");
  }
  auto node = remembered(root, "node.id", {});
  if (!node.ok()) return node.error();
  if (!storage::valid_node_id(*node)) node = remembered(root, "node.id", storage::new_node_id());
  if (!node.ok()) return node.error();
  d->node_id_ = *node;
  auto shared = remembered(root, "blobs.path",
                           blobs.empty() ? blobs : std::filesystem::absolute(blobs).string());
  if (!shared.ok()) return shared.error();
  d->blobs_ = shared->empty()
                  ? std::make_unique<storage::BlobStore>(root, d->node_id_)
                  : std::make_unique<storage::BlobStore>(*shared, d->node_id_, /*shared=*/true);
  if (Status s = d->blobs_->init(); !s) return s.error();
  auto url = remembered(root, "database.url", database_url);
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
  // The audit trail is as durable as what it records (synchronous=FULL; the Auditor writes
  // the records of concurrent callers with one flush). On PostgreSQL the audit trail is its
  // own history in the same database.
  auto audit_db = storage::Database::open(
      postgres ? *url : (root / "audit.sqlite").string(),
      {.durable = true, .background_checkpoints = false, .history = "audit"});
  if (!audit_db.ok()) return audit_db.error();
  d->audit_db_ = std::move(audit_db).value();
  if (auto v = d->audit_db_->migrate(identity::AuditLog::schema()); !v.ok()) return v.error();
  d->audit_log_ = std::make_unique<identity::AuditLog>(*d->audit_db_);
  auto auditor =
      identity::Auditor::open(*d->audit_log_, [] { return std::chrono::system_clock::now(); });
  if (!auditor.ok()) return auditor.error();
  d->auditor_ = std::move(auditor).value();
  // The chain's head written down in the index once a minute (and at a clean stop), and
  // logged once a day, so that removing the newest records is found by `audit verify`.
  d->auditor_->anchor_with(
      [accounts = d->accounts_.get(),
       logged = std::optional<std::string>{}](const identity::AuditAnchor& a) mutable -> Status {
        Status s = accounts->anchor_audit(a);
        if (!s) {
          spdlog::warn("audit anchor: {}", s.error().message);
        } else if (!logged || a.anchored_at.substr(0, 10) != logged->substr(0, 10)) {
          logged = a.anchored_at;
          spdlog::info("audit trail head: record {} {}", a.seq, a.hash);
        }
        return s;
      },
      std::chrono::seconds(60));
  return d;
}

DataDir::~DataDir() {
  if (auditor_ && accounts_) {
    if (identity::AuditAnchor head = auditor_->head(); head.seq > 0) {
      (void)accounts_->anchor_audit(head);
    }
  }
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
