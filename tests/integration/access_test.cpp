// Access control end to end: the real `yilian serve` with a consortium configured (a lead
// hospital reading imaging and ECG for township A; township B unrelated), studies sent by
// each clinic with storescu, users created through the admin API, and every REST entry
// point asked by every kind of user.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "dicom_client.h"
#include "server_process.h"
#include "synthetic.h"
#include "synthetic_ecg.h"
#include "test_util.h"
#include "yilian/ecg/dicom_waveform.h"

namespace yilian {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::ServerProcess;
using testing::storescu;

const fs::path kPydicom = PYDICOM_TEST_FILES;

constexpr const char* kConfig = R"(
[dicom]
reject_unknown_ae = true

[[institutions]]
code = "ta"
name = "Township A Health Centre"
level = "township"
parent = "lead"
ae_titles = ["TA_CT", "TA_ECG"]

[[institutions]]
code = "lead"
name = "Lead Hospital"
level = "lead"
ae_titles = ["LEAD_CT"]

[[institutions]]
code = "tb"
name = "Township B Health Centre"
level = "township"
parent = "lead"
ae_titles = ["TB_CT"]

[[reading_services]]
provider = "lead"
service = "imaging"
clients = ["ta"]

[[reading_services]]
provider = "lead"
service = "ecg"
clients = ["ta"]
)";

std::string study_uid_of(const fs::path& file) {
  std::string out;
  testing::run_command("dcmdump +P StudyInstanceUID '" + file.string() + "'", &out);
  std::size_t a = out.find('['), b = out.find(']');
  return a == std::string::npos || b == std::string::npos ? "" : out.substr(a + 1, b - a - 1);
}

class AccessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::path cfg = dir_.path() / "yilian.toml";
    std::ofstream(cfg) << kConfig;
    server_ = std::make_unique<ServerProcess>(dir_.path() / "data",
                                              std::vector<std::string>{"--config", cfg.string()});
    ASSERT_TRUE(server_->start()) << server_->log();
    ASSERT_FALSE(server_->admin_token().empty()) << server_->log();

    testing::CtSeriesSpec spec;
    spec.count = 2;
    spec.rows = spec.columns = 16;
    auto a = testing::write_ct_series(dir_.path() / "a", spec);
    auto b = testing::write_ct_series(dir_.path() / "b", spec);
    ASSERT_TRUE(a.ok() && b.ok());
    ct_a_ = *a;
    ASSERT_EQ(storescu(*server_, "TA_CT", a->files), 0);
    ASSERT_EQ(storescu(*server_, "TB_CT", b->files), 0);
    fs::path ecg = kPydicom / "waveform_ecg.dcm";
    ASSERT_EQ(storescu(*server_, "TA_ECG", {ecg}), 0);
    study_a_ = a->study_uid;
    study_b_ = b->study_uid;
    study_ecg_ = study_uid_of(ecg);
    ASSERT_FALSE(study_ecg_.empty());

    tokens_["ta-doctor"] = server_->add_user("ta-doctor", {"township_doctor"}, "ta");
    tokens_["tb-doctor"] = server_->add_user("tb-doctor", {"township_doctor"}, "tb");
    tokens_["radiologist"] = server_->add_user("radiologist", {"radiologist"}, "lead");
    tokens_["ecg-reader"] = server_->add_user("ecg-reader", {"ecg_reader"}, "lead");
    tokens_["admin"] = server_->admin_token();
    for (const auto& [name, token] : tokens_) {
      ASSERT_FALSE(token.empty()) << name;
    }
  }
  void TearDown() override {
    if (server_) {
      EXPECT_EQ(server_->stop(), 0) << server_->log();
    }
  }

  std::set<std::string> listed(const std::string& user) {
    auto r = server_->get(tokens_[user], "/api/studies?limit=100");
    EXPECT_EQ(r.status, 200) << r.body;
    std::set<std::string> out;
    json j = json::parse(r.body, nullptr, false);
    if (j.is_discarded()) return out;
    for (const json& s : j["studies"]) out.insert(s["studyInstanceUid"].get<std::string>());
    EXPECT_EQ(j["total"].get<std::size_t>(), out.size());
    return out;
  }
  int detail(const std::string& user, const std::string& uid) {
    return server_->get(tokens_[user], "/api/studies/" + uid).status;
  }

  testing::TempDir dir_;
  std::unique_ptr<ServerProcess> server_;
  testing::WrittenSeries ct_a_;
  std::string study_a_, study_b_, study_ecg_;
  std::map<std::string, std::string> tokens_;
};

