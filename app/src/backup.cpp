#include "backup.h"

#include "data_dir.h"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>
#include <unordered_set>

#include "yilian/identity/accounts.h"
#include "yilian/identity/audit.h"
#include "yilian/identity/audit_log.h"
#include "yilian/storage/blob_store.h"
#include "yilian/storage/clock.h"
#include "yilian/storage/database.h"
#include "yilian/storage/sql.h"

namespace yilian::app {
namespace {

namespace fs = std::filesystem;
namespace sql = storage::sql;

constexpr const char* kManifest = "BACKUP.json";
// A file under blobs/ younger than this may be a store in flight (published, its index row
// not yet committed): not an orphan.
constexpr auto kOrphanAge = std::chrono::minutes(10);

Status refuse_postgres(const fs::path& data) {
  if (uses_postgres(data)) {
    return make_error(Errc::invalid_argument,
                      data.string() +
                          " keeps its databases in PostgreSQL: back them up with PostgreSQL's "
                          "own tools (pg_basebackup, pg_dump) and copy the blob directory");
  }
  return Status::Ok();
}

// `from` copied to `to` through a temp file that is flushed and renamed into place.
Status copy_durably(const fs::path& from, const fs::path& to) {
  fs::path part = to;
  part += ".part";
  std::error_code ec;
  fs::copy_file(from, part, fs::copy_options::overwrite_existing, ec);
  if (ec) return make_error(Errc::io, "copying " + from.string() + ": " + ec.message());
  if (Status s = storage::fsync_path(part, false); !s) return s;
  fs::rename(part, to, ec);
  if (ec) return make_error(Errc::io, "renaming " + part.string() + ": " + ec.message());
  return Status::Ok();
}

struct BlobRow {
  std::string key;
  std::int64_t size = 0;
  std::string sop_uid;
  std::string hash;  // empty: stored before hashes were kept
};

// Every blob an index references: instances and the conflicting copies kept beside them.
Result<std::vector<BlobRow>> referenced_blobs(storage::Database& db) {
  auto rd = db.read();
  if (!rd.ok()) return rd.error();
  std::vector<BlobRow> rows;
  Status s = sql::query(
      rd->conn(),
      "SELECT blob_key, size_bytes, sop_uid, coalesce(content_hash, '') FROM instances UNION ALL "
      "SELECT blob_key, size_bytes, sop_uid, coalesce(content_hash, '') FROM instance_conflicts",
      [](sql::Stmt&) {},
      [&](sql::Stmt& st) {
        rows.push_back({st.text(0), st.int64(1), st.text(2), st.text(3)});
      });
  if (!s) return s.error();
  return rows;
}

// What is wrong with the contents of the stored object `p` of `row`, if anything: its content
// hash (when one was taken at ingest), then its parse as the DICOM object the row names.
std::optional<std::string> content_problem(const fs::path& p, const BlobRow& row) {
  if (!row.hash.empty()) {
    auto hash = storage::content_hash(p);
    if (!hash.ok()) return "unreadable: " + row.sop_uid + " (" + hash.error().message + ")";
    if (*hash != row.hash) {
      return "content: " + row.sop_uid + " (" + p.string() +
             ") differs from the object received (hash " + *hash + ", received " + row.hash + ")";
    }
  }
  DcmFileFormat ff;
  OFString sop;
  // Every element's header is read (values over 1 KiB are skipped, not loaded): a file cut
  // short or not DICOM fails here.
  if (ff.loadFile(p.c_str(), EXS_Unknown, EGL_noChange, 1024).bad() ||
      ff.getDataset()->findAndGetOFString(DCM_SOPInstanceUID, sop).bad() ||
      std::string_view(sop.c_str()) != row.sop_uid) {
    return "unreadable: " + row.sop_uid + " (" + p.string() + " is not that DICOM object)";
  }
  return std::nullopt;
}

Result<std::unique_ptr<storage::Database>> open_sqlite(const fs::path& file) {
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) {
    return make_error(Errc::not_found, "no database at " + file.string());
  }
  return storage::Database::open(file.string(), {.durable = true, .background_checkpoints = false});
}

// The audit chain of a data directory, against the anchor its index holds.
Result<identity::ChainReport> verify_audit(const fs::path& dir) {
  std::optional<identity::AuditAnchor> anchor;
  {
    auto index = open_sqlite(dir / "index.sqlite");
    if (!index.ok()) return index.error();
    identity::Accounts accounts(**index);
    auto a = accounts.audit_anchor();
    if (!a.ok()) return a.error();
    anchor = *a;
  }
  auto db = open_sqlite(dir / "audit.sqlite");
  if (!db.ok()) return db.error();
  identity::AuditLog log(**db);
  return identity::verify_chain(log, anchor);
}

Status copy_blobs(const std::vector<BlobRow>& rows, const fs::path& from_root,
                  const fs::path& to_root, const BackupOptions& options, BackupReport& report) {
  storage::BlobStore from(from_root), to(to_root);
  if (Status s = to.init(); !s) return s;
  for (const BlobRow& row : rows) {
    const fs::path src = from.blob_path(row.key), dst = to.blob_path(row.key);
    ++report.blobs;
    report.bytes += static_cast<std::uint64_t>(row.size);
    std::error_code ec;
    if (fs::exists(dst, ec) && fs::file_size(dst, ec) == static_cast<std::uintmax_t>(row.size)) {
      ++report.kept;  // blobs never change: an earlier run's copy is this one
      continue;
    }
    fs::create_directories(dst.parent_path(), ec);
    if (ec) return make_error(Errc::io, "creating " + dst.parent_path().string());
    if (options.link) {
      fs::remove(dst, ec);
      if (::link(src.c_str(), dst.c_str()) == 0) {
        ++report.copied;
        continue;
      }
      if (errno == ENOENT) {
        return make_error(Errc::io, "the indexed object " + src.string() + " is gone");
      }
      // Another file system: copied instead.
    }
    if (Status s = copy_durably(src, dst); !s) return s;
    ++report.copied;
  }
  // The renames (and links) in the shard directories.
  return to.sync();
}

}  // namespace

