// The audit store on both backends: records appended in order, found by filter and page,
// scanned in order, and never changed or removed once written.
#include "yilian/identity/audit_log.h"

#include <gtest/gtest.h>

#include <map>
#include <thread>

#include "yilian/identity/audit.h"

#include "faults.h"
#include "postgres.h"
#include "test_db.h"
#include "test_util.h"

namespace yilian::identity {
namespace {

using testing::SqliteCall;

class AuditLogTest : public ::testing::TestWithParam<storage::sql::Dialect> {
 protected:
  void SetUp() override {
    std::string where = (dir_.path() / "audit.sqlite").string();
    if (GetParam() == storage::sql::Dialect::postgres) {
      std::string why;
      testing::PostgresServer* pg = testing::shared_postgres(&why);
      ASSERT_NE(pg, nullptr) << why;
      where = pg->fresh_database();
      ASSERT_FALSE(where.empty());
    }
    db_ = testing::audit_database(where);
    log_ = std::make_unique<AuditLog>(*db_);
  }

  AuditRecord record(std::int64_t seq, const std::string& actor, const std::string& action) {
    AuditRecord r;
    r.seq = seq;
    r.at = "2026-12-03T08:00:0" + std::to_string(seq) + ".000Z";
    r.actor = actor;
    r.action = action;
    r.object_type = "study";
    r.object_id = "1.2.3." + std::to_string(seq);
    r.outcome = "ok";
    r.prev_hash = "h" + std::to_string(seq - 1);
    r.hash = "h" + std::to_string(seq);
    return r;
  }

  testing::TempDir dir_;
  std::unique_ptr<storage::Database> db_;
  std::unique_ptr<AuditLog> log_;
};

TEST_P(AuditLogTest, records_are_found_by_filter_and_page_and_scanned_in_order) {
  ASSERT_TRUE(log_->append(std::vector{record(1, "dr-chen", "study.read")}).ok());
  ASSERT_TRUE(log_->append(std::vector{record(2, "dr-li", "study.read")}).ok());
  ASSERT_TRUE(log_->append(std::vector{record(3, "dr-chen", "report.sign")}).ok());
  auto last = log_->last();
  ASSERT_TRUE(last.ok() && last->has_value());
  EXPECT_EQ((*last)->seq, 3);
  EXPECT_EQ((*last)->hash, "h3");

  AuditFilter by_actor;
  by_actor.actor = "dr-chen";
  auto chen = log_->find(by_actor);
  ASSERT_TRUE(chen.ok()) << chen.error().message;
  ASSERT_EQ(chen->size(), 2u);
  EXPECT_EQ((*chen)[0].seq, 3);  // newest first
  EXPECT_EQ((*chen)[1].action, "study.read");

  AuditFilter page;
  page.before_seq = 3;
  page.limit = 1;
  page.from = "2026-12-03T08:00:01";
  auto older = log_->find(page);
  ASSERT_TRUE(older.ok()) << older.error().message;
  ASSERT_EQ(older->size(), 1u);
  EXPECT_EQ((*older)[0].seq, 2);

  std::vector<std::int64_t> order;
  ASSERT_TRUE(log_->scan([&](const AuditRecord& r) {
                    order.push_back(r.seq);
                    return true;
                  })
                  .ok());
  EXPECT_EQ(order, (std::vector<std::int64_t>{1, 2, 3}));
}

TEST_P(AuditLogTest, a_written_record_cannot_be_changed_removed_or_written_twice) {
  ASSERT_TRUE(log_->append(std::vector{record(1, "dr-chen", "study.read")}).ok());
  Status twice = log_->append(std::vector{record(1, "someone", "study.read")});
  ASSERT_FALSE(twice.ok());
  EXPECT_EQ(twice.error().code, Errc::conflict);
  for (const char* change : {"UPDATE audit SET actor = 'x'", "DELETE FROM audit"}) {
    Status s = storage::write(*db_, [&](storage::sql::Db& c) {
      return storage::sql::run(c, change, [](storage::sql::Stmt&) {});
    });
    ASSERT_FALSE(s.ok()) << change;
    EXPECT_EQ(s.error().code, Errc::conflict) << s.error().message;
  }
  auto last = log_->last();
  ASSERT_TRUE(last.ok() && last->has_value());
  EXPECT_EQ((*last)->actor, "dr-chen");
}

// Several nodes append to one trail at once (each its own connection and Auditor): every
// record is kept and the chain still verifies, one sequence without gaps.
TEST_P(AuditLogTest, auditors_of_several_nodes_keep_one_verifiable_chain) {
  auto other_db = storage::Database::open(db_->location(), {.history = "audit"});
  ASSERT_TRUE(other_db.ok()) << other_db.error().message;
  AuditLog other_log(**other_db);
  auto clock = [] { return std::chrono::system_clock::now(); };
  auto first = Auditor::open(*log_, clock);
  auto second = Auditor::open(other_log, clock);
  ASSERT_TRUE(first.ok() && second.ok());
  constexpr int kEach = 40;
  auto append = [&](Auditor& a, const std::string& node) {
    for (int i = 0; i < kEach; ++i) {
      AuditEvent e;
      e.actor = node;
      e.action = "study.view";
      e.object_type = "study";
      e.object_id = std::to_string(i);
      e.outcome = "ok";
      EXPECT_TRUE(a.record(e).ok());
    }
  };
  std::thread t1(append, std::ref(**first), "node-a");
  std::thread t2(append, std::ref(**second), "node-b");
  t1.join();
  t2.join();
  auto report = verify_chain(*log_);
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->intact) << report->problem;
  EXPECT_EQ(report->records, 2 * kEach);
}

// Many callers of one Auditor at once (their records go to the disk together): each record is
// kept once, each caller's records in the order it made them, and the chain verifies.
TEST_P(AuditLogTest, concurrent_callers_of_one_auditor_keep_every_record_in_order) {
  auto auditor = Auditor::open(*log_, [] { return std::chrono::system_clock::now(); });
  ASSERT_TRUE(auditor.ok());
  constexpr int kThreads = 8, kEach = 25;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        AuditEvent e;
        e.actor = "user-" + std::to_string(t);
        e.action = "study.read";
        e.object_id = std::to_string(i);
        EXPECT_TRUE((*auditor)->record(e).ok());
      }
    });
  }
  for (auto& th : threads) th.join();
  std::map<std::string, std::vector<int>> seen;
  ASSERT_TRUE(log_->scan([&](const AuditRecord& r) {
                    seen[r.actor].push_back(std::stoi(r.object_id));
                    return true;
                  })
                  .ok());
  ASSERT_EQ(seen.size(), static_cast<std::size_t>(kThreads));
  std::vector<int> expected(kEach);
  for (int i = 0; i < kEach; ++i) expected[i] = i;
  for (const auto& [actor, ids] : seen) EXPECT_EQ(ids, expected) << actor;
  auto report = verify_chain(*log_);
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->intact) << report->problem;
  EXPECT_EQ(report->records, kThreads * kEach);
  EXPECT_EQ((*auditor)->head().seq, kThreads * kEach);
}

