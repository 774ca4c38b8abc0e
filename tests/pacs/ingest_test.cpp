#include "yilian/pacs/ingest.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "synthetic.h"
#include "test_db.h"
#include "test_util.h"

namespace yilian::pacs {
namespace {

using testing::count_files;
using testing::slurp;

namespace fs = std::filesystem;

class IngestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    blobs_ = std::make_unique<storage::BlobStore>(dir_.path() / "data");
    ASSERT_TRUE(blobs_->init().ok());
    db_ = testing::index_database(dir_.path() / "data" / "index.sqlite");
    index_ = pacs::Index::open(*db_);
    auto inst = index_->ensure_institution("township-a", "Township A");
    ASSERT_TRUE(inst.ok());
    institution_ = inst->id;
    ingestor_ = std::make_unique<Ingestor>(*index_, *blobs_, Ingestor::Options{});
  }

  testing::WrittenSeries series(int count, int size = 32) {
    testing::CtSeriesSpec spec;
    spec.count = count;
    spec.rows = spec.columns = size;
    auto s = testing::write_ct_series(dir_.path() / ("src" + std::to_string(++n_)), spec);
    EXPECT_TRUE(s.ok());
    return *s;
  }

  IngestOutcome ingest_file(const fs::path& p, const std::string& ae = "TOWNSHIP_CT") {
    return ingestor_->ingest_bytes(slurp(p), Sender{ae, institution_, {}});
  }

  testing::TempDir dir_;
  std::unique_ptr<storage::BlobStore> blobs_;
  std::unique_ptr<storage::Database> db_;
  std::unique_ptr<pacs::Index> index_;
  std::unique_ptr<Ingestor> ingestor_;
  std::int64_t institution_ = 0;
  int n_ = 0;
};

TEST_F(IngestTest, a_stored_instance_is_indexed_and_kept_byte_for_byte) {
  auto s = series(1);
  IngestOutcome o = ingest_file(s.files[0]);
  ASSERT_EQ(o.status, IngestStatus::stored) << o.message;
  auto found = index_->find_instance(s.sop_instance_uids[0]);
  ASSERT_TRUE(found.ok() && found->has_value());
  auto bytes = blobs_->read((*found)->blob_key);
  ASSERT_TRUE(bytes.ok());
  EXPECT_EQ(*bytes, slurp(s.files[0]));
  auto study = index_->get_study(s.study_uid);
  ASSERT_TRUE(study.ok() && study->has_value());
  EXPECT_EQ((*study)->study.num_instances, 1);
  EXPECT_EQ((*study)->study.institution_code, "township-a");
  EXPECT_EQ(count_files(blobs_->root() / "tmp"), 0u);
}

TEST_F(IngestTest, an_identical_resend_succeeds_without_storing_anything_new) {
  auto s = series(1);
  ASSERT_EQ(ingest_file(s.files[0]).status, IngestStatus::stored);
  // Sent again from another AE: the file meta differs, the data set is identical.
  IngestOutcome again = ingest_file(s.files[0], "OTHER_AE");
  EXPECT_EQ(again.status, IngestStatus::duplicate);
  EXPECT_EQ(count_files(blobs_->root() / "blobs"), 1u);
  EXPECT_EQ(count_files(blobs_->root() / "tmp"), 0u);
  auto n = index_->count_instances();
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 1);
}

TEST_F(IngestTest, a_different_object_with_a_stored_uid_is_kept_separately_and_reported) {
  auto s = series(1);
  ASSERT_EQ(ingest_file(s.files[0]).status, IngestStatus::stored);
  std::string bytes = slurp(s.files[0]);
  bytes[bytes.size() - 1] ^= 0x01;  // one pixel differs
  IngestOutcome o = ingestor_->ingest_bytes(bytes, Sender{"TOWNSHIP_CT", institution_, {}});
  EXPECT_EQ(o.status, IngestStatus::conflict);
  EXPECT_FALSE(o.message.empty());
  // The original is untouched and still the indexed instance.
  auto found = index_->find_instance(s.sop_instance_uids[0]);
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_EQ(*blobs_->read((*found)->blob_key), slurp(s.files[0]));
  EXPECT_EQ(count_files(blobs_->root() / "blobs"), 2u);
  auto keys = index_->all_blob_keys();
  ASSERT_TRUE(keys.ok());
  EXPECT_EQ(keys->size(), 2u);
}

