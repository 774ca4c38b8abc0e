// Operating the data: `yilian backup` while the hub runs and receives, `yilian restore` into a
// new directory, `yilian fsck` on the live hub, on the restored copy and on a damaged one.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "consortium.h"
#include "dicom_client.h"
#include "process.h"
#include "server_process.h"
#include "synthetic.h"
#include "test_util.h"

namespace yilian {
namespace {

namespace fs = std::filesystem;
using testing::ServerProcess;

std::string yilian(const std::string& args, std::string* out) {
  int rc = testing::run_command(testing::yilian_binary() + " " + args + " 2>&1", out);
  return std::to_string(rc);
}

// The SOP Instance UIDs of `study` in the index file of a data directory.
std::set<std::string> indexed_instances(const fs::path& data, const std::string& study) {
  std::string out;
  testing::run_command(
      "sqlite3 '" + (data / "index.sqlite").string() +
          "' \"SELECT i.sop_uid FROM instances i JOIN series se ON se.id = "
          "i.series_pk JOIN studies s ON s.id = se.study_pk WHERE s.study_uid = '" +
          study + "'\"",
      &out);
  std::set<std::string> uids;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) uids.insert(line);
  }
  return uids;
}

class BackupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const fs::path cfg = testing::write_consortium_config(dir_.path());
    server_ = std::make_unique<ServerProcess>(dir_.path() / "data",
                                              std::vector<std::string>{"--config", cfg.string()});
    ASSERT_TRUE(server_->start()) << server_->log();
  }
  void TearDown() override {
    if (server_) {
      EXPECT_EQ(server_->stop(), 0) << server_->log();
    }
  }
  testing::WrittenSeries series(const std::string& name, int count) {
    testing::CtSeriesSpec spec;
    spec.count = count;
    spec.rows = spec.columns = 64;
    spec.patient_id = "TA-" + name;
    auto s = testing::write_ct_series(dir_.path() / name, spec);
    EXPECT_TRUE(s.ok());
    return s.ok() ? *s : testing::WrittenSeries{};
  }
  fs::path data() const { return dir_.path() / "data"; }

  testing::TempDir dir_;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(BackupTest, a_backup_under_ingest_restores_everything_acknowledged_before_it_began) {
  const testing::WrittenSeries before = series("before", 20);
  ASSERT_EQ(testing::storescu(*server_, "TA_CT", before.files), 0);  // acknowledged
  // More arrive while the backup runs.
  const testing::WrittenSeries during = series("during", 150);
  std::string pid;
  std::string files;
  for (const fs::path& f : during.files) files += " '" + f.string() + "'";
  ASSERT_EQ(testing::run_command("storescu -aet TA_CT -aec YILIAN 127.0.0.1 " +
                                     std::to_string(server_->dicom_port()) + files +
                                     " >/dev/null 2>&1 & echo $!",
                                 &pid),
            0);
  const fs::path bak = dir_.path() / "backup";
  std::string out;
  ASSERT_EQ(yilian("backup --data '" + data().string() + "' --to '" + bak.string() + "'", &out),
            "0")
      << out;
  EXPECT_NE(out.find("copied now"), std::string::npos) << out;
  // The sender finishes (bounded: 60 s).
  while (!pid.empty() && std::isspace(static_cast<unsigned char>(pid.back()))) pid.pop_back();
  for (int i = 0; i < 600 && testing::run_command("kill -0 " + pid + " 2>/dev/null") == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }

  // The live hub checks clean while it runs.
  ASSERT_EQ(yilian("fsck --data '" + data().string() + "'", &out), "0") << out;
  EXPECT_NE(out.find("170 objects indexed, 170 intact"), std::string::npos) << out;

  // Restored into a new directory: every instance acknowledged before the backup began, and
  // whatever of the rest the backup's view held, each intact; the audit chain verifies.
  const fs::path restored = dir_.path() / "restored";
  ASSERT_EQ(
      yilian("restore --from '" + bak.string() + "' --data '" + restored.string() + "'", &out), "0")
      << out;
  EXPECT_NE(out.find("clean"), std::string::npos) << out;
  EXPECT_NE(out.find("audit trail intact"), std::string::npos) << out;
  EXPECT_EQ(
      indexed_instances(restored, before.study_uid),
      std::set<std::string>(before.sop_instance_uids.begin(), before.sop_instance_uids.end()));
  EXPECT_LE(indexed_instances(restored, during.study_uid).size(), 150u);

  // Again into the same folder: only what is new is copied.
  ASSERT_EQ(yilian("backup --data '" + data().string() + "' --to '" + bak.string() + "'", &out),
            "0")
      << out;
  EXPECT_NE(out.find("170 objects"), std::string::npos) << out;
  const std::size_t had = 20 + indexed_instances(restored, during.study_uid).size();
  EXPECT_NE(
      out.find(std::to_string(170 - had) + " copied now, " + std::to_string(had) + " there before"),
      std::string::npos)
      << out;

  // Restoring over data is refused; so is a folder that is not a complete backup.
  EXPECT_EQ(
      yilian("restore --from '" + bak.string() + "' --data '" + restored.string() + "'", &out), "2")
      << out;
  EXPECT_NE(out.find("not empty"), std::string::npos) << out;
  EXPECT_EQ(yilian("restore --from '" + data().string() + "' --data '" +
                       (dir_.path() / "other").string() + "'",
                   &out),
            "2")
      << out;
  EXPECT_NE(out.find("not a complete backup"), std::string::npos) << out;
}

