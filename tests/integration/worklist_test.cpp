// The reading queue end to end: a township CT sent with storescu becomes a STAT task for
// the neuro service, a lead-hospital radiologist claims and reports it, the township doctor
// acknowledges the critical result, and the events and statistics show it all.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "consortium.h"
#include "postgres.h"
#include "server_process.h"
#include "synthetic.h"
#include "test_util.h"

namespace yilian {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::ServerProcess;

using testing::kHeadCtQueue;

json parse(const testing::HttpResult& r) { return json::parse(r.body, nullptr, false); }

// The whole reading flow on each backend: the embedded SQLite files, and a PostgreSQL database
// (`serve --database`) of a server the test starts.
class Worklist : public ::testing::TestWithParam<const char*> {};

TEST_P(Worklist, a_township_ct_is_routed_claimed_reported_and_its_critical_result_acknowledged) {
  testing::TempDir dir;
  const fs::path cfg = testing::write_consortium_config(dir.path(), kHeadCtQueue);
  std::vector<std::string> args{"--config", cfg.string()};
  std::string why;
  ASSERT_TRUE(testing::add_backend_args(GetParam(), args, &why)) << why;
  ServerProcess server(dir.path() / "data", args);
  ASSERT_TRUE(server.start()) << server.log();
  std::string rad = server.add_user("dr-chen", {"radiologist"}, "lead");
  std::string doc = server.add_user("dr-li", {"township_doctor"}, "ta");
  ASSERT_FALSE(rad.empty());
  ASSERT_FALSE(doc.empty());

  testing::CtSeriesSpec spec;
  spec.count = 3;
  spec.rows = spec.columns = 16;
  auto ct = testing::write_ct_series(dir.path() / "ct", spec);
  ASSERT_TRUE(ct.ok());
  std::string out;
  for (const fs::path& f : ct->files) {
    ASSERT_EQ(testing::run_command("dcmodify -nb -i '(0018,0015)=HEAD' -i "
                                   "'(0008,1030)=CT HEAD suspected stroke' '" +
                                       f.string() + "'",
                                   &out),
              0)
        << out;
  }
  ASSERT_EQ(testing::run_command("TCP_NODELAY=1 storescu -aet TA_CT -aec YILIAN 127.0.0.1 " +
                                     std::to_string(server.dicom_port()) + " '" +
                                     (dir.path() / "ct").string() + "'/*.dcm",
                                 &out),
            0)
      << out;

  // The task appears once no instance arrived for 0.3 s (bounded wait: 10 s).
  json task;
  for (int i = 0; i < 200 && task.is_null(); ++i) {
    json page = parse(server.get(rad, "/api/worklist"));
    if (page.contains("tasks") && !page["tasks"].empty()) task = page["tasks"][0];
    if (task.is_null()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_FALSE(task.is_null()) << server.log();
  EXPECT_EQ(task["studyInstanceUid"], ct->study_uid);
  EXPECT_EQ(task["service"], "neuro");
  EXPECT_EQ(task["priority"], "stat");
  EXPECT_EQ(task["priorityReason"], "head CT with a stroke indication");
  EXPECT_EQ(task["status"], "queued");
  EXPECT_EQ(task["institution"], "ta");
  std::int64_t id = task["id"];
  std::string base = "/api/tasks/" + std::to_string(id);

  // The township doctor sees the task but cannot claim it.
  EXPECT_EQ(parse(server.get(doc, "/api/worklist"))["total"], 1);
  EXPECT_EQ(server.request(doc, "POST", "/api/worklist/claim-next").status, 403);

  json claimed = parse(server.request(rad, "POST", "/api/worklist/claim-next"));
  ASSERT_TRUE(claimed["task"].is_object()) << claimed.dump();
  EXPECT_EQ(claimed["task"]["id"], id);
  EXPECT_EQ(claimed["task"]["claimedBy"], "dr-chen");
  EXPECT_TRUE(parse(server.request(rad, "POST", "/api/worklist/claim-next"))["task"].is_null());
  EXPECT_EQ(server.request(rad, "POST", base + "/heartbeat").status, 200);

  auto draft = server.request(rad, "POST", base + "/reports",
                              R"({"kind":"draft","findings":"Hyperdense left MCA."})");
  EXPECT_EQ(draft.status, 201) << draft.body;
  auto final_report = server.request(
      rad, "POST", base + "/reports",
      R"({"kind":"final","findings":"Hyperdense left MCA, no bleed.","impression":"Acute left MCA infarct.","critical":true})");
  ASSERT_EQ(final_report.status, 201) << final_report.body;
  EXPECT_EQ(parse(final_report)["version"], 2);
  auto refused = server.request(rad, "POST", base + "/reports",
                                R"({"kind":"final","impression":"changed my mind"})");
  EXPECT_EQ(refused.status, 409);
  EXPECT_EQ(parse(refused)["error"]["message"], "the report is final; only addenda may be added");
  EXPECT_EQ(server.request(rad, "POST", base + "/reports", R"({"kind":"signed"})").status, 400);

  // The township doctor has an open critical result and acknowledges it.
  json critical = parse(server.get(doc, "/api/critical-results"));
  ASSERT_EQ(critical["criticalResults"].size(), 1u) << critical.dump();
  EXPECT_EQ(critical["criticalResults"][0]["impression"], "Acute left MCA infarct.");
  std::int64_t cid = critical["criticalResults"][0]["id"];
  EXPECT_EQ(
      server.request(doc, "POST", "/api/critical-results/" + std::to_string(cid) + "/acknowledge")
          .status,
      200);
  EXPECT_TRUE(parse(server.get(doc, "/api/critical-results"))["criticalResults"].empty());

  json detail = parse(server.get(doc, base));
  EXPECT_EQ(detail["status"], "final");
  ASSERT_EQ(detail["reports"].size(), 2u);
  EXPECT_EQ(detail["reports"][1]["kind"], "final");

  json events = parse(server.get(rad, base + "/events"))["events"];
  std::vector<std::string> types;
  for (const json& e : events) types.push_back(e["type"]);
  EXPECT_EQ(types, (std::vector<std::string>{"received", "routed", "claimed", "draft", "finalised",
                                             "critical_sent", "critical_acknowledged"}));

  // Turnaround statistics, as JSON and CSV.
  json stats = parse(server.get(rad, "/api/stats/turnaround?by=priority"));
  ASSERT_EQ(stats["groups"].size(), 1u) << stats.dump();
  EXPECT_EQ(stats["groups"][0]["priority"], "stat");
  EXPECT_EQ(stats["groups"][0]["count"], 1);
  auto csv = server.get(rad, "/api/stats/turnaround?by=reader&format=csv");
  EXPECT_EQ(csv.status, 200);
  EXPECT_EQ(csv.body.rfind("reader,count,p50_minutes", 0), 0u) << csv.body;
  EXPECT_NE(csv.body.find("dr-chen,1,"), std::string::npos) << csv.body;
  EXPECT_EQ(server.get(doc, "/api/stats/turnaround").status, 403);

  // The health page names the database and whether it answers; with the database down it
  // answers 503 (a load balancer then sends clients elsewhere), and recovers by itself.
  auto health = [&] { return testing::http_get(server.http_port(), "/healthz"); };
  json h = parse(health());
  EXPECT_EQ(h["database"]["backend"],
            GetParam() == std::string("postgres") ? "postgresql" : "sqlite");
  EXPECT_EQ(h["database"]["reachable"], true);
  if (GetParam() == std::string("postgres")) {
    std::string why;
    testing::PostgresServer* pg = testing::shared_postgres(&why);
    ASSERT_TRUE(pg->suspend(&why)) << why;
    auto down = health();
    EXPECT_EQ(down.status, 503) << down.body;
    EXPECT_EQ(parse(down)["database"]["reachable"], false);
    ASSERT_TRUE(pg->resume(&why)) << why;
    EXPECT_EQ(health().status, 200);
    EXPECT_EQ(parse(server.get(rad, base))["status"], "final");  // reads work again
  }
  EXPECT_EQ(server.stop(), 0);
}

INSTANTIATE_TEST_SUITE_P(Backends, Worklist, ::testing::Values("sqlite", "postgres"),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
}  // namespace yilian
