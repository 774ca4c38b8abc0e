// Orthanc, a PACS nobody here wrote, as a township clinic's DICOM node beside the hub: it sends
// a CT into the hub (C-STORE), searches the hub at study, series and image level (C-FIND, its
// own identifiers), and retrieves a JPEG 2000 study from it (C-MOVE to itself) while accepting
// no JPEG 2000 itself: the hub sends it decoded, pixel for pixel. The test starts Orthanc in a
// temp folder on free ports and stops it after.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "consortium_server.h"

namespace yilian {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::ServerProcess;

constexpr const char* kMrStudy = "1.3.6.1.4.1.5962.1.2.4.20040826185059.5457";
constexpr const char* kExplicitLittle = "1.2.840.10008.1.2.1";
constexpr const char* kImplicitLittle = "1.2.840.10008.1.2";

class OrthancInterop : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::have_program("Orthanc"))
      GTEST_SKIP() << "Orthanc is not installed (scripts/install-deps.sh)";
    ASSERT_TRUE(start_orthanc()) << testing::slurp(dir_.path() / "orthanc.log");
    // The hub: Orthanc is township A's PACS (AE title TA_PACS), a C-MOVE destination.
    fs::path cfg = dir_.path() / "yilian.toml";
    std::ofstream(cfg) << R"(
[dicom]
reject_unknown_ae = true

[[institutions]]
code = "ta"
name = "Township A Health Centre"
ae_titles = ["TA_CT", "TA_PACS"]

[[institutions]]
code = "tb"
name = "Township B Health Centre"
ae_titles = ["TB_CT"]

[[dicom_peers]]
ae_title = "TA_PACS"
host = "127.0.0.1"
port = )" << orthanc_dicom_
                       << "\n";
    server_ = std::make_unique<ServerProcess>(dir_.path() / "data",
                                              std::vector<std::string>{"--config", cfg.string()});
    ASSERT_TRUE(server_->start()) << server_->log();
    // Orthanc learns where the hub is once the hub has its port.
    json hub = {{"AET", "YILIAN"}, {"Host", "127.0.0.1"}, {"Port", server_->dicom_port()}};
    ASSERT_EQ(orthanc("PUT", "/modalities/hub", hub.dump()).status, 200);
    ta_ = server_->add_user("ta-doctor", {"township_doctor"}, "ta");
    ASSERT_FALSE(ta_.empty());
  }
  void TearDown() override {
    if (server_) {
      EXPECT_EQ(server_->stop(), 0) << server_->log();
    }
    if (!orthanc_pid_.empty()) testing::run_command("kill " + orthanc_pid_ + " 2>/dev/null");
  }

  // Orthanc cannot report ports the system chose: free ones are picked until it answers.
  bool start_orthanc() {
    orthanc_pid_ = testing::start_background(
        [&] {
          orthanc_http_ = testing::free_port();
          orthanc_dicom_ = testing::free_port();
          const fs::path storage = dir_.path() / "orthanc";
          json cfg = {{"Name", "TA_PACS"},
                      {"StorageDirectory", storage.string()},
                      {"IndexDirectory", storage.string()},
                      {"HttpPort", orthanc_http_},
                      {"DicomPort", orthanc_dicom_},
                      {"DicomAet", "TA_PACS"},
                      {"RemoteAccessAllowed", false},
                      {"AuthenticationEnabled", false},
                      {"DicomCheckCalledAet", false},
                      {"DicomScuTimeout", 60},
                      {"Plugins", json::array()},
                      // An uncompressed-only receiver as far as JPEG 2000 goes.
                      {"Jpeg2000TransferSyntaxAccepted", false},
                      {"DicomModalities", json::object()}};
          std::ofstream(dir_.path() / "orthanc.json") << cfg.dump(2);
          return "cd '" + dir_.path().string() +
                 "' && timeout 600 Orthanc orthanc.json >orthanc.log 2>&1 & echo $!";
        },
        [&] { return orthanc("GET", "/system").status == 200; });
    return !orthanc_pid_.empty();
  }

  testing::HttpResult orthanc(const std::string& method, const std::string& target,
                              const std::string& body = {}) {
    return testing::http_request(orthanc_http_, method, target, body);
  }
  json orthanc_json(const std::string& method, const std::string& target,
                    const std::string& body = {}) {
    auto r = orthanc(method, target, body);
    EXPECT_EQ(r.status, 200) << method << " " << target << ": " << r.body;
    return json::parse(r.body, nullptr, false);
  }
  // The answers of Orthanc's query `id` (simplified tags).
  json answers(const std::string& id) {
    return orthanc_json("GET", "/queries/" + id + "/answers?expand&simplify");
  }
  json hub_json(const std::string& target) {
    auto r = testing::http_request(server_->http_port(), "GET", target, "",
                                   {{"Authorization", "Bearer " + ta_}});
    EXPECT_EQ(r.status, 200) << target << ": " << r.body;
    return json::parse(r.body, nullptr, false);
  }

  testing::TempDir dir_;
  std::unique_ptr<ServerProcess> server_;
  std::uint16_t orthanc_http_ = 0, orthanc_dicom_ = 0;
  std::string orthanc_pid_;
  std::string ta_;
};

