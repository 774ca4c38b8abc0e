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

// Step 25 builds the emergency-case and on-call tables anew (SQLite changes a CHECK no other
// way): a case opened before it keeps its time points, alert and append-only rule, and the
// new centres' kinds and services are taken after it.
TEST(ConsortiumSchema, emergency_cases_survive_the_step_that_adds_the_other_centres) {
  testing::TempDir dir;
  auto path = dir.path() / "index.sqlite";
  auto exec = [](storage::Database& db, const char* sql) {
    return storage::write(db, [sql](storage::sql::Db& c) { return c.exec(sql); });
  };
  {
    auto db = open_index_database(path, 24);
    ASSERT_TRUE(db.ok()) << db.error().message;
    ASSERT_TRUE(exec(**db, R"(
      INSERT INTO institutions(id, code, name) VALUES(1, 'lead', 'Lead');
      INSERT INTO users(id, username, institution_id, roles, password_hash, created_at,
                        password_changed_at)
        VALUES(7, 'dr', 1, 'cardiologist', 'x', '2026-12-01T00:00:00Z', '2026-12-01T00:00:00Z');
      INSERT INTO emergency_cases(id, kind, status, institution_id, patient_id, source,
                                  opened_by, opened_at, alert_service)
        VALUES(3, 'chest_pain', 'open', 1, 'P1', 'manual', 'dr', '2026-12-01T01:00:00Z',
               'cardiology');
      INSERT INTO emergency_time_points(case_id, point, at, recorded_by, recorded_at)
        VALUES(3, 'door', '2026-12-01T01:05:00Z', 'dr', '2026-12-01T01:05:00Z');
      INSERT INTO case_alerts VALUES(3, 7, 'on_call', '2026-12-01T01:00:01Z');
      INSERT INTO oncall_shifts(institution_id, service, role, user_id, starts_at, ends_at,
                                created_by, created_at)
        VALUES(1, 'cardiology', 'primary', 7, '2026-12-01T00:00:00Z', '2026-12-02T00:00:00Z',
               'admin', '2026-12-01T00:00:00Z');
    )")
                    .ok());
    EXPECT_FALSE(exec(**db,
                      "INSERT INTO emergency_cases(kind, status, institution_id, "
                      "patient_id, source, opened_by, opened_at) VALUES('trauma', 'open', "
                      "1, 'P2', 'manual', 'dr', 'x')")
                     .ok());
  }
  auto db = open_index_database(path);
  ASSERT_TRUE(db.ok()) << db.error().message;
  auto count = [&](const char* sql) {
    std::int64_t n = -1;
    EXPECT_TRUE(storage::read(**db, [&](storage::sql::Db& c) {
                  return storage::sql::query(
                      c, sql, [](storage::sql::Stmt&) {},
                      [&](storage::sql::Stmt& st) { n = st.int64(0); });
                }).ok());
    return n;
  };
  EXPECT_EQ(count("SELECT count(*) FROM emergency_cases WHERE id = 3 AND kind = 'chest_pain' "
                  "AND alert_service = 'cardiology'"),
            1);
  EXPECT_EQ(count("SELECT count(*) FROM emergency_time_points WHERE case_id = 3"), 1);
  EXPECT_EQ(count("SELECT count(*) FROM case_alerts WHERE case_id = 3 AND user_id = 7"), 1);
  EXPECT_EQ(count("SELECT count(*) FROM oncall_shifts WHERE service = 'cardiology'"), 1);
  EXPECT_FALSE(exec(**db, "UPDATE emergency_time_points SET at = 'y'").ok());  // append-only
  EXPECT_TRUE(exec(**db,
                   "INSERT INTO emergency_cases(kind, status, institution_id, patient_id, "
                   "source, opened_by, opened_at) VALUES('newborn', 'open', 1, 'P3', "
                   "'manual', 'dr', '2026-12-01T02:00:00Z')")
                  .ok());
  EXPECT_FALSE(exec(**db,
                    "INSERT INTO emergency_cases(kind, status, institution_id, "
                    "patient_id, source, opened_by, opened_at) VALUES('burns', 'open', 1, "
                    "'P4', 'manual', 'dr', 'x')")
                   .ok());
  EXPECT_TRUE(exec(**db,
                   "INSERT INTO oncall_shifts(institution_id, service, role, user_id, "
                   "starts_at, ends_at, created_by, created_at) VALUES(1, 'obstetrics', "
                   "'primary', 7, 'a', 'b', 'admin', 'c')")
                  .ok());
  // A time point naming a case that does not exist is refused: the foreign key is back.
  EXPECT_FALSE(exec(**db,
                    "INSERT INTO emergency_time_points(case_id, point, at, recorded_by, "
                    "recorded_at) VALUES(99, 'door', 'a', 'dr', 'b')")
                   .ok());
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
  // Step 25's own PostgreSQL form: the centres' kinds are checked there too.
  auto insert_case = [&](const char* kind) {
    const std::string sql = std::string(
                                "INSERT INTO institutions(code, name) SELECT 'lead', 'Lead' "
                                "WHERE NOT EXISTS (SELECT 1 FROM institutions); "
                                "INSERT INTO emergency_cases(kind, status, institution_id, "
                                "patient_id, source, opened_by, opened_at) SELECT '") +
                            kind + "', 'open', min(id), 'P', 'manual', 'dr', 'x' FROM institutions";
    return storage::write(**first, [&sql](storage::sql::Db& c) { return c.exec(sql.c_str()); });
  };
  EXPECT_TRUE(insert_case("maternal").ok());
  EXPECT_FALSE(insert_case("burns").ok());
}

}  // namespace
}  // namespace yilian::app
