#include "migrations.h"

#include <gtest/gtest.h>

#include "test_util.h"
#include "yilian/storage/index.h"

namespace yilian::storage {
namespace {

TEST(Migrations, versions_are_consecutive_from_one) {
  int expected = 1;
  for (const Migration& m : migrations()) EXPECT_EQ(m.version, expected++);
}

TEST(Migrations, a_fresh_index_is_migrated_to_the_latest_version) {
  auto idx = Index::open(":memory:");
  ASSERT_TRUE(idx.ok());
  EXPECT_EQ((*idx)->schema_version(), static_cast<int>(migrations().size()));
}

TEST(Migrations, an_older_schema_is_migrated_in_place_keeping_its_rows) {
  testing::TempDir dir;
  auto path = (dir.path() / "index.sqlite").string();
  {
    sql::Db db;
    ASSERT_TRUE(db.open(path, false).ok());
    auto v = migrate_to(db, 1);
    ASSERT_TRUE(v.ok());
    ASSERT_EQ(*v, 1);
    ASSERT_TRUE(
        db.exec("INSERT INTO institutions(code, name) VALUES('lead', 'Lead Hospital')").ok());
  }
  auto idx = Index::open(path);
  ASSERT_TRUE(idx.ok()) << idx.error().message;
  EXPECT_EQ((*idx)->schema_version(), static_cast<int>(migrations().size()));
  auto all = (*idx)->institutions();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ(all->front().code, "lead");
  // v2's table exists and works.
  auto keys = (*idx)->all_blob_keys();
  EXPECT_TRUE(keys.ok());
}

TEST(Migrations, a_schema_newer_than_the_build_is_refused) {
  testing::TempDir dir;
  auto path = (dir.path() / "index.sqlite").string();
  {
    sql::Db db;
    ASSERT_TRUE(db.open(path, false).ok());
    ASSERT_TRUE(db.exec("PRAGMA user_version = 99").ok());
  }
  auto idx = Index::open(path);
  ASSERT_FALSE(idx.ok());
  EXPECT_EQ(idx.error().code, Errc::corrupt);
}

}  // namespace
}  // namespace yilian::storage
