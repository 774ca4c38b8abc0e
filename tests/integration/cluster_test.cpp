// Two hub nodes on one PostgreSQL database and one shared blob directory, each the real
// `yilian serve` with a data directory of its own, driven as a load balancer would spread
// clients over them: a study sent to one node is found, rendered and claimed through the
// other; claims from readers on both nodes never collide; consult rooms, notifications and a
// STEMI alert reach users on the other node; a node killed with SIGKILL loses nothing it
// acknowledged, its neighbour takes over the periodic work, and its recovery removes nothing
// of the neighbour's.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>
#include <tuple>

#include "consortium.h"
#include "dicom_client.h"
#include "postgres.h"
#include "server_process.h"
#include "synthetic.h"
#include "synthetic_ecg.h"
#include "test_util.h"
#include "ws_client.h"
#include "yilian/ecg/dicom_waveform.h"

namespace yilian {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using nlohmann::json;
using testing::ServerProcess;
using testing::WsClient;

using testing::kHeadCtQueue;

json parsed(const testing::HttpResult& r) { return json::parse(r.body, nullptr, false); }
json parsed(const std::optional<std::string>& m) {
  return m ? json::parse(*m, nullptr, false) : json();
}

class ClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    testing::PostgresServer* pg = testing::shared_postgres(&why);
    ASSERT_NE(pg, nullptr) << why;
    url_ = pg->fresh_database();
    ASSERT_FALSE(url_.empty());
    const fs::path cfg = testing::write_consortium_config(dir_.path(), kHeadCtQueue);
    for (const char* name : {"a", "b"}) {
      nodes_.push_back(std::make_unique<ServerProcess>(
          dir_.path() / name, std::vector<std::string>{"--config", cfg.string(), "--database", url_,
                                                       "--blobs", shared().string()}));
      ASSERT_TRUE(nodes_.back()->start()) << nodes_.back()->log();
    }
    for (auto [user, role, inst] :
         {std::tuple{"rad1", "radiologist", "lead"}, std::tuple{"rad2", "radiologist", "lead"},
          std::tuple{"doctor", "township_doctor", "ta"},
          std::tuple{"cardio", "cardiologist", "lead"}}) {
      tokens_[user] = a().add_user(user, {role}, inst);
      ASSERT_FALSE(tokens_[user].empty()) << user << a().log();
    }
  }
  void TearDown() override {
    for (auto& n : nodes_) {
      if (n) n->stop();
    }
  }

  ServerProcess& a() { return *nodes_[0]; }
  ServerProcess& b() { return *nodes_[1]; }
  fs::path shared() const { return dir_.path() / "shared-blobs"; }

  // Head CTs, one file per study, under `dir`.
  std::vector<testing::WrittenSeries> head_cts(const std::string& dir, int n) {
    std::vector<testing::WrittenSeries> out;
    for (int i = 0; i < n; ++i) {
      testing::CtSeriesSpec spec;
      spec.count = 1;
      spec.rows = spec.columns = 16;
      auto s = testing::write_ct_series(dir_.path() / (dir + std::to_string(i)), spec);
      EXPECT_TRUE(s.ok());
      if (!s.ok()) return out;
      std::string log;
      EXPECT_EQ(testing::run_command(
                    "dcmodify -nb -i '(0018,0015)=HEAD' '" + s->files[0].string() + "'", &log),
                0)
          << log;
      out.push_back(*s);
    }
    return out;
  }

  // A consult requested by the township doctor through node A; its id, 0 when refused.
  std::int64_t requested_consult() {
    auto created = a().request(tokens_["doctor"], "POST", "/api/consults",
                               json{{"patientId", "TA-001"},
                                    {"patientName", "Wang^Li"},
                                    {"question", "Chest pain for 2 h, ST changes?"},
                                    {"urgency", "emergency"},
                                    {"specialty", "cardiology"}}
                                   .dump());
    EXPECT_EQ(created.status, 201) << created.body;
    if (created.status != 201) return 0;
    return parsed(created)["id"].get<std::int64_t>();
  }

  std::unique_ptr<WsClient> connect(ServerProcess& node, const std::string& user) {
    auto c = std::make_unique<WsClient>(node.http_port(), "Bearer " + tokens_[user]);
    EXPECT_TRUE(c->wait_connected()) << node.log();
    EXPECT_TRUE(c->next_of("welcome").has_value()) << user;
    return c;
  }

  testing::WrittenSeries ct_series(const std::string& dir, int count, int size) {
    testing::CtSeriesSpec spec;
    spec.count = count;
    spec.rows = spec.columns = size;
    auto s = testing::write_ct_series(dir_.path() / dir, spec);
    EXPECT_TRUE(s.ok());
    return s.ok() ? *s : testing::WrittenSeries{};
  }

  // What one sender got acknowledged: (study, series, SOP instance).
  struct Ingest {
    std::mutex mu;
    std::vector<std::tuple<std::string, std::string, std::string>> acked;  // guarded by mu
    std::atomic<int> attempts{0};
    std::size_t count() {
      std::lock_guard lock(mu);
      return acked.size();
    }
  };
  // Each file of `s` to `node` on an association of its own, until the node is gone.
  static void send_each(ServerProcess& node, const testing::WrittenSeries& s, Ingest& into) {
    for (std::size_t i = 0; i < s.files.size(); ++i) {
      testing::StoreRequest req;
      req.file = s.files[i];
      req.calling_ae = "TA_CT";
      auto r = testing::send_file(node.dicom_port(), req);
      ++into.attempts;
      if (!r.associated) return;
      if (r.status != 0) continue;
      std::lock_guard lock(into.mu);
      into.acked.emplace_back(s.study_uid, s.series_uid, s.sop_instance_uids[i]);
    }
  }
  // How many of `instances` `node` serves over WADO-RS.
  std::size_t retrievable(
      ServerProcess& node,
      const std::vector<std::tuple<std::string, std::string, std::string>>& instances) {
    std::size_t ok = 0;
    for (const auto& [study, series, sop] : instances) {
      auto r = node.get(tokens_["rad1"],
                        "/dicom-web/studies/" + study + "/series/" + series + "/instances/" + sop);
      if (r.status == 200) ++ok;
    }
    return ok;
  }

  // Polls (bounded: 600 x 50 ms) until `f` holds.
  template <typename F>
  bool eventually(F&& f) {
    for (int i = 0; i < 600; ++i) {
      if (f()) return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }

  testing::TempDir dir_;
  std::string url_;
  std::vector<std::unique_ptr<ServerProcess>> nodes_;
  std::map<std::string, std::string> tokens_;
};

