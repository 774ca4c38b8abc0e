// End-to-end: the real `yilian serve` on free loopback ports, driven by DCMTK's storescu,
// dcmsend and echoscu, a raw DIMSE client for exact statuses, and an HTTP client.
#include <gtest/gtest.h>

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcmetinf.h>
#include <dcmtk/dcmdata/dcuid.h>

#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "dicom_client.h"
#include "server_process.h"
#include "synthetic.h"
#include "test_util.h"

namespace yilian {
namespace {

using testing::slurp;

namespace fs = std::filesystem;
using nlohmann::json;
using testing::ServerProcess;

const fs::path kPydicom = PYDICOM_TEST_FILES;

std::vector<fs::path> files_under(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_regular_file()) out.push_back(it->path());
  }
  return out;
}

std::string meta_string(const fs::path& file, const DcmTagKey& tag) {
  DcmFileFormat ff;
  if (ff.loadFileUntilTag(file.c_str(), EXS_Unknown, EGL_noChange, 256, ERM_fileOnly, DCM_PixelData)
          .bad())
    return {};
  OFString v;
  ff.getMetaInfo()->findAndGetOFString(tag, v);
  return v.c_str();
}

std::string dataset_sop_instance(const fs::path& file) {
  DcmFileFormat ff;
  if (ff.loadFileUntilTag(file.c_str(), EXS_Unknown, EGL_noChange, 256, ERM_fileOnly, DCM_PixelData)
          .bad())
    return {};
  OFString v;
  ff.getDataset()->findAndGetOFString(DCM_SOPInstanceUID, v);
  return v.c_str();
}

// GET with a bearer token; by default the harness's reader of the "unknown" institution.
json get_json(ServerProcess& s, const std::string& target, int expect_status = 200,
              const std::string& token = {}) {
  auto r = s.get(token.empty() ? s.reader_token() : token, target);
  EXPECT_EQ(r.status, expect_status) << target << ": " << r.body;
  auto j = json::parse(r.body, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << r.body;
  return j;
}

std::string storescu(const ServerProcess& s, const std::vector<fs::path>& files,
                     const std::string& aet = "TOWNSHIP_CT", int* exit_code = nullptr) {
  std::string cmd = "TCP_NODELAY=1 storescu -aet " + aet + " -aec YILIAN 127.0.0.1 " +
                    std::to_string(s.dicom_port());
  for (const fs::path& f : files) cmd += " '" + f.string() + "'";
  std::string out;
  int rc = testing::run_command(cmd, &out);
  if (exit_code) *exit_code = rc;
  return out;
}

class ServeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<ServerProcess>(dir_.path() / "data");
    ASSERT_TRUE(server_->start()) << server_->log();
  }
  void TearDown() override {
    if (server_) {
      EXPECT_EQ(server_->stop(), 0) << server_->log();
    }
  }
  fs::path data() const { return dir_.path() / "data"; }
  std::size_t blob_count() const { return files_under(data() / "blobs").size(); }
  std::size_t temp_count() const { return files_under(data() / "tmp").size(); }

  testing::TempDir dir_;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(ServeTest, healthz_answers_json_and_echoscu_is_answered) {
  json h = get_json(*server_, "/healthz");
  EXPECT_EQ(h["status"], "ok");
  EXPECT_EQ(h["database"]["backend"], "sqlite");
  EXPECT_EQ(h["database"]["reachable"], true);
  std::string out;
  EXPECT_EQ(testing::run_command(
                "echoscu -aec YILIAN 127.0.0.1 " + std::to_string(server_->dicom_port()), &out),
            0)
      << out;
}

