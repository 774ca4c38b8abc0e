// Faults under the ingest path: failed fsync/syncfs, ENOSPC and EIO on writes, renames and
// closes, short writes, and I/O errors in the index database. A store that cannot be made
// durable is never acknowledged (failed, DICOM 0xA700, HTTP 503), nothing half-written stays,
// stored instances keep being read, a restart's recovery finds a consistent store, and the
// same instance is stored once the fault is gone.
#include <gtest/gtest.h>

#include <cerrno>
#include <fstream>
#include <functional>
#include <sstream>

#include "faults.h"
#include "synthetic.h"
#include "test_db.h"
#include "test_util.h"
#include "yilian/pacs/ingest.h"

namespace yilian::pacs {
namespace {

using testing::count_files;
using testing::slurp;

namespace fs = std::filesystem;

testing::CtSeriesSpec spec(int count, int size) {
  testing::CtSeriesSpec s;
  s.count = count;
  s.rows = s.columns = size;
  return s;
}

struct Fault {
  const char* name;
  std::function<void(testing::FaultyFileOps&, testing::FaultySqlite&)> arm;
};

void PrintTo(const Fault& f, std::ostream* os) { *os << f.name; }

class IngestFaultTest : public ::testing::TestWithParam<Fault> {
 protected:
  void SetUp() override {
    auto s = testing::write_ct_series(dir_.path() / "src", spec(2, 32));
    ASSERT_TRUE(s.ok());
    series_ = *s;
    open();
    auto inst = index_->ensure_institution("township-a", "Township A");
    ASSERT_TRUE(inst.ok());
    institution_ = inst->id;
  }

  void open() {
    blobs_ = std::make_unique<storage::BlobStore>(root(), std::string(), false, ops_);
    ASSERT_TRUE(blobs_->init().ok());
    db_ = testing::index_database(sqlite_.uri((root() / "index.sqlite").string()));
    index_ = pacs::Index::open(*db_);
    ingestor_ = std::make_unique<Ingestor>(*index_, *blobs_, Ingestor::Options{});
  }

  void close() {
    ingestor_.reset();
    index_.reset();
    db_.reset();
    blobs_.reset();
  }

  fs::path root() const { return dir_.path() / "data"; }

  IngestOutcome store(int i) {
    return ingestor_->ingest_bytes(slurp(series_.files[i]), Sender{"CT1", institution_, {}});
  }

  // The first instance is stored, indexed and readable, and nothing else is.
  void expect_only_the_first() {
    auto n = index_->count_instances();
    ASSERT_TRUE(n.ok()) << n.error().message;
    EXPECT_EQ(*n, 1);
    auto second = index_->find_instance(series_.sop_instance_uids[1]);
    ASSERT_TRUE(second.ok());
    EXPECT_FALSE(second->has_value());
    auto first = index_->find_instance(series_.sop_instance_uids[0]);
    ASSERT_TRUE(first.ok() && first->has_value());
    auto bytes = blobs_->read((*first)->blob_key);
    ASSERT_TRUE(bytes.ok()) << bytes.error().message;
    EXPECT_EQ(*bytes, slurp(series_.files[0]));
    EXPECT_EQ(count_files(root() / "blobs"), 1u);
    EXPECT_EQ(count_files(root() / "tmp"), 0u);
  }

