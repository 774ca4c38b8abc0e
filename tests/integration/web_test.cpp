// The web front end end to end: the real `yilian serve` with a CT study sent by storescu, driven
// in headless Chromium by playwright-core (viewer/web/e2e). Screenshots of each screen are
// kept in the build tree (screenshots/).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <future>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "consortium.h"
#include "lab_client.h"
#include "link_sim.h"
#include "server_process.h"
#include "slides.h"
#include "synthetic.h"
#include "synthetic_ecg.h"
#include "test_util.h"
#include "yilian/ecg/dicom_waveform.h"
#include "yilian/storage/clock.h"

namespace yilian {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::ServerProcess;

constexpr const char* kQueueConfig = R"(
[queue]
stable_seconds = 0.3
qc_percent = 0

# Calls fetch these before they start; nothing answers there, so a call on loopback goes
# directly, as it does across the consortium's network when the servers are not needed.
[calls]
stun = ["stun:127.0.0.1:9"]
turn = ["turn:127.0.0.1:9?transport=udp"]
turn_secret = "web-test-turn-secret"
)";

constexpr int kSize = 256;

// The grey level the lung window (-600/1500) gives the synthetic CT's first slice at (x, y):
// stored value (4x + 2y) & 0xfff, rescale -1024, then the linear VOI function of PS3.3
// C.11.2.1.2 onto 0..255.
double expected_lung_grey(int x, int y) {
  const double hu = ((x * 4 + y * 2) & 0x0fff) - 1024.0;
  const double c = -600, w = 1500;
  const double v = ((hu - (c - 0.5)) / (w - 1) + 0.5) * 255.0;
  return std::clamp(v, 0.0, 255.0);
}

// What the browser must show of the synthetic CT's first slice in the lung window: the image
// size and the grey level at a few pixels.
json lung_expectation() {
  json expect = {
      {"columns", kSize}, {"rows", kSize}, {"window", "lung"}, {"points", json::array()}};
  for (auto [x, y] : {std::pair{128, 128}, std::pair{64, 128}, std::pair{200, 60}}) {
    expect["points"].push_back(
        {{"x", x}, {"y", y}, {"value", std::lround(expected_lung_grey(x, y))}});
  }
  return expect;
}

// Each test runs a fresh hub with the consortium above, when its browser and Node.js are
// installed (scripts/install-deps.sh installs them).
class WebFrontEnd : public ::testing::Test {
 protected:
  void start(const char* browser, ServerProcess::Mode mode = ServerProcess::Mode::serve,
             std::string_view queue_config = kQueueConfig) {
    if (!testing::have_program(browser) || !testing::have_program("node")) {
      GTEST_SKIP() << browser
                   << " or node is not installed (scripts/install-deps.sh installs them)";
    }
    // `yilian demo` brings its own consortium.
    std::vector<std::string> args;
    if (mode != ServerProcess::Mode::demo) {
      args = {"--config", testing::write_consortium_config(dir_.path(), queue_config).string()};
    }
    server_ = std::make_unique<ServerProcess>(dir_.path() / "data", args, mode);
    ASSERT_TRUE(server_->start()) << server_->log();
  }
  bool started() const { return !IsSkipped() && !HasFatalFailure(); }

  testing::TempDir dir_;
  std::unique_ptr<ServerProcess> server_;
};

// Runs viewer/web/e2e/`script` against `server` with `env` (NAME=value pairs, values without
// single quotes); its output, and the JSON line it ends with in `result`.
int run_scenario(const ServerProcess& server, const std::string& script,
                 const std::vector<std::pair<std::string, std::string>>& env, std::string& out,
                 json& result) {
  std::string command = "cd '" + std::string(YILIAN_WEB_SOURCE) +
                        "' && YILIAN_URL=http://127.0.0.1:" + std::to_string(server.http_port()) +
                        " YILIAN_SHOTS='" + std::string(YILIAN_SCREENSHOTS) +
                        "' YILIAN_PASSWORD='" + ServerProcess::kPassword + "'";
  for (const auto& [name, value] : env) command += " " + name + "='" + value + "'";
  command += " timeout 240 node e2e/" + script + " 2>&1";
  const int rc = testing::run_command(command, &out);
  const auto at = out.rfind("\n{");
  result = json::parse(at == std::string::npos ? out : out.substr(at + 1), nullptr, false);
  return rc;
}

void expect_screenshots(const std::vector<std::string>& names) {
  for (const std::string& name : names) {
    std::error_code ec;
    EXPECT_GT(fs::file_size(fs::path(YILIAN_SCREENSHOTS) / name, ec), 1000u) << name;
  }
}

void remove_screenshots(const std::vector<std::string>& names) {
  fs::create_directories(YILIAN_SCREENSHOTS);
  for (const std::string& name : names) fs::remove(fs::path(YILIAN_SCREENSHOTS) / name);
}

