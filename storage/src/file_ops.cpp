#include "yilian/storage/file_ops.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>

namespace yilian::storage {

int FileOps::open(const char* path, int flags, mode_t mode) { return ::open(path, flags, mode); }
ssize_t FileOps::write(int fd, const void* data, std::size_t size) {
  return ::write(fd, data, size);
}
int FileOps::close(int fd) { return ::close(fd); }
int FileOps::fsync(int fd) { return ::fsync(fd); }
int FileOps::fdatasync(int fd) { return ::fdatasync(fd); }
int FileOps::syncfs(int fd) { return ::syncfs(fd); }
int FileOps::rename(const char* from, const char* to) { return ::rename(from, to); }
int FileOps::unlink(const char* path) { return ::unlink(path); }
int FileOps::mkdir(const char* path, mode_t mode) { return ::mkdir(path, mode); }

FileOps& system_file_ops() {
  static FileOps ops;  // no state: every member is the system call itself
  return ops;
}

}  // namespace yilian::storage