  testing::TempDir dir_;
  testing::FaultySqlite sqlite_;
  testing::FaultyFileOps ops_;
  testing::WrittenSeries series_;
  std::unique_ptr<storage::BlobStore> blobs_;
  std::unique_ptr<storage::Database> db_;
  std::unique_ptr<pacs::Index> index_;
  std::unique_ptr<Ingestor> ingestor_;
  std::int64_t institution_ = 0;
};

TEST_P(IngestFaultTest, a_store_that_cannot_be_made_durable_is_refused_and_leaves_nothing) {
  ASSERT_EQ(store(0).status, IngestStatus::stored);

  GetParam().arm(ops_, sqlite_);
  IngestOutcome failed = store(1);
  EXPECT_GT(ops_.injected() + sqlite_.injected(), 0u) << "the fault was never reached";
  EXPECT_EQ(failed.status, IngestStatus::failed);
  EXPECT_EQ(failed.reason, IngestReason::storage);
  EXPECT_FALSE(failed.message.empty());
  EXPECT_EQ(dicom_status(failed), 0xA700);
  EXPECT_EQ(ingest_error(failed).code, Errc::unavailable);
  // Reads go on while the fault lasts.
  expect_only_the_first();

  // A restart while the fault lasts: recovery leaves a store whose index and files agree.
  close();
  sqlite_.clear();
  ops_.clear();
  open();
  auto report = ingestor_->recover();
  ASSERT_TRUE(report.ok()) << report.error().message;
  expect_only_the_first();

  // The sender's retry is stored.
  IngestOutcome retried = store(1);
  ASSERT_EQ(retried.status, IngestStatus::stored) << retried.message;
  auto n = index_->count_instances();
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 2);
  auto second = index_->find_instance(series_.sop_instance_uids[1]);
  ASSERT_TRUE(second.ok() && second->has_value());
  EXPECT_EQ(*blobs_->read((*second)->blob_key), slurp(series_.files[1]));
}

using testing::FileCall;
using testing::SqliteCall;

INSTANTIATE_TEST_SUITE_P(
    Faults, IngestFaultTest,
    ::testing::Values(
        Fault{"write_eio", [](auto& ops, auto&) { ops.fail(FileCall::write, EIO); }},
        Fault{"write_enospc", [](auto& ops, auto&) { ops.fail(FileCall::write, ENOSPC); }},
        Fault{"create_enospc", [](auto& ops, auto&) { ops.fail(FileCall::open_create, ENOSPC); }},
        Fault{"close_eio", [](auto& ops, auto&) { ops.fail(FileCall::close, EIO, -1, ".part"); }},
        Fault{"rename_eio", [](auto& ops, auto&) { ops.fail(FileCall::rename, EIO); }},
        Fault{"syncfs_eio", [](auto& ops, auto&) { ops.fail(FileCall::syncfs, EIO); }},
        Fault{"index_fsync_fails",
              [](auto&, auto& db) { db.fail(SqliteCall::sync, SQLITE_IOERR_FSYNC); }},
        Fault{"index_write_enospc",
              [](auto&, auto& db) { db.fail(SqliteCall::write, SQLITE_FULL); }},
        Fault{"index_write_eio",
              [](auto&, auto& db) { db.fail(SqliteCall::write, SQLITE_IOERR_WRITE, 1); }}),
    [](const ::testing::TestParamInfo<Fault>& info) { return std::string(info.param.name); });

// Short writes are legal: the store writes the rest, and what it keeps is what was sent.
TEST(IngestShortWrites, short_writes_still_store_the_object_byte_for_byte) {
  testing::TempDir dir;
  testing::FaultyFileOps ops;
  ops.short_writes(777);
  storage::BlobStore blobs(dir.path() / "data", std::string(), false, ops);
  ASSERT_TRUE(blobs.init().ok());
  auto db = testing::index_database(dir.path() / "data" / "index.sqlite");
  auto index = pacs::Index::open(*db);
  auto inst = index->ensure_institution("township-a", "Township A");
  ASSERT_TRUE(inst.ok());
  Ingestor ingestor(*index, blobs, Ingestor::Options{});
  auto s = testing::write_ct_series(dir.path() / "src", spec(1, 64));
  ASSERT_TRUE(s.ok());
  const std::string sent = slurp(s->files[0]);
  IngestOutcome o = ingestor.ingest_bytes(sent, Sender{"CT1", inst->id, {}});
  ASSERT_EQ(o.status, IngestStatus::stored) << o.message;
  EXPECT_GT(ops.injected(), 1u);
  auto found = index->find_instance(s->sop_instance_uids[0]);
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_EQ(*blobs.read((*found)->blob_key), sent);
}

}  // namespace
}  // namespace yilian::pacs