TEST_F(ClusterTest, each_node_sees_its_peer_and_exactly_one_runs_the_periodic_work) {
  json ha, hb;
  ASSERT_TRUE(eventually([&] {
    ha = parsed(testing::http_get(a().http_port(), "/healthz"));
    hb = parsed(testing::http_get(b().http_port(), "/healthz"));
    return ha["peers"].size() == 1 && hb["peers"].size() == 1;
  })) << ha.dump()
      << hb.dump();
  EXPECT_EQ(ha["database"]["backend"], "postgresql");
  EXPECT_NE(ha["node"]["id"], hb["node"]["id"]);
  EXPECT_EQ(ha["peers"][0]["id"], hb["node"]["id"]);
  EXPECT_EQ(hb["peers"][0]["id"], ha["node"]["id"]);
  EXPECT_NE(ha["node"]["leader"].get<bool>(), hb["node"]["leader"].get<bool>());
}

TEST_F(ClusterTest, a_study_sent_to_one_node_is_found_rendered_and_reported_through_the_other) {
  auto ct = head_cts("ct", 1);
  ASSERT_EQ(ct.size(), 1u);
  ASSERT_EQ(testing::storescu(a(), "TA_CT", ct[0].files), 0) << a().log();
  const std::string uid = ct[0].study_uid;
  // Found through B.
  auto studies = parsed(b().get(tokens_["rad2"], "/api/studies?limit=10"));
  ASSERT_EQ(studies["total"], 1) << studies.dump();
  EXPECT_EQ(studies["studies"][0]["studyInstanceUid"], uid);
  // Rendered through B from the file A wrote to the shared store.
  const std::string instance = "/dicom-web/studies/" + uid + "/series/" + ct[0].series_uid +
                               "/instances/" + ct[0].sop_instance_uids[0];
  auto rendered = b().get(tokens_["rad2"], instance + "/rendered");
  EXPECT_EQ(rendered.status, 200) << rendered.body;
  EXPECT_FALSE(rendered.body.empty());
  // Its task, routed by A, is claimed and reported through B.
  json task;
  ASSERT_TRUE(eventually([&] {
    auto page = parsed(b().get(tokens_["rad2"], "/api/worklist"));
    if (page.contains("tasks") && !page["tasks"].empty()) task = page["tasks"][0];
    return !task.is_null();
  })) << a().log();
  auto claimed = parsed(b().request(tokens_["rad2"], "POST", "/api/worklist/claim-next"));
  ASSERT_TRUE(claimed["task"].is_object()) << claimed.dump();
  const std::string base = "/api/tasks/" + std::to_string(claimed["task"]["id"].get<int>());
  auto report = b().request(tokens_["rad2"], "POST", base + "/reports",
                            R"({"kind":"final","findings":"No bleed.","impression":"Normal."})");
  EXPECT_EQ(report.status, 201) << report.body;
  // A sees the final report.
  EXPECT_EQ(parsed(a().get(tokens_["rad1"], base))["status"], "final");
}