TEST_F(ServeTest, a_synthetic_ct_series_sent_with_storescu_is_stored_indexed_and_listed) {
  testing::CtSeriesSpec spec;
  spec.count = 12;
  spec.patient_name = "Zhao^Liu";
  auto series = testing::write_ct_series(dir_.path() / "ct", spec);
  ASSERT_TRUE(series.ok());
  int rc = -1;
  std::string out = storescu(*server_, series->files, "TOWNSHIP_CT", &rc);
  ASSERT_EQ(rc, 0) << out;

  json list = get_json(*server_, "/api/studies");
  ASSERT_EQ(list["total"], 1);
  const json& st = list["studies"][0];
  EXPECT_EQ(st["studyInstanceUid"], series->study_uid);
  EXPECT_EQ(st["numberOfInstances"], 12);
  EXPECT_EQ(st["numberOfSeries"], 1);
  EXPECT_EQ(st["modalities"], "CT");
  EXPECT_EQ(st["patient"]["name"], "Zhao^Liu");
  EXPECT_EQ(st["institution"], "unknown");  // no config: any AE, filed as unknown

  json detail = get_json(*server_, "/api/studies/" + series->study_uid);
  ASSERT_EQ(detail["series"].size(), 1u);
  EXPECT_EQ(detail["series"][0]["seriesInstanceUid"], series->series_uid);
  EXPECT_EQ(detail["series"][0]["numberOfInstances"], 12);

  // Every object is on disk, and its data set is byte-for-byte what storescu sent.
  auto blobs = files_under(data() / "blobs");
  ASSERT_EQ(blobs.size(), 12u);
  EXPECT_EQ(temp_count(), 0u);
  std::map<std::string, fs::path> by_uid;
  for (const fs::path& b : blobs) by_uid[meta_string(b, DCM_MediaStorageSOPInstanceUID)] = b;
  for (std::size_t i = 0; i < series->files.size(); ++i) {
    ASSERT_TRUE(by_uid.count(series->sop_instance_uids[i]));
    std::string sent = slurp(series->files[i]);
    std::string kept = slurp(by_uid[series->sop_instance_uids[i]]);
    // Both are Part 10 files; compare the data set after each one's meta group.
    auto tail = [](const std::string& s) { return s.substr(s.find("\x08\x00", 132)); };
    EXPECT_EQ(tail(kept).size(), tail(sent).size());
    EXPECT_TRUE(tail(kept) == tail(sent)) << "instance " << i << " differs";
  }
  EXPECT_EQ(meta_string(blobs[0], DCM_SourceApplicationEntityTitle), "TOWNSHIP_CT");
}

TEST_F(ServeTest, real_world_files_in_the_common_transfer_syntaxes_are_kept_as_sent) {
  // Distinct SOP instances covering image, multi-frame, waveform, SR and RT objects.
  std::vector<std::string> names = {"CT_small.dcm",
                                    "JPEG2000.dcm",
                                    "MR_small_jpeg_ls_lossless.dcm",
                                    "SC_rgb_jpeg_dcmtk.dcm",
                                    "JPGExtended.dcm",
                                    "image_dfl.dcm",
                                    "waveform_ecg.dcm",
                                    "reportsi.dcm",
                                    "SC_rgb_rle_2frame.dcm",
                                    "rtplan.dcm"};
  // An encapsulated PDF report, made with DCMTK's pdf2dcm from a minimal PDF.
  fs::path pdf = dir_.path() / "report.pdf";
  {
    std::ofstream f(pdf, std::ios::binary);
    f << "%PDF-1.1\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
         "2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
         "3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>endobj\n"
         "trailer<</Root 1 0 R>>\n%%EOF\n";
  }
  fs::path pdf_dcm = dir_.path() / "report.dcm";
  std::string out;
  ASSERT_EQ(testing::run_command("pdf2dcm +pn Report^PDF +pi PDF001 '" + pdf.string() + "' '" +
                                     pdf_dcm.string() + "'",
                                 &out),
            0)
      << out;

  std::string cmd =
      "dcmsend -aet TOWNSHIP_PC -aec YILIAN 127.0.0.1 " + std::to_string(server_->dicom_port());
  std::set<std::pair<std::string, std::string>> sent;  // (SOP instance, transfer syntax)
  std::vector<fs::path> files;
  for (const std::string& n : names) files.push_back(kPydicom / n);
  files.push_back(pdf_dcm);
  for (const fs::path& f : files) {
    cmd += " '" + f.string() + "'";
    // rtplan.dcm's meta group names another instance than its data set: dcmsend sends
    // the data set's, so that is the one to expect.
    // Offered implicit and explicit little endian, we choose explicit, so dcmsend converts.
    std::string ts = meta_string(f, DCM_TransferSyntaxUID);
    if (ts == UID_LittleEndianImplicitTransferSyntax) ts = UID_LittleEndianExplicitTransferSyntax;
    sent.insert({dataset_sop_instance(f), ts});
  }
  ASSERT_EQ(testing::run_command(cmd, &out), 0) << out;

  std::set<std::pair<std::string, std::string>> kept;
  for (const fs::path& b : files_under(data() / "blobs")) {
    kept.insert(
        {meta_string(b, DCM_MediaStorageSOPInstanceUID), meta_string(b, DCM_TransferSyntaxUID)});
  }
  EXPECT_EQ(kept, sent);
  std::set<std::string> syntaxes;
  for (const auto& [uid, ts] : kept) syntaxes.insert(ts);
  for (const char* ts :
       {UID_LittleEndianExplicitTransferSyntax, UID_JPEG2000TransferSyntax,
        UID_JPEGLSLosslessTransferSyntax, UID_JPEGProcess1TransferSyntax,
        UID_JPEGProcess2_4TransferSyntax, UID_DeflatedExplicitVRLittleEndianTransferSyntax,
        UID_RLELosslessTransferSyntax}) {
    EXPECT_TRUE(syntaxes.count(ts)) << ts << " not kept as sent";
  }
  json list = get_json(*server_, "/api/studies?limit=100");
  std::int64_t instances = 0;
  for (const json& s : list["studies"]) instances += s["numberOfInstances"].get<std::int64_t>();
  EXPECT_EQ(instances, static_cast<std::int64_t>(files.size()));
}

