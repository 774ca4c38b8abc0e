// A disk that fills up for real: the data directory on a small file system the test mounts
// (tmpfs; skipped where mounting is not allowed). Stores stop at the reserve with 0xA700 and
// HTTP 507, nothing half-written stays, reads and sign-ins go on, and stores resume by
// themselves once there is space again.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "consortium_server.h"
#include "process.h"

namespace yilian {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::ServerProcess;

class DiskFull : public ::testing::Test {
 protected:
  void SetUp() override {
    disk_ = dir_.path() / "disk";
    fs::create_directories(disk_);
    std::string out;
    if (testing::run_command("mount -t tmpfs -o size=40m tmpfs '" + disk_.string() + "'", &out) !=
        0) {
      GTEST_SKIP() << "cannot mount a small file system here (needs root): " << out;
    }
    mounted_ = true;
  }
  void TearDown() override {
    if (server_) server_->stop();
    server_.reset();
    if (mounted_) testing::run_command("umount '" + disk_.string() + "'");
  }

  testing::TempDir dir_;
  fs::path disk_;
  bool mounted_ = false;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(DiskFull, stores_stop_at_the_reserve_reads_go_on_and_stores_resume_with_space) {
  const fs::path cfg =
      testing::write_consortium_config(dir_.path(), "[storage]\nreserve_megabytes = 8\n");
  server_ = std::make_unique<ServerProcess>(disk_ / "data",
                                            std::vector<std::string>{"--config", cfg.string()});
  ASSERT_TRUE(server_->start()) << server_->log();
  const std::string doc = server_->add_user("dr-li", {"township_doctor"}, "ta");
  ASSERT_FALSE(doc.empty());
  // Ballast that leaves room for a few images above the reserve.
  {
    std::error_code ec;
    const auto space = fs::space(disk_, ec);
    ASSERT_FALSE(ec);
    const std::uintmax_t ballast = space.available - (8u << 20) - (3u << 20);
    std::ofstream(disk_ / "ballast", std::ios::binary) << std::string(ballast, '\0');
  }
  testing::CtSeriesSpec spec;
  spec.count = 30;  // 512 KB each
  spec.patient_id = "TA-FULL";
  auto ct = testing::write_ct_series(dir_.path() / "ct", spec);
  ASSERT_TRUE(ct.ok());

  auto send = [&](const fs::path& file) {
    testing::StoreRequest req;
    req.file = file;
    req.calling_ae = "TA_CT";
    return testing::send_file(server_->dicom_port(), req);
  };
  // Stored until the reserve is reached, then refused with the reason.
  std::size_t stored = 0, next = 0;
  testing::StoreResult refused;
  for (; next < ct->files.size(); ++next) {
    auto r = send(ct->files[next]);
    ASSERT_TRUE(r.associated) << r.error;
    if (r.status != 0x0000) {
      refused = r;
      break;
    }
    ++stored;
  }
  ASSERT_LT(next, ct->files.size()) << "the disk never filled";
  EXPECT_GT(stored, 0u);
  EXPECT_EQ(refused.status, 0xA700);
  EXPECT_NE(refused.error_comment.find("out of disk space"), std::string::npos)
      << refused.error_comment;
  // STOW-RS: 507 with the failed instance and its reason.
  const std::string boundary = "xyzzy";
  std::string body = "--" + boundary + "\r\nContent-Type: application/dicom\r\n\r\n" +
                     testing::slurp(ct->files[next]) + "\r\n--" + boundary + "--\r\n";
  auto stow = testing::http_request(
      server_->http_port(), "POST", "/dicom-web/studies", body,
      {{"Authorization", "Bearer " + doc},
       {"Content-Type", "multipart/related; type=\"application/dicom\"; boundary=" + boundary}});
  EXPECT_EQ(stow.status, 507) << stow.body;
  EXPECT_NE(stow.body.find("00081198"), std::string::npos) << stow.body;

  // Reads and sign-ins go on; what was acknowledged is there, nothing else.
  auto studies =
      testing::http_request(server_->http_port(), "GET", "/dicom-web/studies?PatientID=TA-FULL", "",
                            {{"Authorization", "Bearer " + doc}});
  ASSERT_EQ(studies.status, 200);
  json list = json::parse(studies.body);
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["00201208"]["Value"][0], static_cast<int>(stored));
  EXPECT_FALSE(server_->login("dr-li").empty());
  EXPECT_TRUE(fs::is_empty(disk_ / "data" / "tmp"));

  // Space again: stores resume without a restart.
  fs::remove(disk_ / "ballast");
  auto again = send(ct->files[next]);
  EXPECT_EQ(again.status, 0x0000) << again.error_comment;
  std::string out;
  EXPECT_EQ(
      testing::run_command(
          testing::yilian_binary() + " fsck --data '" + (disk_ / "data").string() + "'", &out),
      0)
      << out;
}

}  // namespace
}  // namespace yilian
