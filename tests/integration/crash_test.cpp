// The crash harness: `yilian serve` killed with SIGKILL at random points while C-STORE, STOW-RS,
// ECG uploads, consult chat, worklist claims and report signing run against it, and once more
// while it starts (during its recovery), every other round. After each restart everything that was
// acknowledged is there exactly once and intact, every task is either with its reader or back in
// the queue, and at the end `yilian fsck` finds the store consistent and the audit chain verifies.
//
// The points are random but reproducible: the seed is printed, and YILIAN_CRASH_SEED replays
// one. Every wait polls for a state, bounded.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "consortium.h"
#include "dicom_client.h"
#include "server_process.h"
#include "synthetic.h"
#include "test_util.h"
#include "ws_client.h"

namespace yilian {
namespace {

using testing::slurp;

namespace fs = std::filesystem;
using nlohmann::json;
using testing::ServerProcess;

constexpr int kRounds = 6;

// Every CT is routed to the neuro service, read at the lead hospital.
constexpr const char* kQueue = R"(
[limits]
ws_messages_per_second = 0  # the chat worker sends as fast as the hub answers

[queue]
stable_seconds = 0.2
qc_percent = 0

[[queue.routes]]
service = "neuro"
modalities = ["CT"]
)";

json parse(const testing::HttpResult& r) { return json::parse(r.body, nullptr, false); }

// What the hub acknowledged, by kind (guarded by mu).
struct Acknowledged {
  std::mutex mu;
  std::map<std::string, fs::path> instances;  // SOP Instance UID -> the file sent (C-STORE, STOW)
  std::set<std::string> ecgs;                 // SOP Instance UIDs of uploaded ECGs
  std::set<std::string> chats;                // client ids of chat messages answered with a seq
  std::set<std::int64_t> claims;              // tasks the reader was given
  std::set<std::int64_t> finals;              // tasks whose final report was accepted
  std::size_t total() {
    std::lock_guard lock(mu);
    return instances.size() + ecgs.size() + chats.size() + claims.size() + finals.size();
  }
};

class CrashTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* env = std::getenv("YILIAN_CRASH_SEED");
    seed_ = env ? std::strtoull(env, nullptr, 10) : std::random_device{}();
    rng_.seed(seed_);
    std::printf("crash harness seed %llu (YILIAN_CRASH_SEED replays it)\n",
                static_cast<unsigned long long>(seed_));
    const fs::path cfg = testing::write_consortium_config(dir_.path(), kQueue);
    server_ = std::make_unique<ServerProcess>(dir_.path() / "data",
                                              std::vector<std::string>{"--config", cfg.string()});
    ASSERT_TRUE(server_->start()) << server_->log();
    for (auto [user, role, inst] : {std::tuple{"doctor", "township_doctor", "ta"},
                                    std::tuple{"cardio", "cardiologist", "lead"},
                                    std::tuple{"radiologist", "radiologist", "lead"}}) {
      tokens_[user] = server_->add_user(user, {role}, inst);
      ASSERT_FALSE(tokens_[user].empty()) << user << server_->log();
    }
    auto consult = server_->request(tokens_["doctor"], "POST", "/api/consults",
                                    json{{"patientId", "TA-001"},
                                         {"patientName", "Wang^Li"},
                                         {"question", "Chest pain for 2 h"},
                                         {"urgency", "emergency"},
                                         {"specialty", "cardiology"}}
                                        .dump());
    ASSERT_EQ(consult.status, 201) << consult.body;
    consult_ = parse(consult)["id"];
    ASSERT_EQ(server_
                  ->request(tokens_["cardio"], "POST",
                            "/api/consults/" + std::to_string(consult_) + "/accept", "{}")
                  .status,
              200);
    aecg_ = slurp(fs::path(YILIAN_SHARED_DATA) / "aecg" / "hl7-aecg-example.xml");
    ASSERT_FALSE(aecg_.empty());
  }

  // Small CT studies of one slice each, `n` of them, under `dir`.
  std::vector<testing::WrittenSeries> studies(const std::string& dir, int n) {
    std::vector<testing::WrittenSeries> out;
    for (int i = 0; i < n; ++i) {
      testing::CtSeriesSpec spec;
      spec.count = 1;
      spec.rows = spec.columns = 16;
      spec.patient_id = "TA-" + dir + "-" + std::to_string(i);
      auto s = testing::write_ct_series(dir_.path() / "src" / dir / std::to_string(i), spec);
      EXPECT_TRUE(s.ok());
      if (s.ok()) out.push_back(*s);
    }
    return out;
  }

  // Runs every kind of load against the hub until `stop`.
  void load(int round, std::atomic<bool>& stop) {
    std::vector<std::thread> workers;
    const std::uint16_t dicom = server_->dicom_port(), http = server_->http_port();
    auto cts = studies("c" + std::to_string(round), 40);
    auto stows = studies("s" + std::to_string(round), 40);

    workers.emplace_back([&, dicom] {  // C-STORE, one association per study
      for (const auto& s : cts) {
        if (stop) return;
        testing::StoreRequest req;
        req.file = s.files[0];
        req.calling_ae = "TA_CT";
        testing::StoreResult r = testing::send_file(dicom, req);
        if (r.associated && r.status == 0x0000) {
          std::lock_guard lock(ack_.mu);
          ack_.instances[s.sop_instance_uids[0]] = s.files[0];
        }
      }
    });
    workers.emplace_back([&, http] {  // STOW-RS, one instance per request
      const std::string boundary = "crash-boundary";
      for (const auto& s : stows) {
        if (stop) return;
        std::string body = "--" + boundary + "\r\nContent-Type: application/dicom\r\n\r\n" +
                           slurp(s.files[0]) + "\r\n--" + boundary + "--\r\n";
        auto r = testing::http_request(
            http, "POST", "/dicom-web/studies", body,
            {{"Authorization", "Bearer " + tokens_["doctor"]},
             {"Content-Type",
              "multipart/related; type=\"application/dicom\"; boundary=" + boundary}});
        if (r.status == 200) {
          std::lock_guard lock(ack_.mu);
          ack_.instances[s.sop_instance_uids[0]] = s.files[0];
        }
      }
    });
    workers.emplace_back([&, http, round] {  // ECG uploads
      for (int i = 0; i < 40 && !stop; ++i) {
        auto r = testing::http_request(http, "POST",
                                       "/api/ecg?patientId=TA-ECG-" + std::to_string(round) + "-" +
                                           std::to_string(i) + "&patientName=Li%5ELei&sex=M&age=60",
                                       aecg_,
                                       {{"Authorization", "Bearer " + tokens_["doctor"]},
                                        {"Content-Type", "application/xml"}});
        // A kill can cut the answer after its status line: only a whole answer acknowledges.
        const json j = parse(r);
        if (r.status == 201 && j.is_object() && j.contains("sopInstanceUid")) {
          std::lock_guard lock(ack_.mu);
          ack_.ecgs.insert(j["sopInstanceUid"].get<std::string>());
        }
      }
    });
    workers.emplace_back([&, http, round] {  // consult chat: acknowledged by its echo
      testing::WsClient ws(http, "Bearer " + tokens_["doctor"]);
      if (!ws.wait_connected() || !ws.next_of("welcome")) return;
      ws.send(json{{"type", "join"}, {"consult", consult_}, {"afterSeq", 0}}.dump());
      if (!ws.next_of("joined") || !ws.next_of("replayed")) return;
      for (int i = 0; i < 60 && !stop && !ws.closed(); ++i) {
        const std::string id = "r" + std::to_string(round) + "-" + std::to_string(i);
        ws.send(
            json{{"type", "chat"}, {"consult", consult_}, {"clientId", id}, {"text", id}}.dump());
        for (int k = 0; k < 20; ++k) {  // bounded: skips others' messages
          auto m = ws.next_of("chat", std::chrono::seconds(2));
          if (!m) break;
          json j = json::parse(*m, nullptr, false);
          if (j.is_object() && j.value("clientId", "") == id && j.contains("seq")) {
            std::lock_guard lock(ack_.mu);
            ack_.chats.insert(id);
            break;
          }
        }
      }
    });
    workers.emplace_back([&] {  // the radiologist claims and signs
      for (int i = 0; i < 400 && !stop; ++i) {
        auto r = server_->request(tokens_["radiologist"], "POST", "/api/worklist/claim-next");
        json j = parse(r);
        if (r.status != 200 || !j.is_object() || !j["task"].is_object()) {
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
          continue;
        }
        const std::int64_t id = j["task"]["id"];
        {
          std::lock_guard lock(ack_.mu);
          ack_.claims.insert(id);
        }
        auto signed_report = server_->request(
            tokens_["radiologist"], "POST", "/api/tasks/" + std::to_string(id) + "/reports",
            R"({"kind":"final","findings":"No acute finding.","impression":"Normal."})");
        if (signed_report.status == 201) {
          std::lock_guard lock(ack_.mu);
          ack_.finals.insert(id);
        }
      }
    });

    // Kill at a random point: once a random number of operations more have been acknowledged.
    std::uniform_int_distribution<std::size_t> more(10, 120);
    const std::size_t target = ack_.total() + more(rng_);
    for (int i = 0; i < 1200 && ack_.total() < target; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    server_->kill();
    stop = true;
    for (auto& w : workers) w.join();
  }

  // Everything acknowledged so far is there, once and intact; tasks are with their reader or
  // queued.
  void check(const std::string& when) {
    SCOPED_TRACE(when);
    std::lock_guard lock(ack_.mu);
    const fs::path data = dir_.path() / "data";
    std::string out;
    ASSERT_EQ(testing::run_command("sqlite3 -readonly '" + (data / "index.sqlite").string() +
                                       "' 'SELECT sop_uid, blob_key FROM instances'",
                                   &out),
              0)
        << out;
    std::map<std::string, std::string> stored;  // sop -> blob key
    std::size_t rows = 0;
    for (std::size_t i = 0; i < out.size();) {
      std::size_t nl = out.find('\n', i);
      std::string line = out.substr(i, nl == std::string::npos ? std::string::npos : nl - i);
      i = nl == std::string::npos ? out.size() : nl + 1;
      std::size_t bar = line.find('|');
      if (bar == std::string::npos) continue;
      ++rows;
      stored[line.substr(0, bar)] = line.substr(bar + 1);
    }
    EXPECT_EQ(rows, stored.size()) << "an instance is indexed twice";
    for (const auto& [sop, file] : ack_.instances) {
      auto it = stored.find(sop);
      ASSERT_NE(it, stored.end()) << "acknowledged instance lost: " << sop;
      const std::string& key = it->second;
      const fs::path blob = data / "blobs" / key.substr(0, 2) / key.substr(2, 2) / key;
      const std::string sent = testing::pixel_bytes(file);
      EXPECT_FALSE(sent.empty()) << sop;
      EXPECT_EQ(testing::pixel_bytes(blob), sent) << sop;
    }
    for (const std::string& sop : ack_.ecgs) {
      EXPECT_TRUE(stored.count(sop)) << "acknowledged ECG lost: " << sop;
    }

    // Chat: every acknowledged message once, numbered without gaps.
    testing::WsClient ws(server_->http_port(), "Bearer " + tokens_["cardio"]);
    ASSERT_TRUE(ws.wait_connected());
    ASSERT_TRUE(ws.next_of("welcome"));
    ws.send(json{{"type", "join"}, {"consult", consult_}, {"afterSeq", 0}}.dump());
    ASSERT_TRUE(ws.next_of("joined"));
    std::map<std::string, int> seen;
    std::int64_t expected_seq = 1;
    for (int i = 0; i < 2000; ++i) {  // bounded: a replay page is at most 500 messages
      auto m = ws.next();
      ASSERT_TRUE(m.has_value()) << "replay did not finish";
      json j = json::parse(*m, nullptr, false);
      if (j.value("type", "") == "replayed") break;
      if (j.value("type", "") != "chat") continue;
      EXPECT_EQ(j["seq"], expected_seq);
      ++expected_seq;
      ++seen[j.value("clientId", "")];
    }
    for (const std::string& id : ack_.chats) {
      EXPECT_EQ(seen[id], 1) << "acknowledged chat message " << id;
    }
    for (const auto& [id, n] : seen) EXPECT_EQ(n, 1) << "chat message kept twice: " << id;

    // Tasks: signed ones are final; every claimed one is with its reader, back in the queue,
    // or final.
    for (std::int64_t id : ack_.claims) {
      json t = parse(server_->get(tokens_["radiologist"], "/api/tasks/" + std::to_string(id)));
      ASSERT_TRUE(t.is_object()) << id;
      const std::string status = t.value("status", "");
      if (ack_.finals.count(id)) {
        EXPECT_EQ(status, "final") << id;
        continue;
      }
      EXPECT_TRUE(status == "claimed" || status == "queued" || status == "final")
          << id << " is " << status;
      if (status == "claimed") {
        EXPECT_EQ(t["claimedBy"], "radiologist") << id;
      }
    }
  }

  std::uint64_t seed_ = 0;
  std::mt19937_64 rng_;
  testing::TempDir dir_;
  std::unique_ptr<ServerProcess> server_;
  std::map<std::string, std::string> tokens_;
  std::int64_t consult_ = 0;
  std::string aecg_;
  Acknowledged ack_;
};