TEST_F(ServeTest, several_associations_in_parallel_all_land) {
  std::string study = testing::new_uid();
  std::vector<std::vector<fs::path>> batches;
  for (int i = 0; i < 4; ++i) {
    testing::CtSeriesSpec spec;
    spec.study_uid = study;
    spec.series_number = i + 1;
    spec.count = 10;
    spec.rows = spec.columns = 128;
    auto s = testing::write_ct_series(dir_.path() / ("s" + std::to_string(i)), spec);
    ASSERT_TRUE(s.ok());
    batches.push_back(s->files);
  }
  std::vector<std::future<int>> runs;
  for (int i = 0; i < 4; ++i) {
    runs.push_back(std::async(std::launch::async, [&, i] {
      int rc = -1;
      storescu(*server_, batches[static_cast<std::size_t>(i)], "CT" + std::to_string(i), &rc);
      return rc;
    }));
  }
  for (auto& r : runs) EXPECT_EQ(r.get(), 0);
  json detail = get_json(*server_, "/api/studies/" + study);
  EXPECT_EQ(detail["numberOfInstances"], 40);
  EXPECT_EQ(detail["numberOfSeries"], 4);
  EXPECT_EQ(blob_count(), 40u);
}

TEST_F(ServeTest, a_resent_identical_instance_succeeds_and_a_different_one_is_kept_and_warned) {
  testing::CtSeriesSpec spec;
  spec.count = 1;
  spec.rows = spec.columns = 64;
  auto s = testing::write_ct_series(dir_.path() / "one", spec);
  ASSERT_TRUE(s.ok());
  testing::StoreRequest req;
  req.file = s->files[0];
  auto first = testing::send_file(server_->dicom_port(), req);
  ASSERT_TRUE(first.associated) << first.error;
  EXPECT_EQ(first.status, 0x0000);
  auto again = testing::send_file(server_->dicom_port(), req);
  EXPECT_EQ(again.status, 0x0000);
  EXPECT_EQ(blob_count(), 1u);

  // Same SOP Instance UID, one pixel changed.
  std::string bytes = slurp(s->files[0]);
  bytes[bytes.size() - 2] ^= 0x7f;
  fs::path changed = dir_.path() / "changed.dcm";
  std::ofstream(changed, std::ios::binary) << bytes;
  req.file = changed;
  auto conflict = testing::send_file(server_->dicom_port(), req);
  EXPECT_EQ(conflict.status, 0xB000);
  EXPECT_NE(conflict.error_comment.find("already stored"), std::string::npos)
      << conflict.error_comment;
  EXPECT_EQ(blob_count(), 2u);
  json detail = get_json(*server_, "/api/studies/" + s->study_uid);
  EXPECT_EQ(detail["numberOfInstances"], 1);
  EXPECT_NE(server_->log().find("conflict"), std::string::npos);

  // Implicit VR little endian, when that is all the SCU proposes, is accepted and kept.
  req.file = kPydicom / "MR_small_implicit.dcm";
  auto implicit = testing::send_file(server_->dicom_port(), req);
  EXPECT_EQ(implicit.status, 0x0000) << implicit.error << implicit.error_comment;
  bool found_implicit = false;
  for (const fs::path& b : files_under(data() / "blobs")) {
    found_implicit |=
        meta_string(b, DCM_TransferSyntaxUID) == UID_LittleEndianImplicitTransferSyntax;
  }
  EXPECT_TRUE(found_implicit);
}