// The recognition table is the consortium's: an admin's edit through one node is in force on
// the other at once (edits live in the shared database), and restoring drops it on both.
TEST_F(ClusterTest, a_recognition_edit_through_one_node_is_in_force_on_the_other) {
  const std::string admin = a().admin_token();
  auto put = a().request(
      admin, "PUT", "/api/admin/lab/recognition/rules",
      json{{"code", "2345-7"}, {"qualifications", {"iso15189"}}, {"validDays", 3}}.dump());
  ASSERT_EQ(put.status, 200) << put.body;
  auto q = a().request(admin, "PUT", "/api/admin/lab/qualifications",
                       json{{"holder", "县中心实验室"}, {"qualification", "iso15189"}}.dump());
  ASSERT_EQ(q.status, 200) << q.body;
  json t = parsed(b().get(b().admin_token(), "/api/admin/lab/recognition"));
  ASSERT_EQ(t["rules"].size(), 1u) << t.dump();
  EXPECT_EQ(t["rules"][0]["code"], "2345-7");
  EXPECT_EQ(t["rules"][0]["source"], "added");
  EXPECT_EQ(t["rules"][0]["validDays"], 3);
  ASSERT_EQ(t["qualifications"].size(), 1u);
  EXPECT_EQ(t["qualifications"][0]["holder"], "县中心实验室");
  // No results yet: no tests named, and the rule has no name to show.
  EXPECT_EQ(t["tests"], json::array());
  EXPECT_FALSE(t["rules"][0].contains("name"));
  auto restored = b().request(b().admin_token(), "POST", "/api/admin/lab/recognition/rules/restore",
                              json{{"code", "2345-7"}}.dump());
  ASSERT_EQ(restored.status, 200) << restored.body;
  EXPECT_TRUE(parsed(a().get(admin, "/api/admin/lab/recognition"))["rules"].empty());
}

TEST_F(ClusterTest, readers_on_both_nodes_never_claim_the_same_task) {
  constexpr int kStudies = 10;
  auto cts = head_cts("claim", kStudies);
  ASSERT_EQ(cts.size(), static_cast<std::size_t>(kStudies));
  for (int i = 0; i < kStudies; ++i) {
    ASSERT_EQ(testing::storescu(i % 2 ? b() : a(), "TA_CT", cts[i].files), 0);
  }
  ASSERT_TRUE(eventually([&] {
    return parsed(a().get(tokens_["rad1"], "/api/worklist?limit=100"))["total"] == kStudies;
  }));
  // Both readers claim as fast as they can, one through each node, until nothing is left.
  std::mutex mu;
  std::map<std::string, std::vector<std::int64_t>> held;
  auto reader = [&](ServerProcess& node, const std::string& user) {
    for (int i = 0; i < 4 * kStudies; ++i) {
      json r = parsed(node.request(tokens_[user], "POST", "/api/worklist/claim-next"));
      if (!r.contains("task") || r["task"].is_null()) return;
      std::lock_guard lock(mu);
      held[user].push_back(r["task"]["id"]);
    }
  };
  std::thread t1(reader, std::ref(a()), "rad1");
  std::thread t2(reader, std::ref(b()), "rad2");
  t1.join();
  t2.join();
  std::set<std::int64_t> all;
  for (const auto& [user, ids] : held) {
    for (std::int64_t id : ids) EXPECT_TRUE(all.insert(id).second) << "task " << id << " twice";
  }
  EXPECT_EQ(all.size(), static_cast<std::size_t>(kStudies));
  // The store agrees: each task is held by the reader who got it.
  for (const auto& [user, ids] : held) {
    for (std::int64_t id : ids) {
      EXPECT_EQ(parsed(b().get(tokens_[user], "/api/tasks/" + std::to_string(id)))["claimedBy"],
                user);
    }
  }
}

