// Township edge nodes end to end: the real `yilian edge` between storescu and the real hub,
// over a simulated link (bandwidth, delay, cuts), with the edge credential issued by the hub.
#include <gtest/gtest.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include "consortium.h"
#include "link_sim.h"
#include "server_process.h"
#include "synthetic.h"
#include "synthetic_ecg.h"
#include "test_util.h"

namespace yilian {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::LinkSimulator;
using testing::ServerProcess;

// Polls `done` every 100 ms for at most `seconds`.
bool wait_until(const std::function<bool()>& done, int seconds = 120) {
  for (int i = 0; i < seconds * 10; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return done();
}

json edge_status(const ServerProcess& edge) {
  auto r = testing::http_get(edge.http_port(), "/edge/status");
  if (r.status != 200) return json::object();
  return json::parse(r.body, nullptr, false);
}

// SOP Instance UID -> content hash of what a data directory's index holds.
std::map<std::string, std::string> stored(const fs::path& data) {
  std::string out;
  testing::run_command("sqlite3 -separator ' ' '" + (data / "index.sqlite").string() +
                           "' 'SELECT sop_uid, content_hash FROM instances'",
                       &out);
  std::map<std::string, std::string> m;
  std::istringstream in(out);
  std::string sop, hash;
  while (in >> sop >> hash) m[sop] = hash;
  return m;
}

std::string sql_value(const fs::path& db, const std::string& q) {
  std::string out;
  testing::run_command("sqlite3 '" + db.string() + "' \"" + q + "\"", &out);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

// The hub with the consortium, an edge credential for `institution`, written to a file.
struct Hub {
  explicit Hub(const fs::path& dir, std::string_view config = {})
      : server(dir / "hub", {"--config", testing::write_consortium_config(dir, config).string()}) {}
  std::string issue(const std::string& name, const std::string& institution, const fs::path& file) {
    auto r = server.request(server.admin_token(), "POST", "/api/admin/edges",
                            json{{"name", name}, {"institution", institution}}.dump());
    if (r.status != 201) return {};
    const std::string token = json::parse(r.body)["token"];
    std::ofstream(file) << token << "\n";
    return token;
  }
  ServerProcess server;
};

std::vector<std::string> edge_args(const LinkSimulator& link, const fs::path& credential,
                                   const std::string& bundle_kb = "1024") {
  return {"--hub",
          "http://127.0.0.1:" + std::to_string(link.port()),
          "--credential-file",
          credential.string(),
          "--stable-seconds",
          "1",
          "--chunk-kb",
          "64",
          "--bundle-kb",
          bundle_kb};
}

int storescu_to(std::uint16_t port, const std::string& aet, const std::vector<fs::path>& files) {
  std::string cmd = "storescu -aet " + aet + " -aec YILIAN 127.0.0.1 " + std::to_string(port);
  for (const auto& f : files) cmd += " '" + f.string() + "'";
  std::string out;
  return testing::run_command(cmd, &out);
}

TEST(EdgeTransfer, a_ct_and_ecgs_arrive_identical_through_a_cut_an_edge_kill_and_a_hub_restart) {
  testing::TempDir dir;
  Hub hub(dir.path());
  ASSERT_TRUE(hub.server.start()) << hub.server.log();
  const fs::path credential = dir.path() / "edge.token";
  ASSERT_FALSE(hub.issue("ta-edge", "ta", credential).empty());
  // 1 MiB/s with 10 ms each way: slow enough to cut the link in the middle of the CT.
  LinkSimulator link(hub.server.http_port(), {1u << 20, std::chrono::milliseconds(10)});
  ASSERT_TRUE(link.start());
  // Chunks stay at 64 KiB (they would grow with the link's throughput), so that what an
  // interruption can cost is known below.
  auto args = edge_args(link, credential);
  args.insert(args.end(), {"--max-chunk-kb", "64"});
  ServerProcess edge(dir.path() / "edge", args, ServerProcess::Mode::edge);
  ASSERT_TRUE(edge.start()) << edge.log();

  testing::CtSeriesSpec spec;
  spec.count = 80;
  spec.rows = spec.columns = 256;
  spec.noise_hu = 12;  // compresses as a real CT does (about 2:1), not to nothing
  auto ct = testing::write_ct_series(dir.path() / "ct", spec);
  ASSERT_TRUE(ct.ok());
  std::vector<fs::path> ecgs;
  for (int i = 0; i < 3; ++i) {
    ecgs.push_back(dir.path() / ("ecg" + std::to_string(i) + ".dcm"));
    ASSERT_FALSE(
        testing::write_stemi_ecg(ecgs.back(), "TA-E" + std::to_string(i), "Wang^Li").empty());
  }
  ASSERT_EQ(storescu_to(edge.dicom_port(), "CT1", ct->files), 0);
  const std::size_t total = ct->files.size() + ecgs.size();

  // 1. The link is cut in the middle of the transfer, and comes back.
  ASSERT_TRUE(wait_until([&] { return edge_status(edge).value("bytesSent", 0) > (512 << 10); }));
  ASSERT_EQ(storescu_to(edge.dicom_port(), "ECG1", {ecgs[0]}), 0);
  link.cut();
  EXPECT_TRUE(wait_until([&] { return edge_status(edge).value("link", "") == "down"; }));
  link.restore();

  // 2. The edge is killed in the middle of a bundle and started again. The link is cut
  // first so that the bundle cannot finish between the look at the status and the kill.
  bool mid_bundle = false;
  for (int attempt = 0; attempt < 10 && !mid_bundle; ++attempt) {
    ASSERT_TRUE(wait_until([&] {
      json s = edge_status(edge);
      return s.value("link", "") == "up" && s["current"].is_object() &&
             s["current"].value("offset", 0) > 0;
    }));
    link.cut();
    ASSERT_TRUE(wait_until([&] { return edge_status(edge).value("link", "") == "down"; }));
    json s = edge_status(edge);
    mid_bundle = s["current"].is_object() && s["current"].value("offset", 0) > 0;
    if (!mid_bundle) link.restore();
  }
  ASSERT_TRUE(mid_bundle);
  edge.kill();
  link.restore();
  ASSERT_TRUE(edge.start()) << edge.log();
  ASSERT_EQ(storescu_to(edge.dicom_port(), "ECG1", {ecgs[1]}), 0);

  // 3. The hub stops and starts again (on another port: the link follows it).
  ASSERT_TRUE(wait_until([&] { return edge_status(edge).value("resumes", 0) > 0; }));
  ASSERT_EQ(storescu_to(edge.dicom_port(), "ECG1", {ecgs[2]}), 0);
  EXPECT_EQ(hub.server.stop(), 0);
  EXPECT_TRUE(wait_until([&] { return edge_status(edge).value("link", "") == "down"; }));
  ASSERT_TRUE(hub.server.start()) << hub.server.log();
  link.set_target(hub.server.http_port());

  // Everything arrives, once.
  ASSERT_TRUE(wait_until([&] {
    json s = edge_status(edge);
    return s.value("sent", std::size_t{0}) == total && s.value("queued", 1) == 0 &&
           s.value("inBundles", 1) == 0;
  })) << edge_status(edge).dump();
  json s = edge_status(edge);
  EXPECT_EQ(s.value("failed", -1), 0) << s.dump();
  const auto at_edge = stored(dir.path() / "edge");
  const auto at_hub = stored(dir.path() / "hub");
  ASSERT_EQ(at_edge.size(), total);
  // Byte for byte what the edge stored (the same content hash), nothing more.
  EXPECT_EQ(at_hub, at_edge);
  for (const std::string& sop : ct->sop_instance_uids) EXPECT_TRUE(at_hub.count(sop)) << sop;
  EXPECT_EQ(
      sql_value(dir.path() / "hub" / "index.sqlite", "SELECT COUNT(*) FROM instance_conflicts"),
      "0");
  // The hub filed the studies under the edge's institution.
  EXPECT_EQ(sql_value(dir.path() / "hub" / "index.sqlite",
                      "SELECT COUNT(*) FROM studies s JOIN institutions i ON i.id = "
                      "s.institution_id WHERE i.code = 'ta'"),
            "4");
  // What went up the link: the bundles, once, plus what was in flight at each interruption
  // (a chunk of 64 KiB each) and the requests' heads.
  const auto bundle_bytes = std::stoull(
      sql_value(dir.path() / "edge" / "index.sqlite", "SELECT SUM(length) FROM edge_bundles"));
  EXPECT_GE(link.bytes_up(), bundle_bytes);
  EXPECT_LT(link.bytes_up(), bundle_bytes + bundle_bytes / 50 + 4 * (64u << 10))
      << "bundles " << bundle_bytes;
  EXPECT_GT(s.value("resumes", 0), 0);
  // The CT went compressed (its 16-bit pixels byte-shuffled, then zstd) and came out as it
  // went in (the hashes above).
  EXPECT_NE(sql_value(dir.path() / "edge" / "index.sqlite",
                      "SELECT COUNT(*) FROM edge_bundles WHERE encoding = 'zstd-shuffle2'"),
            "0");
  // The edge said the studies were complete: the hub routed them without a wait of its own.
  EXPECT_TRUE(wait_until([&] {
    return sql_value(dir.path() / "hub" / "index.sqlite",
                     "SELECT COUNT(DISTINCT study_pk) FROM reading_tasks") == "4";
  }));
  EXPECT_EQ(edge.stop(), 0);
  EXPECT_EQ(hub.server.stop(), 0);
}

TEST(EdgeTransfer, a_stat_ecg_overtakes_a_ct_in_transfer) {
  testing::TempDir dir;
  Hub hub(dir.path());
  ASSERT_TRUE(hub.server.start()) << hub.server.log();
  const fs::path credential = dir.path() / "edge.token";
  ASSERT_FALSE(hub.issue("ta-edge", "ta", credential).empty());
  LinkSimulator link(hub.server.http_port(), {1u << 20, std::chrono::milliseconds(10)});
  ASSERT_TRUE(link.start());
  // One bundle for the whole CT: the ECG comes while it is in transfer.
  ServerProcess edge(dir.path() / "edge", edge_args(link, credential, "16384"),
                     ServerProcess::Mode::edge);
  ASSERT_TRUE(edge.start()) << edge.log();
  testing::CtSeriesSpec spec;
  spec.count = 60;
  spec.rows = spec.columns = 256;
  spec.noise_hu = 12;
  auto ct = testing::write_ct_series(dir.path() / "ct", spec);
  ASSERT_TRUE(ct.ok());
  // The CT is stored while the link is down, so that it goes as one bundle once it is back.
  link.cut();
  ASSERT_EQ(storescu_to(edge.dicom_port(), "CT1", ct->files), 0);
  ASSERT_TRUE(wait_until([&] {
    json s = edge_status(edge);
    return s.value("queued", 0) + s.value("inBundles", 0) == spec.count;
  }));
  link.restore();
  // A large routine bundle is in transfer, not yet half sent.
  ASSERT_TRUE(wait_until([&] {
    json s = edge_status(edge);
    if (!s["current"].is_object()) return false;
    const json& c = s["current"];
    return c.value("priority", "") == "routine" && c.value("length", 0) > (1 << 20) &&
           c.value("offset", 0) > 0 && c.value("offset", 0) < c.value("length", 0) / 2;
  }));
  const fs::path ecg = dir.path() / "stat.dcm";
  const std::string ecg_study = testing::write_stemi_ecg(ecg, "TA-STAT", "Zhao^Ming");
  ASSERT_EQ(storescu_to(edge.dicom_port(), "ECG1", {ecg}), 0);
  const fs::path hub_index = dir.path() / "hub" / "index.sqlite";
  ASSERT_TRUE(wait_until([&] {
    return sql_value(hub_index,
                     "SELECT COUNT(*) FROM studies WHERE study_uid = '" + ecg_study + "'") == "1";
  }));
  // The ECG is at the hub while the CT is not all there yet.
  const int ct_at_hub = std::stoi(
      sql_value(hub_index,
                "SELECT COUNT(*) FROM instances i JOIN series s ON s.id = i.series_pk JOIN "
                "studies t ON t.id = s.study_pk WHERE t.study_uid = '" +
                    ct->study_uid + "'"));
  EXPECT_LT(ct_at_hub, spec.count);
  EXPECT_GE(edge_status(edge).value("preempted", 0), 1);
  // Once the edge has the hub's word for the ECG, the link is cut, so that the CT is surely
  // still on its way while the page is looked at.
  ASSERT_TRUE(wait_until([&] {
    auto q = json::parse(testing::http_get(edge.http_port(), "/edge/queue").body, nullptr, false);
    if (!q.is_object()) return false;
    for (const json& s : q["studies"])
      if (s["study"] == ecg_study) return s["sent"] == 1;
    return false;
  }));
  link.cut();
  // The edge's page shows the CT still on its way, with a time to the hub, after the ECG.
  {
    auto q = testing::http_get(edge.http_port(), "/edge/queue");
    ASSERT_EQ(q.status, 200);
    const json studies = json::parse(q.body)["studies"];
    ASSERT_EQ(studies.size(), 2u) << q.body;
    const json& waiting = studies[0];
    EXPECT_EQ(waiting["study"], ct->study_uid) << q.body;
    EXPECT_EQ(waiting["priority"], "routine");
    EXPECT_EQ(waiting["modalities"], "CT");
    EXPECT_EQ(waiting["instances"], spec.count);
    EXPECT_LT(waiting["sent"].get<int>(), spec.count);
    EXPECT_TRUE(waiting["state"] == "sending" || waiting["state"] == "queued") << q.body;
    EXPECT_EQ(studies[1]["study"], ecg_study);
    EXPECT_EQ(studies[1]["sent"], 1);
    EXPECT_TRUE(waiting["failures"].empty());
  }
  link.restore();
  // The CT resumes and completes.
  EXPECT_TRUE(wait_until([&] { return edge_status(edge).value("sent", 0) == spec.count + 1; }));
  EXPECT_TRUE(wait_until([&] {
    auto q = testing::http_get(edge.http_port(), "/edge/queue");
    if (q.status != 200) return false;
    const json studies = json::parse(q.body, nullptr, false)["studies"];
    return studies.size() == 2u && studies[0]["state"] == "complete" &&
           studies[1]["state"] == "complete";
  }));
  // The page itself: Chinese by default, reading the two JSON resources.
  auto page = testing::http_get(edge.http_port(), "/");
  EXPECT_EQ(page.status, 200);
  EXPECT_NE(page.body.find("lang=\"zh-CN\""), std::string::npos);
  EXPECT_NE(page.body.find("前置机"), std::string::npos);
  EXPECT_NE(page.body.find("/edge/queue"), std::string::npos);
  EXPECT_EQ(edge.stop(), 0);
  EXPECT_EQ(hub.server.stop(), 0);
}

TEST(EdgeTransfer, a_schedule_holding_routine_traffic_still_lets_a_stat_ecg_through) {
  testing::TempDir dir;
  Hub hub(dir.path());
  ASSERT_TRUE(hub.server.start()) << hub.server.log();
  const fs::path credential = dir.path() / "edge.token";
  ASSERT_FALSE(hub.issue("ta-edge", "ta", credential).empty());
  LinkSimulator link(hub.server.http_port(), {1u << 20, std::chrono::milliseconds(10)});
  ASSERT_TRUE(link.start());
  // Routine traffic held all day, and a cap for the rest that never applies.
  auto args = edge_args(link, credential);
  for (const char* a : {"--routine-schedule", "00:00-24:00=off", "--routine-kbps", "64"})
    args.push_back(a);
  ServerProcess edge(dir.path() / "edge", args, ServerProcess::Mode::edge);
  ASSERT_TRUE(edge.start()) << edge.log();
  json s = edge_status(edge);
  EXPECT_EQ(s["routine"]["held"], true) << s.dump();

  testing::CtSeriesSpec spec;
  spec.count = 5;
  spec.rows = spec.columns = 64;
  auto ct = testing::write_ct_series(dir.path() / "ct", spec);
  ASSERT_TRUE(ct.ok());
  ASSERT_EQ(storescu_to(edge.dicom_port(), "CT1", ct->files), 0);
  const fs::path ecg = dir.path() / "stat.dcm";
  const std::string ecg_study = testing::write_stemi_ecg(ecg, "TA-HELD", "Sun^Hua");
  ASSERT_EQ(storescu_to(edge.dicom_port(), "ECG1", {ecg}), 0);
  // The ECG reaches the hub; the CT stays at the edge.
  const fs::path hub_index = dir.path() / "hub" / "index.sqlite";
  ASSERT_TRUE(wait_until([&] {
    return sql_value(hub_index,
                     "SELECT COUNT(*) FROM studies WHERE study_uid = '" + ecg_study + "'") == "1";
  }));
  ASSERT_TRUE(wait_until([&] { return edge_status(edge).value("sent", 0) == 1; }));
  s = edge_status(edge);
  EXPECT_EQ(s.value("sent", 0), 1) << s.dump();
  EXPECT_EQ(s.value("queued", 0) + s.value("inBundles", 0), spec.count) << s.dump();
  EXPECT_EQ(sql_value(hub_index,
                      "SELECT COUNT(*) FROM studies WHERE study_uid = '" + ct->study_uid + "'"),
            "0");
  EXPECT_EQ(edge.stop(), 0);
  EXPECT_EQ(hub.server.stop(), 0);
}

// The edge decides STAT by the hub's priority rules, which it gets by the back channel: with
// routine traffic held, a head CT for a suspected stroke goes, a plain head CT waits.
TEST(EdgeTransfer, the_edge_decides_stat_by_the_hubs_priority_rules) {
  testing::TempDir dir;
  Hub hub(dir.path(), testing::kEdgeStrokeQueue);
  ASSERT_TRUE(hub.server.start()) << hub.server.log();
  const fs::path credential = dir.path() / "edge.token";
  ASSERT_FALSE(hub.issue("ta-edge", "ta", credential).empty());
  LinkSimulator link(hub.server.http_port(), {1u << 20, std::chrono::milliseconds(10)});
  ASSERT_TRUE(link.start());
  auto args = edge_args(link, credential);  // no [queue] of its own
  for (const char* a : {"--routine-schedule", "00:00-24:00=off", "--sync-seconds", "0.2"})
    args.push_back(a);
  ServerProcess edge(dir.path() / "edge", args, ServerProcess::Mode::edge);
  ASSERT_TRUE(edge.start()) << edge.log();
  ASSERT_TRUE(wait_until([&] { return edge_status(edge).value("priorityRules", "") == "hub"; }));

  auto ct = [&](const std::string& name, const std::string& description) {
    testing::CtSeriesSpec spec;
    spec.count = 2;
    spec.rows = spec.columns = 32;
    spec.study_description = description;
    auto made = testing::write_ct_series(dir.path() / name, spec);
    EXPECT_TRUE(made.ok());
    return *made;
  };
  const auto plain = ct("plain", "CT HEAD W/O CONTRAST");
  const auto stroke = ct("stroke", "CT HEAD suspected stroke");
  ASSERT_EQ(storescu_to(edge.dicom_port(), "CT1", plain.files), 0);
  ASSERT_EQ(storescu_to(edge.dicom_port(), "CT1", stroke.files), 0);
  const fs::path hub_index = dir.path() / "hub" / "index.sqlite";
  ASSERT_TRUE(wait_until([&] {
    return sql_value(hub_index, "SELECT COUNT(*) FROM studies WHERE study_uid = '" +
                                    stroke.study_uid + "'") == "1";
  }));
  json queue = json::parse(testing::http_get(edge.http_port(), "/edge/queue").body);
  std::map<std::string, std::string> priority;
  for (const json& s : queue["studies"]) priority[s["study"]] = s["priority"];
  EXPECT_EQ(priority[stroke.study_uid], "stat") << queue.dump();
  EXPECT_EQ(priority[plain.study_uid], "routine") << queue.dump();
  EXPECT_EQ(sql_value(hub_index,
                      "SELECT COUNT(*) FROM studies WHERE study_uid = '" + plain.study_uid + "'"),
            "0");
  EXPECT_EQ(edge.stop(), 0);
  EXPECT_EQ(hub.server.stop(), 0);
}

// The hub's first task of a reader's worklist, or null.
json first_task(const ServerProcess& hub, const std::string& token) {
  auto r = hub.get(token, "/api/worklist");
  if (r.status != 200) return nullptr;
  json page = json::parse(r.body, nullptr, false);
  if (!page.is_object() || !page["tasks"].is_array() || page["tasks"].empty()) return nullptr;
  return page["tasks"][0];
}

TEST(EdgeTransfer, a_stroke_ct_is_read_at_the_hub_as_its_first_slices_land) {
  testing::TempDir dir;
  Hub hub(dir.path(), testing::kEdgeStrokeQueue);
  ASSERT_TRUE(hub.server.start()) << hub.server.log();
  const std::string rad = hub.server.add_user("dr-chen", {"radiologist"}, "lead");
  ASSERT_FALSE(rad.empty());
  const fs::path credential = dir.path() / "edge.token";
  ASSERT_FALSE(hub.issue("ta-edge", "ta", credential).empty());
  // 256 KiB/s and bundles of two slices: the CT takes several seconds, a bundle a fraction.
  LinkSimulator link(hub.server.http_port(), {256u << 10, std::chrono::milliseconds(10)});
  ASSERT_TRUE(link.start());
  ServerProcess edge(dir.path() / "edge", edge_args(link, credential, "256"),
                     ServerProcess::Mode::edge);
  ASSERT_TRUE(edge.start()) << edge.log();

  testing::CtSeriesSpec spec;
  spec.count = 40;
  spec.rows = spec.columns = 256;
  spec.noise_hu = 12;
  spec.study_description = "CT HEAD suspected stroke";
  auto ct = testing::write_ct_series(dir.path() / "ct", spec);
  ASSERT_TRUE(ct.ok());
  ASSERT_EQ(storescu_to(edge.dicom_port(), "CT1", ct->files), 0);

  // The task comes with the first slices, STAT and marked arriving. The link is cut then, so
  // that what follows is looked at while the CT is surely not all there.
  ASSERT_TRUE(wait_until([&] { return !first_task(hub.server, rad).is_null(); }));
  link.cut();
  json task = first_task(hub.server, rad);
  ASSERT_TRUE(task.is_object());
  EXPECT_EQ(task["studyInstanceUid"], ct->study_uid);
  EXPECT_EQ(task["priority"], "stat");
  EXPECT_EQ(task["service"], "neuro");
  EXPECT_EQ(task["arriving"], true);
  const int first = task["instances"];
  EXPECT_GE(first, 1);
  EXPECT_LT(first, spec.count);
  const std::string id = std::to_string(task["id"].get<std::int64_t>());

  // The reader claims it and opens what has arrived: its instances are found and render.
  ASSERT_EQ(hub.server.request(rad, "POST", "/api/tasks/" + id + "/claim").status, 200);
  auto found = hub.server.get(rad, "/dicom-web/studies/" + ct->study_uid + "/instances");
  ASSERT_EQ(found.status, 200) << found.body;
  const json instances = json::parse(found.body, nullptr, false);
  ASSERT_TRUE(instances.is_array());
  EXPECT_GE(static_cast<int>(instances.size()), first);
  EXPECT_LT(static_cast<int>(instances.size()), spec.count);
  // The first slice (instances go in instance order) is among them and renders.
  auto rendered =
      hub.server.get(rad, "/dicom-web/studies/" + ct->study_uid + "/series/" + ct->series_uid +
                              "/instances/" + ct->sop_instance_uids.front() + "/rendered");
  EXPECT_EQ(rendered.status, 200);

  // The link is back: new slices appear while the task is still arriving, and once the edge
  // says the study is complete the task is whole.
  link.restore();
  ASSERT_TRUE(wait_until([&] {
    json t = first_task(hub.server, rad);
    return t.is_object() && t.value("instances", 0) > first;
  }));
  ASSERT_TRUE(wait_until([&] {
    json t = first_task(hub.server, rad);
    return t.is_object() && t.value("arriving", true) == false;
  }));
  task = first_task(hub.server, rad);
  EXPECT_EQ(task["instances"], spec.count);
  EXPECT_EQ(task["status"], "claimed");  // the reader kept it throughout
  auto events = hub.server.get(rad, "/api/tasks/" + id + "/events");
  ASSERT_EQ(events.status, 200);
  EXPECT_NE(events.body.find("all instances arrived"), std::string::npos) << events.body;
  EXPECT_NE(events.body.find("still arriving"), std::string::npos) << events.body;
  EXPECT_EQ(edge.stop(), 0);
  EXPECT_EQ(hub.server.stop(), 0);
}

// The edge's inbox for `token`, or null.
json edge_inbox(const ServerProcess& edge, const std::string& token) {
  auto r = edge.get(token, "/api/inbox");
  if (r.status != 200) return nullptr;
  return json::parse(r.body, nullptr, false);
}

// The inbox item of `kind` (and, for a referral, `direction`), or null.
json inbox_item(const json& inbox, const std::string& kind, const std::string& direction = {}) {
  if (!inbox.is_object() || !inbox["items"].is_array()) return nullptr;
  for (const json& i : inbox["items"])
    if (i.value("kind", "") == kind && (direction.empty() || i.value("direction", "") == direction))
      return i;
  return nullptr;
}

TEST(EdgeBackChannel,
     reports_critical_results_consults_and_referrals_stay_readable_at_the_edge_with_the_link_cut) {
  testing::TempDir dir;
  Hub hub(dir.path(), testing::kHeadCtQueue);
  ASSERT_TRUE(hub.server.start()) << hub.server.log();
  const std::string rad = hub.server.add_user("dr-chen", {"radiologist"}, "lead");
  const std::string doc = hub.server.add_user("dr-li", {"township_doctor"}, "ta");
  ASSERT_FALSE(rad.empty());
  ASSERT_FALSE(doc.empty());
  const fs::path credential = dir.path() / "edge.token";
  ASSERT_FALSE(hub.issue("ta-edge", "ta", credential).empty());
  LinkSimulator link(hub.server.http_port(), {1u << 20, std::chrono::milliseconds(10)});
  ASSERT_TRUE(link.start());
  auto args = edge_args(link, credential);
  args.push_back("--sync-seconds");
  args.push_back("0.2");
  ServerProcess edge(dir.path() / "edge", args, ServerProcess::Mode::edge);
  ASSERT_TRUE(edge.start()) << edge.log();

  // A CT of the clinic goes to the hub through the edge; the radiologist signs a final report
  // with a critical result.
  testing::CtSeriesSpec spec;
  spec.count = 3;
  spec.rows = spec.columns = 64;
  spec.patient_name = "Li^Ming";
  auto ct = testing::write_ct_series(dir.path() / "ct", spec);
  ASSERT_TRUE(ct.ok());
  ASSERT_EQ(storescu_to(edge.dicom_port(), "CT1", ct->files), 0);
  ASSERT_TRUE(wait_until([&] { return !first_task(hub.server, rad).is_null(); }));
  const std::string base =
      "/api/tasks/" + std::to_string(first_task(hub.server, rad)["id"].get<std::int64_t>());
  ASSERT_EQ(hub.server.request(rad, "POST", base + "/claim").status, 200);
  auto signed_report = hub.server.request(
      rad, "POST", base + "/reports",
      R"({"kind":"final","findings":"Hyperdense left MCA.","impression":"Acute left MCA infarct.","critical":true})");
  ASSERT_EQ(signed_report.status, 201) << signed_report.body;

  // The clinic's doctor asks cardiology for a consult and refers a patient up; the lead's
  // cardiologist gives an opinion, schedules the referral, and refers another patient down.
  const std::string cardio = hub.server.add_user("dr-wu", {"cardiologist"}, "lead");
  ASSERT_FALSE(cardio.empty());
  auto post = [&](const std::string& token, const std::string& target, const json& body) {
    auto r = hub.server.request(token, "POST", target, body.dump());
    EXPECT_TRUE(r.status == 200 || r.status == 201) << target << ": " << r.body;
    return json::parse(r.body, nullptr, false);
  };
  const std::string consult = std::to_string(post(doc, "/api/consults",
                                                  {{"patientId", "TA-7"},
                                                   {"patientName", "Zhao^Hua"},
                                                   {"question", "Palpitations, ECG?"},
                                                   {"specialty", "cardiology"}})
                                                 .value("id", std::int64_t{0}));
  post(cardio, "/api/consults/" + consult + "/accept", json::object());
  post(cardio, "/api/consults/" + consult + "/conclude",
       {{"opinion", "Benign PACs; no treatment needed."}});
  const std::string up = std::to_string(post(doc, "/api/referrals",
                                             {{"direction", "up"},
                                              {"toInstitution", "lead"},
                                              {"urgency", "urgent"},
                                              {"patientId", "TA-8"},
                                              {"reason", "Unstable angina"}})
                                            .value("id", std::int64_t{0}));
  post(cardio, "/api/referrals/" + up + "/accept", json::object());
  post(cardio, "/api/referrals/" + up + "/schedule", json::object());
  post(cardio, "/api/referrals",
       {{"direction", "down"},
        {"toInstitution", "ta"},
        {"patientId", "TA-9"},
        {"reason", "Rehabilitation after PCI"},
        {"dischargeSummary", "PCI of the LAD, stable."},
        {"followUpPlan", "Aspirin and clopidogrel; ECG in 4 weeks."}});

  // The clinic's doctor signs in at the edge with the password of the hub, and reads them all.
  std::string token;
  ASSERT_TRUE(wait_until([&] { return !(token = edge.login("dr-li")).empty(); }));
  ASSERT_TRUE(wait_until([&] {
    json in = edge_inbox(edge, token);
    return !inbox_item(in, "report").is_null() && !inbox_item(in, "critical").is_null() &&
           inbox_item(in, "consult").value("status", "") == "concluded" &&
           inbox_item(in, "referral", "up").value("status", "") == "scheduled" &&
           !inbox_item(in, "referral", "down").is_null();
  }));
  // Nobody else reads it: no session, or a user of another institution (not kept here).
  EXPECT_EQ(edge.get("", "/api/inbox").status, 401);
  EXPECT_TRUE(edge.login("dr-chen").empty());
  // The clinic's office account (no clinical role) signs in there but reads nothing.
  ASSERT_FALSE(hub.server.add_user("ta-office", {"admin"}, "ta").empty());
  std::string office;
  ASSERT_TRUE(wait_until([&] { return !(office = edge.login("ta-office")).empty(); }));
  EXPECT_EQ(edge.get(office, "/api/inbox").status, 403);
  EXPECT_EQ(edge.get(office, "/api/priors").status, 403);

  // The link is cut: a new sign-in works, and both stay readable.
  link.cut();
  ASSERT_TRUE(wait_until([&] { return edge_status(edge).value("link", "") == "down"; }));
  token = edge.login("dr-li");
  ASSERT_FALSE(token.empty());
  json in = edge_inbox(edge, token);
  json report = inbox_item(in, "report");
  ASSERT_TRUE(report.is_object()) << in.dump();
  EXPECT_EQ(report["studyInstanceUid"], ct->study_uid);
  EXPECT_EQ(report["patient"]["name"], "Li^Ming");
  EXPECT_EQ(report["reportKind"], "final");
  EXPECT_EQ(report["impression"], "Acute left MCA infarct.");
  EXPECT_EQ(report["findings"], "Hyperdense left MCA.");
  EXPECT_EQ(report["critical"], true);
  json critical = inbox_item(in, "critical");
  ASSERT_TRUE(critical.is_object()) << in.dump();
  EXPECT_EQ(critical["impression"], "Acute left MCA infarct.");
  EXPECT_TRUE(critical["acknowledgedBy"].is_null());
  json c = inbox_item(in, "consult");
  EXPECT_EQ(c["specialty"], "cardiology");
  EXPECT_EQ(c["patient"]["name"], "Zhao^Hua");
  EXPECT_EQ(c["question"], "Palpitations, ECG?");
  EXPECT_EQ(c["opinion"], "Benign PACs; no treatment needed.");
  EXPECT_EQ(c["specialist"], "dr-wu");
  json r = inbox_item(in, "referral", "up");
  EXPECT_EQ(r["patient"]["id"], "TA-8");
  EXPECT_EQ(r["reason"], "Unstable angina");
  EXPECT_FALSE(r.value("slotDate", "").empty()) << r.dump();
  EXPECT_EQ(r["otherInstitution"], "Lead Hospital");
  r = inbox_item(in, "referral", "down");
  EXPECT_EQ(r["patient"]["id"], "TA-9");
  EXPECT_EQ(r["status"], "requested");
  EXPECT_EQ(r["dischargeSummary"], "PCI of the LAD, stable.");
  EXPECT_EQ(r["followUpPlan"], "Aspirin and clopidogrel; ECG in 4 weeks.");
  // The doctor acknowledges it at the edge; the hub learns it once the link is back.
  const std::string cid = std::to_string(critical["id"].get<std::int64_t>());
  auto ack = edge.request(token, "POST", "/api/inbox/critical/" + cid + "/acknowledge");
  ASSERT_EQ(ack.status, 200) << ack.body;
  critical = inbox_item(edge_inbox(edge, token), "critical");
  EXPECT_EQ(critical["acknowledgedBy"], "dr-li");
  EXPECT_EQ(critical["sentToHub"], false);
  EXPECT_EQ(edge.request(token, "POST", "/api/inbox/critical/" + cid + "/acknowledge").status,
            404);  // once
  auto open = json::parse(hub.server.get(doc, "/api/critical-results").body);
  ASSERT_EQ(open["criticalResults"].size(), 1u);
  link.restore();
  ASSERT_TRUE(wait_until([&] {
    auto r =
        json::parse(hub.server.get(doc, "/api/critical-results?open=false").body, nullptr, false);
    return r.is_object() && r["criticalResults"].size() == 1u &&
           r["criticalResults"][0]["acknowledgedBy"] == "dr-li";
  }));
  EXPECT_TRUE(
      json::parse(hub.server.get(doc, "/api/critical-results").body)["criticalResults"].empty());
  ASSERT_TRUE(wait_until([&] {
    json c = inbox_item(edge_inbox(edge, token), "critical");
    return c.is_object() && c["sentToHub"] == true && c["acknowledgedBy"] == "dr-li";
  }));
  // Both sides audited it: the edge the reading and the acknowledgement, the hub the latter.
  EXPECT_TRUE(wait_until([&] {
    return sql_value(dir.path() / "edge" / "audit.sqlite",
                     "SELECT COUNT(*) FROM audit WHERE action = 'critical.acknowledge' AND "
                     "actor = 'dr-li' AND outcome = 'ok'") == "1" &&
           sql_value(dir.path() / "edge" / "audit.sqlite",
                     "SELECT COUNT(*) FROM audit WHERE action = 'edge.inbox.read'") != "0";
  }));
  EXPECT_TRUE(wait_until([&] {
    return sql_value(dir.path() / "hub" / "audit.sqlite",
                     "SELECT COUNT(*) FROM audit WHERE action = 'critical.acknowledge' AND "
                     "detail = 'at the edge by dr-li' AND outcome = 'ok'") == "1";
  }));
  EXPECT_EQ(edge.stop(), 0);
  EXPECT_EQ(hub.server.stop(), 0);
}

// The hub answers an edge for its own institution only, whatever the edge sends: another
// clinic's critical result, a doctor of another clinic, hostile cursors.
TEST(EdgeBackChannel, the_hub_answers_an_edge_only_for_its_own_institution) {
  testing::TempDir dir;
  Hub hub(dir.path());
  ASSERT_TRUE(hub.server.start()) << hub.server.log();
  const std::string rad = hub.server.add_user("dr-chen", {"radiologist"}, "lead");
  const std::string ta_doc = hub.server.add_user("dr-li", {"township_doctor"}, "ta");
  ASSERT_FALSE(hub.server.add_user("dr-zhou", {"township_doctor"}, "tb").empty());
  // Clinic B's edge; the critical result is clinic A's.
  const std::string edge_token = hub.issue("tb-edge", "tb", dir.path() / "edge.token");
  ASSERT_FALSE(edge_token.empty());
  // A critical result of clinic A.
  testing::CtSeriesSpec spec;
  spec.count = 1;
  spec.rows = spec.columns = 16;
  auto ct = testing::write_ct_series(dir.path() / "ta", spec);
  ASSERT_TRUE(ct.ok());
  ASSERT_EQ(testing::storescu(hub.server, "TA_CT", ct->files), 0);
  ASSERT_EQ(hub.server.request(rad, "POST", "/api/studies/" + ct->study_uid + "/complete").status,
            200);
  ASSERT_TRUE(wait_until([&] { return !first_task(hub.server, rad).is_null(); }));
  const std::string task =
      "/api/tasks/" + std::to_string(first_task(hub.server, rad)["id"].get<std::int64_t>());
  ASSERT_EQ(hub.server.request(rad, "POST", task + "/claim").status, 200);
  ASSERT_EQ(
      hub.server
          .request(
              rad, "POST", task + "/reports",
              R"({"kind":"final","findings":"x","impression":"Pneumothorax.","critical":true})")
          .status,
      201);
  auto open = json::parse(hub.server.get(ta_doc, "/api/critical-results").body);
  ASSERT_EQ(open["criticalResults"].size(), 1u) << open.dump();
  const std::string id = std::to_string(open["criticalResults"][0]["id"].get<std::int64_t>());

  auto as_edge = [&](const std::string& method, const std::string& target,
                     const std::string& body = {}) {
    return testing::http_request(
        hub.server.http_port(), method, target, body,
        {{"Authorization", "Bearer " + edge_token}, {"Content-Type", "application/json"}});
  };
  // Clinic B's edge cannot acknowledge A's result, neither as B's doctor nor as A's.
  auto ack = as_edge("POST", "/api/edge/v1/critical-results/" + id + "/acknowledge",
                     R"({"by":"dr-zhou"})");
  // (the reading queue's answer: none open for that doctor's institution)
  EXPECT_TRUE(ack.status == 403 || ack.status == 404 || ack.status == 409)
      << ack.status << " " << ack.body;
  EXPECT_EQ(
      as_edge("POST", "/api/edge/v1/critical-results/" + id + "/acknowledge", R"({"by":"dr-li"})")
          .status,
      403);
  EXPECT_EQ(
      as_edge("POST", "/api/edge/v1/critical-results/" + id + "/acknowledge", R"({"by":"nobody"})")
          .status,
      403);
  EXPECT_EQ(as_edge("POST", "/api/edge/v1/critical-results/" + id + "/acknowledge", "[1,2").status,
            400);
  open = json::parse(hub.server.get(ta_doc, "/api/critical-results").body);
  ASSERT_EQ(open["criticalResults"].size(), 1u);
  EXPECT_TRUE(open["criticalResults"][0]["acknowledgedBy"].is_null());
  // Its sync holds nothing of A, and hostile cursors get a 400.
  auto sync = as_edge("GET", "/api/edge/v1/sync?after=0");
  ASSERT_EQ(sync.status, 200);
  const json j = json::parse(sync.body);
  EXPECT_TRUE(j["critical"].empty()) << sync.body;
  EXPECT_TRUE(j["reports"].empty()) << sync.body;
  for (const json& a : j["accounts"]) EXPECT_NE(a["username"], "dr-li");
  for (const char* after : {"-1", "abc", "99999999999999999999999", "1e3"})
    EXPECT_EQ(as_edge("GET", std::string("/api/edge/v1/sync?after=") + after).status, 400) << after;
  EXPECT_EQ(hub.server.stop(), 0);
}

// The DICOMweb studies the edge answers `token` with, by Study Instance UID.
std::set<std::string> edge_studies(const ServerProcess& edge, const std::string& token) {
  std::set<std::string> out;
  auto r = edge.get(token, "/dicom-web/studies");
  if (r.status == 204) return out;
  auto j = json::parse(r.body, nullptr, false);
  if (r.status != 200 || !j.is_array()) return {"(error " + std::to_string(r.status) + ")"};
  for (const json& s : j) out.insert(s["0020000D"]["Value"][0].get<std::string>());
  return out;
}

TEST(EdgeLocal, a_doctor_views_the_clinics_studies_at_the_edge_and_pulls_a_patients_priors) {
  testing::TempDir dir;
  Hub hub(dir.path());
  ASSERT_TRUE(hub.server.start()) << hub.server.log();
  const std::string doc = hub.server.add_user("dr-li", {"township_doctor"}, "ta");
  const std::string zhou = hub.server.add_user("dr-zhou", {"township_doctor"}, "tb");
  ASSERT_FALSE(zhou.empty());
  const fs::path credential = dir.path() / "edge.token";
  const std::string edge_token = hub.issue("ta-edge", "ta", credential);
  ASSERT_FALSE(edge_token.empty());
  LinkSimulator link(hub.server.http_port(), {1u << 20, std::chrono::milliseconds(10)});
  ASSERT_TRUE(link.start());
  auto args = edge_args(link, credential);
  args.insert(args.end(), {"--sync-seconds", "0.2"});
  ServerProcess edge(dir.path() / "edge", args, ServerProcess::Mode::edge);
  ASSERT_TRUE(edge.start()) << edge.log();

  // Today's CT of patient TA-5 goes through the edge; last year's is at the hub already (sent
  // by the clinic before it had an edge), and the patient has a CT at another clinic too.
  auto ct = [&](const std::string& name, const std::string& date, int count = 2, int size = 32) {
    testing::CtSeriesSpec spec;
    spec.count = count;
    spec.rows = spec.columns = size;
    spec.patient_id = "TA-5";
    spec.patient_name = "Sun^Li";
    spec.study_date = date;
    auto made = testing::write_ct_series(dir.path() / name, spec);
    EXPECT_TRUE(made.ok());
    return *made;
  };
  const auto today = ct("today", "20261205");
  const auto prior = ct("prior", "20251120", 40, 256);  // 5 MB: more than an answer of JSON
  const auto elsewhere = ct("elsewhere", "20260601");
  ASSERT_EQ(testing::storescu(hub.server, "TA_CT", prior.files), 0);
  ASSERT_EQ(testing::storescu(hub.server, "TB_CT", elsewhere.files), 0);
  ASSERT_EQ(storescu_to(edge.dicom_port(), "CT1", today.files), 0);
  ASSERT_TRUE(wait_until(
      [&] { return hub.server.get(doc, "/api/studies/" + today.study_uid).status == 200; }));

  // The clinic's doctor signs in at the edge and sees the clinic's study kept there.
  std::string token;
  ASSERT_TRUE(wait_until([&] { return !(token = edge.login("dr-li")).empty(); }));
  EXPECT_EQ(edge.get("", "/dicom-web/studies").status, 401);
  EXPECT_EQ(edge_studies(edge, token), std::set<std::string>{today.study_uid});

  // They pull the patient's priors: what they may read at the hub comes, the other clinic's
  // CT does not.
  EXPECT_EQ(edge.request(token, "POST", "/api/priors", R"({"patientId":"TA-*"})").status, 400);
  auto asked = edge.request(token, "POST", "/api/priors", R"({"patientId":"TA-5"})");
  ASSERT_EQ(asked.status, 202) << asked.body;
  json request;
  ASSERT_TRUE(wait_until([&] {
    auto r = json::parse(edge.get(token, "/api/priors").body, nullptr, false);
    if (!r.is_object() || r["requests"].empty()) return false;
    request = r["requests"][0];
    return request["state"] == "done" || request["state"] == "failed";
  }));
  EXPECT_EQ(request["state"], "done") << request.dump();
  EXPECT_EQ(request["studies"], 2) << request.dump();
  EXPECT_EQ(request["instances"], 40) << request.dump();
  EXPECT_EQ(request["requestedBy"], "dr-li");
  EXPECT_EQ(edge_studies(edge, token), (std::set<std::string>{today.study_uid, prior.study_uid}));
  // Byte for byte the hub's, viewable at the edge, and never sent back.
  const auto at_hub = stored(dir.path() / "hub");
  const auto at_edge = stored(dir.path() / "edge");
  for (const std::string& sop : prior.sop_instance_uids) {
    ASSERT_TRUE(at_edge.count(sop)) << sop;
    EXPECT_EQ(at_edge.at(sop), at_hub.at(sop));
  }
  auto rendered = testing::http_request(
      edge.http_port(), "GET",
      "/dicom-web/studies/" + prior.study_uid + "/series/" + prior.series_uid + "/instances/" +
          prior.sop_instance_uids[0] + "/rendered",
      "", {{"Authorization", "Bearer " + token}, {"Accept", "image/png"}});
  EXPECT_EQ(rendered.status, 200);
  EXPECT_EQ(rendered.header("content-type"), "image/png");
  EXPECT_EQ(rendered.body.substr(1, 3), "PNG");
  auto queue = json::parse(testing::http_get(edge.http_port(), "/edge/queue").body);
  for (const json& s : queue["studies"]) EXPECT_NE(s["study"], prior.study_uid);
  EXPECT_EQ(
      sql_value(dir.path() / "edge" / "index.sqlite",
                "SELECT COUNT(*) FROM edge_outbox WHERE study_uid = '" + prior.study_uid + "'"),
      "0");

  // The hub judges as the doctor who asked: someone of another clinic gets nothing, a
  // wildcard is refused, and it is audited.
  auto as_edge = [&](const std::string& target) {
    return testing::http_request(hub.server.http_port(), "GET", target, "",
                                 {{"Authorization", "Bearer " + edge_token}});
  };
  EXPECT_EQ(as_edge("/api/edge/v1/priors?patientId=TA-5&by=dr-zhou").status, 403);
  EXPECT_EQ(as_edge("/api/edge/v1/priors?patientId=*&by=dr-li").status, 400);
  EXPECT_EQ(as_edge("/api/edge/v1/priors?patientId=%CD%F5&by=dr-li").status, 400);
  EXPECT_EQ(as_edge("/api/edge/v1/priors/" + elsewhere.study_uid + "?by=dr-li").status, 404);
  EXPECT_EQ(as_edge("/api/edge/v1/priors/" + prior.study_uid + "?by=dr-zhou").status, 403);
  EXPECT_EQ(sql_value(dir.path() / "hub" / "audit.sqlite",
                      "SELECT COUNT(*) FROM audit WHERE action = 'edge.priors.pull' AND outcome = "
                      "'ok' AND detail LIKE 'at the edge by dr-li%'"),
            "1");
  // Township B shares its CT with township A: dr-li may now open it, but B's TA-5 is B's own
  // patient (no national ID), so it is not among A's patient's priors.
  auto shared = hub.server.request(zhou, "POST", "/api/studies/" + elsewhere.study_uid + "/shares",
                                   json{{"institution", "ta"}, {"reason", "consult"}}.dump());
  ASSERT_EQ(shared.status, 201) << shared.body;
  ASSERT_EQ(hub.server.get(doc, "/api/studies/" + elsewhere.study_uid).status, 200);
  auto listed = as_edge("/api/edge/v1/priors?patientId=TA-5&by=dr-li");
  ASSERT_EQ(listed.status, 200) << listed.body;
  const json listing = json::parse(listed.body);
  std::set<std::string> uids;
  for (const json& st : listing["studies"]) uids.insert(st["studyInstanceUid"].get<std::string>());
  EXPECT_EQ(uids, (std::set<std::string>{today.study_uid, prior.study_uid})) << listed.body;
  // Township B's patient TA-5 had 50 more examinations, all received after A's patient's and
  // all shared with A: the list is still A's patient's two, not a page of B's patient's.
  std::vector<fs::path> newer;
  std::vector<std::string> newer_uids;
  for (int i = 0; i < 50; ++i) {
    const auto made = ct("b" + std::to_string(i), "20261205", 1, 16);
    newer.push_back(made.files[0]);
    newer_uids.push_back(made.study_uid);
  }
  ASSERT_EQ(testing::storescu(hub.server, "TB_CT", newer), 0);
  for (const std::string& uid : newer_uids) {
    ASSERT_EQ(hub.server
                  .request(zhou, "POST", "/api/studies/" + uid + "/shares",
                           json{{"institution", "ta"}, {"reason", "consult"}}.dump())
                  .status,
              201);
  }
  auto crowded = as_edge("/api/edge/v1/priors?patientId=TA-5&by=dr-li");
  ASSERT_EQ(crowded.status, 200) << crowded.body;
  uids.clear();
  const json crowded_listing = json::parse(crowded.body);
  for (const json& st : crowded_listing["studies"])
    uids.insert(st["studyInstanceUid"].get<std::string>());
  EXPECT_EQ(uids, (std::set<std::string>{today.study_uid, prior.study_uid})) << crowded.body;
  EXPECT_EQ(edge.stop(), 0);
  EXPECT_EQ(hub.server.stop(), 0);
}

// A township doctor sends an HL7 aECG from the edge's page with the link down: stored,
// measured and drawn at the edge at once, at the hub once the link is back, as STAT.
TEST(EdgeLocal, an_ecg_uploaded_at_the_edge_is_read_there_and_reaches_the_hub) {
  std::ifstream in(fs::path(YILIAN_SHARED_DATA) / "aecg" / "hl7-aecg-example.xml");
  const std::string xml((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_FALSE(xml.empty());
  testing::TempDir dir;
  Hub hub(dir.path());
  ASSERT_TRUE(hub.server.start()) << hub.server.log();
  const std::string doc = hub.server.add_user("dr-li", {"township_doctor"}, "ta");
  const fs::path credential = dir.path() / "edge.token";
  ASSERT_FALSE(hub.issue("ta-edge", "ta", credential).empty());
  LinkSimulator link(hub.server.http_port(), {1u << 20, std::chrono::milliseconds(10)});
  ASSERT_TRUE(link.start());
  auto args = edge_args(link, credential);
  args.insert(args.end(), {"--sync-seconds", "0.2"});
  ServerProcess edge(dir.path() / "edge", args, ServerProcess::Mode::edge);
  ASSERT_TRUE(edge.start()) << edge.log();
  std::string token;
  ASSERT_TRUE(wait_until([&] { return !(token = edge.login("dr-li")).empty(); }));
  link.cut();
  auto post = [&](const std::string& body, const std::string& type) {
    return testing::http_request(
        edge.http_port(), "POST", "/api/ecg?patientId=TA-E9&patientName=Qian%5EYu&sex=F&age=71",
        body, {{"Authorization", "Bearer " + token}, {"Content-Type", type}});
  };
  EXPECT_EQ(post("<AnnotatedECG", "application/xml").status, 400);
  auto r = post(xml, "application/xml");
  ASSERT_EQ(r.status, 201) << r.body;
  const json answer = json::parse(r.body);
  const std::string sop = answer["sopInstanceUid"];
  const std::string study = answer["studyInstanceUid"];
  auto analysis = edge.get(token, "/api/ecg/" + sop);
  ASSERT_EQ(analysis.status, 200) << analysis.body;
  EXPECT_EQ(json::parse(analysis.body)["leadNames"].size(), 12u);
  auto png = edge.get(token, "/api/ecg/" + sop + "/render");
  EXPECT_EQ(png.status, 200);
  EXPECT_EQ(png.body.substr(1, 3), "PNG");
  EXPECT_EQ(edge.get("", "/api/ecg/" + sop).status, 401);
  json queue = json::parse(testing::http_get(edge.http_port(), "/edge/queue").body);
  ASSERT_EQ(queue["studies"].size(), 1u) << queue.dump();
  EXPECT_EQ(queue["studies"][0]["priority"], "stat");
  link.restore();
  ASSERT_TRUE(
      wait_until([&] { return hub.server.get(doc, "/api/studies/" + study).status == 200; }));
  ASSERT_TRUE(wait_until([&] { return stored(dir.path() / "hub").count(sop) > 0; }));
  EXPECT_EQ(stored(dir.path() / "hub").at(sop), stored(dir.path() / "edge").at(sop));
  EXPECT_EQ(edge.stop(), 0);
  EXPECT_EQ(hub.server.stop(), 0);
}

TEST(EdgeLocal, sent_studies_leave_the_edge_after_the_kept_days_and_stay_at_the_hub) {
  testing::TempDir dir;
  Hub hub(dir.path());
  ASSERT_TRUE(hub.server.start()) << hub.server.log();
  const std::string doc = hub.server.add_user("dr-li", {"township_doctor"}, "ta");
  const fs::path credential = dir.path() / "edge.token";
  ASSERT_FALSE(hub.issue("ta-edge", "ta", credential).empty());
  LinkSimulator link(hub.server.http_port(), {1u << 20, std::chrono::milliseconds(10)});
  ASSERT_TRUE(link.start());
  auto args = edge_args(link, credential);
  args.insert(args.end(), {"--keep-days", "0.00003"});  // 2.6 s
  ServerProcess edge(dir.path() / "edge", args, ServerProcess::Mode::edge);
  ASSERT_TRUE(edge.start()) << edge.log();
  testing::CtSeriesSpec spec;
  spec.count = 3;
  spec.rows = spec.columns = 32;
  auto ct = testing::write_ct_series(dir.path() / "ct", spec);
  ASSERT_TRUE(ct.ok());
  ASSERT_EQ(storescu_to(edge.dicom_port(), "CT1", ct->files), 0);
  // Whole at the hub, then gone from the edge: its index, its files, its queue.
  ASSERT_EQ(stored(dir.path() / "edge").size(), 3u);
  ASSERT_TRUE(wait_until([&] { return stored(dir.path() / "edge").empty(); }));
  EXPECT_EQ(sql_value(dir.path() / "edge" / "index.sqlite", "SELECT COUNT(*) FROM studies"), "0");
  EXPECT_EQ(sql_value(dir.path() / "edge" / "index.sqlite", "SELECT COUNT(*) FROM edge_outbox"),
            "0");
  std::size_t files = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir.path() / "edge" / "blobs"))
    files += e.is_regular_file() ? 1 : 0;
  EXPECT_EQ(files, 0u);
  EXPECT_EQ(stored(dir.path() / "hub").size(), 3u);
  auto at_hub = json::parse(hub.server.get(doc, "/api/studies/" + ct->study_uid).body);
  EXPECT_EQ(at_hub.value("numberOfInstances", 0), 3) << at_hub.dump();
  EXPECT_EQ(edge.stop(), 0);
  EXPECT_EQ(hub.server.stop(), 0);
}

TEST(EdgeCredential, only_edge_credentials_reach_the_edge_routes_and_a_revoked_one_is_refused) {
  testing::TempDir dir;
  Hub hub(dir.path());
  ASSERT_TRUE(hub.server.start()) << hub.server.log();
  const std::string token = hub.issue("ta-edge", "ta", dir.path() / "edge.token");
  ASSERT_FALSE(token.empty());
  const auto port = hub.server.http_port();
  auto as_edge = [&](const std::string& method, const std::string& target,
                     const std::string& body = {}, testing::Headers more = {}) {
    more.emplace_back("Authorization", "Bearer " + token);
    return testing::http_request(port, method, target, body, more);
  };
  auto who = as_edge("GET", "/api/edge/v1/whoami");
  ASSERT_EQ(who.status, 200) << who.body;
  EXPECT_EQ(json::parse(who.body)["institution"], "ta");
  // The edge credential is no user session, and a user session is no edge credential.
  EXPECT_EQ(as_edge("GET", "/api/studies").status, 401);
  const std::string doctor = hub.server.add_user("dr-ta", {"township_doctor"}, "ta");
  EXPECT_EQ(hub.server.get(doctor, "/api/edge/v1/whoami").status, 401);
  // The list shows it; a second one with the same name is refused.
  auto list = hub.server.get(hub.server.admin_token(), "/api/admin/edges");
  ASSERT_EQ(list.status, 200);
  EXPECT_NE(list.body.find("\"ta-edge\""), std::string::npos);
  EXPECT_EQ(hub.server
                .request(hub.server.admin_token(), "POST", "/api/admin/edges",
                         json{{"name", "ta-edge"}, {"institution", "ta"}}.dump())
                .status,
            409);
  // Not an administrator: refused.
  EXPECT_EQ(hub.server
                .request(doctor, "POST", "/api/admin/edges",
                         json{{"name", "x"}, {"institution", "ta"}}.dump())
                .status,
            403);
  // Revoked: refused from then on.
  EXPECT_EQ(
      hub.server.request(hub.server.admin_token(), "DELETE", "/api/admin/edges/ta-edge").status,
      200);
  EXPECT_EQ(as_edge("GET", "/api/edge/v1/whoami").status, 401);
  EXPECT_EQ(as_edge("POST", "/api/edge/v1/uploads", "",
                    {{"Tus-Resumable", "1.0.0"}, {"Upload-Length", "10"}})
                .status,
            401);
  EXPECT_EQ(hub.server.stop(), 0);
}

// The hub's tus routes as any tus 1.0 client sees them, on one kept-alive connection: answers
// without a body (HEAD, 204) followed at once by a request with one, many times over.
TEST(EdgeUploads, tus_uploads_resume_at_the_offset_the_hub_holds_on_a_kept_alive_connection) {
  testing::TempDir dir;
  Hub hub(dir.path());
  ASSERT_TRUE(hub.server.start()) << hub.server.log();
  const std::string token = hub.issue("ta-edge", "ta", dir.path() / "edge.token");
  ASSERT_FALSE(token.empty());
  const auto port = hub.server.http_port();
  testing::Headers auth = {{"Authorization", "Bearer " + token}};
  auto with = [&](testing::Headers more) {
    more.insert(more.end(), auth.begin(), auth.end());
    return more;
  };
  constexpr std::size_t kChunk = 4 * 1024, kChunks = 400;
  const std::string meta =
      "content-type " + std::string("bXVsdGlwYXJ0L3JlbGF0ZWQ7IGJvdW5kYXJ5PXg=");
  // Without Tus-Resumable: 412, with the version the hub speaks.
  auto r = testing::http_request(port, "POST", "/api/edge/v1/uploads", "",
                                 with({{"Upload-Length", "10"}}));
  EXPECT_EQ(r.status, 412);
  EXPECT_EQ(r.header("tus-version"), "1.0.0");
  // Not a bundle: 415.
  r = testing::http_request(port, "POST", "/api/edge/v1/uploads", "",
                            with({{"Tus-Resumable", "1.0.0"}, {"Upload-Length", "10"}}));
  EXPECT_EQ(r.status, 415);
  r = testing::http_request(port, "POST", "/api/edge/v1/uploads", "",
                            with({{"Tus-Resumable", "1.0.0"},
                                  {"Upload-Length", std::to_string(kChunk * kChunks)},
                                  {"Upload-Metadata", meta}}));
  ASSERT_EQ(r.status, 201) << r.body;
  const std::string url = r.header("location");
  ASSERT_EQ(url.rfind("/api/edge/v1/uploads/", 0), 0u);
  // Another edge node does not see it.
  const std::string other = hub.issue("tb-edge", "tb", dir.path() / "other.token");
  EXPECT_EQ(
      testing::http_request(port, "HEAD", url, "",
                            {{"Authorization", "Bearer " + other}, {"Tus-Resumable", "1.0.0"}})
          .status,
      404);
  // A wrong offset is refused with the right one; a wrong type with 415.
  const std::string chunk(kChunk, 'x');
  r = testing::http_request(port, "PATCH", url, chunk,
                            with({{"Tus-Resumable", "1.0.0"},
                                  {"Upload-Offset", "5"},
                                  {"Content-Type", "application/offset+octet-stream"}}));
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(r.header("upload-offset"), "0");
  r = testing::http_request(port, "PATCH", url, chunk,
                            with({{"Tus-Resumable", "1.0.0"},
                                  {"Upload-Offset", "0"},
                                  {"Content-Type", "application/octet-stream"}}));
  EXPECT_EQ(r.status, 415);
  // Chunk after chunk on one connection, each after a HEAD (an answer without a body), as a
  // client resuming does: every chunk lands once, at its offset.
  testing::KeptAliveClient conn(port);
  for (std::size_t i = 0; i < kChunks; ++i) {
    auto head = conn.request("HEAD", url, "", with({{"Tus-Resumable", "1.0.0"}}));
    ASSERT_EQ(head.status, 200) << i;
    ASSERT_EQ(head.header("upload-offset"), std::to_string(i * kChunk));
    auto patch = conn.request("PATCH", url, std::string(kChunk, static_cast<char>('a' + i % 26)),
                              with({{"Tus-Resumable", "1.0.0"},
                                    {"Upload-Offset", std::to_string(i * kChunk)},
                                    {"Content-Type", "application/offset+octet-stream"}}));
    ASSERT_EQ(patch.status, 204) << i << " " << patch.body;
    ASSERT_EQ(patch.header("upload-offset"), std::to_string((i + 1) * kChunk));
  }
  // Complete: the body was no bundle, and the hub says so per upload; nothing was stored.
  r = testing::http_request(port, "GET", url, "", with({}));
  ASSERT_EQ(r.status, 200);
  json status = json::parse(r.body);
  EXPECT_EQ(status["state"], "stored");
  EXPECT_EQ(status["offset"], kChunk * kChunks);
  ASSERT_EQ(status["results"].size(), 1u);
  EXPECT_EQ(status["results"][0]["status"], "rejected");

  // tus creation-with-upload: the first chunk with the creation, the rest by PATCH; a body of
  // another type, or past the length, is refused and creates nothing.
  const testing::Headers create = {{"Tus-Resumable", "1.0.0"},
                                   {"Upload-Length", std::to_string(2 * kChunk)},
                                   {"Upload-Metadata", meta},
                                   {"Content-Type", "application/offset+octet-stream"}};
  r = testing::http_request(port, "POST", "/api/edge/v1/uploads", chunk, with(create));
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(r.header("upload-offset"), std::to_string(kChunk));
  const std::string second = r.header("location");
  r = testing::http_request(port, "HEAD", second, "", with({{"Tus-Resumable", "1.0.0"}}));
  EXPECT_EQ(r.header("upload-offset"), std::to_string(kChunk));
  r = testing::http_request(port, "PATCH", second, chunk,
                            with({{"Tus-Resumable", "1.0.0"},
                                  {"Upload-Offset", std::to_string(kChunk)},
                                  {"Content-Type", "application/offset+octet-stream"}}));
  EXPECT_EQ(r.status, 204);
  EXPECT_EQ(r.header("upload-offset"), std::to_string(2 * kChunk));
  const std::string uploads_before =
      sql_value(dir.path() / "hub" / "index.sqlite", "SELECT COUNT(*) FROM edge_uploads");
  auto refused = create;
  refused[3].second = "application/octet-stream";
  EXPECT_EQ(
      testing::http_request(port, "POST", "/api/edge/v1/uploads", chunk, with(refused)).status,
      415);
  refused = create;
  refused[1].second = "10";
  EXPECT_EQ(
      testing::http_request(port, "POST", "/api/edge/v1/uploads", chunk, with(refused)).status,
      400);
  EXPECT_EQ(sql_value(dir.path() / "hub" / "index.sqlite", "SELECT COUNT(*) FROM edge_uploads"),
            uploads_before);
  EXPECT_EQ(hub.server.stop(), 0);
}

// An edge that never comes back for an upload (its creation's answer lost, or the clinic gone)
// must not hold the hub's disk: an unfinished upload untouched past its expiry goes, row and
// bytes, and so does an upload file the index never knew, once as old. The edge is told when
// each upload expires (tus expiration), and one it resumes after that is not found, so it
// sends the bundle again whole.
TEST(EdgeUploads, an_unfinished_upload_untouched_past_its_expiry_is_dropped_with_its_bytes) {
  testing::TempDir dir;
  Hub hub(dir.path(), "[edge]\nupload_expiry_hours = 24\n");
  ASSERT_TRUE(hub.server.start()) << hub.server.log();
  const std::string token = hub.issue("ta-edge", "ta", dir.path() / "edge.token");
  ASSERT_FALSE(token.empty());
  const testing::Headers auth = {{"Authorization", "Bearer " + token}};
  auto call = [&](const std::string& method, const std::string& target,
                  const std::string& body = {}, testing::Headers more = {}) {
    more.insert(more.end(), auth.begin(), auth.end());
    more.emplace_back("Tus-Resumable", "1.0.0");
    return testing::http_request(hub.server.http_port(), method, target, body, more);
  };
  auto options = call("OPTIONS", "/api/edge/v1/uploads");
  EXPECT_NE(options.header("tus-extension").find("expiration"), std::string::npos);
  const std::string chunk(4096, 'x');
  auto create = [&] {
    return call("POST", "/api/edge/v1/uploads", chunk,
                {{"Upload-Length", std::to_string(2 * chunk.size())},
                 {"Upload-Metadata", "content-type bXVsdGlwYXJ0L3JlbGF0ZWQ7IGJvdW5kYXJ5PXg="},
                 {"Content-Type", "application/offset+octet-stream"}});
  };
  auto left = create();
  ASSERT_EQ(left.status, 201) << left.body;
  const std::string expires = left.header("upload-expires");
  {
    // An HTTP date (the test client reads answers in lower case) a day from now.
    std::tm tm{};
    const char* end = strptime(expires.c_str(), "%a, %d %b %Y %H:%M:%S gmt", &tm);
    ASSERT_TRUE(end && *end == '\0') << expires;
    const auto in =
        std::chrono::system_clock::from_time_t(timegm(&tm)) - std::chrono::system_clock::now();
    EXPECT_GT(in, std::chrono::hours(23)) << expires;
    EXPECT_LT(in, std::chrono::hours(25)) << expires;
  }
  auto kept = create();
  ASSERT_EQ(kept.status, 201) << kept.body;
  const std::string left_url = left.header("location"), kept_url = kept.header("location");
  const std::string left_id = left_url.substr(left_url.rfind('/') + 1);
  const std::string kept_id = kept_url.substr(kept_url.rfind('/') + 1);
  // Where the hub keeps the bytes of uploads being received.
  fs::path uploads;
  for (const auto& e : fs::recursive_directory_iterator(dir.path() / "hub"))
    if (e.path().filename() == left_id + ".part") uploads = e.path().parent_path();
  ASSERT_FALSE(uploads.empty());
  EXPECT_EQ(hub.server.stop(), 0);

  // A day and more later: the one upload untouched since the day before, and two upload files
  // no row names, one as old, one just made (a creation under way keeps its file).
  const fs::path index = dir.path() / "hub" / "index.sqlite";
  sql_value(index, "UPDATE edge_uploads SET updated_at = '2020-01-01T00:00:00.000Z' WHERE id = '" +
                       left_id + "'");
  std::ofstream(uploads / "0123456789abcdef0123456789abcdef.part") << "stray";
  fs::last_write_time(uploads / "0123456789abcdef0123456789abcdef.part",
                      fs::file_time_type::clock::now() - std::chrono::hours(48));
  std::ofstream(uploads / "fedcba9876543210fedcba9876543210.part") << "young";
  ASSERT_TRUE(hub.server.start()) << hub.server.log();
  EXPECT_EQ(call("HEAD", left_url).status, 404);
  EXPECT_FALSE(fs::exists(uploads / (left_id + ".part")));
  EXPECT_EQ(sql_value(index, "SELECT COUNT(*) FROM edge_uploads WHERE id = '" + left_id + "'"),
            "0");
  EXPECT_FALSE(fs::exists(uploads / "0123456789abcdef0123456789abcdef.part"));
  EXPECT_TRUE(fs::exists(uploads / "fedcba9876543210fedcba9876543210.part"));
  // The consortium office sees what the edge node has under way here; nobody else does.
  auto transfers = [&] {
    auto r = hub.server.get(hub.server.admin_token(), "/api/admin/edge-transfers");
    EXPECT_EQ(r.status, 200) << r.body;
    for (const json& e : json::parse(r.body, nullptr, false).value("edges", json::array()))
      if (e.value("name", "") == "ta-edge") return e;
    return json();
  };
  json ta = transfers();
  EXPECT_EQ(ta.value("institution", ""), "ta");
  EXPECT_EQ(ta.value("receiving", -1), 1);
  EXPECT_EQ(ta.value("receivingBytes", -1), static_cast<int>(chunk.size()));
  EXPECT_EQ(ta.value("receivingLength", -1), static_cast<int>(2 * chunk.size()));
  EXPECT_TRUE(ta["lastTransferAt"].is_string()) << ta.dump();
  const std::string doctor = hub.server.add_user("dr-ta", {"township_doctor"}, "ta");
  EXPECT_EQ(hub.server.get(doctor, "/api/admin/edge-transfers").status, 403);
  // The other one resumes where it was and completes.
  auto head = call("HEAD", kept_url);
  ASSERT_EQ(head.status, 200);
  EXPECT_EQ(head.header("upload-offset"), std::to_string(chunk.size()));
  auto patch = call("PATCH", kept_url, chunk,
                    {{"Upload-Offset", std::to_string(chunk.size())},
                     {"Content-Type", "application/offset+octet-stream"}});
  EXPECT_EQ(patch.status, 204) << patch.body;
  EXPECT_EQ(patch.header("upload-offset"), std::to_string(2 * chunk.size()));
  EXPECT_FALSE(fs::exists(uploads / (kept_id + ".part")));
  ta = transfers();
  EXPECT_EQ(ta.value("receiving", -1), 0);
  EXPECT_EQ(ta.value("storedLastDay", -1), 1);
  EXPECT_EQ(hub.server.stop(), 0);
}

TEST(EdgeCredential, an_edge_cannot_add_to_another_institutions_study) {
  testing::TempDir dir;
  Hub hub(dir.path());
  ASSERT_TRUE(hub.server.start()) << hub.server.log();
  // Township B's study, stored by B's own CT.
  testing::CtSeriesSpec spec;
  spec.count = 1;
  spec.rows = spec.columns = 64;
  auto b_study = testing::write_ct_series(dir.path() / "b", spec);
  ASSERT_TRUE(b_study.ok());
  ASSERT_EQ(testing::storescu(hub.server, "TB_CT", b_study->files), 0);
  // Township A's edge sends one more instance of that study.
  spec.study_uid = b_study->study_uid;
  auto more = testing::write_ct_series(dir.path() / "more", spec);
  ASSERT_TRUE(more.ok());
  const fs::path credential = dir.path() / "edge.token";
  ASSERT_FALSE(hub.issue("ta-edge", "ta", credential).empty());
  LinkSimulator link(hub.server.http_port(), {});
  ASSERT_TRUE(link.start());
  ServerProcess edge(dir.path() / "edge", edge_args(link, credential), ServerProcess::Mode::edge);
  ASSERT_TRUE(edge.start()) << edge.log();
  ASSERT_EQ(storescu_to(edge.dicom_port(), "CT1", more->files), 0);
  ASSERT_TRUE(wait_until([&] { return edge_status(edge).value("failed", 0) == 1; }))
      << edge_status(edge).dump();
  // Nothing of it is at the hub, and the edge says why.
  EXPECT_EQ(stored(dir.path() / "hub").count(more->sop_instance_uids[0]), 0u);
  EXPECT_NE(sql_value(dir.path() / "edge" / "index.sqlite", "SELECT outcome FROM edge_outbox")
                .find("refused"),
            std::string::npos);
  // The edge's page lists the study as failed, with the instance and the hub's reason.
  auto q = testing::http_get(edge.http_port(), "/edge/queue");
  ASSERT_EQ(q.status, 200);
  const json studies = json::parse(q.body)["studies"];
  ASSERT_EQ(studies.size(), 1u) << q.body;
  EXPECT_EQ(studies[0]["study"], b_study->study_uid);
  EXPECT_EQ(studies[0]["state"], "failed");
  EXPECT_EQ(studies[0]["failed"], 1);
  ASSERT_EQ(studies[0]["failures"].size(), 1u);
  const std::string failure = studies[0]["failures"][0];
  EXPECT_EQ(failure.rfind(more->sop_instance_uids[0] + ": refused", 0), 0u) << failure;
  EXPECT_EQ(edge.stop(), 0);
  EXPECT_EQ(hub.server.stop(), 0);
}

}  // namespace
}  // namespace yilian
