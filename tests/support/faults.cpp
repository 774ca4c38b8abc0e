#include "faults.h"

#include <fcntl.h>

#include <cerrno>
#include <cstring>

namespace yilian::testing {

// --- FaultyFileOps ----------------------------------------------------------------------------

void FaultyFileOps::fail(FileCall call, int err, int times, std::string path_part) {
  std::lock_guard lock(mu_);
  rules_[call] = Rule{err, times, std::move(path_part)};
}

void FaultyFileOps::short_writes(std::size_t max_bytes) {
  std::lock_guard lock(mu_);
  max_write_ = max_bytes;
}

void FaultyFileOps::clear() {
  std::lock_guard lock(mu_);
  rules_.clear();
  max_write_ = 0;
}

int FaultyFileOps::take(FileCall call, const std::string& path) {
  std::lock_guard lock(mu_);
  auto it = rules_.find(call);
  if (it == rules_.end() || it->second.times == 0) return 0;
  if (!it->second.path_part.empty() && path.find(it->second.path_part) == std::string::npos)
    return 0;
  if (it->second.times > 0) --it->second.times;
  ++injected_;
  return it->second.err;
}

std::string FaultyFileOps::path_of(int fd) {
  std::lock_guard lock(mu_);
  auto it = open_files_.find(fd);
  return it == open_files_.end() ? std::string() : it->second;
}

int FaultyFileOps::open(const char* path, int flags, mode_t mode) {
  if ((flags & O_CREAT) != 0) {
    if (int err = take(FileCall::open_create, path)) {
      errno = err;
      return -1;
    }
  }
  int fd = FileOps::open(path, flags, mode);
  if (fd >= 0) {
    std::lock_guard lock(mu_);
    open_files_[fd] = path;
  }
  return fd;
}

ssize_t FaultyFileOps::write(int fd, const void* data, std::size_t size) {
  if (int err = take(FileCall::write, path_of(fd))) {
    errno = err;
    return -1;
  }
  std::size_t n = size;
  {
    std::lock_guard lock(mu_);
    if (max_write_ > 0 && n > max_write_) {
      n = max_write_;
      ++injected_;
    }
  }
  return FileOps::write(fd, data, n);
}

int FaultyFileOps::close(int fd) {
  std::string path = path_of(fd);
  {
    std::lock_guard lock(mu_);
    open_files_.erase(fd);
  }
  int rc = FileOps::close(fd);
  if (int err = take(FileCall::close, path)) {  // closed, but reporting a deferred error
    errno = err;
    return -1;
  }
  return rc;
}

int FaultyFileOps::fsync(int fd) {
  if (int err = take(FileCall::fsync, path_of(fd))) {
    errno = err;
    return -1;
  }
  return FileOps::fsync(fd);
}

int FaultyFileOps::fdatasync(int fd) {
  if (int err = take(FileCall::fsync, path_of(fd))) {
    errno = err;
    return -1;
  }
  return FileOps::fdatasync(fd);
}

int FaultyFileOps::syncfs(int fd) {
  if (int err = take(FileCall::syncfs, path_of(fd))) {
    errno = err;
    return -1;
  }
  return FileOps::syncfs(fd);
}

int FaultyFileOps::rename(const char* from, const char* to) {
  if (int err = take(FileCall::rename, to)) {
    errno = err;
    return -1;
  }
  return FileOps::rename(from, to);
}

int FaultyFileOps::unlink(const char* path) {
  if (int err = take(FileCall::unlink, path)) {
    errno = err;
    return -1;
  }
  return FileOps::unlink(path);
}

int FaultyFileOps::mkdir(const char* path, mode_t mode) {
  if (int err = take(FileCall::mkdir, path)) {
    errno = err;
    return -1;
  }
  return FileOps::mkdir(path, mode);
}

// --- FaultySqlite -----------------------------------------------------------------------------

namespace {

// Our file: the default VFS's file lives right after it.
struct FaultyFile {
  sqlite3_file base;
  FaultySqlite* owner;
  const char* name;
  sqlite3_file* real() { return reinterpret_cast<sqlite3_file*>(this + 1); }
};

FaultyFile* faulty(sqlite3_file* f) { return reinterpret_cast<FaultyFile*>(f); }
sqlite3_vfs* base_vfs() { return sqlite3_vfs_find(nullptr); }
FaultySqlite* owner_of(sqlite3_vfs* v) { return static_cast<FaultySqlite*>(v->pAppData); }

int f_close(sqlite3_file* f) { return faulty(f)->real()->pMethods->xClose(faulty(f)->real()); }
int f_read(sqlite3_file* f, void* p, int n, sqlite3_int64 off) {
  return faulty(f)->real()->pMethods->xRead(faulty(f)->real(), p, n, off);
}
int f_write(sqlite3_file* f, const void* p, int n, sqlite3_int64 off) {
  if (int code = faulty(f)->owner->take(SqliteCall::write, faulty(f)->name)) return code;
  return faulty(f)->real()->pMethods->xWrite(faulty(f)->real(), p, n, off);
}
int f_truncate(sqlite3_file* f, sqlite3_int64 size) {
  if (int code = faulty(f)->owner->take(SqliteCall::truncate, faulty(f)->name)) return code;
  return faulty(f)->real()->pMethods->xTruncate(faulty(f)->real(), size);
}
int f_sync(sqlite3_file* f, int flags) {
  if (int code = faulty(f)->owner->take(SqliteCall::sync, faulty(f)->name)) return code;
  return faulty(f)->real()->pMethods->xSync(faulty(f)->real(), flags);
}
int f_file_size(sqlite3_file* f, sqlite3_int64* size) {
  return faulty(f)->real()->pMethods->xFileSize(faulty(f)->real(), size);
}
int f_lock(sqlite3_file* f, int l) {
  return faulty(f)->real()->pMethods->xLock(faulty(f)->real(), l);
}
int f_unlock(sqlite3_file* f, int l) {
  return faulty(f)->real()->pMethods->xUnlock(faulty(f)->real(), l);
}
int f_check_reserved(sqlite3_file* f, int* out) {
  return faulty(f)->real()->pMethods->xCheckReservedLock(faulty(f)->real(), out);
}
int f_file_control(sqlite3_file* f, int op, void* arg) {
  return faulty(f)->real()->pMethods->xFileControl(faulty(f)->real(), op, arg);
}
int f_sector_size(sqlite3_file* f) {
  return faulty(f)->real()->pMethods->xSectorSize(faulty(f)->real());
}
int f_device(sqlite3_file* f) {
  return faulty(f)->real()->pMethods->xDeviceCharacteristics(faulty(f)->real());
}
int f_shm_map(sqlite3_file* f, int region, int size, int extend, void volatile** p) {
  return faulty(f)->real()->pMethods->xShmMap(faulty(f)->real(), region, size, extend, p);
}
int f_shm_lock(sqlite3_file* f, int offset, int n, int flags) {
  return faulty(f)->real()->pMethods->xShmLock(faulty(f)->real(), offset, n, flags);
}
void f_shm_barrier(sqlite3_file* f) { faulty(f)->real()->pMethods->xShmBarrier(faulty(f)->real()); }
int f_shm_unmap(sqlite3_file* f, int del) {
  return faulty(f)->real()->pMethods->xShmUnmap(faulty(f)->real(), del);
}
int f_fetch(sqlite3_file* f, sqlite3_int64 off, int n, void** p) {
  return faulty(f)->real()->pMethods->xFetch(faulty(f)->real(), off, n, p);
}
int f_unfetch(sqlite3_file* f, sqlite3_int64 off, void* p) {
  return faulty(f)->real()->pMethods->xUnfetch(faulty(f)->real(), off, p);
}

const sqlite3_io_methods kFaultyMethods = {
    3,           f_close,   f_read,     f_write,          f_truncate,     f_sync,
    f_file_size, f_lock,    f_unlock,   f_check_reserved, f_file_control, f_sector_size,
    f_device,    f_shm_map, f_shm_lock, f_shm_barrier,    f_shm_unmap,    f_fetch,
    f_unfetch};

int v_open(sqlite3_vfs* v, const char* name, sqlite3_file* file, int flags, int* out_flags) {
  FaultyFile* f = faulty(file);
  f->base.pMethods = nullptr;
  f->owner = owner_of(v);
  f->name = name ? name : "";
  int rc = base_vfs()->xOpen(base_vfs(), name, f->real(), flags, out_flags);
  if (f->real()->pMethods) f->base.pMethods = &kFaultyMethods;
  return rc;
}
int v_delete(sqlite3_vfs*, const char* name, int sync_dir) {
  return base_vfs()->xDelete(base_vfs(), name, sync_dir);
}
int v_access(sqlite3_vfs*, const char* name, int flags, int* out) {
  return base_vfs()->xAccess(base_vfs(), name, flags, out);
}
int v_full_pathname(sqlite3_vfs*, const char* name, int n, char* out) {
  return base_vfs()->xFullPathname(base_vfs(), name, n, out);
}
void* v_dl_open(sqlite3_vfs*, const char* name) { return base_vfs()->xDlOpen(base_vfs(), name); }
void v_dl_error(sqlite3_vfs*, int n, char* out) { base_vfs()->xDlError(base_vfs(), n, out); }
void (*v_dl_sym(sqlite3_vfs*, void* h, const char* sym))(void) {
  return base_vfs()->xDlSym(base_vfs(), h, sym);
}
void v_dl_close(sqlite3_vfs*, void* h) { base_vfs()->xDlClose(base_vfs(), h); }
int v_randomness(sqlite3_vfs*, int n, char* out) {
  return base_vfs()->xRandomness(base_vfs(), n, out);
}
int v_sleep(sqlite3_vfs*, int us) { return base_vfs()->xSleep(base_vfs(), us); }
int v_current_time(sqlite3_vfs*, double* t) { return base_vfs()->xCurrentTime(base_vfs(), t); }
int v_last_error(sqlite3_vfs*, int n, char* out) {
  return base_vfs()->xGetLastError(base_vfs(), n, out);
}
int v_current_time64(sqlite3_vfs*, sqlite3_int64* t) {
  return base_vfs()->xCurrentTimeInt64(base_vfs(), t);
}

}  // namespace

FaultySqlite::FaultySqlite(std::string name) : name_(std::move(name)) {
  sqlite3_vfs* base = base_vfs();
  vfs_.iVersion = 2;
  vfs_.szOsFile = static_cast<int>(sizeof(FaultyFile)) + base->szOsFile;
  vfs_.mxPathname = base->mxPathname;
  vfs_.zName = name_.c_str();
  vfs_.pAppData = this;
  vfs_.xOpen = v_open;
  vfs_.xDelete = v_delete;
  vfs_.xAccess = v_access;
  vfs_.xFullPathname = v_full_pathname;
  vfs_.xDlOpen = v_dl_open;
  vfs_.xDlError = v_dl_error;
  vfs_.xDlSym = v_dl_sym;
  vfs_.xDlClose = v_dl_close;
  vfs_.xRandomness = v_randomness;
  vfs_.xSleep = v_sleep;
  vfs_.xCurrentTime = v_current_time;
  vfs_.xGetLastError = v_last_error;
  vfs_.xCurrentTimeInt64 = v_current_time64;
  sqlite3_vfs_register(&vfs_, 0);
}

FaultySqlite::~FaultySqlite() { sqlite3_vfs_unregister(&vfs_); }

std::string FaultySqlite::uri(const std::string& path) const {
  return "file:" + path + "?vfs=" + name_;
}

void FaultySqlite::fail(SqliteCall call, int code, int times, std::string file_part) {
  std::lock_guard lock(mu_);
  rules_[call] = Rule{code, times, std::move(file_part)};
}

void FaultySqlite::clear() {
  std::lock_guard lock(mu_);
  rules_.clear();
}

int FaultySqlite::take(SqliteCall call, const char* file) {
  std::lock_guard lock(mu_);
  auto it = rules_.find(call);
  if (it == rules_.end() || it->second.times == 0) return SQLITE_OK;
  if (!it->second.file_part.empty() &&
      std::string_view(file).find(it->second.file_part) == std::string_view::npos)
    return SQLITE_OK;
  if (it->second.times > 0) --it->second.times;
  ++injected_;
  return it->second.code;
}

}  // namespace yilian::testing