TEST_F(CrashTest, nothing_acknowledged_is_lost_across_kills_during_load_and_during_recovery) {
  for (int round = 0; round < kRounds; ++round) {
    std::atomic<bool> stop{false};
    load(round, stop);
    if (round % 2 == 1) {
      // Killed again while it starts up (recovering from the kill before).
      ASSERT_TRUE(server_->launch());
      std::uniform_int_distribution<int> ms(0, 300);
      std::this_thread::sleep_for(std::chrono::milliseconds(ms(rng_)));
      server_->kill();
    }
    ASSERT_TRUE(server_->start()) << server_->log();
    check("after round " + std::to_string(round));
    if (HasFatalFailure()) return;
  }
  EXPECT_GT(ack_.total(), 0u);
  {
    std::lock_guard lock(ack_.mu);
    std::printf("acknowledged: %zu instances, %zu ECGs, %zu chats, %zu claims, %zu reports\n",
                ack_.instances.size(), ack_.ecgs.size(), ack_.chats.size(), ack_.claims.size(),
                ack_.finals.size());
  }
  ASSERT_EQ(server_->stop(), 0) << server_->log();
  const std::string data = (dir_.path() / "data").string();
  std::string out;
  EXPECT_EQ(testing::run_command(testing::yilian_binary() + " fsck --data '" + data + "'", &out), 0)
      << out;
  EXPECT_EQ(
      testing::run_command(testing::yilian_binary() + " audit verify --data '" + data + "'", &out),
      0)
      << out;
}

}  // namespace
}  // namespace yilian
