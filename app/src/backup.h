// Operating the data of an embedded install (SQLite): online backup, restore, and a check of
// every stored object against the index.
//
// A backup is itself a data directory: index.sqlite and audit.sqlite as one consistent view
// each (SQLite's online backup, while the hub runs), then every blob that view references,
// copied (or hard-linked with `link`) and flushed, then BACKUP.json, written last, which marks
// it complete. Blobs never change once stored, so a second backup into the same directory
// copies only the new ones. Everything acknowledged before a backup began is in it: an
// instance is acknowledged only after its blob is durable and its index row committed.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "yilian/common/result.h"

namespace yilian::app {

struct BackupOptions {
  // Hard-link blobs when the backup is on the same file system (instant, but then the
  // backup shares the disk, and any damage to it, with the data): a snapshot, not a copy.
  bool link = false;
};

// In the data directory: the manifest of its last backup and where it went (written by
// `yilian backup` once the backup is complete).
inline constexpr const char* kLastBackupFile = "last-backup.json";

struct BackupReport {
  std::int64_t blobs = 0;   // referenced by the backed-up index
  std::int64_t copied = 0;  // written by this run (copied or linked)
  std::int64_t kept = 0;    // already in the backup from an earlier run
  std::uint64_t bytes = 0;  // of the referenced blobs
  std::int64_t audit_records = 0;
};

// Backs up the data directory `data` into `to` (created, or an earlier backup to add to).
// Errors: invalid_argument (a PostgreSQL install: its databases are backed up with
// PostgreSQL's tools), not_found, io.
Result<BackupReport> backup(const std::filesystem::path& data, const std::filesystem::path& to,
                            const BackupOptions& options);

struct FsckReport {
  std::int64_t blobs = 0;      // referenced by the index
  std::int64_t checked = 0;    // of those, read and found intact
  std::int64_t unhashed = 0;   // of those, stored before content hashes were kept (no hash
                               // to check them against)
  std::int64_t orphans = 0;    // files under blobs/ no index row references (and not new)
  std::int64_t leftovers = 0;  // files in tmp/ (a crashed store; recovery removes them)
  std::int64_t audit_records = 0;
  bool audit_intact = false;
  std::vector<std::string> problems;  // one line each: missing, size, content, unreadable, audit
  bool clean() const { return problems.empty() && audit_intact; }
};

// Checks the data directory `data` (running or stopped, or a backup): every blob the index
// references exists with its recorded size and (unless `quick`) has the content hash taken
// when it was received and parses as the DICOM object the index says it is; files nothing
// references; the audit chain. Errors: invalid_argument
// (a PostgreSQL install), io.
Result<FsckReport> fsck(const std::filesystem::path& data, bool quick);

// Restores the backup `from` into `data`, which must not exist or be empty, and checks it
// (fsck). Errors: invalid_argument (not a complete backup, or `data` not empty), io.
Result<FsckReport> restore(const std::filesystem::path& from, const std::filesystem::path& data,
                           const BackupOptions& options);

// The commands (yilian backup / restore / fsck): what they did on stdout, why not on stderr;
// the exit status (fsck and restore: 1 when a problem was found, 2 when they could not run).
int backup_command(const std::string& data, const std::string& to, bool link);
int restore_command(const std::string& from, const std::string& data, bool link);
int fsck_command(const std::string& data, bool quick);

}  // namespace yilian::app