TEST_F(OrthancInterop, orthanc_stores_into_searches_and_retrieves_from_the_hub) {
  // A CT in Orthanc (uploaded over its REST API), sent to the hub by Orthanc's C-STORE.
  testing::CtSeriesSpec spec;
  spec.count = 3;
  spec.rows = spec.columns = 32;
  spec.patient_id = "TA-ORTHANC-1";
  spec.patient_name = "Wang^Fang";
  auto ct = testing::write_ct_series(dir_.path() / "ct", spec);
  ASSERT_TRUE(ct.ok());
  std::string orthanc_study;
  for (const fs::path& f : ct->files) {
    json up = orthanc_json("POST", "/instances", testing::slurp(f));
    orthanc_study = up.value("ParentStudy", "");
  }
  ASSERT_FALSE(orthanc_study.empty());
  json sent = orthanc_json("POST", "/modalities/hub/store", orthanc_study);
  EXPECT_EQ(sent["InstancesCount"], 3) << sent;
  EXPECT_EQ(sent["FailedInstancesCount"], 0) << sent;
  json studies = hub_json("/dicom-web/studies?PatientID=TA-ORTHANC-1");
  ASSERT_EQ(studies.size(), 1u) << studies;
  EXPECT_EQ(studies[0]["0020000D"]["Value"][0], ct->study_uid);
  EXPECT_EQ(studies[0]["00201208"]["Value"][0], 3);

  // A JPEG 2000 MR of township A, from its modality; and a CT of township B, which township
  // A's PACS must never see.
  std::string out;
  ASSERT_EQ(
      testing::run_command("dcmsend -aet TA_CT -aec YILIAN 127.0.0.1 " +
                               std::to_string(server_->dicom_port()) + " '" +
                               (testing::kPydicom / "MR_small_jp2klossless.dcm").string() + "'",
                           &out),
      0)
      << out;
  spec.patient_id = "TB-ORTHANC-1";
  auto tb = testing::write_ct_series(dir_.path() / "tb", spec);
  ASSERT_TRUE(tb.ok());
  ASSERT_EQ(testing::storescu(*server_, "TB_CT", tb->files), 0);

  // Orthanc's C-FIND: study level, then its own follow-up queries at series and image level.
  json q = orthanc_json("POST", "/modalities/hub/query",
                        R"({"Level":"Study","Query":{"PatientID":"*","StudyInstanceUID":""}})");
  json found = answers(q["ID"]);
  ASSERT_EQ(found.size(), 2u) << found;  // the CT and the MR: nothing of township B
  for (const json& a : found) {
    EXPECT_NE(a.value("PatientID", ""), "TB-ORTHANC-1") << a;
    EXPECT_EQ(a.value("QueryRetrieveLevel", ""), "STUDY") << a;
  }
  q = orthanc_json("POST", "/modalities/hub/query",
                   R"({"Level":"Study","Query":{"PatientID":"TA-ORTHANC-1"}})");
  found = answers(q["ID"]);
  ASSERT_EQ(found.size(), 1u) << found;
  EXPECT_EQ(found[0]["StudyInstanceUID"], ct->study_uid);
  json series_q = orthanc_json(
      "POST", "/queries/" + q["ID"].get<std::string>() + "/answers/0/query-series", "{}");
  json series = answers(series_q["ID"]);
  ASSERT_EQ(series.size(), 1u) << series;
  EXPECT_EQ(series[0]["SeriesInstanceUID"], ct->series_uid);
  json images_q = orthanc_json(
      "POST", "/queries/" + series_q["ID"].get<std::string>() + "/answers/0/query-instances", "{}");
  json images = answers(images_q["ID"]);
  ASSERT_EQ(images.size(), 3u) << images;
  std::set<std::string> sops;
  for (const json& a : images) sops.insert(a.value("SOPInstanceUID", ""));
  EXPECT_EQ(sops,
            std::set<std::string>(ct->sop_instance_uids.begin(), ct->sop_instance_uids.end()));
  // Whatever keys Orthanc put in its identifiers, the hub did not complain about them.
  EXPECT_EQ(server_->log().find("Invalid Element"), std::string::npos);

  // Orthanc retrieves the JPEG 2000 MR by C-MOVE to itself; accepting no JPEG 2000, it gets
  // the pixels decoded, exactly.
  json move = {{"Level", "Study"},
               {"Resources", json::array({{{"StudyInstanceUID", kMrStudy}}})},
               {"TargetAet", "TA_PACS"},
               {"Synchronous", true}};
  auto moved = orthanc("POST", "/modalities/hub/move", move.dump());
  ASSERT_EQ(moved.status, 200) << moved.body << "\n" << server_->log();
  json mr = orthanc_json(
      "POST", "/tools/find",
      json({{"Level", "Instance"}, {"Query", {{"StudyInstanceUID", kMrStudy}}}}).dump());
  ASSERT_EQ(mr.size(), 1u) << mr;
  const std::string id = mr[0];
  const std::string syntax = orthanc("GET", "/instances/" + id + "/metadata/TransferSyntax").body;
  EXPECT_TRUE(syntax == kExplicitLittle || syntax == kImplicitLittle) << syntax;
  auto raw = orthanc("GET", "/instances/" + id + "/frames/0/raw");
  ASSERT_EQ(raw.status, 200);
  EXPECT_EQ(raw.body, testing::pixel_bytes(testing::kPydicom / "MR_small.dcm"));

  // Township B's study cannot be moved to township A's PACS.
  move["Resources"] = json::array({{{"StudyInstanceUID", tb->study_uid}}});
  (void)orthanc("POST", "/modalities/hub/move", move.dump());
  json leaked = orthanc_json(
      "POST", "/tools/find",
      json({{"Level", "Study"}, {"Query", {{"StudyInstanceUID", tb->study_uid}}}}).dump());
  EXPECT_TRUE(leaked.empty()) << leaked;
}

}  // namespace
}  // namespace yilian
