// Faults under the storage, for tests (in the spirit of LevelDB's fault-injection Env):
// FaultyFileOps goes under a BlobStore, FaultySqlite under the SQLite databases of a data
// directory. Each fails chosen calls with a chosen errno (or SQLite I/O error), a given number
// of times or until cleared, and counts what it injected.
#pragma once

#include <sqlite3.h>

#include <atomic>
#include <cstddef>
#include <map>
#include <mutex>
#include <string>

#include "yilian/storage/file_ops.h"

namespace yilian::testing {

enum class FileCall { open_create, write, close, fsync, syncfs, rename, unlink, mkdir };

class FaultyFileOps : public storage::FileOps {
 public:
  // The next `times` calls of `call` (-1: every call until clear()) on a path containing
  // `path_part` (empty: any) fail with `err`.
  void fail(FileCall call, int err, int times = -1, std::string path_part = {});
  // Every write takes at most `max_bytes` (0: no limit): short writes, which are legal.
  void short_writes(std::size_t max_bytes);
  void clear();
  std::size_t injected() const { return injected_; }

  int open(const char* path, int flags, mode_t mode) override;
  ssize_t write(int fd, const void* data, std::size_t size) override;
  int close(int fd) override;
  int fsync(int fd) override;
  int fdatasync(int fd) override;
  int syncfs(int fd) override;
  int rename(const char* from, const char* to) override;
  int unlink(const char* path) override;
  int mkdir(const char* path, mode_t mode) override;

 private:
  struct Rule {
    int err = 0;
    int times = 0;
    std::string path_part;
  };
  // errno to fail `call` on `path` with, or 0.
  int take(FileCall call, const std::string& path);
  std::string path_of(int fd);

  std::mutex mu_;
  std::map<FileCall, Rule> rules_;
  std::map<int, std::string> open_files_;
  std::size_t max_write_ = 0;
  std::atomic<std::size_t> injected_{0};
};

enum class SqliteCall { write, sync, truncate };

// A SQLite VFS over the default one; databases opened as "file:PATH?vfs=NAME" go through it.
// One per test; registered in the constructor, unregistered in the destructor.
class FaultySqlite {
 public:
  explicit FaultySqlite(std::string name = "yilian-faulty");
  ~FaultySqlite();
  FaultySqlite(const FaultySqlite&) = delete;
  FaultySqlite& operator=(const FaultySqlite&) = delete;

  // The URI that opens `path` through this VFS.
  std::string uri(const std::string& path) const;
  // The next `times` calls (-1: until cleared) of `call` on files whose name contains
  // `file_part` fail with `code` (SQLITE_IOERR_FSYNC, SQLITE_FULL, ...).
  void fail(SqliteCall call, int code, int times = -1, std::string file_part = {});
  void clear();
  std::size_t injected() const { return injected_; }

  // Used by the VFS's file methods.
  int take(SqliteCall call, const char* file);

 private:
  struct Rule {
    int code = 0;
    int times = 0;
    std::string file_part;
  };
  std::string name_;
  sqlite3_vfs vfs_{};
  std::mutex mu_;
  std::map<SqliteCall, Rule> rules_;
  std::atomic<std::size_t> injected_{0};
};

}  // namespace yilian::testing