TEST_F(ServeTest, malformed_data_sets_get_a_failure_status_with_a_comment_and_leave_nothing) {
  // 1. No Study Instance UID.
  DcmFileFormat ff;
  ff.getDataset()->putAndInsertString(DCM_SOPClassUID, UID_SecondaryCaptureImageStorage);
  ff.getDataset()->putAndInsertString(DCM_SOPInstanceUID, "1.2.826.0.1.3680043.2.1.99");
  ff.getDataset()->putAndInsertString(DCM_SeriesInstanceUID, "1.2.826.0.1.3680043.2.1.98");
  ff.getDataset()->putAndInsertString(DCM_PatientID, "X");
  fs::path nostudy = dir_.path() / "nostudy.dcm";
  ASSERT_TRUE(ff.saveFile(nostudy.c_str(), EXS_LittleEndianExplicit).good());
  testing::StoreRequest req;
  req.file = nostudy;
  auto r1 = testing::send_file(server_->dicom_port(), req);
  ASSERT_TRUE(r1.associated) << r1.error;
  EXPECT_EQ(r1.status, 0xC000);
  EXPECT_NE(r1.error_comment.find("Study Instance UID"), std::string::npos) << r1.error_comment;

  // 2. A truncated data set, streamed as it is.
  req.file = kPydicom / "MR_truncated.dcm";
  auto r2 = testing::send_file(server_->dicom_port(), req);
  ASSERT_TRUE(r2.associated) << r2.error;
  EXPECT_GE(r2.status, 0xA000);
  EXPECT_FALSE(r2.error_comment.empty());

  // 3. A CT data set announced as MR Image Storage on an MR context.
  testing::CtSeriesSpec spec;
  spec.count = 1;
  spec.rows = spec.columns = 32;
  auto s = testing::write_ct_series(dir_.path() / "ct", spec);
  ASSERT_TRUE(s.ok());
  req.file = s->files[0];
  req.sop_class_uid = UID_MRImageStorage;
  auto r3 = testing::send_file(server_->dicom_port(), req);
  ASSERT_TRUE(r3.associated) << r3.error;
  EXPECT_EQ(r3.status, 0xA900);
  EXPECT_NE(r3.error_comment.find("SOP Class"), std::string::npos) << r3.error_comment;

  EXPECT_EQ(blob_count(), 0u);
  EXPECT_EQ(temp_count(), 0u);
  EXPECT_EQ(get_json(*server_, "/api/studies")["total"], 0);

  // The server still works after all that.
  req.sop_class_uid.clear();
  EXPECT_EQ(testing::send_file(server_->dicom_port(), req).status, 0x0000);
}

TEST_F(ServeTest, a_restart_keeps_everything) {
  testing::CtSeriesSpec spec;
  spec.count = 5;
  spec.rows = spec.columns = 64;
  auto s = testing::write_ct_series(dir_.path() / "ct", spec);
  ASSERT_TRUE(s.ok());
  int rc = -1;
  storescu(*server_, s->files, "TOWNSHIP_CT", &rc);
  ASSERT_EQ(rc, 0);
  ASSERT_EQ(server_->stop(), 0) << server_->log();
  ASSERT_TRUE(server_->start()) << server_->log();
  json detail = get_json(*server_, "/api/studies/" + s->study_uid);
  EXPECT_EQ(detail["numberOfInstances"], 5);
  EXPECT_EQ(blob_count(), 5u);
  // And the restarted hub still takes more of the same study.
  testing::CtSeriesSpec more = spec;
  more.study_uid = s->study_uid;
  more.series_number = 2;
  auto s2 = testing::write_ct_series(dir_.path() / "ct2", more);
  ASSERT_TRUE(s2.ok());
  storescu(*server_, s2->files, "TOWNSHIP_CT", &rc);
  ASSERT_EQ(rc, 0);
  EXPECT_EQ(get_json(*server_, "/api/studies/" + s->study_uid)["numberOfInstances"], 10);
}

TEST_F(ServeTest, bad_http_requests_get_json_errors) {
  const std::string& token = server_->reader_token();
  ASSERT_FALSE(token.empty()) << server_->log();
  auto r = server_->get(token, "/api/studies?limit=abc");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(json::parse(r.body)["error"]["code"], "invalid_argument");
  // A study that is not there answers like one the caller may not see.
  r = server_->get(token, "/api/studies/1.2.3.4.5");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(json::parse(r.body)["error"]["code"], "not_found");
  r = server_->get(token, "/api/nothing-here");
  EXPECT_EQ(r.status, 404);
  r = server_->request(token, "DELETE", "/api/studies");
  EXPECT_EQ(r.status, 405);
  // Without a token nothing under /api/ answers, not even to say a path does not exist.
  r = testing::http_get(server_->http_port(), "/api/nothing-here");
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(json::parse(r.body)["error"]["code"], "unauthenticated");
}

