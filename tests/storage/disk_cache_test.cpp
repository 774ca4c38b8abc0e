#include "yilian/storage/disk_cache.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "test_util.h"

namespace yilian::storage {
namespace {

namespace fs = std::filesystem;

TEST(DiskCache, entries_round_trip_and_keys_with_any_characters_are_safe_file_names) {
  testing::TempDir dir;
  auto cache = DiskCache::open(dir.path() / "cache", 1 << 20);
  ASSERT_TRUE(cache.ok());
  EXPECT_FALSE((*cache)->get("r-1.2.3/../x").has_value());
  ASSERT_TRUE((*cache)->put("r-1.2.3/../x", "bytes").ok());
  EXPECT_EQ((*cache)->get("r-1.2.3/../x").value_or(""), "bytes");
  // Nothing escaped the cache directory.
  std::size_t files = 0;
  for (const auto& e : fs::directory_iterator(dir.path() / "cache")) {
    ++files;
    EXPECT_EQ(e.path().parent_path(), dir.path() / "cache");
  }
  EXPECT_EQ(files, 1u);
  auto s = (*cache)->stats();
  EXPECT_EQ(s.hits, 1u);
  EXPECT_EQ(s.misses, 1u);
  EXPECT_EQ(s.bytes, 5u);
}

TEST(DiskCache, the_least_recently_used_entries_go_once_the_bound_is_passed) {
  testing::TempDir dir;
  auto cache = DiskCache::open(dir.path(), 25);
  ASSERT_TRUE(cache.ok());
  DiskCache& c = **cache;
  ASSERT_TRUE(c.put("a", std::string(10, 'a')).ok());
  ASSERT_TRUE(c.put("b", std::string(10, 'b')).ok());
  ASSERT_TRUE(c.get("a").has_value());  // a is now more recent than b
  ASSERT_TRUE(c.put("c", std::string(10, 'c')).ok());
  EXPECT_TRUE(c.get("a").has_value());
  EXPECT_FALSE(c.get("b").has_value());
  EXPECT_TRUE(c.get("c").has_value());
  EXPECT_EQ(c.stats().bytes, 20u);
  EXPECT_EQ(c.stats().evictions, 1u);
  // Replacing an entry counts its new size only.
  ASSERT_TRUE(c.put("a", std::string(3, 'x')).ok());
  EXPECT_EQ(c.stats().bytes, 13u);
}

TEST(DiskCache, a_reopened_cache_keeps_finished_entries_and_drops_unfinished_writes) {
  testing::TempDir dir;
  {
    auto cache = DiskCache::open(dir.path(), 1 << 20);
    ASSERT_TRUE(cache.ok());
    ASSERT_TRUE((*cache)->put("kept", "12345").ok());
    std::ofstream((*cache)->temp_path()) << "half written";
  }
  auto cache = DiskCache::open(dir.path(), 1 << 20);
  ASSERT_TRUE(cache.ok());
  EXPECT_EQ((*cache)->get("kept").value_or(""), "12345");
  EXPECT_EQ((*cache)->stats().entries, 1u);
  std::size_t files = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir.path())) ++files;
  EXPECT_EQ(files, 1u);
  // A reopened cache with a smaller bound trims at once.
  auto small = DiskCache::open(dir.path() / "x", 4);
  ASSERT_TRUE(small.ok());
  ASSERT_TRUE((*small)->put("one", "123").ok());
  ASSERT_TRUE((*small)->put("two", "456").ok());
  EXPECT_FALSE((*small)->get("one").has_value());
}

}  // namespace
}  // namespace yilian::storage
