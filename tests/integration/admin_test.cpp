// The administration endpoints on the real `yilian serve`: the one-time administrator's first
// sign-in, queue settings changed while the hub runs, a new member's AE title and character set
// taking effect at once, users, sessions, reading services, the audit trail (filters, CSV,
// chain check), the system page and the C-ECHO test.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "consortium.h"
#include "server_process.h"
#include "synthetic.h"
#include "test_util.h"
#include "yilian/storage/clock.h"

namespace yilian {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::ServerProcess;

json body(const testing::HttpResult& r) { return json::parse(r.body, nullptr, false); }

std::string error_code(const testing::HttpResult& r) {
  json j = body(r);
  return j.is_object() && j.contains("error") ? j["error"].value("code", "") : "";
}

TEST(AdminFirstRun, the_one_time_administrator_must_choose_a_password_first) {
  testing::TempDir dir;
  ServerProcess server(dir.path() / "data", {}, ServerProcess::Mode::fresh);
  ASSERT_TRUE(server.start()) << server.log();
  std::smatch m;
  const std::string log = server.log();
  ASSERT_TRUE(std::regex_search(log, m, std::regex("one-time password\\s+([0-9a-f]{24})"))) << log;
  const std::string once = m[1];

  auto login = testing::http_request(server.http_port(), "POST", "/api/auth/login",
                                     json{{"username", "admin"}, {"password", once}}.dump());
  ASSERT_EQ(login.status, 200) << login.body;
  EXPECT_EQ(body(login)["user"]["mustChangePassword"], true);
  const std::string token = body(login)["token"];
  // Nothing but the password change (and who am I) until it is done.
  auto users = server.get(token, "/api/admin/users");
  EXPECT_EQ(users.status, 403);
  EXPECT_EQ(error_code(users), "password_change_required");
  EXPECT_EQ(server.get(token, "/api/auth/me").status, 200);

  auto wrong =
      server.request(token, "POST", "/api/auth/password",
                     R"({"currentPassword":"not-it-at-all","newPassword":"a-new-one-123"})");
  EXPECT_EQ(wrong.status, 403) << wrong.body;
  auto short_one = server.request(token, "POST", "/api/auth/password",
                                  json{{"currentPassword", once}, {"newPassword", "short"}}.dump());
  EXPECT_EQ(short_one.status, 400) << short_one.body;
  auto same = server.request(token, "POST", "/api/auth/password",
                             json{{"currentPassword", once}, {"newPassword", once}}.dump());
  EXPECT_EQ(same.status, 400) << same.body;

  auto changed =
      server.request(token, "POST", "/api/auth/password",
                     json{{"currentPassword", once}, {"newPassword", "office-admin-2026"}}.dump());
  ASSERT_EQ(changed.status, 200) << changed.body;
  EXPECT_EQ(body(changed)["user"]["mustChangePassword"], false);
  const std::string fresh = body(changed)["token"];
  // The old session is gone, the new one administers.
  EXPECT_EQ(server.get(token, "/api/auth/me").status, 401);
  EXPECT_EQ(server.get(fresh, "/api/admin/users").status, 200);
  EXPECT_TRUE(server.login("admin", once).empty());
  EXPECT_FALSE(server.login("admin", "office-admin-2026").empty());

  json audit = body(server.get(fresh, "/api/audit?action=user.password_own"));
  ASSERT_TRUE(audit["records"].is_array());
  int ok = 0, denied = 0, failed = 0;
  for (const json& r : audit["records"]) {
    const std::string outcome = r["outcome"];
    ok += outcome == "ok";
    denied += outcome == "denied";
    failed += outcome == "failed";
  }
  EXPECT_EQ(ok, 1);
  EXPECT_EQ(denied, 1);  // the wrong current password
  EXPECT_EQ(failed, 2);  // too short, unchanged
}

class AdminRest : public ::testing::Test {
 protected:
  void SetUp() override {
    const fs::path cfg = testing::write_consortium_config(dir_.path(), testing::kHeadCtQueue);
    server_ = std::make_unique<ServerProcess>(dir_.path() / "data",
                                              std::vector<std::string>{"--config", cfg.string()});
    ASSERT_TRUE(server_->start()) << server_->log();
    admin_ = server_->admin_token();
    ASSERT_FALSE(admin_.empty());
  }

