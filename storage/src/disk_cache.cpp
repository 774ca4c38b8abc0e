#include "yilian/storage/disk_cache.h"

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <vector>

namespace yilian::storage {
namespace {

constexpr std::string_view kTempPrefix = "tmp-";

// A key made safe as one file name: UID-ish characters kept, anything else hex-escaped.
std::string file_name(std::string_view key) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : key) {
    bool plain = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                 c == '.' || c == '-' || c == '_' || c == ',';
    if (plain) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return "e-" + out;
}

}  // namespace

Result<std::unique_ptr<DiskCache>> DiskCache::open(std::filesystem::path dir,
                                                   std::uint64_t max_bytes) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return make_error(Errc::io, "cannot create cache directory " + dir.string());
  std::unique_ptr<DiskCache> cache(new DiskCache(dir, max_bytes));
  // Earlier runs: keep the entries (oldest first in LRU order), drop unfinished writes.
  struct Found {
    std::string name;
    std::uint64_t size;
    std::filesystem::file_time_type mtime;
  };
  std::vector<Found> found;
  for (const auto& de : std::filesystem::directory_iterator(dir, ec)) {
    std::string name = de.path().filename().string();
    if (name.rfind(kTempPrefix, 0) == 0) {
      std::filesystem::remove(de.path(), ec);
      continue;
    }
    if (name.rfind("e-", 0) != 0 || !de.is_regular_file(ec)) continue;
    found.push_back({name, de.file_size(ec), de.last_write_time(ec)});
  }
  std::sort(found.begin(), found.end(),
            [](const Found& a, const Found& b) { return a.mtime < b.mtime; });
  std::lock_guard lock(cache->mu_);
  for (const Found& f : found) cache->insert_locked(f.name, f.size);
  cache->evict_locked();
  return cache;
}

std::filesystem::path DiskCache::file_for(std::string_view key) const {
  return dir_ / file_name(key);
}

void DiskCache::insert_locked(const std::string& name, std::uint64_t size) {
  if (auto it = entries_.find(name); it != entries_.end()) {
    stats_.bytes -= it->second.size;
    lru_.erase(it->second.lru);
    entries_.erase(it);
  }
  lru_.push_front(name);
  entries_[name] = Entry{size, lru_.begin()};
  stats_.bytes += size;
}

void DiskCache::evict_locked() {
  // Keep the newest entry even if it alone passes the bound.
  while (stats_.bytes > max_bytes_ && lru_.size() > 1) {
    const std::string name = lru_.back();
    lru_.pop_back();
    auto it = entries_.find(name);
    stats_.bytes -= it->second.size;
    entries_.erase(it);
    std::error_code ec;
    std::filesystem::remove(dir_ / name, ec);
    ++stats_.evictions;
  }
  stats_.entries = entries_.size();
}

std::optional<std::filesystem::path> DiskCache::path(std::string_view key) {
  const std::string name = file_name(key);
  std::lock_guard lock(mu_);
  auto it = entries_.find(name);
  if (it == entries_.end()) {
    ++stats_.misses;
    return std::nullopt;
  }
  ++stats_.hits;
  lru_.splice(lru_.begin(), lru_, it->second.lru);
  return dir_ / name;
}

std::optional<std::string> DiskCache::get(std::string_view key) {
  auto p = path(key);
  if (!p) return std::nullopt;
  std::ifstream in(*p, std::ios::binary);
  if (!in) return std::nullopt;  // evicted meanwhile
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::filesystem::path DiskCache::temp_path() {
  std::lock_guard lock(mu_);
  return dir_ / (std::string(kTempPrefix) + std::to_string(::getpid()) + "-" +
                 std::to_string(next_temp_++));
}

Status DiskCache::put(std::string_view key, std::string_view bytes) {
  std::filesystem::path tmp = temp_path();
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) {
      std::error_code ec;
      std::filesystem::remove(tmp, ec);
      return make_error(Errc::io, "cannot write cache entry");
    }
  }
  return adopt(key, tmp);
}

Status DiskCache::adopt(std::string_view key, const std::filesystem::path& file) {
  std::error_code ec;
  std::uint64_t size = std::filesystem::file_size(file, ec);
  if (ec) return make_error(Errc::io, "cache entry to adopt is missing");
  const std::string name = file_name(key);
  std::lock_guard lock(mu_);
  std::filesystem::rename(file, dir_ / name, ec);
  if (ec) {
    std::filesystem::remove(file, ec);
    return make_error(Errc::io, "cannot move entry into the cache");
  }
  insert_locked(name, size);
  evict_locked();
  return Status::Ok();
}

DiskCacheStats DiskCache::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

}  // namespace yilian::storage