TEST(ServeConfig,
     unknown_aes_are_refused_when_configured_and_known_ones_file_under_their_institution) {
  testing::TempDir dir;
  fs::path cfg = dir.path() / "yilian.toml";
  std::ofstream(cfg) << R"(
[dicom]
reject_unknown_ae = true

[[institutions]]
code = "township-a"
name = "Township A Health Centre"
ae_titles = ["TA_CT"]
)";
  ServerProcess server(dir.path() / "data", {"--config", cfg.string()});
  ASSERT_TRUE(server.start()) << server.log();
  EXPECT_FALSE(testing::echo(server.dicom_port(), "STRANGER"));
  EXPECT_TRUE(testing::echo(server.dicom_port(), "TA_CT"));

  testing::CtSeriesSpec spec;
  spec.count = 2;
  spec.rows = spec.columns = 32;
  auto s = testing::write_ct_series(dir.path() / "ct", spec);
  ASSERT_TRUE(s.ok());
  int rc = -1;
  storescu(server, s->files, "STRANGER", &rc);
  EXPECT_NE(rc, 0);
  storescu(server, s->files, "TA_CT", &rc);
  EXPECT_EQ(rc, 0);
  std::string ta_doctor = server.add_user("ta-doctor", {"township_doctor"}, "township-a");
  ASSERT_FALSE(ta_doctor.empty()) << server.log();
  json detail = get_json(server, "/api/studies/" + s->study_uid, 200, ta_doctor);
  EXPECT_EQ(detail["institution"], "township-a");
  // The harness's reader at "unknown" does not see township A's study.
  get_json(server, "/api/studies/" + s->study_uid, 404);
  EXPECT_EQ(server.stop(), 0);
}

TEST(ServeConfig, an_invalid_config_stops_the_hub_with_a_clear_message) {
  testing::TempDir dir;
  fs::path cfg = dir.path() / "yilian.toml";
  std::ofstream(cfg) << "[dicom]\nprot = 11112\n";
  std::string out;
  int rc =
      testing::run_command(testing::yilian_binary() + " serve --data '" +
                               (dir.path() / "data").string() + "' --config '" + cfg.string() + "'",
                           &out);
  EXPECT_NE(rc, 0);
  EXPECT_NE(out.find("unknown key 'prot'"), std::string::npos) << out;
}

TEST(Import, imports_folders_recursively_and_reports_duplicates_and_rejections) {
  testing::TempDir dir;
  testing::CtSeriesSpec spec;
  spec.count = 6;
  spec.rows = spec.columns = 32;
  auto s = testing::write_ct_series(dir.path() / "in" / "nested", spec);
  ASSERT_TRUE(s.ok());
  std::ofstream(dir.path() / "in" / "notes.txt") << "not a DICOM file";
  fs::copy_file(s->files[0], dir.path() / "in" / "copy.dcm");  // a duplicate
  std::string out;
  int rc = testing::run_command(testing::yilian_binary() + " import --data '" +
                                    (dir.path() / "data").string() + "' '" +
                                    (dir.path() / "in").string() + "'",
                                &out);
  EXPECT_EQ(rc, 2) << out;  // something was rejected
  EXPECT_NE(out.find("imported: 6"), std::string::npos) << out;
  EXPECT_NE(out.find("duplicates: 1"), std::string::npos) << out;
  EXPECT_NE(out.find("rejected: 1"), std::string::npos) << out;
  EXPECT_NE(out.find("notes.txt"), std::string::npos) << out;

  ServerProcess server(dir.path() / "data");
  ASSERT_TRUE(server.start()) << server.log();
  json detail = get_json(server, "/api/studies/" + s->study_uid);
  EXPECT_EQ(detail["numberOfInstances"], 6);
  // The import is in the audit trail, one record per study.
  auto audit = server.get(server.admin_token(), "/api/audit?action=dicom.import");
  ASSERT_EQ(audit.status, 200) << audit.body;
  json records = json::parse(audit.body)["records"];
  ASSERT_EQ(records.size(), 1u) << audit.body;
  EXPECT_EQ(records[0]["objectId"], s->study_uid);
  EXPECT_EQ(records[0]["detail"], "1 duplicate, 6 stored");
  EXPECT_EQ(server.stop(), 0);
}

TEST(Import, refuses_a_data_directory_that_a_running_hub_holds) {
  testing::TempDir dir;
  ServerProcess server(dir.path() / "data");
  ASSERT_TRUE(server.start()) << server.log();
  std::string out;
  int rc = testing::run_command(testing::yilian_binary() + " import --data '" +
                                    (dir.path() / "data").string() + "' '" +
                                    (kPydicom / "CT_small.dcm").string() + "'",
                                &out);
  EXPECT_NE(rc, 0);
  EXPECT_NE(out.find("in use"), std::string::npos) << out;
  EXPECT_EQ(server.stop(), 0);
}

}  // namespace
}  // namespace yilian
