#include "schema.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "postgres.h"
#include "test_util.h"
#include "yilian/identity/accounts.h"
#include "yilian/pacs/index.h"

namespace yilian::app {
namespace {

TEST(ConsortiumSchema, every_module_s_steps_form_one_history_numbered_from_one) {
  auto steps = consortium_schema();
  ASSERT_FALSE(steps.empty());
  int expected = 1;
  for (const storage::SchemaStep& s : steps) {
    EXPECT_EQ(s.version, expected++);
    EXPECT_NE(std::string(s.owner), "");
  }
}

TEST(ConsortiumSchema, a_fresh_index_is_migrated_to_the_latest_version) {
  auto db = open_index_database(":memory:");
  ASSERT_TRUE(db.ok()) << db.error().message;
  EXPECT_EQ((*db)->schema_version(), static_cast<int>(consortium_schema().size()));
}

TEST(ConsortiumSchema, an_index_at_version_one_is_migrated_in_place_keeping_its_rows) {
  testing::TempDir dir;
  auto path = dir.path() / "index.sqlite";
  {
    auto db = open_index_database(path, 1);
    ASSERT_TRUE(db.ok()) << db.error().message;
    ASSERT_EQ((*db)->schema_version(), 1);
    ASSERT_TRUE(storage::write(**db, [](storage::sql::Db& c) {
                  return c.exec("INSERT INTO institutions(code, name) VALUES('lead', 'Lead')");
                }).ok());
  }
  auto db = open_index_database(path);
  ASSERT_TRUE(db.ok()) << db.error().message;
  EXPECT_EQ((*db)->schema_version(), static_cast<int>(consortium_schema().size()));
  identity::Accounts accounts(**db);
  auto all = accounts.institutions();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ(all->front().code, "lead");
  EXPECT_TRUE(pacs::Index::open(**db)->all_blob_keys().ok());  // v2's table
}

// The same history on PostgreSQL: every step's derived (or own) PostgreSQL form applies, in
// order, to an empty database, and a second node opening it finds nothing left to do.
TEST(ConsortiumSchema, the_whole_history_applies_on_postgresql_once) {
  std::string why;
  testing::PostgresServer* pg = testing::shared_postgres(&why);
  ASSERT_NE(pg, nullptr) << why;
  const std::string url = pg->fresh_database();
  ASSERT_FALSE(url.empty());
  const int latest = static_cast<int>(consortium_schema().size());
  auto first = open_index_database(url);
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_EQ((*first)->schema_version(), latest);
  auto second = open_index_database(url);
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_EQ((*second)->schema_version(), latest);
  // The same tables as on SQLite (besides the history's own), with their constraints.
  auto tables = [](storage::Database& db, const std::string& q) {
    std::set<std::string> names;
    Status s = storage::read(db, [&](storage::sql::Db& c) {
      return storage::sql::query(
          c, q, [](storage::sql::Stmt&) {},
          [&](storage::sql::Stmt& st) { names.insert(st.text(0)); });
    });
    EXPECT_TRUE(s.ok());
    return names;
  };
  auto embedded = open_index_database(":memory:");
  ASSERT_TRUE(embedded.ok());
  std::set<std::string> expected =
      tables(**embedded, "SELECT name FROM sqlite_master WHERE type = 'table'");
  expected.insert("yilian_schema");
  EXPECT_EQ(tables(**first, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"),
            expected);
  Status refused = storage::write(**first, [](storage::sql::Db& c) {
    return c.exec(
        "INSERT INTO reading_services(provider_id, client_id, service) "
        "VALUES(1, 1, 'pathology')");
  });
  EXPECT_FALSE(refused.ok());  // a CHECK (and a foreign key) of step 3
}

}  // namespace
}  // namespace yilian::app