TEST_F(AccessTest, each_role_sees_exactly_its_institutions_reading_services_and_shares) {
  struct Row {
    const char* user;
    bool a, b, ecg;
  };
  // Before any share.
  const Row before[] = {
      {"ta-doctor", true, false, true},     // own institution: CT and ECG
      {"tb-doctor", false, true, false},    // own institution only
      {"radiologist", true, false, false},  // lead reads imaging for township A
      {"ecg-reader", false, false, true},   // lead reads ECG for township A
      {"admin", false, false, false},       // manages, reads nothing
  };
  for (const Row& r : before) {
    std::set<std::string> expect;
    if (r.a) expect.insert(study_a_);
    if (r.b) expect.insert(study_b_);
    if (r.ecg) expect.insert(study_ecg_);
    EXPECT_EQ(listed(r.user), expect) << r.user;
    EXPECT_EQ(detail(r.user, study_a_), r.a ? 200 : 404) << r.user;
    EXPECT_EQ(detail(r.user, study_b_), r.b ? 200 : 404) << r.user;
    EXPECT_EQ(detail(r.user, study_ecg_), r.ecg ? 200 : 404) << r.user;
  }
  // A denial looks exactly like a study that does not exist.
  auto denied = server_->get(tokens_["tb-doctor"], "/api/studies/" + study_a_);
  auto missing = server_->get(tokens_["tb-doctor"], "/api/studies/1.2.3.4.5.6.7");
  EXPECT_EQ(denied.status, missing.status);
  EXPECT_EQ(denied.body, missing.body);

  // Township A asks township B's doctor for a consult on study A.
  auto share =
      server_->request(tokens_["ta-doctor"], "POST", "/api/studies/" + study_a_ + "/shares",
                       R"({"user":"tb-doctor","reason":"consult","reference":"C-1"})");
  EXPECT_EQ(share.status, 201) << share.body;
  EXPECT_EQ(detail("tb-doctor", study_a_), 200);
  EXPECT_EQ(listed("tb-doctor"), (std::set<std::string>{study_a_, study_b_}));
  // What is shared with you is not yours to share onwards (403: you see it), and others
  // cannot share it (404: to them it is not there).
  EXPECT_EQ(server_
                ->request(tokens_["tb-doctor"], "POST", "/api/studies/" + study_a_ + "/shares",
                          R"({"institution":"lead","reason":"referral"})")
                .status,
            403);
  EXPECT_EQ(server_
                ->request(tokens_["ecg-reader"], "POST", "/api/studies/" + study_a_ + "/shares",
                          R"({"institution":"tb","reason":"referral"})")
                .status,
            404);
  // Nor may it go on with a referral: one rule for onward sharing, and the refusal is audited.
  auto onward = server_->request(tokens_["tb-doctor"], "POST", "/api/referrals",
                                 R"({"direction":"up","toInstitution":"lead","patientId":"P",)"
                                 R"("reason":"angina","studies":[")" +
                                     study_a_ + R"("]})");
  EXPECT_EQ(onward.status, 403) << onward.body;
  auto trail = json::parse(
      server_->get(server_->admin_token(), "/api/audit?action=referral.create&limit=50").body);
  bool audited = false;
  for (const json& r : trail["records"]) {
    audited |= r["outcome"] == "denied" && r["objectId"] == study_a_;
  }
  EXPECT_TRUE(audited) << trail.dump();
  // A referral to an institution reaches its users.
  EXPECT_EQ(server_
                ->request(tokens_["radiologist"], "POST", "/api/studies/" + study_a_ + "/shares",
                          R"({"institution":"tb","reason":"referral"})")
                .status,
            201);
  EXPECT_EQ(server_
                ->request(tokens_["radiologist"], "POST", "/api/studies/" + study_a_ + "/shares",
                          R"({"institution":"tb","reason":"gossip"})")
                .status,
            400);
}

TEST_F(AccessTest, admin_endpoints_are_for_admins_and_every_access_is_audited) {
  for (const char* user : {"ta-doctor", "radiologist"}) {
    EXPECT_EQ(server_->get(tokens_[user], "/api/admin/users").status, 403) << user;
    EXPECT_EQ(server_->get(tokens_[user], "/api/audit").status, 403) << user;
  }
  auto users = server_->get(tokens_["admin"], "/api/admin/users");
  ASSERT_EQ(users.status, 200);
  EXPECT_NE(users.body.find("\"radiologist\""), std::string::npos);
  EXPECT_EQ(users.body.find("password"), std::string::npos);  // no hashes leave the hub
  auto insts = server_->get(tokens_["admin"], "/api/admin/institutions");
  ASSERT_EQ(insts.status, 200);
  json ij = json::parse(insts.body);
  bool found_ta = false;
  for (const json& i : ij["institutions"]) {
    if (i["code"] == "ta") {
      found_ta = true;
      EXPECT_EQ(i["parent"], "lead");
      EXPECT_EQ(i["level"], "township");
      EXPECT_EQ(i["aeTitles"], json({"TA_CT", "TA_ECG"}));
    }
  }
  EXPECT_TRUE(found_ta);

  EXPECT_EQ(detail("radiologist", study_a_), 200);
  EXPECT_EQ(detail("radiologist", study_b_), 404);
  auto audit = server_->get(tokens_["admin"], "/api/audit?actor=radiologist&action=study.read");
  ASSERT_EQ(audit.status, 200) << audit.body;
  json records = json::parse(audit.body)["records"];
  ASSERT_EQ(records.size(), 2u) << audit.body;
  EXPECT_EQ(records[0]["objectId"], study_b_);  // newest first
  EXPECT_EQ(records[0]["outcome"], "denied");
  EXPECT_EQ(records[1]["objectId"], study_a_);
  EXPECT_EQ(records[1]["outcome"], "ok");
  EXPECT_EQ(records[1]["actorInstitution"], "lead");
  EXPECT_EQ(records[1]["address"], "127.0.0.1");
  // The DICOM senders are audited per study.
  auto stores = server_->get(tokens_["admin"], "/api/audit?action=dicom.store&object=" + study_a_);
  ASSERT_EQ(stores.status, 200);
  json s = json::parse(stores.body)["records"];
  ASSERT_EQ(s.size(), 1u) << stores.body;
  EXPECT_EQ(s[0]["actor"], "ae:TA_CT");
  EXPECT_EQ(s[0]["actorInstitution"], "ta");
  EXPECT_EQ(s[0]["detail"], "2 stored");

  // Disabling a user ends their sessions at once.
  EXPECT_EQ(server_->request(tokens_["admin"], "POST", "/api/admin/users/tb-doctor/disable").status,
            200);
  EXPECT_EQ(server_->get(tokens_["tb-doctor"], "/api/studies").status, 401);
  EXPECT_TRUE(server_->login("tb-doctor").empty());

  // Logout revokes the token.
  EXPECT_EQ(server_->request(tokens_["ta-doctor"], "POST", "/api/auth/logout").status, 200);
  EXPECT_EQ(server_->get(tokens_["ta-doctor"], "/api/auth/me").status, 401);

  // After the hub stops, the chain verifies from the command line.
  ASSERT_EQ(server_->stop(), 0);
  std::string out;
  int rc = testing::run_command(
      testing::yilian_binary() + " audit verify --data '" + (dir_.path() / "data").string() + "'",
      &out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("intact"), std::string::npos) << out;
  server_.reset();
}

