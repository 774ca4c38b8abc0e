// Durable file store for DICOM objects, kept byte-for-byte as received.
//
// Layout under the root:   tmp/<key>.part           while being written
//                          blobs/<k0k1>/<k2k3>/<key>  once published
// Writing protocol: write the temp file, fsync it, rename it into its shard, fsync the
// shard directory. A blob is durable once publish() and sync_directories() returned.
#pragma once

#include <filesystem>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "yilian/common/result.h"

namespace yilian::storage {

class BlobStore {
 public:
  explicit BlobStore(std::filesystem::path root);

  // Creates the directory layout (idempotent).
  Status init();

  // A fresh random key (32 hex digits).
  std::string new_key();

  std::filesystem::path temp_path(std::string_view key) const;
  std::filesystem::path blob_path(std::string_view key) const;

  // Writes `bytes` to the temp file of `key` and fsyncs it.
  Status write_temp(std::string_view key, std::string_view bytes);
  // fsyncs an existing temp file (written by someone else, e.g. the DICOM network layer).
  Status sync_temp(std::string_view key);
  // Renames the temp file into its shard. Adds the shard directory to `dirty_dirs`; the
  // caller fsyncs them once per batch with sync_directories().
  Status publish(std::string_view key, std::set<std::filesystem::path>& dirty_dirs);
  Status sync_directories(const std::set<std::filesystem::path>& dirs);

  Status remove_temp(std::string_view key);
  Status remove_blob(std::string_view key);

  Result<std::string> read(std::string_view key) const;
  bool exists(std::string_view key) const;

  // Recovery helpers.
  Result<std::size_t> remove_temp_files();
  Result<std::vector<std::string>> list_keys() const;

  const std::filesystem::path& root() const { return root_; }

 private:
  Status ensure_shard(const std::filesystem::path& dir);

  std::filesystem::path root_;
  std::filesystem::path tmp_dir_;
  std::filesystem::path blobs_dir_;
  std::mutex mu_;               // guards rng_ and known_shards_
  std::mt19937_64 rng_;
  std::set<std::filesystem::path> known_shards_;
};

// fsync helpers, exposed for tests and for the ingest path.
Status fsync_path(const std::filesystem::path& path, bool directory);

}  // namespace yilian::storage
