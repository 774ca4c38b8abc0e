#include "yilian/storage/blob_store.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "test_util.h"

namespace yilian::storage {
namespace {

namespace fs = std::filesystem;

TEST(BlobStore, new_keys_are_32_hex_digits_and_distinct) {
  testing::TempDir dir;
  BlobStore store(dir.path());
  std::string a = store.new_key(), b = store.new_key();
  EXPECT_EQ(a.size(), 32u);
  EXPECT_NE(a, b);
  EXPECT_EQ(a.find_first_not_of("0123456789abcdef"), std::string::npos);
}

TEST(BlobStore, written_blob_is_in_tmp_until_published_then_in_its_shard) {
  testing::TempDir dir;
  BlobStore store(dir.path());
  ASSERT_TRUE(store.init().ok());
  std::string key = store.new_key();
  std::string bytes("DICM\0\1\2binary", 14);
  ASSERT_TRUE(store.write_temp(key, bytes).ok());
  EXPECT_TRUE(fs::exists(store.temp_path(key)));
  EXPECT_FALSE(store.exists(key));

  ASSERT_TRUE(store.publish(key).ok());
  ASSERT_TRUE(store.sync().ok());
  EXPECT_FALSE(fs::exists(store.temp_path(key)));
  EXPECT_TRUE(store.exists(key));
  EXPECT_EQ(store.blob_path(key).parent_path().filename(), key.substr(2, 2));
  EXPECT_EQ(store.blob_path(key).parent_path().parent_path().filename(), key.substr(0, 2));

  auto back = store.read(key);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, bytes);  // byte for byte
}

TEST(BlobStore, rejects_keys_that_could_escape_the_store) {
  testing::TempDir dir;
  BlobStore store(dir.path());
  ASSERT_TRUE(store.init().ok());
  EXPECT_EQ(store.write_temp("../../etc/passwd", "x").error().code, Errc::invalid_argument);
  EXPECT_EQ(store.read("ABCDEF0123456789").error().code, Errc::invalid_argument);
}

TEST(BlobStore, reading_a_missing_blob_is_not_found) {
  testing::TempDir dir;
  BlobStore store(dir.path());
  ASSERT_TRUE(store.init().ok());
  EXPECT_EQ(store.read(store.new_key()).error().code, Errc::not_found);
}

TEST(BlobStore, recovery_removes_temp_files_and_lists_published_keys) {
  testing::TempDir dir;
  BlobStore store(dir.path());
  ASSERT_TRUE(store.init().ok());
  std::string kept = store.new_key(), partial = store.new_key();
  ASSERT_TRUE(store.write_temp(kept, "kept").ok());
  ASSERT_TRUE(store.publish(kept).ok());
  ASSERT_TRUE(store.write_temp(partial, "half-writ").ok());

  auto removed = store.remove_temp_files();
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(*removed, 1u);
  EXPECT_FALSE(fs::exists(store.temp_path(partial)));
  auto keys = store.list_keys();
  ASSERT_TRUE(keys.ok());
  ASSERT_EQ(keys->size(), 1u);
  EXPECT_EQ(keys->front(), kept);
}

TEST(BlobStore, remove_blob_deletes_the_file) {
  testing::TempDir dir;
  BlobStore store(dir.path());
  ASSERT_TRUE(store.init().ok());
  std::string key = store.new_key();
  ASSERT_TRUE(store.write_temp(key, "x").ok());
  ASSERT_TRUE(store.publish(key).ok());
  ASSERT_TRUE(store.remove_blob(key).ok());
  EXPECT_FALSE(store.exists(key));
}

TEST(BlobStore, sync_before_init_is_an_error_not_a_crash) {
  testing::TempDir dir;
  BlobStore store(dir.path());
  EXPECT_EQ(store.sync().error().code, Errc::internal);
}

std::size_t open_fd_count() {
  return static_cast<std::size_t>(std::distance(
      std::filesystem::directory_iterator("/proc/self/fd"), std::filesystem::directory_iterator{}));
}

TEST(EarlyWriteback, leaves_the_file_unchanged_and_closes_what_it_opened) {
  testing::TempDir dir;
  BlobStore store(dir.path());
  ASSERT_TRUE(store.init().ok());
  std::string key = store.new_key();
  std::string bytes(700 * 1024, 'a');
  ASSERT_TRUE(store.write_temp(key, bytes).ok());
  const std::size_t fds_before = open_fd_count();
  {
    EarlyWriteback wb(256 * 1024);
    for (std::uint64_t n = 0; n <= bytes.size(); n += 64 * 1024)
      wb.progress(store.temp_path(key), n);
    EXPECT_EQ(open_fd_count(), fds_before + 1);
    wb.finish();
    EXPECT_EQ(open_fd_count(), fds_before);
    // A file that does not exist (the receive failed before creating it) is ignored.
    wb.progress(dir.path() / "missing.part", 1 << 20);
    wb.finish();
  }
  EXPECT_EQ(open_fd_count(), fds_before);
  ASSERT_TRUE(store.publish(key).ok());
  ASSERT_TRUE(store.sync().ok());
  auto back = store.read(key);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, bytes);
}

TEST(FsyncPath, fails_with_not_found_for_a_missing_file) {
  testing::TempDir dir;
  Status s = fsync_path(dir.path() / "missing", false);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, Errc::not_found);
}

}  // namespace
}  // namespace yilian::storage