Result<BackupReport> backup(const fs::path& data, const fs::path& to,
                            const BackupOptions& options) {
  if (Status s = refuse_postgres(data); !s) return s.error();
  std::error_code ec;
  if (!fs::is_regular_file(data / "index.sqlite", ec)) {
    return make_error(Errc::not_found, "no data directory at " + data.string());
  }
  fs::create_directories(to, ec);
  if (ec) return make_error(Errc::io, "creating " + to.string() + ": " + ec.message());
  // Not complete again until this run has finished.
  fs::remove(to / kManifest, ec);
  BackupReport report;
  // The databases first: the blobs to copy are those the index copy references, all durable
  // before their rows were committed.
  for (const char* name : {"index.sqlite", "audit.sqlite"}) {
    const fs::path part = to / (std::string(name) + ".part");
    fs::remove(part, ec);
    if (Status s = storage::snapshot_sqlite((data / name).string(), part.string()); !s) {
      return s.error();
    }
    for (const char* side : {"-wal", "-shm"}) fs::remove(to / (std::string(name) + side), ec);
    fs::rename(part, to / name, ec);
    if (ec) return make_error(Errc::io, "renaming " + part.string() + ": " + ec.message());
  }
  {
    auto index = open_sqlite(to / "index.sqlite");
    if (!index.ok()) return index.error();
    auto rows = referenced_blobs(**index);
    if (!rows.ok()) return rows.error();
    if (Status s = copy_blobs(*rows, blob_root(data), to, options, report); !s) return s.error();
  }
  auto audit = verify_audit(to);
  if (!audit.ok()) return audit.error();
  report.audit_records = audit->records;
  const nlohmann::json manifest = {
      {"createdAt", storage::to_iso8601(std::chrono::system_clock::now())},
      {"source", fs::absolute(data).string()},
      {"blobs", report.blobs},
      {"bytes", report.bytes},
      {"auditRecords", report.audit_records},
      {"auditIntact", audit->intact},
      {"linked", options.link}};
  if (Status s = storage::write_file_durably(to / kManifest, manifest.dump(2) + "\n"); !s) {
    return s.error();
  }
  // The data directory remembers its last backup (the administration screen shows it).
  nlohmann::json last = manifest;
  last["to"] = fs::absolute(to).string();
  if (Status s = storage::write_file_durably(data / kLastBackupFile, last.dump(2) + "\n"); !s) {
    return s.error();
  }
  return report;
}