TEST_F(ClusterTest, a_consult_with_one_participant_on_each_node_chats_exactly_once) {
  auto cardio = connect(b(), "cardio");
  const std::int64_t id = requested_consult();
  ASSERT_GT(id, 0);
  // The request, made on A, is a notification for the cardiologist on B.
  json n = parsed(cardio->next_of("notification", 10s));
  ASSERT_EQ(n["kind"], "consult_request") << n.dump();
  EXPECT_EQ(n["payload"]["consult"], id);
  ASSERT_EQ(
      b().request(tokens_["cardio"], "POST", "/api/consults/" + std::to_string(id) + "/accept")
          .status,
      200);

  auto doctor = connect(a(), "doctor");
  for (WsClient* c : {doctor.get(), cardio.get()}) {
    c->send(json{{"type", "join"}, {"consult", id}, {"afterSeq", 0}}.dump());
    ASSERT_FALSE(parsed(c->next_of("joined")).is_null());
  }
  auto chat = [&](WsClient& from, const std::string& client_id, const std::string& text) {
    from.send(
        json{{"type", "chat"}, {"consult", id}, {"clientId", client_id}, {"text", text}}.dump());
  };
  chat(*doctor, "d1", "ST elevation in V2-V4?");
  json got = parsed(cardio->next_of("chat"));
  EXPECT_EQ(got["seq"], 1);
  EXPECT_EQ(got["text"], "ST elevation in V2-V4?");
  EXPECT_EQ(parsed(doctor->next_of("chat"))["seq"], 1);  // its own, confirmed
  chat(*cardio, "c1", "Yes: activate the cath lab.");
  EXPECT_EQ(parsed(doctor->next_of("chat"))["seq"], 2);
  EXPECT_EQ(parsed(cardio->next_of("chat"))["seq"], 2);

  // The doctor's link drops; it reconnects through the other node and catches up once.
  doctor->close();
  chat(*cardio, "c2", "Aspirin 300 mg now.");
  EXPECT_EQ(parsed(cardio->next_of("chat"))["seq"], 3);
  auto back = connect(b(), "doctor");
  back->send(json{{"type", "join"}, {"consult", id}, {"afterSeq", 2}}.dump());
  ASSERT_FALSE(parsed(back->next_of("joined")).is_null());
  json replayed = parsed(back->next_of("chat"));
  EXPECT_EQ(replayed["seq"], 3);
  EXPECT_EQ(replayed["text"], "Aspirin 300 mg now.");
  // A resent message (same client id) is stored once; the room gets no new one.
  chat(*back, "d1", "ST elevation in V2-V4?");
  chat(*back, "d2", "Given.");
  json next = parsed(cardio->next_of("chat"));
  EXPECT_EQ(next["seq"], 4);
  EXPECT_EQ(next["text"], "Given.");
  auto history = parsed(
      a().get(tokens_["doctor"], "/api/consults/" + std::to_string(id) + "/messages?limit=100"));
  ASSERT_TRUE(history["messages"].is_array()) << history.dump();
  ASSERT_EQ(history["messages"].size(), 4u);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(history["messages"][i]["seq"], i + 1);

  // The shared view: the cardiologist on B drives; a connection of the doctor's on A follows
  // and may not steer.
  auto doctor_a = connect(a(), "doctor");
  doctor_a->send(json{{"type", "join"}, {"consult", id}, {"afterSeq", 4}}.dump());
  ASSERT_FALSE(parsed(doctor_a->next_of("joined")).is_null());
  const json state = {{"frame", 3}, {"zoom", 2.0}};
  cardio->send(json{{"type", "view"}, {"consult", id}, {"state", state}}.dump());
  json seen = parsed(doctor_a->next_of("view"));
  EXPECT_EQ(seen["driver"], "cardio");
  EXPECT_EQ(seen["state"], state);
  // Node A knows the driver too: the doctor's view there is refused.
  doctor_a->send(json{{"type", "view"}, {"consult", id}, {"state", {{"frame", 9}}}}.dump());
  EXPECT_EQ(parsed(doctor_a->next_of("error"))["code"], "not_driver");
}

