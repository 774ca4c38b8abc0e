// The system calls through which the blob store creates, writes, flushes, renames and removes
// its files. They sit behind one interface so that tests can put faults under the store (a
// failed fsync or syncfs, ENOSPC, EIO, short writes) and check what it then acknowledges.
// Each call returns what the system call returns and sets errno the same way.
#pragma once

#include <sys/types.h>

#include <cstddef>

namespace yilian::storage {

class FileOps {
 public:
  virtual ~FileOps() = default;
  virtual int open(const char* path, int flags, mode_t mode);
  virtual ssize_t write(int fd, const void* data, std::size_t size);
  virtual int close(int fd);
  virtual int fsync(int fd);
  virtual int fdatasync(int fd);
  virtual int syncfs(int fd);
  virtual int rename(const char* from, const char* to);
  virtual int unlink(const char* path);
  virtual int mkdir(const char* path, mode_t mode);
};

// The plain system calls (stateless; shared by every store that is given no other).
FileOps& system_file_ops();

}  // namespace yilian::storage