Result<FsckReport> fsck(const fs::path& data, bool quick) {
  if (Status s = refuse_postgres(data); !s) return s.error();
  FsckReport report;
  const fs::path root = blob_root(data);
  storage::BlobStore blobs(root);
  std::unordered_set<std::string> referenced;
  {
    auto index = open_sqlite(data / "index.sqlite");
    if (!index.ok()) return index.error();
    auto rows = referenced_blobs(**index);
    if (!rows.ok()) return rows.error();
    for (const BlobRow& row : *rows) {
      ++report.blobs;
      referenced.insert(row.key);
      const fs::path p = blobs.blob_path(row.key);
      std::error_code ec;
      const auto size = fs::file_size(p, ec);
      if (ec) {
        report.problems.push_back("missing: " + row.sop_uid + " (" + p.string() + ")");
        continue;
      }
      if (size != static_cast<std::uintmax_t>(row.size)) {
        report.problems.push_back("size: " + row.sop_uid + " is " + std::to_string(size) +
                                  " bytes, the index says " + std::to_string(row.size) + " (" +
                                  p.string() + ")");
        continue;
      }
      if (!quick) {
        if (row.hash.empty()) ++report.unhashed;
        if (auto problem = content_problem(p, row)) {
          report.problems.push_back(std::move(*problem));
          continue;
        }
      }
      ++report.checked;
    }
  }
  auto keys = blobs.list_keys();
  if (!keys.ok()) return keys.error();
  const auto now = fs::file_time_type::clock::now();
  for (const std::string& key : *keys) {
    if (referenced.count(key)) continue;
    std::error_code ec;
    const auto at = fs::last_write_time(blobs.blob_path(key), ec);
    if (!ec && now - at < kOrphanAge) continue;
    ++report.orphans;
  }
  std::error_code ec;
  for (fs::recursive_directory_iterator it(root / "tmp", ec), end; !ec && it != end;
       it.increment(ec)) {
    if (it->is_regular_file(ec)) ++report.leftovers;
  }
  auto audit = verify_audit(data);
  if (!audit.ok()) return audit.error();
  report.audit_records = audit->records;
  report.audit_intact = audit->intact;
  if (!audit->intact) {
    report.problems.push_back("audit: the chain breaks at record " +
                              std::to_string(audit->first_bad_seq) + ": " + audit->problem);
  }
  return report;
}

Result<FsckReport> restore(const fs::path& from, const fs::path& data,
                           const BackupOptions& options) {
  std::error_code ec;
  if (!fs::is_regular_file(from / kManifest, ec)) {
    return make_error(Errc::invalid_argument,
                      from.string() + " is not a complete backup (no " + kManifest + ")");
  }
  if (fs::exists(data, ec) && !fs::is_empty(data, ec)) {
    return make_error(Errc::invalid_argument,
                      data.string() + " is not empty: restore into a new directory");
  }
  fs::create_directories(data, ec);
  if (ec) return make_error(Errc::io, "creating " + data.string() + ": " + ec.message());
  for (const char* name : {"index.sqlite", "audit.sqlite"}) {
    if (Status s = copy_durably(from / name, data / name); !s) return s.error();
  }
  {
    auto index = open_sqlite(data / "index.sqlite");
    if (!index.ok()) return index.error();
    auto rows = referenced_blobs(**index);
    if (!rows.ok()) return rows.error();
    BackupReport copied;
    if (Status s = copy_blobs(*rows, from, data, options, copied); !s) return s.error();
  }
  if (Status s = storage::fsync_path(data, true); !s) return s.error();
  return fsck(data, false);
}

namespace {

int cannot(const Error& e) {
  std::fprintf(stderr, "error: %s\n", e.message.c_str());
  return 2;
}

int print_fsck(const FsckReport& r) {
  for (const std::string& p : r.problems) std::printf("%s\n", p.c_str());
  std::printf(
      "%lld objects indexed, %lld intact%s; %lld unreferenced files, %lld temp files; audit "
      "trail %s (%lld records)\n",
      static_cast<long long>(r.blobs), static_cast<long long>(r.checked),
      r.unhashed > 0
          ? (" (" + std::to_string(r.unhashed) + " stored before content hashes)").c_str()
          : "",
      static_cast<long long>(r.orphans), static_cast<long long>(r.leftovers),
      r.audit_intact ? "intact" : "BROKEN", static_cast<long long>(r.audit_records));
  std::printf("%s\n", r.clean() ? "clean" : "PROBLEMS FOUND");
  return r.clean() ? 0 : 1;
}

}  // namespace

int backup_command(const std::string& data, const std::string& to, bool link) {
  auto r = backup(data, to, {.link = link});
  if (!r.ok()) return cannot(r.error());
  std::printf(
      "backup of %s in %s: %lld objects (%.1f MB), %lld %s now, %lld there before; audit trail "
      "%lld records\n",
      data.c_str(), to.c_str(), static_cast<long long>(r->blobs), r->bytes / 1e6,
      static_cast<long long>(r->copied), link ? "linked or copied" : "copied",
      static_cast<long long>(r->kept), static_cast<long long>(r->audit_records));
  return 0;
}

int restore_command(const std::string& from, const std::string& data, bool link) {
  auto r = restore(from, data, {.link = link});
  if (!r.ok()) return cannot(r.error());
  std::printf("restored %s into %s\n", from.c_str(), data.c_str());
  return print_fsck(*r);
}

int fsck_command(const std::string& data, bool quick) {
  auto r = fsck(data, quick);
  if (!r.ok()) return cannot(r.error());
  return print_fsck(*r);
}

}  // namespace yilian::app