TEST_F(AccessTest, a_clinic_cannot_file_instances_into_another_institutions_study) {
  // Township B sends an object that claims to belong to township A's study.
  testing::CtSeriesSpec spec;
  spec.count = 1;
  spec.rows = spec.columns = 16;
  spec.study_uid = study_a_;
  auto intruder = testing::write_ct_series(dir_.path() / "intruder", spec);
  ASSERT_TRUE(intruder.ok());
  testing::StoreRequest req;
  req.file = intruder->files[0];
  req.calling_ae = "TB_CT";
  auto r = testing::send_file(server_->dicom_port(), req);
  ASSERT_TRUE(r.associated) << r.error;
  EXPECT_EQ(r.status, 0x0124);
  EXPECT_NE(r.error_comment.find("another institution"), std::string::npos) << r.error_comment;
  auto detail_a = server_->get(tokens_["ta-doctor"], "/api/studies/" + study_a_);
  ASSERT_EQ(detail_a.status, 200);
  EXPECT_EQ(json::parse(detail_a.body)["numberOfInstances"], 2);
  // The same object from township A's own modality is accepted.
  req.calling_ae = "TA_CT";
  auto ok = testing::send_file(server_->dicom_port(), req);
  EXPECT_EQ(ok.status, 0x0000);
}

TEST_F(AccessTest, rendered_frames_and_thumbnails_follow_the_same_access_rules) {
  std::string base = "/dicom-web/studies/" + study_a_ + "/series/" + ct_a_.series_uid +
                     "/instances/" + ct_a_.sop_instance_uids[0];
  auto jpeg = server_->get(tokens_["ta-doctor"], base + "/rendered");
  ASSERT_EQ(jpeg.status, 200) << jpeg.body;
  ASSERT_GE(jpeg.body.size(), 4u);
  EXPECT_EQ(static_cast<unsigned char>(jpeg.body[0]), 0xFF);  // JPEG SOI
  EXPECT_EQ(static_cast<unsigned char>(jpeg.body[1]), 0xD8);

  auto png = testing::http_request(
      server_->http_port(), "GET", base + "/frames/1/rendered?window=-979,90&viewport=8,8", "",
      {{"Authorization", "Bearer " + tokens_["radiologist"]}, {"Accept", "image/png"}});
  ASSERT_EQ(png.status, 200) << png.body;
  ASSERT_GE(png.body.size(), 24u);
  EXPECT_EQ(png.body.substr(1, 3), "PNG");
  auto be32 = [&](std::size_t at) {
    const auto* b = reinterpret_cast<const unsigned char*>(png.body.data() + at);
    return (b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3];
  };
  EXPECT_EQ(be32(16), 8);  // IHDR width
  EXPECT_EQ(be32(20), 8);  // IHDR height

  EXPECT_EQ(server_->get(tokens_["ta-doctor"], base + "/thumbnail").status, 200);
  EXPECT_EQ(server_->get(tokens_["tb-doctor"], base + "/rendered").status, 404);
  EXPECT_EQ(server_->get(tokens_["admin"], base + "/rendered").status, 404);
  // The instance UID under another study's path is not found there.
  EXPECT_EQ(server_
                ->get(tokens_["ta-doctor"], "/dicom-web/studies/" + study_b_ + "/series/" +
                                                ct_a_.series_uid + "/instances/" +
                                                ct_a_.sop_instance_uids[0] + "/rendered")
                .status,
            404);
  EXPECT_EQ(server_->get(tokens_["ta-doctor"], base + "/rendered?window=40").status, 400);
  EXPECT_EQ(server_->get(tokens_["ta-doctor"], base + "/frames/2/rendered").status, 404);
  EXPECT_EQ(testing::http_get(server_->http_port(), base + "/rendered").status, 401);
}

TEST_F(AccessTest, ecg_readers_get_measurements_and_the_twelve_lead_page) {
  const std::string ecg = "/api/ecg/1.3.6.1.4.1.20029.40.20130125105919.5407.1.1";
  auto r = server_->get(tokens_["ecg-reader"], ecg);
  ASSERT_EQ(r.status, 200) << r.body;
  json j = json::parse(r.body);
  EXPECT_EQ(j["leadNames"].size(), 12u);
  EXPECT_NEAR(j["qrs_ms"].get<double>(), 75, 10);
  EXPECT_NEAR(j["rr_ms"].get<double>(), 982, 10);
  EXPECT_TRUE(j["flags"].is_array());
  auto png = server_->get(tokens_["ecg-reader"], ecg + "/render?layout=12x1");
  ASSERT_EQ(png.status, 200) << png.body;
  EXPECT_EQ(png.body.substr(1, 3), "PNG");
  EXPECT_EQ(server_->get(tokens_["ecg-reader"], ecg + "/render?layout=5x5").status, 400);
  EXPECT_EQ(server_->get(tokens_["ta-doctor"], ecg).status, 200);    // their own clinic's
  EXPECT_EQ(server_->get(tokens_["tb-doctor"], ecg).status, 404);    // another clinic's
  EXPECT_EQ(server_->get(tokens_["radiologist"], ecg).status, 404);  // imaging only
  EXPECT_EQ(server_->get(tokens_["ta-doctor"], "/api/ecg/1.2.3").status, 404);
  // A CT is not an ECG.
  EXPECT_EQ(server_->get(tokens_["ta-doctor"], "/api/ecg/" + ct_a_.sop_instance_uids[0]).status,
            400);
}

