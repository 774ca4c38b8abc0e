// A bounded on-disk cache of derived data (rendered frames, cine videos, series metadata):
// everything in it can be made again from the blob store, so nothing here is flushed, and
// the least recently used entries are removed once the total passes the bound.
//
// Entries are written to a temporary name and renamed into place, so a reader never sees a
// half-written entry; entries from earlier runs are picked up at open.
#pragma once

#include <cstdint>
#include <filesystem>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "yilian/common/result.h"

namespace yilian::storage {

struct DiskCacheStats {
  std::uint64_t entries = 0, bytes = 0, hits = 0, misses = 0, evictions = 0;
};

class DiskCache {
 public:
  // Creates `dir` if needed; `max_bytes` bounds the total size of the entries.
  static Result<std::unique_ptr<DiskCache>> open(std::filesystem::path dir,
                                                 std::uint64_t max_bytes);

  // The entry's content, if present (and marks it used).
  std::optional<std::string> get(std::string_view key);
  // The entry's file, if present (for large entries streamed from disk; marks it used).
  std::optional<std::filesystem::path> path(std::string_view key);
  // Stores `bytes` under `key` (replacing any entry) and evicts as needed.
  Status put(std::string_view key, std::string_view bytes);
  // Adopts a file written elsewhere in the same file system (renamed into the cache).
  Status adopt(std::string_view key, const std::filesystem::path& file);
  // A fresh temporary path in the cache directory, for writers that produce a file.
  std::filesystem::path temp_path();

  DiskCacheStats stats() const;

 private:
  DiskCache(std::filesystem::path dir, std::uint64_t max_bytes)
      : dir_(std::move(dir)), max_bytes_(max_bytes) {}
  std::filesystem::path file_for(std::string_view key) const;
  void insert_locked(const std::string& name, std::uint64_t size);
  void evict_locked();

  struct Entry {
    std::uint64_t size = 0;
    std::list<std::string>::iterator lru;
  };
  const std::filesystem::path dir_;
  const std::uint64_t max_bytes_;
  mutable std::mutex mu_;
  std::list<std::string> lru_;  // file names, most recently used first
  std::unordered_map<std::string, Entry> entries_;
  DiskCacheStats stats_;
  std::uint64_t next_temp_ = 0;
};

}  // namespace yilian::storage
