// Access control end to end: the real `yilian serve` with a consortium configured (a lead
// hospital reading imaging and ECG for township A; township B unrelated), studies sent by
// each clinic with storescu, users created through the admin API, and every REST entry
// point asked by every kind of user.
#include "consortium_server.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
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
using testing::kPydicom;
using testing::ServerProcess;
using testing::slurp;
using testing::storescu;
using testing::study_uid_of;

class AccessTest : public testing::ConsortiumTest {};

TEST_P(AccessTest, each_role_sees_exactly_its_institutions_reading_services_and_shares) {
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

TEST_P(AccessTest, admin_endpoints_are_for_admins_and_every_access_is_audited) {
  for (const char* user : {"ta-doctor", "radiologist"}) {
    EXPECT_EQ(server_->get(tokens_[user], "/api/admin/users").status, 403) << user;
    EXPECT_EQ(server_->get(tokens_[user], "/api/audit").status, 403) << user;
  }
  auto users = server_->get(tokens_["admin"], "/api/admin/users");
  ASSERT_EQ(users.status, 200);
  EXPECT_NE(users.body.find("\"radiologist\""), std::string::npos);
  // No hashes leave the hub (only whether a password is temporary, and when it was set).
  EXPECT_EQ(users.body.find("$argon2"), std::string::npos);
  EXPECT_EQ(users.body.find("Hash"), std::string::npos);
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

TEST_P(AccessTest, a_clinic_cannot_file_instances_into_another_institutions_study) {
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

TEST_P(AccessTest, rendered_frames_and_thumbnails_follow_the_same_access_rules) {
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

TEST_P(AccessTest, qido_rs_finds_only_what_the_caller_may_see) {
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

YILIAN_ON_BOTH_BACKENDS(AccessTest);

}  // namespace
}  // namespace yilian