TEST_F(BackupTest, fsck_names_missing_cut_foreign_and_unreferenced_files_and_a_broken_chain) {
  const testing::WrittenSeries ct = series("ct", 5);
  ASSERT_EQ(testing::storescu(*server_, "TA_CT", ct.files), 0);
  const fs::path bak = dir_.path() / "backup";
  std::string out;
  ASSERT_EQ(yilian("backup --data '" + data().string() + "' --to '" + bak.string() + "'", &out),
            "0")
      << out;
  ASSERT_EQ(yilian("fsck --data '" + bak.string() + "'", &out), "0") << out;

  // Damage the backup: one object gone, one cut short, one replaced by other bytes of the same
  // size (one stored before content hashes were kept, so only its parse finds it), one with a
  // single pixel byte changed, one file nobody references (old enough not to be a store in
  // flight).
  std::vector<fs::path> blobs;
  for (const auto& e : fs::recursive_directory_iterator(bak / "blobs")) {
    if (e.is_regular_file()) blobs.push_back(e.path());
  }
  ASSERT_EQ(blobs.size(), 5u);
  fs::remove(blobs[0]);
  fs::resize_file(blobs[1], fs::file_size(blobs[1]) / 2);
  {
    const auto size = fs::file_size(blobs[2]);
    std::ofstream(blobs[2], std::ios::binary | std::ios::trunc) << std::string(size, 'x');
  }
  ASSERT_EQ(
      testing::run_command("sqlite3 '" + (bak / "index.sqlite").string() +
                               "' \"UPDATE instances SET content_hash = NULL WHERE blob_key = '" +
                               blobs[2].filename().string() + "'\" 2>&1",
                           &out),
      0)
      << out;
  {
    std::fstream f(blobs[4], std::ios::binary | std::ios::in | std::ios::out);
    f.seekg(-1, std::ios::end);
    const char last = static_cast<char>(f.get());
    f.seekp(-1, std::ios::end);
    f.put(static_cast<char>(last ^ 0x01));
  }
  const std::string stray = "ffffffffffffffffffffffff" + blobs[3].filename().string().substr(24);
  const fs::path stray_path = bak / "blobs" / stray.substr(0, 2) / stray.substr(2, 2) / stray;
  fs::create_directories(stray_path.parent_path());
  fs::copy_file(blobs[3], stray_path);
  fs::last_write_time(stray_path, fs::file_time_type::clock::now() - std::chrono::hours(1));
  // And one audit record edited behind the chain's back (by someone who dropped the guard).
  ASSERT_EQ(testing::run_command("sqlite3 '" + (bak / "audit.sqlite").string() +
                                     "' \"DROP TRIGGER audit_no_update; UPDATE audit SET detail "
                                     "= detail || ' (edited)' WHERE seq = 1\" 2>&1",
                                 &out),
            0)
      << out;

  EXPECT_EQ(yilian("fsck --data '" + bak.string() + "'", &out), "1") << out;
  EXPECT_NE(out.find("missing: "), std::string::npos) << out;
  EXPECT_NE(out.find("size: "), std::string::npos) << out;
  EXPECT_NE(out.find("unreadable: "), std::string::npos) << out;
  EXPECT_NE(out.find("content: "), std::string::npos) << out;
  EXPECT_NE(out.find("5 objects indexed, 1 intact (1 stored before content hashes); 1 "
                     "unreferenced files"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("audit trail BROKEN"), std::string::npos) << out;
  EXPECT_NE(out.find("PROBLEMS FOUND"), std::string::npos) << out;
  // --quick reads sizes only: the replaced and the changed object pass it.
  EXPECT_EQ(yilian("fsck --quick --data '" + bak.string() + "'", &out), "1") << out;
  EXPECT_NE(out.find("5 objects indexed, 3 intact"), std::string::npos) << out;

  // An install whose databases are in PostgreSQL is pointed to PostgreSQL's tools.
  const fs::path pg = dir_.path() / "pg";
  fs::create_directories(pg);
  std::ofstream(pg / "database.url") << "postgresql://localhost/yilian\n";
  EXPECT_EQ(yilian("backup --data '" + pg.string() + "' --to '" + (pg / "b").string() + "'", &out),
            "2");
  EXPECT_NE(out.find("pg_basebackup"), std::string::npos) << out;
}

}  // namespace
}  // namespace yilian