// The chest-pain pathway's first link: a township ECG with ST elevation becomes a STAT task
// in the ECG readers' worklist within moments, without waiting for the study's stable time.
TEST_F(AccessTest, a_suspected_stemi_ecg_becomes_a_stat_task_at_once) {
  testing::Synthetic s;
  for (const char* lead : {"II", "III", "aVF"}) {
    testing::LeadShape shape;
    shape.st = 0.25;
    s.leads[lead] = shape;
  }
  ecg::Record rec = testing::make_ecg(s);
  rec.patient = {58, 'M'};
  const std::string study = testing::new_uid(), sop = testing::new_uid();
  ecg::DicomEcgIdentity id{"TA-ECG-1", "Chest^Pain", study,    testing::new_uid(),
                           sop,        "20261122",   "083000", "Township A"};
  ASSERT_TRUE(ecg::write_dicom_waveform(rec, id, dir_.path() / "stemi.dcm").ok());
  ASSERT_EQ(storescu(*server_, "TA_ECG", {dir_.path() / "stemi.dcm"}), 0);

  json task;
  for (int attempt = 0; attempt < 100 && task.is_null(); ++attempt) {
    auto r = server_->get(tokens_["ecg-reader"], "/api/worklist");
    ASSERT_EQ(r.status, 200) << r.body;
    const json list = json::parse(r.body);
    for (const json& t : list["tasks"]) {
      if (t["studyInstanceUid"] == study) task = t;
    }
    if (task.is_null()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_FALSE(task.is_null()) << "no task for the STEMI ECG\n" << server_->log();
  EXPECT_EQ(task["priority"], "stat");
  EXPECT_NE(task["priorityReason"].get<std::string>().find("STEMI"), std::string::npos)
      << task.dump();
  auto analysis = server_->get(tokens_["ecg-reader"], "/api/ecg/" + sop);
  ASSERT_EQ(analysis.status, 200);
  bool flagged = false;
  const json result = json::parse(analysis.body);
  for (const json& f : result["flags"]) flagged |= f["code"] == "suspected_stemi";
  EXPECT_TRUE(flagged) << analysis.body;
}

TEST_F(AccessTest, an_hl7_aecg_upload_is_stored_as_a_dicom_ecg_and_analysed) {
  std::ifstream in(fs::path(YILIAN_SHARED_DATA) / "aecg" / "hl7-aecg-example.xml");
  const std::string xml((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_FALSE(xml.empty());
  auto post = [&](const std::string& user, const std::string& body, const std::string& type) {
    return testing::http_request(
        server_->http_port(), "POST",
        "/api/ecg?patientId=TA-AECG-1&patientName=Wang%5EFang&sex=F&age=67", body,
        {{"Authorization", "Bearer " + tokens_[user]}, {"Content-Type", type}});
  };
  auto r = post("ta-doctor", xml, "application/xml");
  ASSERT_EQ(r.status, 201) << r.body;
  json j = json::parse(r.body);
  const std::string sop = j["sopInstanceUid"];
  auto study = server_->get(tokens_["ta-doctor"],
                            "/api/studies/" + j["studyInstanceUid"].get<std::string>());
  ASSERT_EQ(study.status, 200) << study.body;
  EXPECT_EQ(json::parse(study.body)["institution"], "ta");
  auto analysis = server_->get(tokens_["ecg-reader"], "/api/ecg/" + sop);
  ASSERT_EQ(analysis.status, 200) << analysis.body;
  EXPECT_EQ(json::parse(analysis.body)["leadNames"].size(), 12u);

  EXPECT_EQ(post("ta-doctor", "<AnnotatedECG", "application/xml").status, 400);
  EXPECT_EQ(post("ta-doctor", "hello", "text/plain").status, 415);
  EXPECT_EQ(post("admin", xml, "application/xml").status, 403);
}

// A township clinic's ECG cart that exports WFDB uploads the header and its signal files as a
// form; the record is filed as a DICOM ECG, analysed, and queued for the ECG readers at once.
TEST_F(AccessTest, a_wfdb_record_uploaded_as_a_form_is_stored_analysed_and_queued) {
  const fs::path ptb = fs::path(YILIAN_SHARED_DATA) / "ptb";
  auto slurp = [](const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  };
  const std::string hea = slurp(ptb / "s0010_re.hea"), dat = slurp(ptb / "s0010_re.dat"),
                    xyz = slurp(ptb / "s0010_re.xyz");
  ASSERT_FALSE(hea.empty() || dat.empty() || xyz.empty());
  const std::string boundary = "wfdb-form-boundary";
  auto form = [&](const std::vector<std::pair<std::string, std::string>>& files) {
    std::string body =
        "--" + boundary + "\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nchest pain\r\n";
    for (const auto& [name, bytes] : files) {
      body += "--" + boundary + "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"" +
              name + "\"\r\nContent-Type: application/octet-stream\r\n\r\n" + bytes + "\r\n";
    }
    return body + "--" + boundary + "--\r\n";
  };
  auto post = [&](const std::string& body) {
    return testing::http_request(server_->http_port(), "POST",
                                 "/api/ecg?patientId=TA-PTB-1&patientName=Li%5EMing", body,
                                 {{"Authorization", "Bearer " + tokens_["ta-doctor"]},
                                  {"Content-Type", "multipart/form-data; boundary=" + boundary}});
  };
  auto r = post(form({{"s0010_re.hea", hea}, {"s0010_re.dat", dat}, {"s0010_re.xyz", xyz}}));
  ASSERT_EQ(r.status, 201) << r.body;
  const json stored = json::parse(r.body);
  const std::string sop = stored["sopInstanceUid"], study = stored["studyInstanceUid"];
  auto analysis = server_->get(tokens_["ecg-reader"], "/api/ecg/" + sop);
  ASSERT_EQ(analysis.status, 200) << analysis.body;
  const json a = json::parse(analysis.body);
  EXPECT_EQ(a["leadNames"].size(), 15u);  // 12 standard leads and the Frank leads
  EXPECT_EQ(a["leadNames"][6], "V1");
  EXPECT_EQ(a["samplingHz"], 1000);
  EXPECT_NEAR(a["seconds"].get<double>(), 38.4, 0.01);
  EXPECT_EQ(a["patient"]["sex"], "F");  // from the header's comments
  EXPECT_EQ(a["patient"]["age"], 81);
  EXPECT_GT(a["beats"].get<int>(), 30);
  // Queued for the ECG readers without waiting for the study's stable time (10 s here).
  json task;
  for (int attempt = 0; attempt < 100 && task.is_null(); ++attempt) {
    auto list = server_->get(tokens_["ecg-reader"], "/api/worklist");
    ASSERT_EQ(list.status, 200) << list.body;
    const json tasks = json::parse(list.body)["tasks"];
    for (const json& t : tasks) {
      if (t["studyInstanceUid"] == study) task = t;
    }
    if (task.is_null()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_FALSE(task.is_null()) << "the uploaded ECG was not queued\n" << server_->log();
  EXPECT_EQ(task["kind"], "ecg");
  EXPECT_EQ(task["patient"]["id"], "TA-PTB-1");

  // Incomplete or inconsistent uploads are refused with the reason, and nothing is stored.
  auto count = [&] {
    return json::parse(server_->get(tokens_["ta-doctor"], "/api/studies").body)["total"];
  };
  const json before = count();
  auto missing = post(form({{"s0010_re.hea", hea}, {"s0010_re.dat", dat}}));
  EXPECT_EQ(missing.status, 400);
  EXPECT_NE(missing.body.find("s0010_re.xyz"), std::string::npos) << missing.body;
  auto truncated = post(
      form({{"s0010_re.hea", hea}, {"s0010_re.dat", dat.substr(0, 1000)}, {"s0010_re.xyz", xyz}}));
  EXPECT_EQ(truncated.status, 400);
  EXPECT_NE(truncated.body.find("truncated"), std::string::npos) << truncated.body;
  std::string altered = dat;
  altered[5000] = static_cast<char>(altered[5000] ^ 0x10);
  auto corrupt =
      post(form({{"s0010_re.hea", hea}, {"s0010_re.dat", altered}, {"s0010_re.xyz", xyz}}));
  EXPECT_EQ(corrupt.status, 400);
  EXPECT_NE(corrupt.body.find("checksum"), std::string::npos) << corrupt.body;
  auto no_header = post(form({{"s0010_re.dat", dat}}));
  EXPECT_EQ(no_header.status, 400);
  EXPECT_NE(no_header.body.find(".hea"), std::string::npos) << no_header.body;
  EXPECT_EQ(count(), before);
}

TEST_F(AccessTest, qido_rs_finds_only_what_the_caller_may_see) {
  auto search = [&](const std::string& user, const std::string& query) {
    auto r = server_->get(tokens_[user], "/dicom-web/studies" + query);
    EXPECT_EQ(r.status, 200) << r.body;
    std::set<std::string> uids;
    json j = json::parse(r.body, nullptr, false);
    if (!j.is_array()) return uids;
    for (const json& s : j) uids.insert(s["0020000D"]["Value"][0].get<std::string>());
    return uids;
  };
  EXPECT_EQ(search("ta-doctor", ""), (std::set<std::string>{study_a_, study_ecg_}));
  EXPECT_EQ(search("tb-doctor", ""), (std::set<std::string>{study_b_}));
  EXPECT_EQ(search("radiologist", "?ModalitiesInStudy=CT"), (std::set<std::string>{study_a_}));
  EXPECT_EQ(search("ta-doctor", "?PatientID=TS*&00080020=20261122"),
            (std::set<std::string>{study_a_}));
  EXPECT_EQ(search("ta-doctor", "?StudyInstanceUID=" + study_a_ + "," + study_b_),
            (std::set<std::string>{study_a_}));
  EXPECT_TRUE(search("admin", "").empty());
  auto r = server_->get(tokens_["ta-doctor"], "/dicom-web/studies?StudyInstanceUID=" + study_a_);
  json j = json::parse(r.body);
  ASSERT_EQ(j.size(), 1u);
  EXPECT_EQ(j[0]["00100010"]["Value"][0]["Alphabetic"], "Test^Patient");
  EXPECT_EQ(j[0]["00201208"]["Value"][0], 2);
  EXPECT_EQ(j[0]["00080061"]["Value"], json({"CT"}));
  EXPECT_EQ(server_->get(tokens_["ta-doctor"], "/dicom-web/studies?StudyDate=2026").status, 400);

  // Series and instances of a visible study; nothing of a hidden one.
  auto series = server_->get(tokens_["radiologist"], "/dicom-web/studies/" + study_a_ + "/series");
  ASSERT_EQ(series.status, 200) << series.body;
  json sj = json::parse(series.body);
  ASSERT_EQ(sj.size(), 1u);
  EXPECT_EQ(sj[0]["0020000E"]["Value"][0], ct_a_.series_uid);
  EXPECT_EQ(sj[0]["00201209"]["Value"][0], 2);
  auto inst = server_->get(tokens_["radiologist"], "/dicom-web/studies/" + study_a_ + "/series/" +
                                                       ct_a_.series_uid + "/instances");
  ASSERT_EQ(inst.status, 200) << inst.body;
  json ij = json::parse(inst.body);
  ASSERT_EQ(ij.size(), 2u);
  EXPECT_EQ(ij[0]["00080018"]["Value"][0], ct_a_.sop_instance_uids[0]);
  EXPECT_EQ(ij[0]["00200013"]["Value"][0], 1);
  EXPECT_EQ(server_->get(tokens_["tb-doctor"], "/dicom-web/studies/" + study_a_ + "/series").status,
            404);
  EXPECT_EQ(server_
                ->get(tokens_["tb-doctor"], "/dicom-web/studies/" + study_a_ + "/series/" +
                                                ct_a_.series_uid + "/instances")
                .status,
            404);
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

TEST_F(AccessTest, stow_rs_stores_parts_under_the_uploaders_institution_and_reports_each) {
  testing::CtSeriesSpec spec;
  spec.count = 2;
  spec.rows = spec.columns = 16;
  auto upload = testing::write_ct_series(dir_.path() / "stow", spec);
  ASSERT_TRUE(upload.ok());
  const std::string boundary = "yilian-test-boundary";
  auto body_of = [&](const std::vector<std::pair<std::string, std::string>>& parts) {
    std::string body;
    for (const auto& [type, bytes] : parts) {
      body += "--" + boundary + "\r\nContent-Type: " + type + "\r\n\r\n" + bytes + "\r\n";
    }
    return body + "--" + boundary + "--\r\n";
  };
  auto post = [&](const std::string& token, const std::string& body, const std::string& ctype) {
    return testing::http_request(server_->http_port(), "POST", "/dicom-web/studies", body,
                                 {{"Authorization", "Bearer " + token}, {"Content-Type", ctype}});
  };
  const std::string ctype = "multipart/related; type=\"application/dicom\"; boundary=" + boundary;

  auto ok = post(tokens_["ta-doctor"],
                 body_of({{"application/dicom", slurp(upload->files[0])},
                          {"application/dicom", slurp(upload->files[1])},
                          {"application/dicom", slurp(kPydicom / "MR_small_RLE.dcm")}}),
                 ctype);
  ASSERT_EQ(ok.status, 200) << ok.body;
  json j = json::parse(ok.body);
  EXPECT_EQ(j["00081199"]["Value"].size(), 3u);
  EXPECT_FALSE(j.contains("00081198"));
  json detail =
      json::parse(server_->get(tokens_["ta-doctor"], "/api/studies/" + upload->study_uid).body);
  EXPECT_EQ(detail["institution"], "ta");
  EXPECT_EQ(detail["numberOfInstances"], 2);

  // Partly bad: a text part and a truncated object fail, the resent object succeeds.
  std::string truncated = slurp(upload->files[0]).substr(0, 400);
  auto mixed = post(tokens_["ta-doctor"],
                    body_of({{"application/dicom", slurp(upload->files[0])},
                             {"text/plain", "not an image"},
                             {"application/dicom", truncated}}),
                    ctype);
  ASSERT_EQ(mixed.status, 202) << mixed.body;
  json m = json::parse(mixed.body);
  EXPECT_EQ(m["00081199"]["Value"].size(), 1u);
  ASSERT_EQ(m["00081198"]["Value"].size(), 2u);
  EXPECT_EQ(m["00081198"]["Value"][1]["00081197"]["Value"][0], 0xC000);

  // Township B may not add to township A's study, not even an identical copy: nothing is
  // stored -> 409 with "not authorized" for the instance.
  auto refused =
      post(tokens_["tb-doctor"], body_of({{"application/dicom", slurp(upload->files[1])}}), ctype);
  EXPECT_EQ(refused.status, 409) << refused.body;
  EXPECT_EQ(json::parse(refused.body)["00081198"]["Value"][0]["00081197"]["Value"][0], 0x0124);

  // Posted to a named study: an instance of another study fails (0xA900), the rest is kept.
  testing::CtSeriesSpec more;
  more.count = 1;
  more.rows = more.columns = 16;
  more.study_uid = upload->study_uid;
  auto same = testing::write_ct_series(dir_.path() / "stow-same", more);
  ASSERT_TRUE(same.ok());
  auto to_study = testing::http_request(
      server_->http_port(), "POST", "/dicom-web/studies/" + upload->study_uid,
      body_of({{"application/dicom", slurp(same->files[0])},
               {"application/dicom", slurp(kPydicom / "CT_small.dcm")}}),
      {{"Authorization", "Bearer " + tokens_["ta-doctor"]}, {"Content-Type", ctype}});
  ASSERT_EQ(to_study.status, 202) << to_study.body;
  json t = json::parse(to_study.body);
  EXPECT_EQ(t["00081199"]["Value"].size(), 1u);
  EXPECT_EQ(t["00081198"]["Value"][0]["00081197"]["Value"][0], 0xA900);

  EXPECT_EQ(post(tokens_["admin"], body_of({}), ctype).status, 403);
  EXPECT_EQ(post(tokens_["ta-doctor"], "{}", "application/json").status, 415);
  EXPECT_EQ(testing::http_request(server_->http_port(), "POST", "/dicom-web/studies", "x").status,
            401);
}

TEST(Auth, no_token_no_data_and_bad_logins_are_refused_alike) {
  testing::TempDir dir;
  ServerProcess server(dir.path() / "data");
  ASSERT_TRUE(server.start()) << server.log();
  for (const char* path :
       {"/api/studies", "/api/admin/users", "/api/audit", "/dicom-web/studies", "/ws"}) {
    auto r = testing::http_get(server.http_port(), path);
    EXPECT_EQ(r.status, 401) << path;
    EXPECT_EQ(json::parse(r.body, nullptr, false)["error"]["code"], "unauthenticated") << path;
  }
  auto bogus = server.get("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                          "/api/studies");
  EXPECT_EQ(bogus.status, 401);
  EXPECT_EQ(testing::http_get(server.http_port(), "/healthz").status, 200);

  auto wrong = testing::http_request(server.http_port(), "POST", "/api/auth/login",
                                     R"({"username":"harness-admin","password":"nope nope nope"})");
  auto nobody = testing::http_request(server.http_port(), "POST", "/api/auth/login",
                                      R"({"username":"nobody","password":"nope nope nope"})");
  EXPECT_EQ(wrong.status, 401);
  EXPECT_EQ(wrong.body, nobody.body);
  auto malformed = testing::http_request(server.http_port(), "POST", "/api/auth/login", "not json");
  EXPECT_EQ(malformed.status, 400);
  EXPECT_EQ(server.stop(), 0);
}

TEST(Auth, the_first_start_creates_an_admin_with_a_one_time_password_shown_once) {
  testing::TempDir dir;
  fs::path data = dir.path() / "data";
  const fs::path port_file = dir.path() / "ports";
  std::string cmd = "timeout 60 " + testing::yilian_binary() + " serve --data '" + data.string() +
                    "' --dicom-port 0 --http-port 0 --port-file '" + port_file.string() + "' > '" +
                    (dir.path() / "log").string() + "' 2>&1 &";
  ASSERT_EQ(testing::run_command(cmd), 0);
  auto ports = testing::wait_for_port_file(port_file);
  ASSERT_TRUE(ports.has_value());
  const std::uint16_t http = ports->second;
  std::string password;
  for (int i = 0; i < 200 && password.empty(); ++i) {
    std::ifstream in(dir.path() / "log");
    std::string line;
    bool next = false;
    while (std::getline(in, line)) {
      if (next) {
        std::size_t a = line.find_first_not_of(' ');
        if (a != std::string::npos) password = line.substr(a);
        break;
      }
      if (line.find("one-time password") != std::string::npos) next = true;
    }
    if (password.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_FALSE(password.empty());
  for (int i = 0; i < 100 && testing::http_get(http, "/healthz").status != 200; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  auto login = testing::http_request(http, "POST", "/api/auth/login",
                                     R"({"username":"admin","password":")" + password + "\"}");
  EXPECT_EQ(login.status, 200) << login.body;
  auto token = json::parse(login.body, nullptr, false)["token"];
  ASSERT_TRUE(token.is_string());
  auto me = testing::http_request(http, "GET", "/api/auth/me", "",
                                  {{"Authorization", "Bearer " + token.get<std::string>()}});
  EXPECT_EQ(json::parse(me.body, nullptr, false)["roles"], json({"admin"}));
  testing::run_command("pkill -TERM -f '[s]erve --data " + data.string() + "'");
  for (int i = 0; i < 100 && testing::http_get(http, "/healthz").status == 200; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

TEST(Cors, a_configured_viewer_origin_gets_preflights_and_headers) {
  testing::TempDir dir;
  fs::path cfg = dir.path() / "yilian.toml";
  std::ofstream(cfg) << "[http]\ncors_origins = [\"https://viewer.example.org\"]\n";
  ServerProcess server(dir.path() / "data", {"--config", cfg.string()});
  ASSERT_TRUE(server.start()) << server.log();
  std::string url = "http://127.0.0.1:" + std::to_string(server.http_port());
  std::string out;
  auto lower = [](std::string v) {
    for (char& ch : v) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return v;
  };
  ASSERT_EQ(testing::run_command("curl -s -i --max-time 5 -X OPTIONS -H 'Origin: "
                                 "https://viewer.example.org' -H 'Access-Control-Request-Method: "
                                 "GET' " +
                                     url + "/dicom-web/studies",
                                 &out),
            0);
  EXPECT_NE(out.find("204"), std::string::npos) << out;
  EXPECT_NE(lower(out).find("access-control-allow-origin: https://viewer.example.org"),
            std::string::npos)
      << out;
  // A real request still needs a token; the 401 carries the CORS headers so the page can
  // read it.
  ASSERT_EQ(
      testing::run_command("curl -s -i --max-time 5 -H 'Origin: https://viewer.example.org' " +
                               url + "/dicom-web/studies",
                           &out),
      0);
  EXPECT_NE(out.find("401"), std::string::npos) << out;
  EXPECT_NE(lower(out).find("access-control-allow-origin"), std::string::npos) << out;
  ASSERT_EQ(
      testing::run_command("curl -s -i --max-time 5 -X OPTIONS -H 'Origin: https://evil.example' " +
                               url + "/dicom-web/studies",
                           &out),
      0);
  EXPECT_EQ(lower(out).find("access-control-allow-origin"), std::string::npos) << out;
  EXPECT_EQ(server.stop(), 0);
}

TEST(Cli, users_and_institutions_are_managed_from_the_command_line) {
  testing::TempDir dir;
  std::string data = "'" + (dir.path() / "data").string() + "'";
  std::string bin = testing::yilian_binary();
  std::string out;
  EXPECT_EQ(testing::run_command(bin + " institution add --data " + data +
                                     " --level township --name 'Township C' --ae TC_DR tc",
                                 &out),
            0)
      << out;
  EXPECT_EQ(
      testing::run_command("printf 'a long password\\n' | " + bin + " user add --data " + data +
                               " --role radiologist --role qc_reviewer "
                               "--institution tc --name 'Dr Wang' wang",
                           &out),
      0)
      << out;
  EXPECT_NE(testing::run_command("printf 'short\\n' | " + bin + " user add --data " + data +
                                     " --role radiologist --institution tc weak",
                                 &out),
            0);
  EXPECT_NE(out.find("at least 10 characters"), std::string::npos) << out;
  EXPECT_NE(testing::run_command("printf 'a long password\\n' | " + bin + " user add --data " +
                                     data + " --role janitor --institution tc x",
                                 &out),
            0);
  EXPECT_NE(out.find("unknown role janitor"), std::string::npos) << out;
  EXPECT_EQ(testing::run_command(bin + " user list --data " + data, &out), 0);
  EXPECT_NE(out.find("radiologist,qc_reviewer"), std::string::npos) << out;
  EXPECT_NE(out.find("active"), std::string::npos) << out;
  EXPECT_EQ(testing::run_command(bin + " institution list --data " + data, &out), 0);
  EXPECT_NE(out.find("TC_DR"), std::string::npos) << out;

  // The new user can log in to the hub; after `passwd` only the new password works.
  {
    ServerProcess server(dir.path() / "data");
    ASSERT_TRUE(server.start()) << server.log();
    EXPECT_FALSE(server.login("wang", "a long password").empty());
    EXPECT_EQ(server.stop(), 0);
  }
  EXPECT_EQ(testing::run_command("printf 'a new long password\\n' | " + bin +
                                     " user passwd --data " + data + " wang",
                                 &out),
            0)
      << out;
  EXPECT_EQ(testing::run_command(bin + " user disable --data " + data + " wang", &out), 0) << out;
  EXPECT_EQ(testing::run_command(bin + " user list --data " + data, &out), 0);
  EXPECT_NE(out.find("disabled"), std::string::npos) << out;

  // Every change above is in the audit trail, and the trail verifies; a modified record
  // breaks it.
  EXPECT_EQ(testing::run_command(bin + " audit verify --data " + data, &out), 0) << out;
  std::string db = "'" + (dir.path() / "data" / "audit.sqlite").string() + "'";
  EXPECT_EQ(testing::run_command("sqlite3 " + db +
                                     " \"DROP TRIGGER audit_no_update; UPDATE audit SET outcome = "
                                     "'ok' WHERE action = 'user.create' AND outcome = 'failed'\"",
                                 &out),
            0)
      << out;
  EXPECT_EQ(testing::run_command(bin + " audit verify --data " + data, &out), 3) << out;
  EXPECT_NE(out.find("BROKEN"), std::string::npos) << out;
}

TEST(Tls, with_a_certificate_configured_the_api_is_served_over_https_only) {
  testing::TempDir dir;
  fs::path key = dir.path() / "key.pem", cert = dir.path() / "cert.pem";
  std::string out;
  ASSERT_EQ(testing::run_command("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "
                                 "/CN=127.0.0.1 -keyout '" +
                                     key.string() + "' -out '" + cert.string() + "'",
                                 &out),
            0)
      << out;
  fs::path cfg = dir.path() / "yilian.toml";
  std::ofstream(cfg) << "[http]\ntls_cert = \"" << cert.string() << "\"\ntls_key = \""
                     << key.string() << "\"\n";
  // The harness probes readiness over plain HTTP, which a TLS hub does not answer; start
  // the hub directly and probe with curl.
  fs::path data = dir.path() / "data";
  ASSERT_EQ(testing::run_command("printf 'a long password\\n' | " + testing::yilian_binary() +
                                     " user add --data '" + data.string() +
                                     "' --role admin --institution consortium root",
                                 &out),
            0)
      << out;
  const fs::path port_file = dir.path() / "ports";
  std::string cmd = "timeout 60 " + testing::yilian_binary() + " serve --data '" + data.string() +
                    "' --config '" + cfg.string() + "' --dicom-port 0 --http-port 0 --port-file '" +
                    port_file.string() + "' > '" + (dir.path() / "log").string() + "' 2>&1 &";
  ASSERT_EQ(testing::run_command(cmd), 0);
  auto ports = testing::wait_for_port_file(port_file);
  ASSERT_TRUE(ports.has_value());
  const std::uint16_t http = ports->second;
  std::string base = "https://127.0.0.1:" + std::to_string(http);
  int rc = 1;
  for (int i = 0; i < 100 && rc != 0; ++i) {
    rc = testing::run_command(
        "curl -sf --max-time 5 --cacert '" + cert.string() + "' " + base + "/healthz", &out);
    if (rc != 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("\"status\":\"ok\""), std::string::npos) << out;
  // Login over TLS, verified against the certificate.
  EXPECT_EQ(testing::run_command("curl -s --max-time 5 --cacert '" + cert.string() +
                                     "' -H 'Content-Type: application/json' -d "
                                     "'{\"username\":\"root\",\"password\":\"a long password\"}' " +
                                     base + "/api/auth/login",
                                 &out),
            0);
  EXPECT_NE(out.find("\"token\""), std::string::npos) << out;
  // Plain HTTP gets no answer with data.
  EXPECT_NE(
      testing::run_command(
          "curl -sf --max-time 3 http://127.0.0.1:" + std::to_string(http) + "/healthz", &out),
      0)
      << out;
  testing::run_command("pkill -TERM -f '[s]erve --data " + data.string() + "'");
  for (int i = 0;
       i < 100 && testing::run_command("pgrep -f '[s]erve --data " + data.string() + "'") == 0;
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

}  // namespace
}  // namespace yilian