TEST_F(IngestTest, invalid_input_is_rejected_and_leaves_nothing_behind) {
  IngestOutcome o = ingestor_->ingest_bytes("this is not DICOM", Sender{"X", institution_, {}});
  EXPECT_EQ(o.status, IngestStatus::rejected);
  EXPECT_FALSE(o.message.empty());
  EXPECT_EQ(count_files(blobs_->root() / "tmp"), 0u);
  EXPECT_EQ(count_files(blobs_->root() / "blobs"), 0u);
}

TEST_F(IngestTest, an_announced_uid_that_differs_from_the_data_set_is_rejected) {
  auto s = series(1);
  std::string key = blobs_->new_key();
  ASSERT_TRUE(blobs_->write_temp(key, slurp(s.files[0])).ok());
  IngestOutcome o = ingestor_->ingest(key, Sender{"X", institution_, {}},
                                      Announced{"1.2.840.10008.5.1.4.1.1.4", ""});
  EXPECT_EQ(o.status, IngestStatus::rejected);
  EXPECT_NE(o.message.find("SOP Class"), std::string::npos);
  EXPECT_FALSE(fs::exists(blobs_->temp_path(key)));
}

TEST_F(IngestTest, concurrent_senders_all_land_and_share_commits) {
  constexpr int kThreads = 8, kPerThread = 25;
  std::vector<testing::WrittenSeries> all;
  for (int t = 0; t < kThreads; ++t) all.push_back(series(kPerThread, 16));
  std::vector<std::thread> threads;
  std::atomic<int> stored{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (const fs::path& f : all[static_cast<std::size_t>(t)].files) {
        if (ingest_file(f).status == IngestStatus::stored) ++stored;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(stored.load(), kThreads * kPerThread);
  auto n = index_->count_instances();
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, kThreads * kPerThread);
  IngestCounters c = ingestor_->counters();
  EXPECT_EQ(c.stored, static_cast<std::uint64_t>(kThreads * kPerThread));
  EXPECT_LE(c.batches, c.stored);
}

TEST_F(IngestTest, the_same_new_uid_twice_in_one_batch_is_stored_once) {
  auto s = series(1);
  std::vector<std::thread> threads;
  std::atomic<int> stored{0}, dup{0};
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&] {
      auto st = ingest_file(s.files[0]).status;
      if (st == IngestStatus::stored) ++stored;
      if (st == IngestStatus::duplicate) ++dup;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(stored.load(), 1);
  EXPECT_EQ(dup.load(), 5);
  EXPECT_EQ(count_files(blobs_->root() / "blobs"), 1u);
}

TEST_F(IngestTest,
       recovery_removes_temp_files_and_unacknowledged_orphans_and_drops_rows_without_files) {
  auto s = series(3);
  ASSERT_EQ(ingest_file(s.files[0]).status, IngestStatus::stored);
  ASSERT_EQ(ingest_file(s.files[1]).status, IngestStatus::stored);
  ingestor_->shutdown();

  // A crash mid-receive leaves a temp file.
  std::string partial = blobs_->new_key();
  ASSERT_TRUE(blobs_->write_temp(partial, "half a data set").ok());
  // A crash between publishing a file and committing its row leaves an orphan blob.
  std::string orphan = blobs_->new_key();
  ASSERT_TRUE(blobs_->write_temp(orphan, slurp(s.files[2])).ok());
  ASSERT_TRUE(blobs_->publish(orphan).ok());
  // A file lost from under the index.
  auto lost = index_->find_instance(s.sop_instance_uids[1]);
  ASSERT_TRUE(lost.ok() && lost->has_value());
  fs::remove(blobs_->blob_path((*lost)->blob_key));

  Ingestor fresh(*index_, *blobs_, {});
  auto report = fresh.recover();
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_EQ(report->temp_files_removed, 1u);
  EXPECT_EQ(report->orphan_files_removed, 1u);
  EXPECT_EQ(report->missing_files, 1u);
  EXPECT_FALSE(fs::exists(blobs_->temp_path(partial)));
  EXPECT_FALSE(fs::exists(blobs_->blob_path(orphan)));
  auto orphan_row = index_->find_instance(s.sop_instance_uids[2]);
  ASSERT_TRUE(orphan_row.ok());
  EXPECT_FALSE(orphan_row->has_value());
  auto gone = index_->find_instance(s.sop_instance_uids[1]);
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->has_value());
  auto study = index_->get_study(s.study_uid);
  ASSERT_TRUE(study.ok() && study->has_value());
  EXPECT_EQ((*study)->study.num_instances, 1);
}

