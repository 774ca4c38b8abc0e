// Durable file store for DICOM objects, kept byte-for-byte as received.
//
// Layout under the root:   tmp/<key>.part           while being written (one node)
//                          tmp/<node>/<key>.part    (several nodes sharing the store)
//                          blobs/<k0k1>/<k2k3>/<key>  once published
// Keys end with the writing node's id, so that nodes sharing one store (a shared file system)
// never pick the same key, and each node's recovery touches only its own files.
// Writing protocol: write the temp file, rename it into its shard, then sync(): one
// syncfs() of the store's file system makes the data, the inodes and the directory entries
// of every blob published since the last sync durable with a single device flush. Callers
// batch many blobs per sync (group commit). A blob is durable once publish() and sync()
// returned.
#pragma once

#include <cstdint>
#include <filesystem>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "yilian/common/result.h"
#include "yilian/storage/file_ops.h"

namespace yilian::storage {

class BlobStore {
 public:
  // `node`: the writing node's id (8 hex digits; empty for none). `shared`: other nodes write
  // to the same root, so this node keeps its temp files apart and recovers only its own.
  // `ops`: the system calls its writes, flushes, renames and removals go through (must
  // outlive the store).
  explicit BlobStore(std::filesystem::path root, std::string node = {}, bool shared = false,
                     FileOps& ops = system_file_ops());
  ~BlobStore();
  BlobStore(const BlobStore&) = delete;
  BlobStore& operator=(const BlobStore&) = delete;

  // Creates the directory layout (idempotent).
  Status init();

  // A fresh key: 32 hex digits, random, ending with the node id.
  std::string new_key();
  // Whether this node wrote `key`, or, for a store of its own, whether it is any key: the
  // files its recovery may remove.
  bool owns(std::string_view key) const;
  bool shared() const { return shared_; }

  std::filesystem::path temp_path(std::string_view key) const;
  std::filesystem::path blob_path(std::string_view key) const;

  // Writes `bytes` to the temp file of `key` (not yet durable).
  Status write_temp(std::string_view key, std::string_view bytes);
  // Renames the temp file into its shard (not yet durable).
  Status publish(std::string_view key);
  // Makes everything written and published so far durable (syncfs of the store's file
  // system).
  Status sync();

  Status remove_temp(std::string_view key);
  Status remove_blob(std::string_view key);

  Result<std::string> read(std::string_view key) const;
  bool exists(std::string_view key) const;

  // Recovery helpers.
  Result<std::size_t> remove_temp_files();
  Result<std::vector<std::string>> list_keys() const;

  const std::filesystem::path& root() const { return root_; }
  // The system calls it uses (the ingest path writes received files through them too).
  FileOps& ops() const { return ops_; }

 private:
  Status ensure_shard(const std::filesystem::path& dir);

  std::filesystem::path root_;
  FileOps& ops_;
  std::string node_;
  bool shared_ = false;
  std::filesystem::path tmp_dir_;
  std::filesystem::path blobs_dir_;
  int root_fd_ = -1;  // opened by init(); the handle sync() flushes the file system through
  std::mutex mu_;     // guards rng_ and known_shards_
  std::mt19937_64 rng_;
  std::set<std::filesystem::path> known_shards_;
};

// Starts writing a file's pages to disk while it is still being received, so that the batch
// flush that follows has little left to wait for. Best effort: a failure here is ignored,
// the flush reports it. One instance per receiving thread; not thread-safe.
class EarlyWriteback {
 public:
  explicit EarlyWriteback(std::uint64_t chunk_bytes = 256 * 1024) : chunk_(chunk_bytes) {}
  ~EarlyWriteback() { reset(); }
  EarlyWriteback(const EarlyWriteback&) = delete;
  EarlyWriteback& operator=(const EarlyWriteback&) = delete;

  // `file` now holds about `bytes` bytes; starts writeback of each full chunk not yet started.
  void progress(const std::filesystem::path& file, std::uint64_t bytes);
  // The file is complete (or abandoned): starts writeback of the rest and forgets it.
  void finish();
  void reset();

 private:
  std::uint64_t chunk_;
  int fd_ = -1;
  std::uint64_t started_ = 0;  // bytes whose writeback was started
};

// The content hash of a stored file: XXH3-128 of its bytes, 32 hex digits. Taken when an
// object is received and kept in the index, so that `fsck` finds any later change of the file
// (media errors, a bad copy, an edit), not only a changed size. Errors: not_found, io.
Result<std::string> content_hash(const std::filesystem::path& file);

// fsync helpers, exposed for tests and for the ingest path.
Status fsync_path(const std::filesystem::path& path, bool directory,
                  FileOps& ops = system_file_ops());
// `file` replaced whole by `content`, durably: a temporary name beside it, flushed, renamed,
// and the directory flushed (a crash leaves the old file or the new one, never a part).
Status write_file_durably(const std::filesystem::path& file, std::string_view content);

}  // namespace yilian::storage
