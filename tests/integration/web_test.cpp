// The web front end end to end: the real `yilian serve` with a CT study sent by storescu, driven
// in headless Chromium by playwright-core (viewer/web/e2e). Screenshots of each screen are
// kept in the build tree (screenshots/).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "server_process.h"
#include "synthetic.h"
#include "test_util.h"

namespace yilian {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::ServerProcess;

constexpr const char* kConfig = R"(
[[institutions]]
code = "lead"
name = "Lead Hospital"
level = "lead"

[[institutions]]
code = "ta"
name = "Township A Health Centre"
parent = "lead"
ae_titles = ["TA_CT"]

[[reading_services]]
provider = "lead"
service = "imaging"
clients = ["ta"]

[queue]
stable_seconds = 0.3
qc_percent = 0
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

bool have(const char* program) {
  return std::system((std::string("command -v ") + program + " >/dev/null 2>&1").c_str()) == 0;
}

TEST(WebFrontEnd, a_radiologist_reads_and_signs_and_the_township_doctor_sees_the_report) {
  if (!have("chromium") || !have("node")) {
    GTEST_SKIP() << "chromium or node is not installed (scripts/install-deps.sh installs them)";
  }
  testing::TempDir dir;
  fs::path cfg = dir.path() / "yilian.toml";
  std::ofstream(cfg) << kConfig;
  ServerProcess server(dir.path() / "data", {"--config", cfg.string()});
  ASSERT_TRUE(server.start()) << server.log();
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
    json list = json::parse(server.get(rad, "/api/worklist").body, nullptr, false);
    if (list.contains("tasks") && !list["tasks"].empty()) task_id = list["tasks"][0]["id"];
    if (task_id == 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_NE(task_id, 0) << server.log();

  json expect = {
      {"columns", kSize}, {"rows", kSize}, {"window", "lung"}, {"points", json::array()}};
  for (auto [x, y] : {std::pair{128, 128}, std::pair{64, 128}, std::pair{200, 60}}) {
    expect["points"].push_back(
        {{"x", x}, {"y", y}, {"value", std::lround(expected_lung_grey(x, y))}});
  }
  const fs::path shots = YILIAN_SCREENSHOTS;
  fs::create_directories(shots);
  for (const char* name : {"login.png", "worklist.png", "viewer.png", "report.png", "township.png",
                           "township-report.png", "township-report-en.png"}) {
    fs::remove(shots / name);
  }
  const std::string command =
      "cd '" + std::string(YILIAN_WEB_SOURCE) +
      "' && YILIAN_URL=http://127.0.0.1:" + std::to_string(server.http_port()) + " YILIAN_SHOTS='" +
      shots.string() + "' YILIAN_READER=dr-chen YILIAN_DOCTOR=dr-li YILIAN_PASSWORD='" +
      ServerProcess::kPassword + "' YILIAN_EXPECT='" + expect.dump() +
      "' timeout 240 node e2e/reading.mjs 2>&1";
  std::string out;
  const int rc = testing::run_command(command, &out);
  ASSERT_EQ(rc, 0) << out << "\n--- server log ---\n" << server.log();

  // What the browser reported doing, and what the hub now holds.
  json done = json::parse(out.substr(out.rfind("{\"taskId\"")), nullptr, false);
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
  for (const char* name : {"login.png", "worklist.png", "viewer.png", "report.png", "township.png",
                           "township-report.png", "township-report-en.png"}) {
    std::error_code ec;
    EXPECT_GT(fs::file_size(shots / name, ec), 1000u) << name;
  }
}

}  // namespace
}  // namespace yilian