// Two nodes share one blob directory. Node A's recovery removes its own temp files and
// orphans; node B's file published a moment ago and not yet indexed (B is between its rename
// and its commit), and B's temp file, stay.
TEST_F(IngestTest, recovery_on_a_shared_store_touches_only_its_own_nodes_files) {
  const fs::path shared = dir_.path() / "shared";
  storage::BlobStore a(shared, "0000000a", /*shared=*/true);
  storage::BlobStore b(shared, "0000000b", /*shared=*/true);
  ASSERT_TRUE(a.init().ok());
  ASSERT_TRUE(b.init().ok());
  auto s = series(2);
  const std::string a_orphan = a.new_key(), a_partial = a.new_key();
  const std::string b_in_flight = b.new_key(), b_partial = b.new_key();
  EXPECT_NE(a_orphan.substr(24), b_in_flight.substr(24));  // the keys end with the node
  ASSERT_TRUE(a.write_temp(a_orphan, slurp(s.files[0])).ok());
  ASSERT_TRUE(a.publish(a_orphan).ok());
  ASSERT_TRUE(a.write_temp(a_partial, "half").ok());
  ASSERT_TRUE(b.write_temp(b_in_flight, slurp(s.files[1])).ok());
  ASSERT_TRUE(b.publish(b_in_flight).ok());
  ASSERT_TRUE(b.write_temp(b_partial, "half").ok());

  Ingestor on_a(*index_, a, {});
  auto report = on_a.recover();
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_EQ(report->temp_files_removed, 1u);
  EXPECT_EQ(report->orphan_files_removed, 1u);
  EXPECT_FALSE(a.exists(a_orphan));
  EXPECT_FALSE(fs::exists(a.temp_path(a_partial)));
  EXPECT_TRUE(b.exists(b_in_flight));
  EXPECT_TRUE(fs::exists(b.temp_path(b_partial)));
  // Each node reads what the other published.
  EXPECT_TRUE(a.read(b_in_flight).ok());
}

TEST_F(IngestTest, after_shutdown_new_instances_fail_cleanly) {
  ingestor_->shutdown();
  auto s = series(1);
  IngestOutcome o = ingest_file(s.files[0]);
  EXPECT_EQ(o.status, IngestStatus::failed);
  EXPECT_EQ(count_files(blobs_->root() / "tmp"), 0u);
}

TEST(IngestStatusMapping, every_outcome_has_one_dicom_status_and_one_error) {
  auto outcome = [](IngestStatus s, IngestReason r) {
    IngestOutcome o;
    o.status = s;
    o.reason = r;
    o.message = "why";
    return o;
  };
  EXPECT_EQ(dicom_status(outcome(IngestStatus::stored, IngestReason::none)), 0x0000);
  EXPECT_EQ(dicom_status(outcome(IngestStatus::duplicate, IngestReason::none)), 0x0000);
  EXPECT_EQ(dicom_status(outcome(IngestStatus::conflict, IngestReason::different_copy)), 0xB000);
  EXPECT_EQ(dicom_status(outcome(IngestStatus::rejected, IngestReason::unreadable)), 0xC000);
  EXPECT_EQ(dicom_status(outcome(IngestStatus::rejected, IngestReason::not_dicom)), 0xC000);
  EXPECT_EQ(dicom_status(outcome(IngestStatus::rejected, IngestReason::instance_mismatch)), 0xC000);
  EXPECT_EQ(dicom_status(outcome(IngestStatus::rejected, IngestReason::class_mismatch)), 0xA900);
  EXPECT_EQ(dicom_status(outcome(IngestStatus::rejected, IngestReason::other_study)), 0xA900);
  EXPECT_EQ(dicom_status(outcome(IngestStatus::refused, IngestReason::other_institution)), 0x0124);
  EXPECT_EQ(dicom_status(outcome(IngestStatus::failed, IngestReason::storage)), 0xA700);
  EXPECT_EQ(ingest_error(outcome(IngestStatus::rejected, IngestReason::unreadable)).code,
            Errc::invalid_argument);
  EXPECT_EQ(ingest_error(outcome(IngestStatus::refused, IngestReason::other_institution)).code,
            Errc::permission_denied);
  EXPECT_EQ(ingest_error(outcome(IngestStatus::conflict, IngestReason::different_copy)).code,
            Errc::conflict);
  EXPECT_EQ(ingest_error(outcome(IngestStatus::failed, IngestReason::disk_full)).code,
            Errc::out_of_space);
  EXPECT_EQ(dicom_status(outcome(IngestStatus::failed, IngestReason::disk_full)), 0xA700);
  Error failed = ingest_error(outcome(IngestStatus::failed, IngestReason::shutting_down));
  EXPECT_EQ(failed.code, Errc::unavailable);
  EXPECT_NE(failed.message.find("why"), std::string::npos);
}

}  // namespace
}  // namespace yilian::pacs