// A record that cannot be made durable is reported failed and leaves no trace in the chain:
// the next records continue from the last durable one and the chain verifies, also after the
// trail is opened again.
TEST(AuditFaults, a_record_that_cannot_be_flushed_fails_and_the_chain_continues_intact) {
  testing::TempDir dir;
  testing::FaultySqlite vfs;
  const std::string where = vfs.uri((dir.path() / "audit.sqlite").string());
  auto db = storage::Database::open(where, {.durable = true, .background_checkpoints = false});
  ASSERT_TRUE(db.ok()) << db.error().message;
  ASSERT_TRUE((*db)->migrate(AuditLog::schema()).ok());
  AuditLog log(**db);
  auto auditor = Auditor::open(log, [] { return std::chrono::system_clock::now(); });
  ASSERT_TRUE(auditor.ok());
  auto event = [](const std::string& id) {
    AuditEvent e;
    e.actor = "dr-chen";
    e.action = "study.read";
    e.object_id = id;
    return e;
  };
  ASSERT_TRUE((*auditor)->record(event("1")).ok());
  for (SqliteCall call : {SqliteCall::sync, SqliteCall::write}) {
    vfs.fail(call, call == SqliteCall::sync ? SQLITE_IOERR_FSYNC : SQLITE_FULL, 1);
    EXPECT_FALSE((*auditor)->record(event("lost")).ok());
    EXPECT_EQ(vfs.injected(), call == SqliteCall::sync ? 1u : 2u);
    EXPECT_EQ((*auditor)->head().seq, 1);
  }
  ASSERT_TRUE((*auditor)->record(event("2")).ok());
  EXPECT_EQ((*auditor)->head().seq, 2);
  auditor->reset();
  db->reset();
  auto again = storage::Database::open(where, {.durable = true, .background_checkpoints = false});
  ASSERT_TRUE(again.ok());
  AuditLog reopened(**again);
  auto report = verify_chain(reopened);
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->intact) << report->problem;
  EXPECT_EQ(report->records, 2);
  std::vector<std::string> ids;
  ASSERT_TRUE(reopened
                  .scan([&](const AuditRecord& r) {
                    ids.push_back(r.object_id);
                    return true;
                  })
                  .ok());
  EXPECT_EQ(ids, (std::vector<std::string>{"1", "2"}));
}

INSTANTIATE_TEST_SUITE_P(Backends, AuditLogTest,
                         ::testing::Values(storage::sql::Dialect::sqlite,
                                           storage::sql::Dialect::postgres),
                         [](const auto& info) {
                           return info.param == storage::sql::Dialect::sqlite ? "sqlite"
                                                                              : "postgres";
                         });

}  // namespace
}  // namespace yilian::identity