  // The first task of `study` in `token`'s worklist (bounded wait: 20 s).
  json wait_for_task(const std::string& token, const std::string& study) {
    for (int i = 0; i < 400; ++i) {
      json list = body(server_->get(token, "/api/worklist"));
      for (const json& t : list.value("tasks", json::array())) {
        if (t["studyInstanceUid"] == study) return t;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return nullptr;
  }

  json setting(const std::string& key) {
    json all = body(server_->get(admin_, "/api/admin/settings/queue"));
    for (const json& s : all.value("settings", json::array())) {
      if (s["key"] == key) return s;
    }
    return nullptr;
  }

  testing::TempDir dir_;
  std::unique_ptr<ServerProcess> server_;
  std::string admin_;
};

TEST_F(AdminRest, queue_settings_change_routing_and_targets_without_a_restart) {
  ServerProcess& server = *server_;
  const std::string rad = server.add_user("dr-read", {"radiologist"}, "lead");
  ASSERT_FALSE(rad.empty());
  // Where each value comes from.
  EXPECT_EQ(setting("stable_seconds")["source"], "file");
  EXPECT_EQ(setting("sla_routine_minutes")["source"], "default");
  EXPECT_EQ(setting("sla_routine_minutes")["value"], 1440);

  auto put = [&](const std::string& key, const json& value, const std::string& token) {
    return server.request(token, "PUT", "/api/admin/settings/queue/" + key,
                          json{{"value", value}}.dump());
  };
  ASSERT_EQ(put("sla_routine_minutes", 7, admin_).status, 200);
  auto routes = put(
      "routes",
      json::array({{{"service", "stroke-unit"}, {"modalities", {"CT"}}, {"body_parts", {"HEAD"}}}}),
      admin_);
  ASSERT_EQ(routes.status, 200) << routes.body;
  // Refused: out of range, a route without a service, an unknown key, a reader.
  auto bad = put("qc_percent", 101, admin_);
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(body(bad)["error"]["message"].get<std::string>().find("qc_percent"), std::string::npos);
  EXPECT_EQ(put("routes", json::array({{{"modalities", {"CT"}}}}), admin_).status, 400);
  EXPECT_EQ(put("no_such_setting", 1, admin_).status, 404);
  EXPECT_EQ(put("qc_percent", 50, rad).status, 403);
  EXPECT_EQ(setting("qc_percent")["value"], 0);

  json sla = setting("sla_routine_minutes");
  EXPECT_EQ(sla["source"], "screen");
  EXPECT_EQ(sla["changedBy"], ServerProcess::kAdmin);
  EXPECT_EQ(sla["fileValue"], 1440);

  // A head CT sent now is routed and timed by the new values.
  testing::CtSeriesSpec spec;
  spec.count = 2;
  spec.rows = spec.columns = 16;
  auto ct = testing::write_ct_series(dir_.path() / "ct", spec);
  ASSERT_TRUE(ct.ok());
  ASSERT_EQ(testing::storescu(server, "TA_CT", ct->files), 0);
  json task = wait_for_task(rad, ct->study_uid);
  ASSERT_TRUE(task.is_object()) << server.log();
  EXPECT_EQ(task["service"], "stroke-unit");
  EXPECT_EQ(task["priority"], "routine");
  auto received = storage::parse_iso8601(task["receivedAt"].get<std::string>());
  auto due = storage::parse_iso8601(task["dueAt"].get<std::string>());
  ASSERT_TRUE(received && due);
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::minutes>(*due - *received).count(), 7);

  // The screen's values outlive a restart; a reset goes back to the file's.
  server.stop();
  ASSERT_TRUE(server.start()) << server.log();
  admin_ = server.admin_token();
  EXPECT_EQ(setting("sla_routine_minutes")["value"], 7);
  ASSERT_EQ(server.request(admin_, "DELETE", "/api/admin/settings/queue/routes").status, 200);
  json back = setting("routes");
  EXPECT_EQ(back["source"], "file");
  ASSERT_EQ(back["value"].size(), 1u);
  EXPECT_EQ(back["value"][0]["service"], "neuro");

  // Every change audited with its value, the refusals too.
  json audit = body(server.get(admin_, "/api/audit?action=setting."));
  std::map<std::string, int> seen;
  for (const json& r : audit["records"]) {
    seen[r["action"].get<std::string>() + ":" + r["objectId"].get<std::string>() + ":" +
         r["outcome"].get<std::string>()]++;
  }
  EXPECT_EQ(seen["setting.change:queue.sla_routine_minutes:ok"], 1);
  EXPECT_EQ(seen["setting.change:queue.routes:ok"], 1);
  EXPECT_EQ(seen["setting.change:queue.qc_percent:failed"], 1);
  EXPECT_EQ(seen["setting.change::denied"], 1);
  EXPECT_EQ(seen["setting.reset:queue.routes:ok"], 1);
}

TEST_F(AdminRest, a_new_members_ae_title_and_character_set_work_at_once) {
  ServerProcess& server = *server_;
  const std::string rad = server.add_user("dr-read", {"radiologist"}, "lead");
  ASSERT_FALSE(rad.empty());
  // GB18030 bytes of 张伟, with no Specific Character Set declared (as many modalities do).
  testing::CtSeriesSpec spec;
  spec.count = 1;
  spec.rows = spec.columns = 16;
  spec.patient_id = "TC-1";
  spec.patient_name = "\xD5\xC5\xCE\xB0";
  auto ct = testing::write_ct_series(dir_.path() / "ct", spec);
  ASSERT_TRUE(ct.ok());
  // Unknown AE titles are refused by this consortium.
  EXPECT_NE(testing::storescu(server, "TC_CT", ct->files), 0);

  auto bad = server.request(admin_, "POST", "/api/admin/institutions",
                            R"({"code":"tc","name":"Township C","level":"township",)"
                            R"("parent":"lead","aeTitles":["TC_CT"],"charset":"KLINGON"})");
  EXPECT_EQ(bad.status, 400) << bad.body;
  auto made = server.request(admin_, "POST", "/api/admin/institutions",
                             R"({"code":"tc","name":"Township C","level":"township",)"
                             R"("parent":"lead","aeTitles":["TC_CT"],"charset":"GB18030"})");
  ASSERT_EQ(made.status, 200) << made.body;
  EXPECT_EQ(body(made)["charset"], "GB18030");
  ASSERT_EQ(server
                .request(admin_, "POST", "/api/admin/reading-services",
                         R"({"provider":"lead","client":"tc","service":"imaging"})")
                .status,
            201);
  // What the file defines is marked as such; the screen's change shows who made it.
  const json institutions = body(server.get(admin_, "/api/admin/institutions"));
  for (const json& i : institutions["institutions"]) {
    if (i["code"] == "ta") {
      EXPECT_EQ(i["fromFile"], true);
    }
    if (i["code"] != "tc") continue;
    EXPECT_EQ(i["fromFile"], false);
    EXPECT_EQ(i["lastChange"]["by"], ServerProcess::kAdmin);
    EXPECT_EQ(i["lastChange"]["action"], "institution.put");
  }
  const json services = body(server.get(admin_, "/api/admin/reading-services"));
  for (const json& r : services["readingServices"]) {
    EXPECT_EQ(r["fromFile"], r["client"] == "ta") << r.dump();
  }
  ASSERT_EQ(testing::storescu(server, "TC_CT", ct->files), 0) << server.log();
  json task = wait_for_task(rad, ct->study_uid);
  ASSERT_TRUE(task.is_object()) << server.log();
  EXPECT_EQ(task["institution"], "tc");
  EXPECT_EQ(task["patient"]["name"], "张伟");

  // Removing the reading service takes the study out of the radiologist's sight.
  auto removed = server.request(admin_, "POST", "/api/admin/reading-services/remove",
                                R"({"provider":"lead","client":"tc","service":"imaging"})");
  ASSERT_EQ(removed.status, 200) << removed.body;
  EXPECT_EQ(server
                .request(admin_, "POST", "/api/admin/reading-services/remove",
                         R"({"provider":"lead","client":"tc","service":"imaging"})")
                .status,
            404);
  const std::string rad2 = server.login("dr-read");
  json list = body(server.get(rad2, "/api/worklist"));
  for (const json& t : list["tasks"]) EXPECT_NE(t["institution"], "tc");
}

TEST_F(AdminRest, users_sessions_audit_system_and_echo) {
  ServerProcess& server = *server_;
  // A user created with a temporary password, then given other roles: sessions end.
  auto made = server.request(admin_, "POST", "/api/admin/users",
                             json{{"username", "dr-new"},
                                  {"password", ServerProcess::kPassword},
                                  {"displayName", "新医生"},
                                  {"institution", "ta"},
                                  {"roles", {"township_doctor"}},
                                  {"mustChangePassword", true}}
                                 .dump());
  ASSERT_EQ(made.status, 201) << made.body;
  EXPECT_EQ(body(made)["mustChangePassword"], true);
  const std::string tok = server.login("dr-new");
  ASSERT_FALSE(tok.empty());
  EXPECT_EQ(error_code(server.get(tok, "/api/worklist")), "password_change_required");
  auto changed = server.request(
      tok, "POST", "/api/auth/password",
      json{{"currentPassword", ServerProcess::kPassword}, {"newPassword", "my-own-password-1"}}
          .dump());
  ASSERT_EQ(changed.status, 200) << changed.body;
  const std::string tok2 = body(changed)["token"];
  EXPECT_EQ(server.get(tok2, "/api/worklist").status, 200);

  json sessions = body(server.get(admin_, "/api/admin/sessions"));
  int live = 0;
  for (const json& s : sessions["sessions"]) live += s["username"] == "dr-new";
  EXPECT_EQ(live, 1);
  auto upd = server.request(admin_, "PUT", "/api/admin/users/dr-new",
                            R"({"displayName":"新医生","institution":"ta",)"
                            R"("roles":["township_doctor","radiologist"],"credentials":["lead"]})");
  ASSERT_EQ(upd.status, 200) << upd.body;
  EXPECT_EQ(body(upd)["roles"].size(), 2u);
  EXPECT_EQ(body(upd)["credentials"], json::array({"lead"}));
  EXPECT_EQ(server.get(tok2, "/api/auth/me").status, 401);  // what they may do changed
  ASSERT_EQ(server
                .request(admin_, "PUT", "/api/admin/users/dr-new/services",
                         R"({"services":["neuro","chest"]})")
                .status,
            200);
  const json users_now = body(server.get(admin_, "/api/admin/users"));
  for (const json& u : users_now["users"]) {
    if (u["username"] == "dr-new") {
      EXPECT_EQ(u["services"], json::array({"chest", "neuro"}));
    }
  }
  EXPECT_EQ(server
                .request(admin_, "PUT", "/api/admin/users/nobody",
                         R"({"institution":"ta","roles":["radiologist"]})")
                .status,
            404);

  // An administrator's reset is temporary: the user picks their own at the next sign-in.
  ASSERT_EQ(server
                .request(admin_, "POST", "/api/admin/users/dr-new/password",
                         json{{"password", "temporary-pass-1"}, {"mustChange", true}}.dump())
                .status,
            200);
  auto relog =
      testing::http_request(server.http_port(), "POST", "/api/auth/login",
                            json{{"username", "dr-new"}, {"password", "temporary-pass-1"}}.dump());
  EXPECT_EQ(body(relog)["user"]["mustChangePassword"], true);

  // The audit trail: by action prefix, by the actor's institution, as CSV, and its chain.
  json users = body(server.get(admin_, "/api/audit?action=user."));
  ASSERT_FALSE(users["records"].empty());
  for (const json& r : users["records"]) {
    EXPECT_EQ(r["action"].get<std::string>().rfind("user.", 0), 0u) << r.dump();
  }
  json by_inst = body(server.get(admin_, "/api/audit?institution=ta"));
  ASSERT_FALSE(by_inst["records"].empty());
  for (const json& r : by_inst["records"]) EXPECT_EQ(r["actorInstitution"], "ta");
  auto csv = server.get(admin_, "/api/audit?format=csv&object=dr-new");
  ASSERT_EQ(csv.status, 200);
  EXPECT_NE(csv.header("content-type").find("text/csv"), std::string::npos);
  EXPECT_EQ(csv.body.rfind("\xEF\xBB\xBFseq,at,actor,", 0), 0u);
  EXPECT_NE(csv.body.find(",user.update,user,dr-new,ok,"), std::string::npos) << csv.body;
  // Fields with commas are quoted (the update's detail names roles with commas).
  EXPECT_NE(csv.body.find("\"roles township_doctor,radiologist at ta+lead\""), std::string::npos)
      << csv.body;
  json chain = body(server.get(admin_, "/api/audit/verify"));
  EXPECT_EQ(chain["intact"], true);
  EXPECT_GT(chain["records"].get<int>(), 5);

  // The system page: disks, database, queue, no backup yet, then the one just made.
  json sys = body(server.get(admin_, "/api/admin/system"));
  ASSERT_TRUE(sys.is_object());
  EXPECT_GT(sys["disks"][0]["totalBytes"].get<double>(), 0);
  EXPECT_EQ(sys["database"]["backend"], "sqlite");
  EXPECT_GT(sys["database"]["indexBytes"].get<double>(), 0);
  EXPECT_TRUE(sys["lastBackup"].is_null());
  ASSERT_EQ(testing::run_command(testing::yilian_binary() + " backup --data '" +
                                 (dir_.path() / "data").string() + "' --to '" +
                                 (dir_.path() / "backup").string() + "'"),
            0);
  sys = body(server.get(admin_, "/api/admin/system"));
  ASSERT_TRUE(sys["lastBackup"].is_object()) << sys.dump();
  EXPECT_EQ(sys["lastBackup"]["auditIntact"], true);
  EXPECT_EQ(sys["lastBackup"]["to"], fs::absolute(dir_.path() / "backup").string());
  EXPECT_EQ(server.get(server.login("dr-new", "temporary-pass-1"), "/api/admin/system").status,
            403);

  // C-ECHO of a modality (DCMTK's storescp standing in for the township's CT): answered; a
  // closed port is a clear failure, not an error page.
  std::uint16_t port = 0;
  const std::string pid = testing::start_background(
      [&] {
        port = testing::free_port();
        return "timeout 300 storescp -aet TA_CT -od '" + dir_.path().string() + "' " +
               std::to_string(port) + " >/dev/null 2>&1 & echo $!";
      },
      [&] {
        return testing::run_command("echoscu -aec TA_CT 127.0.0.1 " + std::to_string(port)) == 0;
      },
      10);
  ASSERT_FALSE(pid.empty());
  json echo = body(
      server.request(admin_, "POST", "/api/admin/dicom-echo",
                     json{{"aeTitle", "TA_CT"}, {"host", "127.0.0.1"}, {"port", port}}.dump()));
  testing::run_command("kill " + pid);
  EXPECT_EQ(echo["ok"], true) << echo.dump();
  EXPECT_GE(echo["milliseconds"].get<double>(), 0);
  json closed = body(server.request(
      admin_, "POST", "/api/admin/dicom-echo",
      json{{"aeTitle", "TA_CT"}, {"host", "127.0.0.1"}, {"port", testing::free_port()}}.dump()));
  EXPECT_EQ(closed["ok"], false);
  EXPECT_FALSE(closed["error"].get<std::string>().empty());
  auto no_address =
      server.request(admin_, "POST", "/api/admin/dicom-echo", R"({"aeTitle":"TA_CT"})");
  EXPECT_EQ(no_address.status, 400);
}

}  // namespace
}  // namespace yilian