TEST_F(ClusterTest, presence_and_call_signals_follow_a_participant_on_the_other_node) {
  const std::int64_t id = requested_consult();
  ASSERT_GT(id, 0);
  ASSERT_EQ(
      b().request(tokens_["cardio"], "POST", "/api/consults/" + std::to_string(id) + "/accept")
          .status,
      200);
  auto join = [&](WsClient& c) {
    c.send(json{{"type", "join"}, {"consult", id}, {"afterSeq", 0}}.dump());
    return parsed(c.next_of("joined"));
  };
  auto presence_of = [](const json& joined, const std::string& user) {
    for (const json& p : joined["participants"])
      if (p["user"] == user) return p["presence"].get<std::string>();
    return std::string("absent");
  };
  auto status_seen = [&](WsClient& c, const std::string& user) {  // the next about `user`
    for (int i = 0; i < 10; ++i) {
      json p = parsed(c.next_of("presence"));
      if (!p.is_object()) break;
      if (p["user"] == user) return p.value("status", std::string());
    }
    return std::string("none");
  };
  auto cardio = connect(b(), "cardio");
  ASSERT_EQ(presence_of(join(*cardio), "cardio"), "online");
  // The doctor joins on A and finds the cardiologist, connected to B, online; B's room hears
  // the doctor arrive.
  auto doctor = connect(a(), "doctor");
  json joined;
  for (int i = 0; i < 100; ++i) {  // until A has heard B's presence (relayed)
    joined = join(*doctor);
    if (presence_of(joined, "cardio") == "online") break;
    doctor->send(json{{"type", "leave"}, {"consult", id}}.dump());
    ASSERT_TRUE(doctor->next_of("left").has_value());
    while (cardio->next_of("presence", 1s)) {
    }
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(presence_of(joined, "cardio"), "online") << joined.dump();
  EXPECT_EQ(status_seen(*cardio, "doctor"), "online");
  // Away on A, then gone: B follows.
  doctor->send(json{{"type", "presence"}, {"status", "away"}}.dump());
  EXPECT_EQ(status_seen(*cardio, "doctor"), "away");
  doctor->send(json{{"type", "leave"}, {"consult", id}}.dump());
  EXPECT_EQ(status_seen(*cardio, "doctor"), "offline");
  // A call to a participant connected nowhere is answered at once...
  auto call_doctor = [&] {
    cardio->send(json{{"type", "rtc"},
                      {"consult", id},
                      {"to", "doctor"},
                      {"signal", "offer"},
                      {"data", {{"sdp", "v=0"}}}}
                     .dump());
  };
  call_doctor();
  EXPECT_EQ(parsed(cardio->next_of("error"))["code"], "peer_offline");
  // ...and reaches them on the other node once they are back.
  ASSERT_EQ(presence_of(join(*doctor), "cardio"), "online");
  EXPECT_EQ(status_seen(*cardio, "doctor"), "away");  // this connection is still away
  call_doctor();
  json signal = parsed(doctor->next_of("rtc"));
  EXPECT_EQ(signal["from"], "cardio");
  EXPECT_EQ(signal["signal"], "offer");
}

TEST_F(ClusterTest, a_stemi_ecg_sent_to_one_node_alerts_a_cardiologist_on_the_other) {
  auto cardio = connect(b(), "cardio");
  ASSERT_FALSE(
      testing::write_stemi_ecg(dir_.path() / "stemi.dcm", "TA-STEMI", "Zhao^Gang").empty());
  ASSERT_EQ(testing::storescu(a(), "TA_ECG", {dir_.path() / "stemi.dcm"}), 0);
  json alert;
  for (int i = 0; i < 10 && alert.is_null(); ++i) {
    json n = parsed(cardio->next_of("notification", 10s));
    if (n.is_null()) break;
    if (n["kind"] == "emergency") alert = n;
  }
  ASSERT_FALSE(alert.is_null()) << a().log() << b().log();
  EXPECT_EQ(alert["payload"]["source"], "ecg_stemi");
  EXPECT_EQ(alert["payload"]["patient"]["id"], "TA-STEMI");
}

// Ingest through both nodes; A dies with SIGKILL in the middle. Everything either node
// acknowledged is retrievable through B; B takes the periodic work over; A restarts, recovers
// and removes none of B's files.
TEST_F(ClusterTest, a_node_killed_during_ingest_loses_nothing_and_its_recovery_spares_the_other) {
  auto sa = ct_series("to-a", 40, 32);
  auto sb = ct_series("to-b", 40, 32);
  Ingest to_a, to_b;
  std::thread ta([&] { send_each(a(), sa, to_a); });
  std::thread tb([&] { send_each(b(), sb, to_b); });
  // Bounded: A is killed after 10 acknowledged instances, or when it has had all of them.
  for (int i = 0; i < 1200 && to_a.count() < 10; ++i) std::this_thread::sleep_for(10ms);
  a().kill();
  ta.join();
  tb.join();
  ASSERT_GE(to_a.count() + to_b.count(), 10u);
  EXPECT_EQ(retrievable(b(), to_a.acked), to_a.acked.size());
  EXPECT_EQ(retrievable(b(), to_b.acked), to_b.acked.size());
  // B runs the periodic work once A's lease has run out.
  json hb;
  EXPECT_TRUE(eventually([&] {
    hb = parsed(testing::http_get(b().http_port(), "/healthz"));
    return hb["node"]["leader"] == true;
  })) << hb.dump();

  ASSERT_TRUE(a().start()) << a().log();
  EXPECT_NE(a().log().find("recovery:"), std::string::npos);
  EXPECT_EQ(retrievable(b(), to_b.acked), to_b.acked.size());
  EXPECT_EQ(retrievable(a(), to_a.acked), to_a.acked.size());
}

// PostgreSQL restarts while both nodes ingest: the stores in flight fail with a status (not a
// hang), the nodes reconnect by themselves, and everything acknowledged is there afterwards.
TEST_F(ClusterTest, a_postgresql_restart_during_ingest_loses_nothing_acknowledged) {
  auto sa = ct_series("pa", 30, 16);
  auto sb = ct_series("pb", 30, 16);
  Ingest to_a, to_b;
  std::thread ta([&] { send_each(a(), sa, to_a); });
  std::thread tb([&] { send_each(b(), sb, to_b); });
  for (int i = 0; i < 1200 && to_a.attempts + to_b.attempts < 10; ++i) {
    std::this_thread::sleep_for(10ms);
  }
  std::string why;
  ASSERT_TRUE(testing::shared_postgres(&why)->restart(&why)) << why;
  ta.join();
  tb.join();
  // Both nodes answer again, and store again.
  for (ServerProcess* n : {&a(), &b()}) {
    EXPECT_TRUE(eventually([&] {
      return testing::http_get(n->http_port(), "/healthz").status == 200;
    })) << n->log();
  }
  auto after = ct_series("after", 1, 16);
  EXPECT_EQ(testing::storescu(b(), "TA_CT", after.files), 0) << b().log();
  EXPECT_GE(to_a.count() + to_b.count(), 10u);
  EXPECT_EQ(retrievable(b(), to_a.acked), to_a.acked.size());
  EXPECT_EQ(retrievable(a(), to_b.acked), to_b.acked.size());
}

// An install that outgrew one machine: the embedded hub's index, accounts, queue and audit chain
// are copied to PostgreSQL with `yilian db copy`; the same data directory then serves from
// PostgreSQL, and a second node joins it.
TEST(DbCopy, an_embedded_install_moves_to_postgresql_and_a_second_node_joins_it) {
  testing::TempDir dir;
  std::string why;
  testing::PostgresServer* pg = testing::shared_postgres(&why);
  ASSERT_NE(pg, nullptr) << why;
  const std::string url = pg->fresh_database();
  ASSERT_FALSE(url.empty());
  const fs::path cfg = testing::write_consortium_config(dir.path(), kHeadCtQueue);
  const fs::path data = dir.path() / "hub";
  std::string rad, study_uid;
  std::int64_t task_id = 0;
  {
    ServerProcess embedded(data, {"--config", cfg.string()});
    ASSERT_TRUE(embedded.start()) << embedded.log();
    rad = embedded.add_user("rad1", {"radiologist"}, "lead");
    ASSERT_FALSE(rad.empty());
    testing::CtSeriesSpec spec;
    spec.count = 3;
    spec.rows = spec.columns = 16;
    auto ct = testing::write_ct_series(dir.path() / "ct", spec);
    ASSERT_TRUE(ct.ok());
    for (const fs::path& f : ct->files) {
      std::string log;
      ASSERT_EQ(
          testing::run_command("dcmodify -nb -i '(0018,0015)=HEAD' '" + f.string() + "'", &log), 0);
    }
    ASSERT_EQ(testing::storescu(embedded, "TA_CT", ct->files), 0);
    study_uid = ct->study_uid;
    json task;
    for (int i = 0; i < 200 && task.is_null(); ++i) {
      auto page = parsed(embedded.get(rad, "/api/worklist"));
      if (page.contains("tasks") && !page["tasks"].empty()) task = page["tasks"][0];
      if (task.is_null()) std::this_thread::sleep_for(50ms);
    }
    ASSERT_FALSE(task.is_null()) << embedded.log();
    task_id = task["id"];
    ASSERT_TRUE(
        parsed(embedded.request(rad, "POST", "/api/worklist/claim-next"))["task"].is_object());
    ASSERT_EQ(embedded.stop(), 0);
  }
  std::string out;
  ASSERT_EQ(testing::run_command(testing::yilian_binary() + " db copy --from '" + data.string() +
                                     "' --to '" + url + "'",
                                 &out),
            0)
      << out;
  EXPECT_NE(out.find("audit trail intact"), std::string::npos) << out;
  EXPECT_NE(out.find("instances"), std::string::npos) << out;
  EXPECT_EQ(out.find("MISSING"), std::string::npos) << out;
  // A second copy onto the same database is refused rather than mixed in.
  std::string again;
  EXPECT_NE(testing::run_command(testing::yilian_binary() + " db copy --from '" + data.string() +
                                     "' --to '" + url + "'",
                                 &again),
            0);

  // The same directory now serves from PostgreSQL (it remembers the URL), sharing its blobs.
  ServerProcess first(data, {"--config", cfg.string(), "--blobs", data.string()});
  ASSERT_TRUE(first.start()) << first.log();
  EXPECT_EQ(parsed(testing::http_get(first.http_port(), "/healthz"))["database"]["backend"],
            "postgresql");
  const std::string token = first.login("rad1");
  ASSERT_FALSE(token.empty());
  auto task = parsed(first.get(token, "/api/tasks/" + std::to_string(task_id)));
  EXPECT_EQ(task["claimedBy"], "rad1") << task.dump();
  ServerProcess second(dir.path() / "node-b",
                       {"--config", cfg.string(), "--database", url, "--blobs", data.string()});
  ASSERT_TRUE(second.start()) << second.log();
  auto studies = parsed(second.get(token, "/api/studies?limit=10"));
  ASSERT_EQ(studies["total"], 1) << studies.dump();
  EXPECT_EQ(studies["studies"][0]["studyInstanceUid"], study_uid);
  // New rows continue after the copied ids.
  testing::CtSeriesSpec spec;
  spec.count = 1;
  spec.rows = spec.columns = 16;
  auto more = testing::write_ct_series(dir.path() / "more", spec);
  ASSERT_TRUE(more.ok());
  EXPECT_EQ(testing::storescu(second, "TA_CT", more->files), 0) << second.log();
  EXPECT_EQ(parsed(first.get(token, "/api/studies?limit=10"))["total"], 2);
  EXPECT_EQ(second.stop(), 0);
  EXPECT_EQ(first.stop(), 0);

  // An import into the directory goes to PostgreSQL too, and leaves the planner statistics
  // fresh for the hub that starts next.
  const std::string database = url.substr(url.rfind('/') + 1);
  auto analysed = [&] {
    std::string at;
    pg->psql(
        "SELECT coalesce(last_analyze::text, '') FROM pg_stat_user_tables "
        "WHERE relname = 'studies'",
        &at, database);
    return at;
  };
  const std::string before = analysed();
  spec.count = 2;
  auto imported = testing::write_ct_series(dir.path() / "import", spec);
  ASSERT_TRUE(imported.ok());
  std::string log;
  ASSERT_EQ(
      testing::run_command(testing::yilian_binary() + " import --data '" + data.string() +
                               "' --institution ta '" + (dir.path() / "import").string() + "'",
                           &log),
      0)
      << log;
  EXPECT_NE(log.find("imported: 2"), std::string::npos) << log;
  std::string after = analysed();
  for (int i = 0; i < 100 && after == before; ++i) {  // statistics reach the view shortly
    std::this_thread::sleep_for(100ms);
    after = analysed();
  }
  EXPECT_NE(after, before);
  std::string count;
  pg->psql("SELECT 'studies=' || count(*) FROM studies", &count, database);
  EXPECT_NE(count.find("studies=3"), std::string::npos) << count;
}

}  // namespace
}  // namespace yilian
