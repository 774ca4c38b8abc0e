#include "yilian/storage/database.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "test_util.h"

namespace yilian::storage {
namespace {

constexpr SchemaStep kSteps[] = {
    {1, "test", "things",
     "CREATE TABLE things(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);"},
    {2, "test", "a colour for each thing",
     "ALTER TABLE things ADD COLUMN colour TEXT NOT NULL DEFAULT '';"},
};

std::int64_t count(Database& db, const char* table) {
  std::int64_t n = -1;
  auto r = db.read();
  EXPECT_TRUE(r.ok());
  if (!r.ok()) return n;
  Status s = sql::query(
      r->conn(), std::string("SELECT count(*) FROM ") + table, [](sql::Stmt&) {},
      [&](sql::Stmt& st) { n = st.int64(0); });
  EXPECT_TRUE(s.ok());
  return n;
}

Status insert(sql::Db& c, const std::string& name) {
  return sql::run(c, "INSERT INTO things(name) VALUES(?1)",
                  [&](sql::Stmt& st) { st.bind(1, name); });
}

TEST(Database, a_fresh_database_is_migrated_to_the_newest_step) {
  auto db = Database::open(":memory:");
  ASSERT_TRUE(db.ok()) << db.error().message;
  auto v = (*db)->migrate(kSteps);
  ASSERT_TRUE(v.ok()) << v.error().message;
  EXPECT_EQ(*v, 2);
  EXPECT_EQ((*db)->schema_version(), 2);
}

TEST(Database, an_older_schema_is_migrated_in_place_keeping_its_rows) {
  testing::TempDir dir;
  {
    auto db = Database::open(dir.path() / "t.sqlite");
    ASSERT_TRUE(db.ok());
    ASSERT_EQ(*(*db)->migrate(kSteps, 1), 1);
    ASSERT_TRUE(write(**db, [](sql::Db& c) { return insert(c, "lamp"); }).ok());
  }
  auto db = Database::open(dir.path() / "t.sqlite");
  ASSERT_TRUE(db.ok());
  ASSERT_EQ(*(*db)->migrate(kSteps), 2);
  EXPECT_EQ(count(**db, "things"), 1);
  EXPECT_TRUE(write(**db, [](sql::Db& c) {
                return sql::run(c, "UPDATE things SET colour = 'red'", [](sql::Stmt&) {});
              }).ok());
}

TEST(Database, a_schema_newer_than_the_build_is_refused) {
  testing::TempDir dir;
  {
    auto db = Database::open(dir.path() / "t.sqlite");
    ASSERT_TRUE(db.ok());
    ASSERT_EQ(*(*db)->migrate(kSteps), 2);
  }
  auto db = Database::open(dir.path() / "t.sqlite");
  ASSERT_TRUE(db.ok());
  auto v = (*db)->migrate(std::span<const SchemaStep>(kSteps, 1));
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.error().code, Errc::corrupt);
}

TEST(Database, a_history_with_a_gap_is_refused) {
  constexpr SchemaStep gap[] = {kSteps[0], {3, "test", "skips two", "SELECT 1;"}};
  auto db = Database::open(":memory:");
  ASSERT_TRUE(db.ok());
  auto v = (*db)->migrate(gap);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.error().code, Errc::internal);
  EXPECT_EQ((*db)->schema_version(), 0);
}

TEST(Database, a_failed_write_is_undone_whole_and_the_others_stay) {
  auto db = Database::open(":memory:");
  ASSERT_TRUE(db.ok());
  ASSERT_TRUE((*db)->migrate(kSteps).ok());
  ASSERT_TRUE(write(**db, [](sql::Db& c) { return insert(c, "lamp"); }).ok());
  // The second statement violates UNIQUE: the whole operation (both rows) is undone.
  Status dup = write(**db, [](sql::Db& c) -> Status {
    if (Status s = insert(c, "chair"); !s) return s;
    return insert(c, "lamp");
  });
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().code, Errc::conflict);
  EXPECT_EQ(count(**db, "things"), 1);
}

TEST(Database, a_write_opened_inside_a_write_on_the_same_thread_joins_it) {
  auto db = Database::open(":memory:");
  ASSERT_TRUE(db.ok());
  ASSERT_TRUE((*db)->migrate(kSteps).ok());
  Database::Write outer(**db);
  ASSERT_TRUE(outer.begin().ok());
  ASSERT_TRUE(insert(outer.conn(), "lamp").ok());
  {
    // Nested and left without commit: only its own statements are undone.
    Database::Write inner(**db);
    ASSERT_TRUE(inner.begin().ok());
    ASSERT_TRUE(insert(inner.conn(), "chair").ok());
  }
  ASSERT_TRUE(write(**db, [](sql::Db& c) { return insert(c, "desk"); }).ok());
  ASSERT_TRUE(outer.commit().ok());
  EXPECT_EQ(count(**db, "things"), 2);  // lamp and desk
}

TEST(Database, concurrent_writers_share_batches_and_every_write_is_committed) {
  testing::TempDir dir;
  auto db = Database::open(dir.path() / "t.sqlite");
  ASSERT_TRUE(db.ok());
  ASSERT_TRUE((*db)->migrate(kSteps).ok());
  constexpr int kThreads = 4, kEach = 50;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        std::string name = std::to_string(t) + "-" + std::to_string(i);
        if (!write(**db, [&](sql::Db& c) { return insert(c, name); }).ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(count(**db, "things"), kThreads * kEach);
  auto c = (*db)->counters();
  EXPECT_EQ(c.operations, static_cast<std::uint64_t>(kThreads * kEach));
  EXPECT_LE(c.batches, c.operations);
}

}  // namespace
}  // namespace yilian::storage