// The tasks of the caller's worklist once one is there (bounded wait: 10 s).
json wait_for_tasks(const ServerProcess& server, const std::string& token) {
  for (int i = 0; i < 200; ++i) {
    json list = json::parse(server.get(token, "/api/worklist").body, nullptr, false);
    if (list.contains("tasks") && !list["tasks"].empty()) return list["tasks"];
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return json::array();
}

TEST_F(WebFrontEnd, a_radiologist_reads_and_signs_and_the_township_doctor_sees_the_report) {
  start("chromium");
  if (!started()) return;
  ServerProcess& server = *server_;
  const testing::TempDir& dir = dir_;
  // Pages are served without a token; the API is not.
  auto page = server.get("", "/");
  ASSERT_EQ(page.status, 200) << "the web front end is not built beside yilian";
  EXPECT_NE(page.body.find("<div id=\"app\">"), std::string::npos);
  EXPECT_EQ(server.get("", "/api/worklist").status, 401);
  EXPECT_EQ(server.get("", "/assets/none.js").status, 404);

  const std::string rad = server.add_user("dr-chen", {"radiologist"}, "lead");
  const std::string doc = server.add_user("dr-li", {"township_doctor"}, "ta");
  ASSERT_FALSE(rad.empty());
  ASSERT_FALSE(doc.empty());

  // Last year's CT of the same patient, reported: the prior shown beside today's.
  testing::CtSeriesSpec old;
  old.count = 1;
  old.rows = old.columns = 32;
  old.patient_name = "Li^Hua";
  old.patient_id = "TA-WEB-1";
  old.study_date = "20251120";
  auto prior = testing::write_ct_series(dir.path() / "prior", old);
  ASSERT_TRUE(prior.ok());
  ASSERT_EQ(testing::storescu(server, "TA_CT", prior->files), 0);
  ASSERT_FALSE(wait_for_tasks(server, rad).empty()) << server.log();
  json first = json::parse(server.request(rad, "POST", "/api/worklist/claim-next").body);
  ASSERT_EQ(first["task"]["studyInstanceUid"], prior->study_uid);
  ASSERT_EQ(
      server
          .request(rad, "POST",
                   "/api/tasks/" + std::to_string(first["task"]["id"].get<int>()) + "/reports",
                   R"({"kind":"final","findings":"Clear.","impression":"Prior impression."})")
          .status,
      201);

  testing::CtSeriesSpec spec;
  spec.count = 3;
  spec.rows = spec.columns = kSize;
  spec.patient_name = "Li^Hua";
  spec.patient_id = "TA-WEB-1";
  auto ct = testing::write_ct_series(dir.path() / "ct", spec);
  ASSERT_TRUE(ct.ok());
  ASSERT_EQ(testing::storescu(server, "TA_CT", ct->files), 0);
  // Routed once no instance arrived for 0.3 s (bounded wait: 10 s).
  std::int64_t task_id = 0;
  for (int i = 0; i < 200 && task_id == 0; ++i) {
    json list = json::parse(server.get(rad, "/api/worklist?status=queued").body, nullptr, false);
    if (list.contains("tasks") && !list["tasks"].empty()) task_id = list["tasks"][0]["id"];
    if (task_id == 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_NE(task_id, 0) << server.log();

  const json expect = lung_expectation();
  const std::vector<std::string> shots = {"login.png",
                                          "worklist.png",
                                          "viewer.png",
                                          "report.png",
                                          "township.png",
                                          "township-report.png",
                                          "township-report-en.png",
                                          "dashboard.png",
                                          "viewer-prior.png",
                                          "viewer-measurement.png"};
  remove_screenshots(shots);
  std::string out;
  json done;
  ASSERT_EQ(run_scenario(server, "reading.mjs",
                         {{"YILIAN_READER", "dr-chen"},
                          {"YILIAN_DOCTOR", "dr-li"},
                          {"YILIAN_EXPECT", expect.dump()}},
                         out, done),
            0)
      << out << "\n--- server log ---\n"
      << server.log();
  // What the browser reported doing, and what the hub now holds.
  ASSERT_TRUE(done.is_object()) << out;
  EXPECT_EQ(done["taskId"], task_id);
  EXPECT_EQ(done["rows"], 1);
  ASSERT_EQ(done["samples"].size(), 3u);
  json task = json::parse(server.get(rad, "/api/tasks/" + std::to_string(task_id)).body);
  EXPECT_EQ(task["status"], "final");
  EXPECT_EQ(task["claimedBy"], "dr-chen");
  ASSERT_FALSE(task["reports"].empty());
  const json& last = task["reports"].back();
  EXPECT_EQ(last["kind"], "final");
  EXPECT_EQ(last["author"], "dr-chen");
  EXPECT_EQ(last["impression"], done["impression"]);
  EXPECT_EQ(last["findings"], done["findings"]);
  EXPECT_NE(last["findings"].get<std::string>().find("测量：长度"), std::string::npos)
      << last["findings"];
  EXPECT_EQ(last["critical"], true);
  // The measurement, kept with the study: on the second image, its value in mm from the points
  // and the pixel spacing (0.5 mm), seen by the township doctor as the radiologist's.
  json kept = json::parse(server.get(doc, "/api/studies/" + ct->study_uid + "/measurements").body,
                          nullptr, false);
  ASSERT_EQ(kept["measurements"].size(), 1u) << kept.dump();
  const json& m = kept["measurements"][0];
  EXPECT_EQ(m["by"], "dr-chen");
  EXPECT_EQ(m["mine"], false);
  EXPECT_EQ(m["instance"], ct->sop_instance_uids[1]);
  EXPECT_EQ(m["unit"], "mm");
  const double dx = m["points"][1]["x"].get<double>() - m["points"][0]["x"].get<double>();
  const double dy = m["points"][1]["y"].get<double>() - m["points"][0]["y"].get<double>();
  EXPECT_NEAR(m["value"].get<double>(), std::hypot(dx * 0.5, dy * 0.5), 1e-6);
  EXPECT_GT(m["value"].get<double>(), 1.0);
  // The critical result, acknowledged by the township doctor in the browser.
  json critical = json::parse(server.get(doc, "/api/critical-results?open=false").body);
  ASSERT_EQ(critical["criticalResults"].size(), 1u);
  EXPECT_EQ(critical["criticalResults"][0]["taskId"], task_id);
  EXPECT_EQ(critical["criticalResults"][0]["acknowledgedBy"], "dr-li");
  expect_screenshots(shots);
}

TEST_F(WebFrontEnd, an_ecg_is_read_on_the_grid_and_a_consult_is_talked_through_in_two_browsers) {
  start("chromium");
  if (!started()) return;
  ServerProcess& server = *server_;
  const testing::TempDir& dir = dir_;
  const std::string rad = server.add_user("dr-chen", {"radiologist"}, "lead");
  const std::string cardio = server.add_user("dr-wang", {"cardiologist"}, "lead");
  const std::string doc = server.add_user("dr-li", {"township_doctor"}, "ta");
  ASSERT_FALSE(rad.empty() || cardio.empty() || doc.empty());

  // A CT of clinic A, reported final: the doctor attaches it to the consult.
  testing::CtSeriesSpec spec;
  spec.count = 2;
  spec.rows = spec.columns = 64;
  auto ct = testing::write_ct_series(dir.path() / "ct", spec);
  ASSERT_TRUE(ct.ok());
  ASSERT_EQ(testing::storescu(server, "TA_CT", ct->files), 0);
  ASSERT_FALSE(wait_for_tasks(server, rad).empty()) << server.log();
  json claimed = json::parse(server.request(rad, "POST", "/api/worklist/claim-next").body);
  const std::string ct_task = "/api/tasks/" + std::to_string(claimed["task"]["id"].get<int>());
  ASSERT_EQ(server
                .request(rad, "POST", ct_task + "/reports",
                         R"({"kind":"final","findings":"Clear lungs.","impression":"Normal CT."})")
                .status,
            201);

  // A township ECG with ST elevation in II, III and aVF.
  testing::Synthetic s;
  for (const char* lead : {"II", "III", "aVF"}) {
    testing::LeadShape shape;
    shape.st = 0.3;
    s.leads[lead] = shape;
  }
  ecg::Record rec = testing::make_ecg(s);
  rec.patient = {58, 'M'};
  const std::string ecg_uid = testing::new_uid();
  ecg::DicomEcgIdentity ident{"TA-E2E-9", "Zhao^Gang", testing::new_uid(), testing::new_uid(),
                              ecg_uid,    "20261202",  "081500",           "Township A"};
  ASSERT_TRUE(ecg::write_dicom_waveform(rec, ident, dir.path() / "stemi.dcm").ok());
  ASSERT_EQ(testing::storescu(server, "TA_ECG", {dir.path() / "stemi.dcm"}), 0);
  ASSERT_FALSE(wait_for_tasks(server, cardio).empty()) << server.log();
  json analysis = json::parse(server.get(cardio, "/api/ecg/" + ecg_uid).body, nullptr, false);
  ASSERT_TRUE(analysis["heartRate_bpm"].is_number()) << analysis.dump();
  const long hr = std::lround(analysis["heartRate_bpm"].get<double>());

  // A study the doctor sends from the browser.
  testing::CtSeriesSpec up;
  up.count = 1;
  up.rows = up.columns = 32;
  up.patient_id = "TA-E2E-UP";
  auto sent = testing::write_ct_series(dir.path() / "upload", up);
  ASSERT_TRUE(sent.ok());
  const std::string upload = sent->files[0].string();

  const std::vector<std::string> shots = {"ecg-worklist.png",       "ecg.png",
                                          "consult-request.png",    "consult-doctor.png",
                                          "consult-specialist.png", "consult-opinion.png",
                                          "emergency.png",          "township-send.png",
                                          "referrals.png",          "notifications.png",
                                          "township-ecg-report.png"};
  remove_screenshots(shots);
  std::string out;
  json done;
  ASSERT_EQ(run_scenario(server, "ecg_consult.mjs",
                         {{"YILIAN_CARDIOLOGIST", "dr-wang"},
                          {"YILIAN_DOCTOR", "dr-li"},
                          {"YILIAN_ECG_HR", std::to_string(hr)},
                          {"YILIAN_UPLOAD", upload}},
                         out, done),
            0)
      << out << "\n--- server log ---\n"
      << server.log();
  ASSERT_TRUE(done.is_object()) << out;

  // The hub holds what the browsers did: the ECG task claimed by the cardiologist, the consult
  // concluded with the signed opinion, each chat message stored once.
  json ecg_task = json::parse(
      server.get(cardio, "/api/tasks/" + std::to_string(done["ecgTaskId"].get<int>())).body);
  EXPECT_EQ(ecg_task["kind"], "ecg");
  EXPECT_EQ(ecg_task["priority"], "stat");
  EXPECT_EQ(ecg_task["status"], "final");
  ASSERT_FALSE(ecg_task["reports"].empty()) << ecg_task.dump();
  EXPECT_EQ(ecg_task["reports"].back()["author"], "dr-wang");
  EXPECT_EQ(ecg_task["reports"].back()["kind"], "final");
  json emergency = json::parse(
      server.get(cardio, "/api/emergencies/" + std::to_string(done["caseId"].get<int>())).body);
  EXPECT_EQ(emergency["kind"], "chest_pain");
  EXPECT_EQ(emergency["source"], "ecg_stemi");
  EXPECT_EQ(emergency["timePoints"]["door"]["by"], "dr-wang");
  const std::string consult = "/api/consults/" + std::to_string(done["consultId"].get<int>());
  json c = json::parse(server.get(doc, consult).body);
  EXPECT_EQ(c["status"], "concluded");
  EXPECT_EQ(c["question"], done["question"]);
  EXPECT_EQ(c["specialty"], "cardiology");
  EXPECT_EQ(c["urgency"], "urgent");
  EXPECT_EQ(c["opinion"]["text"], done["opinion"]);
  EXPECT_EQ(c["opinion"]["signedBy"], "dr-wang");
  ASSERT_EQ(c["attachments"].size(), 1u);
  EXPECT_EQ(c["attachments"][0]["studyInstanceUid"], ct->study_uid);
  json log = json::parse(server.get(doc, consult + "/messages").body);
  ASSERT_EQ(log["messages"].size(), 2u);
  EXPECT_EQ(log["messages"][0]["from"], "dr-li");
  EXPECT_EQ(log["messages"][0]["text"], done["hello"]);
  EXPECT_EQ(log["messages"][1]["from"], "dr-wang");
  EXPECT_EQ(log["messages"][1]["text"], done["reply"]);
  // The sent study: routed to the readers, urgent, the question as the reason.
  json sent_task;
  for (const json& t : wait_for_tasks(server, rad)) {
    if (t["studyInstanceUid"] == sent->study_uid) sent_task = t;
  }
  ASSERT_TRUE(sent_task.is_object());
  EXPECT_EQ(sent_task["priority"], "urgent");
  EXPECT_EQ(sent_task["priorityReason"], done["clinicalQuestion"]);
  EXPECT_EQ(sent_task["clinicalQuestion"], done["clinicalQuestion"]);
  // Only the requesting institution's clinicians give the question.
  EXPECT_EQ(server
                .request(rad, "POST", "/api/studies/" + sent->study_uid + "/complete",
                         R"({"clinicalQuestion":"from the reader"})")
                .status,
            403);
  EXPECT_EQ(sent_task["institution"], "ta");
  // The referral: up from clinic A to the lead, accepted by the cardiologist.
  json referrals = json::parse(server.get(doc, "/api/referrals").body);
  ASSERT_EQ(referrals["referrals"].size(), 1u);
  EXPECT_EQ(referrals["referrals"][0]["reason"], done["referral"]);
  EXPECT_EQ(referrals["referrals"][0]["direction"], "up");
  EXPECT_EQ(referrals["referrals"][0]["to"], "lead");
  EXPECT_EQ(referrals["referrals"][0]["status"], "accepted");
  json counts = json::parse(server.get(cardio, "/api/stats/referrals").body);
  ASSERT_EQ(counts["referrals"].size(), 1u);
  EXPECT_EQ(counts["referrals"][0], json({{"from", "ta"},
                                          {"to", "lead"},
                                          {"direction", "up"},
                                          {"status", "accepted"},
                                          {"count", 1}}));
  EXPECT_EQ(server.get(doc, "/api/stats/referrals").status, 403);
  // The directory the form chose from: every member, without AE titles.
  json directory = json::parse(server.get(doc, "/api/institutions").body);
  std::map<std::string, json> by_code;
  for (const json& i : directory["institutions"]) {
    EXPECT_FALSE(i.contains("aeTitles"));
    by_code[i["code"]] = i;
  }
  ASSERT_TRUE(by_code.count("lead") && by_code.count("ta"));
  EXPECT_EQ(by_code["ta"]["parent"], "lead");
  EXPECT_EQ(by_code["ta"]["name"], "Township A Health Centre");
  // Acknowledged in the browser: nothing left pending for the cardiologist.
  EXPECT_EQ(json::parse(server.get(cardio, "/api/notifications").body)["pending"], 0);
  expect_screenshots(shots);
}

// The on-call cardiologist gets a township STEMI alert over whatever screen they are on and
// acknowledges it with one tap; the acknowledgement is the case's ecg_read time point.
TEST_F(WebFrontEnd, the_on_call_cardiologist_acknowledges_a_stemi_alert_with_one_tap) {
  start("chromium");
  if (!started()) return;
  ServerProcess& server = *server_;
  const std::string cardio = server.add_user("dr-wang", {"cardiologist"}, "lead");
  const std::string office = server.add_user("office", {"admin"}, "lead");
  const std::string doc = server.add_user("dr-li", {"township_doctor"}, "ta");
  const std::string qc = server.add_user("qc-zhang", {"qc_reviewer"}, "lead");
  ASSERT_FALSE(cardio.empty() || office.empty() || doc.empty() || qc.empty());
  const auto now = std::chrono::system_clock::now();
  json shift = {{"institution", "lead"},
                {"service", "cardiology"},
                {"role", "primary"},
                {"user", "dr-wang"},
                {"startsAt", storage::to_iso8601(now - std::chrono::hours(1))},
                {"endsAt", storage::to_iso8601(now + std::chrono::hours(11))}};
  ASSERT_EQ(server.request(office, "POST", "/api/oncall", shift.dump()).status, 201);

  ASSERT_FALSE(
      testing::write_stemi_ecg(dir_.path() / "alert.dcm", "TA-ALERT-1", "Sun^Jian").empty());
  ASSERT_EQ(testing::storescu(server, "TA_ECG", {dir_.path() / "alert.dcm"}), 0);
  // The case is open (its alert waits for the cardiologist) before the browser signs in.
  json cases;
  for (int i = 0; i < 100; ++i) {
    cases = json::parse(server.get(cardio, "/api/emergencies?status=open").body);
    if (!cases["cases"].empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_FALSE(cases["cases"].empty()) << server.log();

  const std::vector<std::string> shots = {"admin-oncall.png",       "alert.png",
                                          "alert-acknowledged.png", "emergency-closed.png",
                                          "emergency-qc.png",       "dashboard-emergency.png",
                                          "emergency-newborn.png"};
  remove_screenshots(shots);
  std::string out;
  json done;
  ASSERT_EQ(run_scenario(server, "alert.mjs",
                         {{"YILIAN_CARDIOLOGIST", "dr-wang"},
                          {"YILIAN_OFFICE", "office"},
                          {"YILIAN_DOCTOR", "dr-li"},
                          {"YILIAN_QC", "qc-zhang"}},
                         out, done),
            0)
      << out << "\n--- server log ---\n"
      << server.log();
  ASSERT_TRUE(done.is_object()) << out;
  json c = json::parse(
      server.get(cardio, "/api/emergencies/" + std::to_string(done["caseId"].get<int>())).body);
  EXPECT_EQ(c["alert"]["acknowledgedBy"], "dr-wang");
  EXPECT_EQ(c["timePoints"]["ecg_read"]["by"], "dr-wang");
  EXPECT_EQ(c["status"], "closed");
  EXPECT_EQ(c["timePoints"]["wire_crossing"]["by"], "dr-wang");
  // Quality control's correction of the closed case, with its source.
  EXPECT_EQ(c["timePoints"]["symptom_onset"]["by"], "qc-zhang");
  EXPECT_EQ(c["timePoints"]["symptom_onset"]["note"], "患者自述发病时间");
  // The newborn case the township doctor opened on the board, with the birth tapped.
  json nb = json::parse(
      server.get(doc, "/api/emergencies/" + std::to_string(done["newbornId"].get<int>())).body);
  EXPECT_EQ(nb["kind"], "newborn");
  EXPECT_EQ(nb["institution"], "ta");
  EXPECT_EQ(nb["patient"]["id"], "TA-NB-1");
  EXPECT_EQ(nb["timePoints"]["birth"]["by"], "dr-li");
  EXPECT_EQ(nb["intervals"][0]["name"], "birth_to_ventilation");
  expect_screenshots(shots);
}

// Quality control reviews a month of closed emergency cases a page at a time: the newest 100,
// then the older ones on request.
TEST_F(WebFrontEnd, closed_emergency_cases_are_reviewed_a_page_at_a_time) {
  start("chromium");
  if (!started()) return;
  ServerProcess& server = *server_;
  const std::string doc = server.add_user("dr-li", {"township_doctor"}, "ta");
  const std::string qc = server.add_user("qc-zhang", {"qc_reviewer"}, "lead");
  ASSERT_FALSE(doc.empty() || qc.empty());
  std::int64_t oldest = 0;
  for (int i = 0; i < 101; ++i) {
    auto opened = server.request(doc, "POST", "/api/emergencies",
                                 json{{"kind", "maternal"},
                                      {"patientId", "TA-PPH-" + std::to_string(i)},
                                      {"reason", "产后出血"}}
                                     .dump());
    ASSERT_EQ(opened.status, 201) << opened.body;
    const std::int64_t id = json::parse(opened.body)["id"].get<std::int64_t>();
    if (i == 0) oldest = id;
    auto closed =
        server.request(doc, "POST", "/api/emergencies/" + std::to_string(id) + "/close", "");
    ASSERT_EQ(closed.status, 200) << closed.body;
  }
  const std::vector<std::string> shots = {"emergency-older.png"};
  remove_screenshots(shots);
  std::string out;
  json done;
  ASSERT_EQ(run_scenario(server, "closed.mjs",
                         {{"YILIAN_QC", "qc-zhang"}, {"YILIAN_OLDEST", std::to_string(oldest)}},
                         out, done),
            0)
      << out << "\n--- server log ---\n"
      << server.log();
  ASSERT_TRUE(done.is_object()) << out;
  EXPECT_EQ(done["first"], 100);
  EXPECT_EQ(done["all"], 101);
  expect_screenshots(shots);
}

// A township patient's laboratory results at the lead, once the doctor has chosen which of two
// patients with that number is meant: the trend of a repeated test, the recognition mark,
// taking a recognised result instead of repeating it, and the dashboard's count of repeats
// avoided.
TEST_F(WebFrontEnd, a_recognised_lab_result_is_taken_instead_of_repeating_the_test) {
  start("chromium", ServerProcess::Mode::serve, std::string(kQueueConfig) + testing::kLabConfig);
  if (!started()) return;
  ServerProcess& server = *server_;
  const std::string cardio = server.add_user("dr-wang", {"cardiologist"}, "lead");
  const std::string rad = server.add_user("dr-sun", {"radiologist"}, "lead");
  const std::string ta = server.add_user("ta-doctor", {"township_doctor"}, "ta");
  ASSERT_FALSE(cardio.empty() || rad.empty() || ta.empty());
  testing::CtSeriesSpec spec;
  spec.count = 1;
  spec.rows = spec.columns = 16;
  spec.patient_id = "TA-LAB-2";
  auto ct = testing::write_ct_series(dir_.path() / "ct", spec);
  ASSERT_TRUE(ct.ok());
  ASSERT_EQ(testing::storescu(server, "TA_CT", ct->files), 0);
  // The CT read at the lead; an ECG the township sends today.
  ASSERT_FALSE(wait_for_tasks(server, rad).empty()) << server.log();
  json claimed = json::parse(server.request(rad, "POST", "/api/worklist/claim-next").body);
  const std::string ct_task = "/api/tasks/" + std::to_string(claimed["task"]["id"].get<int>());
  ASSERT_EQ(server
                .request(rad, "POST", ct_task + "/reports",
                         R"({"kind":"final","findings":"Clear.","impression":"No acute finding."})")
                .status,
            201);
  std::ifstream aecg(fs::path(YILIAN_SHARED_DATA) / "aecg" / "hl7-aecg-example.xml");
  const std::string xml((std::istreambuf_iterator<char>(aecg)), std::istreambuf_iterator<char>());
  ASSERT_EQ(testing::http_request(
                server.http_port(), "POST", "/api/ecg?patientId=TA-LAB-2&patientName=Wang%5EFang",
                xml, {{"Authorization", "Bearer " + ta}, {"Content-Type", "application/xml"}})
                .status,
            201);
  ASSERT_FALSE(wait_for_tasks(server, cardio).empty()) << server.log();
  auto result = [](const char* value, const char* flags) {
    return json{"HGB", "Haemoglobin", "L", "NM", value, "g/L", "115-150", flags, "F"};
  };
  json cases =
      json::array({{{"control", "W1"},
                    {"patient", "TA-LAB-2"},
                    {"results", {result("104", "L")}},
                    {"set", {{"OBR", 7, 0, testing::hl7_time_ago(3 * 24 * 60)}}}},
                   {{"control", "W2"},
                    {"patient", "TA-LAB-2"},
                    {"results",
                     {result("96", "L"),
                      {"2345-7", "Glucose", "LN", "NM", "5.2", "mmol/L", "3.9-6.1", "", "F"}}},
                    {"set", {{"OBR", 7, 0, testing::hl7_time_ago(60)}}}}});
  std::string log;
  auto acks = testing::send_hl7(server.mllp_port(), cases, dir_.path(), &log);
  ASSERT_EQ(acks.size(), 2u) << log;
  for (const json& a : acks) ASSERT_EQ(a["ack"], "AA") << a.dump();
  // Township A asks the lead's cardiologists about the patient.
  ASSERT_EQ(server
                .request(ta, "POST", "/api/consults",
                         json{{"patientId", "TA-LAB-2"},
                              {"patientName", "Wang^Fang"},
                              {"question", "夜间心悸，是否需要动态心电图？"},
                              {"urgency", "routine"},
                              {"specialty", "cardiology"}}
                             .dump())
                .status,
            201);
  // A long record: more referrals of the patient than the timeline lists.
  for (int i = 0; i < 100; ++i) {
    ASSERT_EQ(server
                  .request(ta, "POST", "/api/referrals",
                           json{{"direction", "up"},
                                {"toInstitution", "lead"},
                                {"urgency", "routine"},
                                {"patientId", "TA-LAB-2"},
                                {"reason", "复查 " + std::to_string(i)}}
                               .dump())
                  .status,
              201);
  }
  // Township A's emergency cases for the patient; `then` is done to each just opened.
  auto case_of = [&](const char* kind, const char* reason, const std::string& then,
                     const std::string& body) {
    auto opened = server.request(ta, "POST", "/api/emergencies",
                                 json{{"kind", kind},
                                      {"patientId", "TA-LAB-2"},
                                      {"patientName", "Wang^Fang"},
                                      {"reason", reason}}
                                     .dump());
    ASSERT_EQ(opened.status, 201) << opened.body;
    const std::string path =
        "/api/emergencies/" + std::to_string(json::parse(opened.body)["id"].get<std::int64_t>());
    auto done = server.request(ta, "POST", path + then, body);
    ASSERT_EQ(done.status, 200) << done.body;
  };
  // An earlier stroke case, closed: the record links it to its review.
  case_of("stroke", "言语不清一小时", "/close", "");
  // A chest-pain case, open, with first medical contact recorded.
  case_of("chest_pain", "胸痛两小时", "/time-points",
          json{{"point", "first_medical_contact"}}.dump());
  // The lead's own patient who has the same number in the lead's system.
  spec.patient_name = "Zhao^Gang";
  auto lead_ct = testing::write_ct_series(dir_.path() / "lead-ct", spec);
  ASSERT_TRUE(lead_ct.ok());
  ASSERT_EQ(testing::storescu(server, "LEAD_CT", lead_ct->files), 0);

  const std::vector<std::string> shots = {"lab-choice.png", "lab-timeline.png", "lab-results.png",
                                          "emergency-review.png", "lab-dashboard.png"};
  remove_screenshots(shots);
  std::string out;
  json done;
  ASSERT_EQ(run_scenario(server, "lab.mjs",
                         {{"YILIAN_DOCTOR", "dr-wang"}, {"YILIAN_PATIENT", "TA-LAB-2"}}, out, done),
            0)
      << out << "\n--- server log ---\n"
      << server.log();
  ASSERT_TRUE(done.is_object()) << out;
  json avoided = json::parse(server.get(server.admin_token(), "/api/lab/avoided-repeats").body);
  EXPECT_EQ(avoided["byInstitution"]["lead"], 1);
  expect_screenshots(shots);
}

// The pathologist reads a frozen section's whole slide: converted by `yilian pathology import`
// and sent by C-STORE, drawn level by level, zoomed to full resolution and measured in µm.
TEST_F(WebFrontEnd, a_frozen_section_slide_is_panned_zoomed_and_measured) {
  start("chromium");
  if (!started()) return;
  ServerProcess& server = *server_;
  const std::string pathologist = server.add_user("dr-zhou", {"pathologist"}, "lead");
  ASSERT_FALSE(pathologist.empty());
  test::SlideSpec spec;
  spec.width = 2304;  // 9 x 6.5 tiles: the slide's centre lies inside a tile on every level
  spec.height = 1664;
  ASSERT_TRUE(test::write_slide(dir_.path() / "frozen.svs", spec));
  std::string out;
  const fs::path folder = dir_.path() / "dicom";
  ASSERT_EQ(
      testing::run_command(testing::yilian_binary() + " pathology import '" +
                               (dir_.path() / "frozen.svs").string() + "' --out '" +
                               folder.string() + "' --patient-id TA-WSI-3 --slide-id S-FS-7 2>&1",
                           &out),
      0)
      << out;
  std::string cmd = "storescu -R -xy -aet TA_CT -aec YILIAN 127.0.0.1 " +
                    std::to_string(server.dicom_port()) + " '" + folder.string() + "'/*.dcm";
  ASSERT_EQ(testing::run_command(cmd + " 2>&1", &out), 0) << out;
  json studies = json::parse(server.get(pathologist, "/api/studies?patientId=TA-WSI-3").body);
  ASSERT_EQ(studies["studies"].size(), 1u) << studies.dump();
  const std::string study = studies["studies"][0]["studyInstanceUid"];
  json detail = json::parse(server.get(pathologist, "/api/studies/" + study).body);
  const std::string series = detail["series"][0]["seriesInstanceUid"];
  json centre = json::object();
  for (int level = 0; level < 3; ++level) {
    const auto c = test::tile_colour(level, (1152 >> level) / 256, (832 >> level) / 256);
    centre[std::to_string(level)] = {c[0], c[1], c[2]};
  }
  const json expect = {{"slideId", "S-FS-7"}, {"centre", centre}};

  const std::vector<std::string> shots = {"slide.png"};
  remove_screenshots(shots);
  json done;
  ASSERT_EQ(run_scenario(server, "slide.mjs",
                         {{"YILIAN_DOCTOR", "dr-zhou"},
                          {"YILIAN_SLIDE", study + "/" + series},
                          {"YILIAN_EXPECT", expect.dump()}},
                         out, done),
            0)
      << out << "\n--- server log ---\n"
      << server.log();
  ASSERT_TRUE(done.is_object()) << out;
  EXPECT_EQ(done["level"], 0);
  // 100 screen pixels at the reached zoom, in µm of the 0.5 µm/pixel slide.
  EXPECT_NEAR(done["um"].get<double>(), 100 * done["umPerPx"].get<double>(),
              2 * done["umPerPx"].get<double>());
  expect_screenshots(shots);
}

// OHIF's microscopy mode: a slide converted by `yilian pathology import` and sent by C-STORE
// opens from the pathologist's worklist in the advanced viewer's microscopy mode, which reads
// its tiles from the hub's DICOMweb as stored and draws them.
TEST_F(WebFrontEnd, a_slide_opened_from_the_worklist_shows_in_ohif_microscopy_mode) {
  start("chromium");
  if (!started()) return;
  ServerProcess& server = *server_;
  if (server.get("", "/ohif/viewer").status != 200) GTEST_SKIP() << "no advanced viewer";
  const std::string pathologist = server.add_user("dr-zhou", {"pathologist"}, "lead");
  ASSERT_FALSE(pathologist.empty());
  test::SlideSpec spec;
  spec.width = 2304;
  spec.height = 1664;
  ASSERT_TRUE(test::write_slide(dir_.path() / "biopsy.svs", spec));
  std::string out;
  const fs::path folder = dir_.path() / "dicom";
  ASSERT_EQ(testing::run_command(testing::yilian_binary() + " pathology import '" +
                                     (dir_.path() / "biopsy.svs").string() + "' --out '" +
                                     folder.string() + "' --patient-id TA-WSI-4 2>&1",
                                 &out),
            0)
      << out;
  ASSERT_EQ(testing::run_command("storescu -R -xy -aet TA_CT -aec YILIAN 127.0.0.1 " +
                                     std::to_string(server.dicom_port()) + " '" + folder.string() +
                                     "'/*.dcm 2>&1",
                                 &out),
            0)
      << out;
  json tasks = wait_for_tasks(server, pathologist);
  ASSERT_FALSE(tasks.empty()) << server.log();
  const std::string study = tasks[0]["studyInstanceUid"];
  // Every tile's colour on every level: what the viewer may show.
  json colours = json::array();
  for (int level = 0; level < 4; ++level) {
    const std::uint32_t cols = ((spec.width >> level) + 255) / 256;
    const std::uint32_t rows = ((spec.height >> level) + 255) / 256;
    for (std::uint32_t r = 0; r < rows; ++r)
      for (std::uint32_t c = 0; c < cols; ++c) {
        const auto rgb = test::tile_colour(level, c, r);
        colours.push_back({rgb[0], rgb[1], rgb[2]});
      }
  }

  const std::vector<std::string> shots = {"ohif-microscopy.png"};
  remove_screenshots(shots);
  json r;
  ASSERT_EQ(run_scenario(server, "ohif_microscopy.mjs",
                         {{"YILIAN_READER", "dr-zhou"},
                          {"YILIAN_STUDY", study},
                          {"YILIAN_COLOURS", colours.dump()}},
                         out, r),
            0)
      << out << "\n--- server log ---\n"
      << server.log();
  ASSERT_TRUE(r.is_object()) << out;
  EXPECT_GE(r["drawn"]["hits"].get<int>(), 100) << out;  // of 529 points of the screen
  EXPECT_GE(r["drawn"]["tiles"].get<int>(), 6) << out;
  EXPECT_GT(r["frames"].get<int>(), 0) << out;
  EXPECT_EQ(r["framesOk"], r["frames"]) << out;
  EXPECT_EQ(r["failed"], json::array()) << out;
  EXPECT_EQ(r["foreign"], json::array()) << out;
  EXPECT_EQ(r["blockedByPolicy"], json::array()) << out;
  expect_screenshots(shots);
}

TEST_F(WebFrontEnd, the_worklist_and_the_viewer_work_in_firefox) {
  start("firefox-esr");
  if (!started()) return;
  ServerProcess& server = *server_;
  const testing::TempDir& dir = dir_;
  const std::string rad = server.add_user("dr-zhou", {"radiologist"}, "lead");
  ASSERT_FALSE(rad.empty());
  testing::CtSeriesSpec spec;
  spec.count = 2;
  spec.rows = spec.columns = kSize;
  auto ct = testing::write_ct_series(dir.path() / "ct", spec);
  ASSERT_TRUE(ct.ok());
  ASSERT_EQ(testing::storescu(server, "TA_CT", ct->files), 0);
  json tasks = wait_for_tasks(server, rad);
  ASSERT_EQ(tasks.size(), 1u) << server.log();

  const std::vector<std::string> shots = {"firefox-worklist.png", "firefox-viewer.png"};
  remove_screenshots(shots);
  std::string out;
  json done;
  ASSERT_EQ(
      run_scenario(server, "firefox.mjs",
                   {{"YILIAN_READER", "dr-zhou"}, {"YILIAN_EXPECT", lung_expectation().dump()}},
                   out, done),
      0)
      << out << "\n--- server log ---\n"
      << server.log();
  ASSERT_TRUE(done.is_object()) << out;
  EXPECT_EQ(done["browser"], "firefox");
  EXPECT_EQ(done["samples"].size(), 3u);
  // Opening the task from the worklist claimed it for the Firefox user.
  json task =
      json::parse(server.get(rad, "/api/tasks/" + std::to_string(tasks[0]["id"].get<int>())).body);
  EXPECT_EQ(task["claimedBy"], "dr-zhou");
  expect_screenshots(shots);
}

// A DICOMweb client nobody here wrote: the npm dicomweb-client library in a page of the hub's
// origin stores, searches and reads back a CT whose patient name has three groups.
TEST_F(WebFrontEnd, the_npm_dicomweb_client_stores_searches_and_reads_back_through_the_hub) {
  start("chromium");
  if (!started()) return;
  const std::string doc = server_->add_user("dr-li", {"township_doctor"}, "ta");
  ASSERT_FALSE(doc.empty());
  testing::CtSeriesSpec spec;
  spec.count = 1;
  spec.rows = spec.columns = 32;
  spec.charset = "ISO_IR 192";
  spec.patient_id = "TA-DWC";
  spec.patient_name = "Yamada^Tarou=山田^太郎=やまだ^たろう";
  auto ct = testing::write_ct_series(dir_.path() / "ct", spec);
  ASSERT_TRUE(ct.ok());
  std::string out;
  json r;
  ASSERT_EQ(run_scenario(*server_, "dicomweb_client.mjs",
                         {{"YILIAN_TOKEN", doc}, {"YILIAN_FILE", ct->files[0].string()}}, out, r),
            0)
      << out;
  ASSERT_TRUE(r.is_object()) << out;
  EXPECT_EQ(r["stored"], ct->sop_instance_uids[0]);
  EXPECT_EQ(r["retrieveUrl"], "/dicom-web/studies/" + ct->study_uid + "/series/" + ct->series_uid +
                                  "/instances/" + ct->sop_instance_uids[0]);
  EXPECT_EQ(r["studies"], 1);
  const json name = {
      {"Alphabetic", "Yamada^Tarou"}, {"Ideographic", "山田^太郎"}, {"Phonetic", "やまだ^たろう"}};
  EXPECT_EQ(r["name"], name) << out;
  EXPECT_EQ(r["metadataName"], name) << out;                 // QIDO and metadata agree
  EXPECT_EQ(r["stationName"], json({{"vr", "SH"}})) << out;  // asked for, not in the object
  EXPECT_EQ(r["series"], 1);
  EXPECT_EQ(r["metadataSop"], ct->sop_instance_uids[0]);
  EXPECT_EQ(r["rows"], 32);
  EXPECT_EQ(r["frameBytes"], 32 * 32 * 2);                         // 16-bit samples
  EXPECT_EQ(r["jlsHead"], json({0xFF, 0xD8, 0xFF, 0xF7})) << out;  // JPEG-LS bitstream
  EXPECT_EQ(r["rleSegments"], 2) << out;  // 16-bit samples: two byte planes
  EXPECT_EQ(r["instanceIsPart10"], true);
}

// The advanced viewer: OHIF served by the hub at /ohif/, opened from the worklist with the
// hub's session (the viewer cookie), the CT drawn and its MPR layout loaded; another
// institution's user gets nothing of the study.
TEST_F(WebFrontEnd, a_ct_opened_from_the_worklist_shows_in_ohif_with_mpr_and_not_to_others) {
  start("chromium");
  if (!started()) return;
  ServerProcess& server = *server_;
  // The viewer's files and configuration are served without a token; its index keeps to the
  // hub's origin.
  auto index = server.get("", "/ohif/viewer");
  ASSERT_EQ(index.status, 200) << "the advanced viewer is not installed beside yilian";
  EXPECT_NE(index.body.find("/ohif/app-config.js"), std::string::npos);
  auto config = server.get("", "/ohif/app-config.js");
  ASSERT_EQ(config.status, 200);
  EXPECT_NE(config.body.find("'/dicom-web'"), std::string::npos);
  EXPECT_EQ(config.body.find("://"), std::string::npos) << "no other server is named";
  EXPECT_EQ(server.get("", "/ohif/no-such-chunk.js").status, 404);
  // Only files of the installed viewer are sent: a path out of its folder is not one.
  for (const char* escape : {"/ohif/../../../etc/passwd", "/ohif/%2e%2e/%2e%2e/etc/passwd",
                             "/ohif/..%2f..%2fetc%2fpasswd"}) {
    auto r = server.get("", escape);
    EXPECT_EQ(r.body.find("root:"), std::string::npos) << escape;
  }
  EXPECT_EQ(server.get("", "/dicom-web/studies").status, 401);

  const std::string rad = server.add_user("dr-chen", {"radiologist"}, "lead");
  const std::string other = server.add_user("dr-wang", {"township_doctor"}, "tb");
  ASSERT_FALSE(rad.empty());
  ASSERT_FALSE(other.empty());
  testing::CtSeriesSpec spec;
  spec.count = 24;  // a volume for MPR
  spec.rows = spec.columns = kSize;
  spec.patient_name = "Zhao^Lei";
  spec.patient_id = "TA-OHIF-1";
  auto ct = testing::write_ct_series(dir_.path() / "ct", spec);
  ASSERT_TRUE(ct.ok());
  ASSERT_EQ(testing::storescu(server, "TA_CT", ct->files), 0);
  ASSERT_FALSE(wait_for_tasks(server, rad).empty()) << server.log();

  const std::vector<std::string> shots = {"ohif-worklist.png", "ohif-viewer.png", "ohif-mpr.png",
                                          "ohif-other-institution.png"};
  remove_screenshots(shots);
  std::string out;
  json r;
  ASSERT_EQ(run_scenario(server, "ohif.mjs",
                         {{"YILIAN_READER", "dr-chen"},
                          {"YILIAN_OTHER", "dr-wang"},
                          {"YILIAN_STUDY", ct->study_uid}},
                         out, r),
            0)
      << out << "\n--- server log ---\n"
      << server.log();
  ASSERT_TRUE(r.is_object()) << out;
  EXPECT_GT(r["stack"]["width"].get<int>(), 0);
  EXPECT_GE(r["views"].get<int>(), 3) << out;
  EXPECT_GE(r["viewsShowingTheCt"].get<int>(), 1) << out;
  EXPECT_GT(r["dicomwebRequests"].get<int>(), 0);
  EXPECT_EQ(r["unauthorised"], json::array()) << out;
  EXPECT_EQ(r["foreign"], json::array()) << "requests outside the hub: " << r["foreign"];
  EXPECT_EQ(r["blockedByPolicy"], json::array());
  EXPECT_EQ(r["stowWithCookie"], 401) << "the viewer cookie must not write";
  EXPECT_EQ(r["apiWithCookie"], 401) << "the viewer cookie must not reach /api";
  EXPECT_EQ(r["otherPass"], 200);
  EXPECT_EQ(r["otherData"], 0) << r["otherRequests"];
  EXPECT_EQ(r["otherPixels"], 0);
  EXPECT_FALSE(r["otherRequests"].empty());
  expect_screenshots(shots);

  // Every read through the viewer cookie is in the audit trail under the radiologist's name.
  const std::string& admin = server.admin_token();
  json audit = json::parse(server.get(admin, "/api/audit?actor=dr-chen&action=auth.viewer").body,
                           nullptr, false);
  ASSERT_TRUE(audit.contains("records")) << audit;
  EXPECT_FALSE(audit["records"].empty()) << audit;
  json reads = json::parse(
      server.get(admin, "/api/audit?actor=dr-chen&action=wado.metadata&object=" + ct->study_uid)
          .body,
      nullptr, false);
  ASSERT_TRUE(reads.contains("records")) << reads;
  EXPECT_FALSE(reads["records"].empty()) << reads;
  json tries = json::parse(
      server.get(admin, "/api/audit?actor=dr-wang&object=" + ct->study_uid).body, nullptr, false);
  ASSERT_TRUE(tries.contains("records")) << tries;
  for (const json& rec : tries["records"]) EXPECT_EQ(rec["outcome"], "denied") << rec;
}

}  // namespace
}  // namespace yilian

namespace yilian {
namespace {

// The consortium office sets up a new township clinic from the screens alone, on a hub started
// for the first time: the one-time administrator's first sign-in, an institution with an AE
// title, users, a reading service, a queue target; the clinic's CT then reaches the
// radiologist; each change is found in the audit trail.
TEST_F(WebFrontEnd, the_consortium_office_sets_up_a_clinic_from_the_screens) {
  start("chromium", ServerProcess::Mode::fresh);
  if (!started()) return;
  ServerProcess& server = *server_;
  std::smatch m;
  const std::string log = server.log();
  ASSERT_TRUE(std::regex_search(log, m, std::regex("one-time password\\s+([0-9a-f]{24})"))) << log;
  testing::CtSeriesSpec spec;
  spec.count = 1;
  spec.rows = spec.columns = 64;
  spec.patient_id = "TC-WEB-1";
  spec.patient_name = "\xD5\xC5\xCE\xB0";  // GB18030, no character set declared
  auto ct = testing::write_ct_series(dir_.path() / "tc", spec);
  ASSERT_TRUE(ct.ok());
  const std::vector<std::string> shots = {
      "admin-first-login.png", "admin-system.png",      "admin-institutions.png",
      "admin-users.png",       "admin-services.png",    "admin-edges.png",
      "admin-rules.png",       "admin-recognition.png", "admin-study-on-worklist.png",
      "admin-audit.png"};
  remove_screenshots(shots);
  std::string out;
  json done;
  ASSERT_EQ(run_scenario(server, "admin.mjs",
                         {{"YILIAN_ONCE", m[1]},
                          {"YILIAN_ADMIN_PASSWORD", "office-admin-2026"},
                          {"YILIAN_DICOM_PORT", std::to_string(server.dicom_port())},
                          {"YILIAN_STUDY", ct->files[0].string()}},
                         out, done),
            0)
      << out << "\n--- server log ---\n"
      << server.log();
  ASSERT_TRUE(done.is_object()) << out;
  EXPECT_EQ(done["found"]["institution."], "institution.put");
  EXPECT_EQ(done["found"]["user."], "user.create");
  EXPECT_EQ(done["found"]["reading_service."], "reading_service.add");
  EXPECT_EQ(done["found"]["setting."], "setting.change");
  EXPECT_EQ(done["found"]["lab."], "lab.recognition.rule.put");
  EXPECT_EQ(done["worklistRows"], 1);
  // What the hub now holds: the study filed under the new clinic, its name decoded as GB18030,
  // on the radiologist's worklist; nobody keeps a temporary password.
  const std::string rad = server.login("dr-read", "read-own-password-2");
  ASSERT_FALSE(rad.empty());
  json list = json::parse(server.get(rad, "/api/worklist").body);
  ASSERT_EQ(list["tasks"].size(), 1u);
  EXPECT_EQ(list["tasks"][0]["studyInstanceUid"], ct->study_uid);
  EXPECT_EQ(list["tasks"][0]["institution"], "tc");
  EXPECT_EQ(list["tasks"][0]["patient"]["name"], "张伟");
  const std::string admin = server.login("admin", "office-admin-2026");
  // The recognition table the screen edited: the rule and the qualification, in force.
  json table = json::parse(server.get(admin, "/api/admin/lab/recognition").body);
  ASSERT_EQ(table["rules"].size(), 1u) << table.dump();
  EXPECT_EQ(table["rules"][0]["code"], "2345-7");
  EXPECT_EQ(table["rules"][0]["qualifications"], json({"iso15189"}));
  EXPECT_EQ(table["rules"][0]["validDays"], 3);
  EXPECT_EQ(table["rules"][0]["edited"]["by"], "admin");
  ASSERT_EQ(table["qualifications"].size(), 1u) << table.dump();
  EXPECT_EQ(table["qualifications"][0]["holder"], "tc");
  EXPECT_EQ(table["qualifications"][0]["qualification"], "provincial_eqa");
  json users = json::parse(server.get(admin, "/api/admin/users").body);
  for (const json& u : users["users"]) EXPECT_EQ(u["mustChangePassword"], false) << u.dump();
  // The credential the screen showed works for the clinic's edge node; the revoked one is
  // listed as such.
  const std::string edge_token = done.value("edgeToken", "");
  ASSERT_FALSE(edge_token.empty()) << out;
  auto who = testing::http_request(server.http_port(), "GET", "/api/edge/v1/whoami", "",
                                   {{"Authorization", "Bearer " + edge_token}});
  ASSERT_EQ(who.status, 200) << who.body;
  EXPECT_EQ(json::parse(who.body)["institution"], "tc");
  json edges = json::parse(server.get(admin, "/api/admin/edge-transfers").body);
  std::map<std::string, bool> revoked;
  for (const json& e : edges["edges"]) revoked[e["name"]] = e["revoked"];
  EXPECT_EQ(revoked, (std::map<std::string, bool>{{"tc-edge", false}, {"tc-old", true}}));
  expect_screenshots(shots);
}

// `yilian demo` on a fresh directory, then every screen as each demo user, each showing data.
TEST_F(WebFrontEnd, the_demo_consortium_shows_data_on_every_screen_for_each_user) {
  start("chromium", ServerProcess::Mode::demo);
  if (!started()) return;
  ServerProcess& server = *server_;
  // The demo's studies are sent once the hub listens (bounded wait: 60 s).
  const fs::path seeded = dir_.path() / "data" / "demo-seeded.json";
  for (int i = 0; i < 600 && !fs::exists(seeded); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(fs::exists(seeded)) << server.log();
  EXPECT_NE(server.log().find("dr-wang   password yilian-demo"), std::string::npos);
  std::string out;
  json seen;
  ASSERT_EQ(run_scenario(server, "demo_walk.mjs", {{"YILIAN_PASSWORD", "yilian-demo"}}, out, seen),
            0)
      << out << "\n--- server log ---\n"
      << server.log();
  ASSERT_TRUE(seen.is_object()) << out;
  for (const char* user :
       {"office", "dr-wang", "dr-zhao", "dr-sun", "dr-zhou", "dr-li", "dr-chen"}) {
    ASSERT_TRUE(seen.contains(user)) << user;
    for (const auto& [name, count] : seen[user].items()) {
      EXPECT_GT(count.get<int>(), 0) << user << " " << name;
      std::error_code ec;
      EXPECT_GT(fs::file_size(fs::path(YILIAN_SCREENSHOTS) /
                                  ("demo-" + std::string(user) + "-" + name + ".png"),
                              ec),
                1000u)
          << user << " " << name;
    }
  }
  // A second start on the same directory serves it again without sending the studies twice.
  ASSERT_EQ(server.stop(), 0);
  ASSERT_TRUE(server.start()) << server.log();
  const std::string rad = server.login("dr-wang", "yilian-demo");
  json list = json::parse(server.get(rad, "/api/worklist").body);
  EXPECT_EQ(list["total"], 3) << list.dump();
  // The demo's roster: a Qingshan chest-pain alert goes to the lead's on-call cardiologist.
  json oncall =
      json::parse(server.get(rad, "/api/oncall/now?institution=qingshan&service=cardiology").body);
  ASSERT_TRUE(oncall["primary"].is_object()) << oncall.dump();
  EXPECT_EQ(oncall["primary"]["user"], "dr-zhao") << oncall.dump();
}

}  // namespace
}  // namespace yilian

namespace yilian {
namespace {

TEST_F(WebFrontEnd, a_stroke_ct_from_an_edge_is_read_as_it_arrives_and_the_edge_page_follows_it) {
  start("chromium", ServerProcess::Mode::serve, testing::kEdgeStrokeQueue);
  if (!started()) return;
  ServerProcess& hub = *server_;
  const std::vector<std::string> shots = {"edge-page.png", "worklist-arriving.png",
                                          "reading-arriving.png", "reading-arrived.png",
                                          "edge-page-complete.png"};
  remove_screenshots(shots);
  const std::string reader = hub.add_user("dr-stroke", {"radiologist"}, "lead");
  ASSERT_FALSE(reader.empty());
  auto issued = hub.request(hub.admin_token(), "POST", "/api/admin/edges",
                            json{{"name", "ta-edge"}, {"institution", "ta"}}.dump());
  ASSERT_EQ(issued.status, 201) << issued.body;
  const fs::path credential = dir_.path() / "edge.token";
  std::ofstream(credential) << json::parse(issued.body)["token"].get<std::string>() << "\n";
  testing::LinkSimulator link(hub.http_port(), {256u << 10, std::chrono::milliseconds(10)});
  ASSERT_TRUE(link.start());
  ServerProcess edge(
      dir_.path() / "edge",
      {"--hub", "http://127.0.0.1:" + std::to_string(link.port()), "--credential-file",
       credential.string(), "--stable-seconds", "1", "--chunk-kb", "64", "--bundle-kb", "256"},
      ServerProcess::Mode::edge);
  ASSERT_TRUE(edge.start()) << edge.log();

  testing::CtSeriesSpec spec;
  spec.count = 30;
  spec.rows = spec.columns = 256;
  spec.noise_hu = 12;
  spec.study_description = "CT HEAD suspected stroke";
  auto ct = testing::write_ct_series(dir_.path() / "ct", spec);
  ASSERT_TRUE(ct.ok());
  std::string out;
  std::string cmd = "storescu -aet CT1 -aec YILIAN 127.0.0.1 " + std::to_string(edge.dicom_port());
  for (const auto& f : ct->files) cmd += " '" + f.string() + "'";
  ASSERT_EQ(testing::run_command(cmd, &out), 0) << out;
  // The task is there with the first slices; the link is cut, so that the browser looks at a
  // study surely still arriving until the scenario asks for the link back.
  ASSERT_FALSE(wait_for_tasks(hub, reader).empty());
  link.cut();

  const fs::path signal = dir_.path() / "restore-link";
  json result;
  auto scenario = std::async(std::launch::async, [&] {
    return run_scenario(
        hub, "edge.mjs",
        {{"YILIAN_EDGE_URL", "http://127.0.0.1:" + std::to_string(edge.http_port())},
         {"YILIAN_READER", "dr-stroke"},
         {"YILIAN_STUDY", ct->study_uid},
         {"YILIAN_TOTAL", std::to_string(spec.count)},
         {"YILIAN_SIGNAL", signal.string()}},
        out, result);
  });
  // Bounded: the scenario's own timeouts end it long before.
  for (int i = 0; i < 3000 && !fs::exists(signal); ++i) {
    if (scenario.wait_for(std::chrono::milliseconds(100)) == std::future_status::ready) break;
  }
  link.restore();
  ASSERT_EQ(scenario.get(), 0) << out;
  EXPECT_GE(result.value("before", 0), 1) << out;
  EXPECT_GT(result.value("grown", 0), result.value("before", 0)) << out;
  EXPECT_EQ(result.value("after", 0), spec.count) << out;
  expect_screenshots(shots);
  EXPECT_EQ(edge.stop(), 0);
}

}  // namespace
}  // namespace yilian
