#include "schema.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace yilian::app
