// Teleconsultation end to end: the real `yilian serve`, consults over REST, live rooms over
// /ws with a libwebsockets client (tests/support/ws_client.h). A township doctor at clinic A
// asks the lead hospital's cardiologist; clinic B's doctor and other specialists look on.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <algorithm>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>

#include <set>
#include <thread>

#include "consortium.h"
#include "postgres.h"
#include "server_process.h"
#include "synthetic.h"
#include "synthetic_ecg.h"
#include "test_util.h"
#include "ws_client.h"
#include "yilian/ecg/dicom_waveform.h"
#include "yilian/storage/clock.h"

namespace yilian {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using nlohmann::json;
using testing::ServerProcess;
using testing::WsClient;

// Every test runs on the embedded database and on PostgreSQL (a server the test starts).
class TeleconsultTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    const fs::path cfg = testing::write_consortium_config(dir_.path(), extra_config());
    std::vector<std::string> args{"--config", cfg.string()};
    std::string why;
    ASSERT_TRUE(testing::add_backend_args(backend(), args, &why)) << why;
    server_ = std::make_unique<ServerProcess>(dir_.path() / "data", args);
    ASSERT_TRUE(server_->start()) << server_->log();
    testing::CtSeriesSpec spec;
    spec.count = 1;
    spec.rows = spec.columns = 16;
    auto a = testing::write_ct_series(dir_.path() / "a", spec);
    auto b = testing::write_ct_series(dir_.path() / "b", spec);
    ASSERT_TRUE(a.ok() && b.ok());
    ASSERT_EQ(testing::storescu(*server_, "TA_CT", a->files), 0);
    ASSERT_EQ(testing::storescu(*server_, "TB_CT", b->files), 0);
    study_a_ = a->study_uid;
    study_b_ = b->study_uid;
    for (auto [user, role, inst] : {std::tuple{"doctor", "township_doctor", "ta"},
                                    std::tuple{"tb-doctor", "township_doctor", "tb"},
                                    std::tuple{"cardio", "cardiologist", "lead"},
                                    std::tuple{"cardio2", "cardiologist", "lead"},
                                    std::tuple{"radiologist", "radiologist", "lead"}}) {
      tokens_[user] = server_->add_user(user, {role}, inst);
      ASSERT_FALSE(tokens_[user].empty()) << user;
    }
  }
  // The room tests send far faster than people type (thousands of messages in seconds): no
  // message rate limit here; the limits have their own test (TeleconsultLimitsTest).
  // The consortium sets its own decision-to-delivery target (the default is 30 minutes).
  virtual std::string extra_config() const {
    return "\n[limits]\nws_messages_per_second = 0\n"
           "\n[emergency.targets]\n\"maternal.decision_to_delivery\" = 20\n";
  }
  virtual std::string backend() const { return GetParam(); }
  void TearDown() override {
    if (server_) {
      EXPECT_EQ(server_->stop(), 0) << server_->log();
    }
  }

  testing::HttpResult post(const std::string& user, const std::string& target, const json& body) {
    return server_->request(tokens_[user], "POST", target, body.dump());
  }

  // A consult asked by the doctor of clinic A to cardiology, accepted by `cardio`.
  std::int64_t accepted_consult() {
    auto r = post("doctor", "/api/consults",
                  {{"patientId", "TA-001"},
                   {"patientName", "Wang^Li"},
                   {"question", "Chest pain for 2 h, ST changes?"},
                   {"urgency", "emergency"},
                   {"specialty", "cardiology"},
                   {"studies", {study_a_}}});
    EXPECT_EQ(r.status, 201) << r.body;
    const std::int64_t id = json::parse(r.body)["id"];
    auto accept = post("cardio", "/api/consults/" + std::to_string(id) + "/accept", json::object());
    EXPECT_EQ(accept.status, 200) << accept.body;
    return id;
  }

  std::unique_ptr<WsClient> connect(const std::string& user, bool by_header = true,
                                    bool read_paused = false) {
    auto c = std::make_unique<WsClient>(server_->http_port(),
                                        by_header ? "Bearer " + tokens_[user] : "", read_paused);
    EXPECT_TRUE(c->wait_connected()) << server_->log();
    if (!by_header) c->send(json{{"type", "hello"}, {"token", tokens_[user]}}.dump());
    if (!read_paused) {
      auto welcome = c->next_of("welcome");
      EXPECT_TRUE(welcome.has_value()) << user;
    }
    return c;
  }

  static json parsed(const std::optional<std::string>& m) {
    return m ? json::parse(*m, nullptr, false) : json();
  }

  // Joins and returns the `joined` message; replayed chats go to `replay`.
  static json join(WsClient& c, std::int64_t consult, std::int64_t after,
                   std::vector<json>* replay = nullptr) {
    c.send(json{{"type", "join"}, {"consult", consult}, {"afterSeq", after}}.dump());
    json joined = parsed(c.next_of("joined"));
    for (int i = 0; i < 1000; ++i) {  // bounded: a replay page is at most 500 messages
      json m = parsed(c.next());
      if (m.is_null() || m["type"] == "replayed") break;
      if (m["type"] == "chat" && replay) replay->push_back(m);
    }
    return joined;
  }

  testing::TempDir dir_;
  std::unique_ptr<ServerProcess> server_;
  std::string study_a_, study_b_;
  std::map<std::string, std::string> tokens_;
};

TEST_P(TeleconsultTest, a_consult_goes_from_request_to_a_signed_immutable_opinion) {
  // Validation and attachment rights.
  EXPECT_EQ(post("doctor", "/api/consults", {{"patientId", "P"}, {"question", "q"}}).status, 400);
  EXPECT_EQ(post("doctor", "/api/consults",
                 {{"patientId", "P"}, {"question", "q"}, {"specialty", "dentistry"}})
                .status,
            400);
  EXPECT_EQ(post("doctor", "/api/consults",
                 {{"patientId", "P"},
                  {"question", "q"},
                  {"specialty", "cardiology"},
                  {"studies", {study_b_}}})  // another clinic's study
                .status,
            403);
  auto r = post("doctor", "/api/consults",
                {{"patientId", "TA-001"},
                 {"question", "Wide-complex tachycardia?"},
                 {"urgency", "urgent"},
                 {"specialty", "cardiology"},
                 {"studies", {study_a_}}});
  ASSERT_EQ(r.status, 201) << r.body;
  const std::string id = std::to_string(json::parse(r.body)["id"].get<std::int64_t>());
  EXPECT_EQ(json::parse(r.body)["status"], "requested");

  // Who sees the request: both cardiologists of the lead (may take it); not the radiologist
  // (other specialty) nor clinic B's doctor.
  auto count = [&](const std::string& user) {
    auto l = server_->get(tokens_[user], "/api/consults");
    EXPECT_EQ(l.status, 200) << l.body;
    return json::parse(l.body)["consults"].size();
  };
  EXPECT_EQ(count("doctor"), 1u);
  EXPECT_EQ(count("cardio"), 1u);
  EXPECT_EQ(count("cardio2"), 1u);
  EXPECT_EQ(count("radiologist"), 0u);
  EXPECT_EQ(count("tb-doctor"), 0u);
  EXPECT_EQ(server_->get(tokens_["tb-doctor"], "/api/consults/" + id).status, 404);
  EXPECT_EQ(server_->get(tokens_["radiologist"], "/api/consults/" + id).status, 404);
  // The cardiologist reads ECGs of clinic A, not its CT, until the consult shares it.
  EXPECT_EQ(server_->get(tokens_["cardio"], "/api/studies/" + study_a_).status, 404);

  EXPECT_EQ(post("doctor", "/api/consults/" + id + "/accept", json::object()).status, 403);
  auto accepted = post("cardio", "/api/consults/" + id + "/accept", json::object());
  ASSERT_EQ(accepted.status, 200) << accepted.body;
  EXPECT_EQ(json::parse(accepted.body)["assignee"], "cardio");
  // Taken: the other cardiologist no longer sees it, and cannot take it.
  EXPECT_EQ(post("cardio2", "/api/consults/" + id + "/accept", json::object()).status, 404);
  EXPECT_EQ(count("cardio2"), 0u);
  EXPECT_EQ(server_->get(tokens_["cardio"], "/api/studies/" + study_a_).status, 200);

  EXPECT_EQ(post("doctor", "/api/consults/" + id + "/start", json::object()).status, 403);
  EXPECT_EQ(post("cardio", "/api/consults/" + id + "/start", json::object()).status, 200);
  EXPECT_EQ(post("cardio", "/api/consults/" + id + "/conclude", {{"opinion", "  "}}).status, 400);
  auto done = post("cardio", "/api/consults/" + id + "/conclude",
                   {{"opinion", "Ventricular tachycardia. Amiodarone; transfer to the lead."}});
  ASSERT_EQ(done.status, 200) << done.body;
  json c = json::parse(done.body);
  EXPECT_EQ(c["status"], "concluded");
  EXPECT_EQ(c["opinion"]["signedBy"], "cardio");
  EXPECT_EQ(c["opinion"]["sha256"].get<std::string>().size(), 64u);
  // Immutable: no second opinion, no decline, no cancel.
  EXPECT_EQ(post("cardio", "/api/consults/" + id + "/conclude", {{"opinion", "changed"}}).status,
            409);
  EXPECT_EQ(post("cardio", "/api/consults/" + id + "/decline", {{"reason", "x"}}).status, 409);
  EXPECT_EQ(post("doctor", "/api/consults/" + id + "/cancel", json::object()).status, 409);

  auto detail = server_->get(tokens_["doctor"], "/api/consults/" + id);
  ASSERT_EQ(detail.status, 200);
  json d = json::parse(detail.body);
  EXPECT_EQ(d["opinion"]["text"], "Ventricular tachycardia. Amiodarone; transfer to the lead.");
  std::vector<std::string> history;
  for (const json& e : d["history"]) history.push_back(e["type"]);
  EXPECT_EQ(history, (std::vector<std::string>{"requested", "accepted", "started", "concluded"}));
  ASSERT_EQ(d["attachments"].size(), 1u);
  EXPECT_EQ(d["participants"].size(), 2u);

  // Declining needs a reason; only the requester cancels.
  auto r2 = post("doctor", "/api/consults",
                 {{"patientId", "TA-002"}, {"question", "q"}, {"specialty", "cardiology"}});
  const std::string id2 = std::to_string(json::parse(r2.body)["id"].get<std::int64_t>());
  EXPECT_EQ(post("cardio", "/api/consults/" + id2 + "/decline", json::object()).status, 400);
  EXPECT_EQ(post("cardio", "/api/consults/" + id2 + "/cancel", json::object()).status, 403);
  auto declined = post("cardio", "/api/consults/" + id2 + "/decline", {{"reason", "not cardiac"}});
  EXPECT_EQ(declined.status, 200);
  EXPECT_EQ(json::parse(declined.body)["reason"], "not cardiac");
}

TEST_P(TeleconsultTest, chat_missed_during_a_disconnect_arrives_exactly_once_after_reconnect) {
  const std::int64_t id = accepted_consult();
  auto doctor = connect("doctor");         // Authorization header on the upgrade
  auto cardio = connect("cardio", false);  // hello with a token, as a browser does
  ASSERT_TRUE(join(*doctor, id, 0).is_object());
  json joined = join(*cardio, id, 0);
  EXPECT_EQ(joined["lastSeq"], 0);
  EXPECT_EQ(joined["participants"].size(), 2u);

  auto chat = [&](WsClient& c, const std::string& client_id, const std::string& text) {
    c.send(json{{"type", "chat"}, {"consult", id}, {"clientId", client_id}, {"text", text}}.dump());
  };
  chat(*doctor, "d-1", "ECG attached, please look");
  for (WsClient* c : {doctor.get(), cardio.get()}) {
    json m = parsed(c->next_of("chat"));
    EXPECT_EQ(m["seq"], 1);
    EXPECT_EQ(m["from"], "doctor");
    EXPECT_EQ(m["clientId"], "d-1");
  }
  cardio->close();
  // While the cardiologist is away the doctor sees them offline and goes on writing.
  EXPECT_EQ(parsed(doctor->next_of("presence"))["status"], "offline");
  for (int i = 2; i <= 4; ++i)
    chat(*doctor, "d-" + std::to_string(i), "update " + std::to_string(i));
  for (int i = 2; i <= 4; ++i) EXPECT_EQ(parsed(doctor->next_of("chat"))["seq"], i);

  auto back = connect("cardio");
  std::vector<json> replay;
  json rejoined = join(*back, id, 1, &replay);
  EXPECT_EQ(rejoined["lastSeq"], 4);
  std::vector<std::int64_t> seqs;
  for (const json& m : replay) seqs.push_back(m["seq"]);
  EXPECT_EQ(seqs, (std::vector<std::int64_t>{2, 3, 4}));  // none lost, none twice
  EXPECT_EQ(parsed(doctor->next_of("presence"))["status"], "online");

  // A resend of an already saved message (its answer was lost) is not a new message.
  chat(*doctor, "d-1", "ECG attached, please look");
  json dup = parsed(doctor->next_of("chat"));
  EXPECT_EQ(dup["seq"], 1);
  EXPECT_EQ(dup["duplicate"], true);
  // Live traffic continues with the next number, for both.
  chat(*back, "c-1", "On my way to the viewer");
  EXPECT_EQ(parsed(back->next_of("chat"))["seq"], 5);
  EXPECT_EQ(parsed(doctor->next_of("chat"))["seq"], 5);

  // Receipts, typing, presence.
  back->send(json{{"type", "receipt"}, {"consult", id}, {"delivered", 5}, {"read", 4}}.dump());
  json receipt = parsed(doctor->next_of("receipt"));
  EXPECT_EQ(receipt["user"], "cardio");
  EXPECT_EQ(receipt["delivered"], 5);
  EXPECT_EQ(receipt["read"], 4);
  doctor->send(json{{"type", "typing"}, {"consult", id}, {"active", true}}.dump());
  json typing = parsed(back->next_of("typing"));
  EXPECT_EQ(typing["user"], "doctor");
  back->send(json{{"type", "presence"}, {"status", "away"}}.dump());
  EXPECT_EQ(parsed(doctor->next_of("presence"))["status"], "away");

  // The log over REST holds each message once.
  auto log = server_->get(tokens_["doctor"], "/api/consults/" + std::to_string(id) + "/messages");
  ASSERT_EQ(log.status, 200);
  json messages = json::parse(log.body)["messages"];
  ASSERT_EQ(messages.size(), 5u);
  EXPECT_EQ(messages[4]["text"], "On my way to the viewer");
}

TEST_P(TeleconsultTest, unauthorised_or_malformed_messages_get_errors_and_others_are_unaffected) {
  const std::int64_t id = accepted_consult();
  // A bad token: an error, then the connection is closed.
  {
    WsClient anon(server_->http_port());
    ASSERT_TRUE(anon.wait_connected());
    anon.send(json{{"type", "hello"}, {"token", "not-a-token"}}.dump());
    json e = parsed(anon.next_of("error"));
    EXPECT_EQ(e["code"], "unauthenticated");
    EXPECT_TRUE(anon.wait_closed());
    EXPECT_EQ(anon.close_code(), 4401);
  }
  auto doctor = connect("doctor");
  join(*doctor, id, 0);
  // Clinic B's doctor and another cardiologist may not join.
  for (const char* user : {"tb-doctor", "cardio2"}) {
    auto other = connect(user);
    other->send(json{{"type", "join"}, {"consult", id}, {"ref", "j1"}}.dump());
    json e = parsed(other->next_of("error"));
    EXPECT_EQ(e["code"], "not_found") << user;  // as for a consult that does not exist
    EXPECT_EQ(e["ref"], "j1");
    other->send(json{{"type", "chat"}, {"consult", id}, {"text", "hi"}}.dump());
    EXPECT_EQ(parsed(other->next_of("error"))["code"], "not_joined");
  }
  auto cardio = connect("cardio");
  join(*cardio, id, 0);
  // Garbage of every kind gets an error message; the connection stays.
  cardio->send("{not json");
  EXPECT_EQ(parsed(cardio->next_of("error"))["code"], "bad_message");
  cardio->send(json{{"type", "teleport"}}.dump());
  EXPECT_EQ(parsed(cardio->next_of("error"))["code"], "unknown_type");
  cardio->send(json{{"type", "chat"}, {"consult", id}}.dump());
  EXPECT_EQ(parsed(cardio->next_of("error"))["code"], "bad_message");
  cardio->send(json{{"type", "chat"}, {"consult", id}, {"text", std::string(70000, 'x')}}.dump());
  EXPECT_EQ(parsed(cardio->next_of("error"))["code"], "too_large");
  cardio->send(json{{"v", 2}, {"type", "ping"}}.dump());
  EXPECT_EQ(parsed(cardio->next_of("error"))["code"], "unsupported_version");
  cardio->send(json{{"type", "ping"}, {"ref", "p1"}}.dump());
  EXPECT_EQ(parsed(cardio->next_of("pong"))["ref"], "p1");
  EXPECT_FALSE(cardio->closed());
  // The doctor's room went on: a message still reaches both.
  doctor->send(json{{"type", "chat"}, {"consult", id}, {"text", "still there?"}}.dump());
  EXPECT_EQ(parsed(cardio->next_of("chat"))["text"], "still there?");
  // A concluded consult's room is read-only.
  ASSERT_EQ(post("cardio", "/api/consults/" + std::to_string(id) + "/conclude",
                 {{"opinion", "Inferior STEMI: transfer for primary PCI."}})
                .status,
            200);
  EXPECT_EQ(parsed(doctor->next_of("consult"))["consult"]["status"], "concluded");
  doctor->send(json{{"type", "chat"}, {"consult", id}, {"text", "thanks"}}.dump());
  EXPECT_EQ(parsed(doctor->next_of("error"))["code"], "consult_closed");
}

TEST_P(TeleconsultTest, the_shared_view_follows_its_driver_and_late_joiners_get_its_state) {
  const std::int64_t id = accepted_consult();
  auto cardio = connect("cardio");
  auto doctor = connect("doctor");
  join(*cardio, id, 0);
  join(*doctor, id, 0);
  cardio->send(json{{"type", "drive"}, {"consult", id}}.dump());
  EXPECT_EQ(parsed(doctor->next_of("view"))["driver"], "cardio");
  const json state = {{"study", study_a_},
                      {"frame", 3},
                      {"window", {{"center", 40}, {"width", 80}}},
                      {"zoom", 2.0},
                      {"pan", {10, -4}}};
  cardio->send(json{{"type", "view"}, {"consult", id}, {"state", state}}.dump());
  json v = parsed(doctor->next_of("view"));
  EXPECT_EQ(v["state"], state);
  const std::int64_t version = v["version"];
  // A follower cannot steer without taking the lead.
  doctor->send(json{{"type", "view"}, {"consult", id}, {"state", {{"frame", 9}}}}.dump());
  EXPECT_EQ(parsed(doctor->next_of("error"))["code"], "not_driver");
  const json arrow = {{"kind", "arrow"}, {"frame", 3}, {"from", {1, 2}}, {"to", {8, 9}}};
  cardio->send(json{{"type", "annotation"}, {"consult", id}, {"annotation", arrow}}.dump());
  EXPECT_EQ(parsed(doctor->next_of("annotation"))["annotation"], arrow);

  // Someone joining later starts where the others are.
  auto late = connect("doctor");
  json joined = join(*late, id, 0);
  EXPECT_EQ(joined["view"]["version"], version);
  EXPECT_EQ(joined["view"]["driver"], "cardio");
  EXPECT_EQ(joined["view"]["state"], state);
  ASSERT_EQ(joined["annotations"].size(), 1u);
  EXPECT_EQ(joined["annotations"][0]["annotation"], arrow);

  // WebRTC signalling goes to the named participant only.
  doctor->send(json{{"type", "rtc"},
                    {"consult", id},
                    {"to", "cardio"},
                    {"signal", "offer"},
                    {"data", {{"sdp", "v=0"}}}}
                   .dump());
  json offer = parsed(cardio->next_of("rtc"));
  EXPECT_EQ(offer["from"], "doctor");
  EXPECT_EQ(offer["signal"], "offer");
  EXPECT_EQ(offer["data"]["sdp"], "v=0");
  doctor->send(
      json{{"type", "rtc"}, {"consult", id}, {"to", "radiologist"}, {"signal", "offer"}}.dump());
  EXPECT_EQ(parsed(doctor->next_of("error"))["code"], "peer_offline");
}

TEST_P(TeleconsultTest, a_reader_that_stops_reading_is_dropped_without_delaying_the_room) {
  const std::int64_t id = accepted_consult();
  auto doctor = connect("doctor");
  auto cardio = connect("cardio");
  join(*doctor, id, 0);
  join(*cardio, id, 0);
  // A third participant's client hangs: it joins, then never reads again.
  auto stuck = connect("cardio");
  join(*stuck, id, 0);
  stuck->pause_reading();

  // The room goes on at the pace of its live readers: more than a send queue and the socket
  // buffers can hold (~20 MB) passes through while the stuck client reads nothing.
  const std::string text(7000, 'e');
  constexpr int kRounds = 60, kPerRound = 50;
  int received = 0;
  for (int round = 0; round < kRounds; ++round) {
    for (int i = 0; i < kPerRound; ++i) {
      doctor->send(json{{"type", "chat"}, {"consult", id}, {"text", text}}.dump());
    }
    for (int i = 0; i < kPerRound; ++i) {
      if (parsed(cardio->next_of("chat", 20s)).is_null()) break;
      ++received;
    }
  }
  EXPECT_EQ(received, kRounds * kPerRound);  // the reading client got everything
  auto health = json::parse(testing::http_get(server_->http_port(), "/healthz").body);
  EXPECT_GE(health["websocket"]["slowDropped"].get<int>(), 1) << health.dump();
  stuck->resume_reading();
  EXPECT_TRUE(stuck->wait_closed(10s));
}

// Short heartbeat times, so that silence is found within seconds.
class TeleconsultHeartbeatTest : public TeleconsultTest {
  std::string backend() const override { return "sqlite"; }

 protected:
  std::string extra_config() const override {
    return "\n[http]\nws_ping_after_idle_seconds = 1\nws_hangup_after_idle_seconds = 3\n";
  }
};

TEST_F(TeleconsultHeartbeatTest, quiet_clients_are_pinged_and_one_that_never_answers_is_closed) {
  const std::int64_t id = accepted_consult();
  auto doctor = connect("doctor");  // a live client: libwebsockets answers pings itself
  join(*doctor, id, 0);
  auto stuck = connect("cardio");
  stuck->pause_reading();  // from now on it reads nothing, so it answers nothing

  json ws;
  for (int i = 0; i < 300; ++i) {  // bounded: 30 s
    ws = json::parse(testing::http_get(server_->http_port(), "/healthz").body)["websocket"];
    if (ws["idleClosed"].get<int>() >= 1 && ws["open"].get<int>() == 1) break;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(ws["idleClosed"].get<int>(), 1) << ws.dump() << server_->log();
  EXPECT_EQ(ws["open"].get<int>(), 1) << ws.dump();
  EXPECT_GE(ws["pings"].get<int>(), 2) << ws.dump();  // both were pinged; only one answered

  // The quiet but live client was kept, and its room still works.
  EXPECT_FALSE(doctor->closed());
  doctor->send(json{{"type", "chat"}, {"consult", id}, {"text", "still here"}}.dump());
  EXPECT_EQ(parsed(doctor->next_of("chat"))["text"], "still here");
  stuck->resume_reading();
  ASSERT_TRUE(stuck->wait_closed(10s));
  EXPECT_EQ(stuck->close_code(), 1001);
}

// Tight limits ([limits] in the config), so that one client's excess is seen at once.
class TeleconsultLimitsTest : public TeleconsultTest {
  std::string backend() const override { return "sqlite"; }

 protected:
  std::string extra_config() const override {
    return "\n[limits]\nws_connections_per_user = 2\nws_messages_per_second = 2\n"
           "ws_message_burst = 4\nuploads_per_user = 1\n";
  }
};

// A third tab of one user is refused with the reason and close 4429 while other users connect;
// a client flooding its connection gets rate_limited for the excess and keeps its connection.
TEST_F(TeleconsultLimitsTest, one_users_extra_connections_and_flood_are_refused_others_go_on) {
  auto first = connect("doctor");
  auto second = connect("doctor");
  testing::WsClient third(server_->http_port(), "Bearer " + tokens_["doctor"]);
  ASSERT_TRUE(third.wait_connected());
  json refused = parsed(third.next_of("error"));
  EXPECT_EQ(refused["code"], "too_many_connections") << refused.dump();
  ASSERT_TRUE(third.wait_closed());
  EXPECT_EQ(third.close_code(), 4429);
  auto cardio = connect("cardio");  // another user is not affected

  for (int i = 0; i < 100; ++i) {  // far above 4 at once and 2 a second, however slow the hub
    first->send(json{{"type", "ping"}, {"ref", "f" + std::to_string(i)}}.dump());
  }
  json limited = parsed(first->next_of("error"));
  EXPECT_EQ(limited["code"], "rate_limited") << limited.dump();
  EXPECT_FALSE(first->closed());
  // The other connections are not slowed by it.
  second->send(json{{"type", "ping"}, {"ref", "s"}}.dump());
  EXPECT_EQ(parsed(second->next_of("pong"))["ref"], "s");
  auto health = json::parse(testing::http_get(server_->http_port(), "/healthz").body);
  EXPECT_EQ(health["websocket"]["refusedConnections"], 1) << health.dump();
  EXPECT_GE(health["websocket"]["rateLimited"].get<int>(), 1) << health.dump();
}

// Two-way referral: clinic A refers a patient up to the lead hospital with the CT; the lead
// answers within its quota of daily slots; later it refers the patient back down with the
// discharge summary and follow-up plan. Both sides are notified of every step.
TEST_P(TeleconsultTest, referrals_go_up_and_down_within_the_receivers_daily_slots) {
  auto doctor_ws = connect("doctor");
  auto put_quota = testing::http_request(server_->http_port(), "PUT",
                                         "/api/admin/referral-quotas/lead", R"({"daily": 1})",
                                         {{"Authorization", "Bearer " + server_->admin_token()},
                                          {"Content-Type", "application/json"}});
  ASSERT_EQ(put_quota.status, 200) << put_quota.body;
  EXPECT_EQ(post("doctor", "/api/referrals",
                 {{"direction", "down"},
                  {"toInstitution", "lead"},
                  {"patientId", "P"},
                  {"reason", "x"},
                  {"dischargeSummary", "d"},
                  {"followUpPlan", "f"}})
                .status,
            400);  // the lead is not below a township clinic
  EXPECT_EQ(
      post("doctor", "/api/referrals",
           {{"direction", "up"}, {"toInstitution", "tb"}, {"patientId", "P"}, {"reason", "x"}})
          .status,
      400);  // a sibling clinic is not above
  EXPECT_EQ(server_->get(tokens_["cardio"], "/api/studies/" + study_a_).status, 404);
  auto make = [&](const std::string& patient) {
    auto r = post("doctor", "/api/referrals",
                  {{"direction", "up"},
                   {"toInstitution", "lead"},
                   {"urgency", "urgent"},
                   {"patientId", patient},
                   {"reason", "Unstable angina, needs angiography"},
                   {"studies", {study_a_}}});
    EXPECT_EQ(r.status, 201) << r.body;
    return json::parse(r.body);
  };
  json first = make("TA-R1");
  const std::string id = std::to_string(first["id"].get<std::int64_t>());
  EXPECT_EQ(first["status"], "requested");
  // The lead sees it and the CT that goes with it; clinic B sees nothing.
  EXPECT_EQ(server_->get(tokens_["cardio"], "/api/studies/" + study_a_).status, 200);
  EXPECT_EQ(server_->get(tokens_["tb-doctor"], "/api/referrals/" + id).status, 404);
  EXPECT_EQ(json::parse(server_->get(tokens_["cardio"], "/api/referrals").body)["referrals"].size(),
            1u);

  EXPECT_EQ(post("doctor", "/api/referrals/" + id + "/accept", json::object()).status, 403);
  EXPECT_EQ(post("cardio", "/api/referrals/" + id + "/reject", json::object()).status, 400);
  EXPECT_EQ(post("cardio", "/api/referrals/" + id + "/schedule", json::object()).status, 409);
  ASSERT_EQ(post("cardio", "/api/referrals/" + id + "/accept", json::object()).status, 200);
  json n = parsed(doctor_ws->next_of("notification"));
  for (int i = 0; i < 5 && n["payload"]["status"] != "accepted"; ++i)
    n = parsed(doctor_ws->next_of("notification"));
  EXPECT_EQ(n["kind"], "referral");
  EXPECT_EQ(n["payload"]["status"], "accepted");
  auto scheduled = post("cardio", "/api/referrals/" + id + "/schedule", json::object());
  ASSERT_EQ(scheduled.status, 200) << scheduled.body;
  const std::string today = storage::to_iso8601(std::chrono::system_clock::now()).substr(0, 10);
  EXPECT_EQ(json::parse(scheduled.body)["slotDate"], today);  // urgent: today
  // The one slot of today is taken: the next urgent referral goes to tomorrow.
  json second = make("TA-R2");
  const std::string id2 = std::to_string(second["id"].get<std::int64_t>());
  ASSERT_EQ(post("cardio", "/api/referrals/" + id2 + "/accept", json::object()).status, 200);
  auto later = post("cardio", "/api/referrals/" + id2 + "/schedule", json::object());
  ASSERT_EQ(later.status, 200);
  EXPECT_GT(json::parse(later.body)["slotDate"].get<std::string>(), today);

  ASSERT_EQ(post("cardio", "/api/referrals/" + id + "/arrive", json::object()).status, 200);
  ASSERT_EQ(post("cardio", "/api/referrals/" + id + "/complete", json::object()).status, 200);
  EXPECT_EQ(post("doctor", "/api/referrals/" + id + "/cancel", json::object()).status, 409);
  json detail = json::parse(server_->get(tokens_["doctor"], "/api/referrals/" + id).body);
  std::vector<std::string> steps;
  for (const json& e : detail["history"]) steps.push_back(e["type"]);
  EXPECT_EQ(steps, (std::vector<std::string>{"requested", "accepted", "scheduled", "arrived",
                                             "completed"}));

  // Down again, with what the clinic needs to carry on.
  EXPECT_EQ(post("cardio", "/api/referrals",
                 {{"direction", "down"},
                  {"toInstitution", "ta"},
                  {"patientId", "TA-R1"},
                  {"reason", "PCI done"}})
                .status,
            400);
  auto down = post("cardio", "/api/referrals",
                   {{"direction", "down"},
                    {"toInstitution", "ta"},
                    {"patientId", "TA-R1"},
                    {"reason", "PCI to LAD done, stable"},
                    {"dischargeSummary", "Anterior STEMI, stent to proximal LAD, EF 50%"},
                    {"followUpPlan", "DAPT 12 months; ECG and lipids at 4 weeks"}});
  ASSERT_EQ(down.status, 201) << down.body;
  const std::string down_id = std::to_string(json::parse(down.body)["id"].get<std::int64_t>());
  auto taken = post("doctor", "/api/referrals/" + down_id + "/accept", json::object());
  ASSERT_EQ(taken.status, 200);
  EXPECT_EQ(json::parse(taken.body)["followUpPlan"], "DAPT 12 months; ECG and lipids at 4 weeks");
}

// A browser page (headless Chromium, as a township doctor's screen would) opens /ws, says
// hello with its token, joins the consult and writes; the message is stored like any other.
TEST_P(TeleconsultTest, a_browser_page_opens_the_websocket_and_chats) {
  if (std::system("command -v chromium >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "chromium is not installed (scripts/install-deps.sh installs it)";
  }
  const std::int64_t id = accepted_consult();
  // Headless Chromium dumps the page when loading ends or at --timeout; an image from a socket
  // that never answers keeps the page loading, so the WebSocket exchange runs in real time.
  const int hold = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(hold, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::bind(hold, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(hold, 4), 0);
  ASSERT_EQ(::getsockname(hold, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const int hold_port = ntohs(addr.sin_port);
  const fs::path page = dir_.path() / "consult.html";
  std::ofstream(page) << R"(<!doctype html><html><head><title>waiting</title></head><body>
<pre id="log"></pre><script>
const log = (t) => { document.getElementById('log').textContent += t + '\n'; };
const ws = new WebSocket('ws://127.0.0.1:)"
                      << server_->http_port() << R"(/ws');
ws.onopen = () => ws.send(JSON.stringify({type: 'hello', token: ')"
                      << tokens_["doctor"] << R"('}));
ws.onmessage = (e) => {
  const m = JSON.parse(e.data);
  log(m.type);
  if (m.type === 'welcome') ws.send(JSON.stringify({type: 'join', consult: )"
                      << id << R"(}));
  if (m.type === 'replayed')
    ws.send(JSON.stringify({type: 'chat', consult: )"
                      << id << R"(, clientId: 'page-1',
                            text: 'sent from the browser page'}));
  if (m.type === 'chat') {
    document.title = 'chat seq ' + m.seq + ' from ' + m.from;
    ws.close();
  }
};
</script><img src="http://127.0.0.1:)"
                      << hold_port << R"(/hold"></body></html>)";
  // In the background (bounded by `timeout`): the dump arrives after --timeout; the browser
  // is not waited for beyond that.
  const fs::path dump = dir_.path() / "dump.html";
  ASSERT_EQ(testing::run_command(
                "timeout 30 chromium --headless=new --no-sandbox --disable-gpu --no-first-run "
                "--user-data-dir='" +
                (dir_.path() / "chromium").string() + "' --timeout=5000 --dump-dom 'file://" +
                page.string() + "' >'" + dump.string() + "' 2>/dev/null </dev/null &"),
            0);
  // The page's message is in the consult's log, under the page user's name.
  json messages;
  for (int i = 0; i < 200 && messages.empty(); ++i) {
    auto r = server_->get(tokens_["cardio"], "/api/consults/" + std::to_string(id) + "/messages");
    ASSERT_EQ(r.status, 200);
    messages = json::parse(r.body)["messages"];
    if (messages.empty()) std::this_thread::sleep_for(100ms);
  }
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0]["from"], "doctor");
  EXPECT_EQ(messages[0]["text"], "sent from the browser page");
  // And the page saw its own message come back with its number.
  std::string out;
  for (int i = 0; i < 300 && out.find("</html>") == std::string::npos; ++i) {
    std::this_thread::sleep_for(100ms);
    std::ifstream in(dump);
    out.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  ::close(hold);
  EXPECT_NE(out.find("chat seq 1 from doctor"), std::string::npos) << out;
}

// The chest-pain pathway: a township ECG with ST elevation opens an emergency case by itself;
// the lead's cardiologist is alerted (and keeps the alert until acknowledging it), follows the
// case's clocks, and sees a missed target announced; corrections keep their history.
TEST_P(TeleconsultTest, a_suspected_stemi_opens_a_case_whose_clocks_and_breaches_are_pushed) {
  auto cardio = connect("cardio");
  const std::string study =
      testing::write_stemi_ecg(dir_.path() / "stemi.dcm", "TA-STEMI", "Zhao^Gang");
  ASSERT_FALSE(study.empty());
  ASSERT_EQ(testing::storescu(*server_, "TA_ECG", {dir_.path() / "stemi.dcm"}), 0);

  // Alerts: the emergency case (first) and the STAT task for the ECG readers.
  json alert;
  std::set<std::string> kinds;
  for (int i = 0; i < 10 && (alert.is_null() || !kinds.count("stat_task")); ++i) {
    json n = parsed(cardio->next_of("notification", 10s));
    if (n.is_null()) break;
    kinds.insert(n["kind"]);
    if (n["kind"] == "emergency") alert = n;
  }
  ASSERT_FALSE(alert.is_null()) << server_->log();
  EXPECT_TRUE(kinds.count("stat_task"));
  EXPECT_EQ(alert["payload"]["kind"], "chest_pain");
  EXPECT_EQ(alert["payload"]["source"], "ecg_stemi");
  EXPECT_EQ(alert["payload"]["patient"]["id"], "TA-STEMI");
  const std::int64_t case_id = alert["payload"]["case"];
  // Clinic B's doctor neither sees nor follows the case.
  EXPECT_EQ(
      server_->get(tokens_["tb-doctor"], "/api/emergencies/" + std::to_string(case_id)).status,
      404);

  cardio->send(json{{"type", "case.join"}, {"case", case_id}}.dump());
  json state = parsed(cardio->next_of("case"))["case"];
  ASSERT_TRUE(state.is_object());
  EXPECT_EQ(state["status"], "open");
  EXPECT_FALSE(state["timePoints"]["ecg_transmitted"].is_null());
  ASSERT_EQ(state["intervals"].size(), 5u);
  EXPECT_EQ(state["intervals"][0]["name"], "fmc_to_ecg");
  EXPECT_EQ(state["intervals"][0]["status"], "pending");

  // The township doctor records first contact and the first ECG, 12 minutes apart: a breach.
  const auto now = std::chrono::system_clock::now();
  auto at = [&](int minutes_ago) {
    return storage::to_iso8601(now - std::chrono::minutes(minutes_ago));
  };
  const std::string base = "/api/emergencies/" + std::to_string(case_id) + "/time-points";
  EXPECT_EQ(post("doctor", base, {{"point", "balloon_party"}}).status, 400);
  EXPECT_EQ(post("doctor", base, {{"point", "door"}, {"at", "yesterday"}}).status, 400);
  // The ECG's time first: the interval is only measured once both ends are known, so no clock
  // check of the hub can see it running (and breach it at a larger figure) in between.
  ASSERT_EQ(post("doctor", base, {{"point", "first_ecg"}, {"at", at(3)}}).status, 200);
  auto r = post("doctor", base, {{"point", "first_medical_contact"}, {"at", at(15)}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body)["intervals"][0]["status"], "breached");
  json breach = parsed(cardio->next_of("case.breach", 10s));
  EXPECT_EQ(breach["interval"], "fmc_to_ecg");
  EXPECT_EQ(breach["targetMinutes"], 10);
  EXPECT_NEAR(breach["minutes"].get<double>(), 12, 0.1);

  // A correction: first contact was later than first noted. History keeps both records.
  auto fixed = post("doctor", base,
                    {{"point", "first_medical_contact"}, {"at", at(9)}, {"note", "ambulance log"}});
  ASSERT_EQ(fixed.status, 200);
  json f = json::parse(fixed.body);
  EXPECT_EQ(f["intervals"][0]["status"], "met");
  EXPECT_NEAR(f["intervals"][0]["minutes"].get<double>(), 6, 0.1);
  int records = 0;
  for (const json& h : f["history"]) records += h["point"] == "first_medical_contact";
  EXPECT_EQ(records, 2);
  // The one-tap door time: now. Door-to-balloon runs.
  auto door = post("cardio", base, {{"point", "door"}});
  ASSERT_EQ(door.status, 200);
  EXPECT_EQ(json::parse(door.body)["intervals"][4]["status"], "running");
  EXPECT_EQ(parsed(cardio->next_of("case"))["case"]["id"], case_id);

  // The alert stays until acknowledged: a new connection gets it again, then not after ack.
  auto again = connect("cardio");
  json pending = parsed(again->next_of("notification"));
  ASSERT_FALSE(pending.is_null());
  again->send(json{{"type", "ack"}, {"notification", alert["id"]}}.dump());
  EXPECT_EQ(parsed(again->next_of("acked"))["notification"], alert["id"]);
  again->send(json{{"type", "ack"}, {"notification", alert["id"]}}.dump());
  EXPECT_EQ(parsed(again->next_of("error"))["code"], "not_found");
  auto third = connect("cardio");
  for (int i = 0; i < 10; ++i) {
    json n = parsed(third->next_of("notification", 1s));
    if (n.is_null()) break;
    EXPECT_NE(n["id"], alert["id"]);
  }
  // Listed among the open cases of those who serve clinic A; closing ends it.
  auto list = server_->get(tokens_["cardio"], "/api/emergencies");
  ASSERT_EQ(list.status, 200);
  EXPECT_EQ(json::parse(list.body)["cases"].size(), 1u);
  EXPECT_EQ(post("cardio", "/api/emergencies/" + std::to_string(case_id) + "/close", json::object())
                .status,
            200);
  EXPECT_EQ(post("doctor", base, {{"point", "wire_crossing"}}).status, 409);
}

// A specialist back after an absence: the welcome says how many notifications wait, only the
// newest are replayed, the rest are paged over REST and acknowledged at once.
TEST_P(TeleconsultTest, a_notification_backlog_is_counted_replayed_newest_first_and_cleared) {
  constexpr int kConsults = 60;
  for (int i = 0; i < kConsults; ++i) {
    auto r = post("doctor", "/api/consults",
                  {{"patientId", "TA-B" + std::to_string(i)},
                   {"question", "Backlog " + std::to_string(i)},
                   {"urgency", "routine"},
                   {"specialty", "cardiology"}});
    ASSERT_EQ(r.status, 201) << r.body;
  }
  WsClient ws(server_->http_port(), "Bearer " + tokens_["cardio"]);
  ASSERT_TRUE(ws.wait_connected());
  json welcome = parsed(ws.next_of("welcome"));
  EXPECT_EQ(welcome["pendingNotifications"], kConsults);
  std::vector<std::int64_t> replayed;
  for (int i = 0; i < kConsults; ++i) {
    json n = parsed(ws.next_of("notification", 2s));
    if (n.is_null()) break;
    replayed.push_back(n["id"]);
  }
  ASSERT_EQ(replayed.size(), 50u);  // the newest 50, oldest of them first
  EXPECT_TRUE(std::is_sorted(replayed.begin(), replayed.end()));

  // REST: newest first, paged with `before`.
  auto page = server_->get(tokens_["cardio"], "/api/notifications?limit=40");
  ASSERT_EQ(page.status, 200) << page.body;
  json p1 = json::parse(page.body);
  EXPECT_EQ(p1["pending"], kConsults);
  ASSERT_EQ(p1["notifications"].size(), 40u);
  const std::int64_t newest = p1["notifications"][0]["id"];
  EXPECT_EQ(newest, replayed.back());
  EXPECT_EQ(p1["notifications"][0]["kind"], "consult_request");
  EXPECT_EQ(p1["notifications"][0]["payload"]["specialty"], "cardiology");
  const std::int64_t last = p1["notifications"][39]["id"];
  json p2 = json::parse(
      server_->get(tokens_["cardio"], "/api/notifications?limit=40&before=" + std::to_string(last))
          .body);
  ASSERT_EQ(p2["notifications"].size(), 20u);
  EXPECT_LT(p2["notifications"][0]["id"].get<std::int64_t>(), last);
  auto count_only = server_->get(tokens_["cardio"], "/api/notifications?limit=0");
  ASSERT_EQ(count_only.status, 200);
  EXPECT_EQ(json::parse(count_only.body)["pending"], kConsults);
  EXPECT_TRUE(json::parse(count_only.body)["notifications"].empty());
  EXPECT_EQ(server_->get(tokens_["cardio"], "/api/notifications?limit=501").status, 400);

  // Each user acknowledges only their own.
  const std::string one = "/api/notifications/" + std::to_string(last) + "/ack";
  EXPECT_EQ(post("doctor", one, json::object()).status, 404);
  EXPECT_EQ(post("cardio", one, json::object()).status, 200);
  EXPECT_EQ(post("cardio", one, json::object()).status, 404);
  EXPECT_EQ(post("cardio", "/api/notifications/ack", {{"upTo", "all"}}).status, 400);
  auto all = post("cardio", "/api/notifications/ack", {{"upTo", newest}});
  ASSERT_EQ(all.status, 200) << all.body;
  EXPECT_EQ(json::parse(all.body)["acked"], kConsults - 1);
  EXPECT_EQ(json::parse(server_->get(tokens_["cardio2"], "/api/notifications").body)["pending"],
            kConsults);  // a colleague's own stay

  // A new connection starts clean.
  WsClient again(server_->http_port(), "Bearer " + tokens_["cardio"]);
  ASSERT_TRUE(again.wait_connected());
  EXPECT_EQ(parsed(again.next_of("welcome"))["pendingNotifications"], 0);
  again.send(json{{"type", "ping"}, {"ref", "after-welcome"}}.dump());
  json next = parsed(again.next());
  EXPECT_EQ(next["type"], "pong");  // nothing replayed before it
}

// The on-call roster over REST: the consortium office sets the lead's cardiology shift; a
// township ECG with ST elevation alerts only the cardiologist on call, who acknowledges with one
// tap; the acknowledgement is the case's ecg_read time point and is audited.
TEST_P(TeleconsultTest, the_on_call_cardiologist_gets_the_stemi_alert_and_acknowledges_it) {
  const std::string office = server_->add_user("office", {"admin"}, "lead");
  ASSERT_FALSE(office.empty());
  const auto now = std::chrono::system_clock::now();
  auto shift = [&](const std::string& user, const std::string& role) {
    return json{{"institution", "lead"},
                {"service", "cardiology"},
                {"role", role},
                {"user", user},
                {"startsAt", storage::to_iso8601(now - std::chrono::hours(1))},
                {"endsAt", storage::to_iso8601(now + std::chrono::hours(11))}};
  };
  // Only the office sets rosters; a shift must be sensible.
  EXPECT_EQ(post("cardio", "/api/oncall", shift("cardio", "primary")).status, 403);
  json bad = shift("cardio", "primary");
  bad["endsAt"] = bad["startsAt"];
  EXPECT_EQ(server_->request(office, "POST", "/api/oncall", bad.dump()).status, 400);
  EXPECT_EQ(
      server_->request(office, "POST", "/api/oncall", shift("nobody", "primary").dump()).status,
      400);
  auto added = server_->request(office, "POST", "/api/oncall", shift("cardio", "primary").dump());
  ASSERT_EQ(added.status, 201) << added.body;
  ASSERT_EQ(
      server_->request(office, "POST", "/api/oncall", shift("cardio2", "backup").dump()).status,
      201);
  // Who answers for a case of township A now: the lead's primary (the township has no roster).
  json now_on = json::parse(
      server_->get(tokens_["doctor"], "/api/oncall/now?institution=ta&service=cardiology").body);
  EXPECT_EQ(now_on["primary"]["user"], "cardio");
  ASSERT_EQ(now_on["backups"].size(), 1u);
  EXPECT_EQ(now_on["backups"][0]["user"], "cardio2");
  json roster = json::parse(server_->get(office, "/api/oncall?institution=lead").body);
  EXPECT_EQ(roster["shifts"].size(), 2u);

  auto cardio = connect("cardio");
  auto cardio_tablet = connect("cardio");  // the same cardiologist on a second screen
  auto cardio2 = connect("cardio2");
  ASSERT_FALSE(testing::write_stemi_ecg(dir_.path() / "oncall.dcm", "TA-ONCALL", "Li^Qiang",
                                        {"II", "III", "aVF"}, 0.3)
                   .empty());
  ASSERT_EQ(testing::storescu(*server_, "TA_ECG", {dir_.path() / "oncall.dcm"}), 0);

  json alert;
  for (int i = 0; i < 10 && alert.is_null(); ++i) {
    json n = parsed(cardio->next_of("notification", 10s));
    if (n.is_null()) break;
    if (n["kind"] == "alert") alert = n;
  }
  ASSERT_FALSE(alert.is_null()) << server_->log();
  EXPECT_EQ(alert["payload"]["stage"], "on_call");
  EXPECT_EQ(alert["payload"]["service"], "cardiology");
  const std::int64_t case_id = alert["payload"]["case"];
  const std::string path = "/api/emergencies/" + std::to_string(case_id);
  // The back-up is not disturbed while the primary may still answer.
  for (int i = 0; i < 10; ++i) {
    json n = parsed(cardio2->next_of("notification", 1s));
    if (n.is_null()) break;
    EXPECT_NE(n["kind"], "alert");
  }
  // Clinic B's doctor may not acknowledge it.
  EXPECT_EQ(server_->request(tokens_["tb-doctor"], "POST", path + "/ack", "").status, 404);
  auto ack = server_->request(tokens_["cardio"], "POST", path + "/ack", "");
  ASSERT_EQ(ack.status, 200) << ack.body;
  json view = json::parse(ack.body);
  EXPECT_EQ(view["alert"]["acknowledgedBy"], "cardio");
  EXPECT_EQ(view["alert"]["alerted"][0]["user"], "cardio");
  EXPECT_EQ(view["alert"]["alerted"][0]["stage"], "on_call");
  EXPECT_EQ(view["timePoints"]["ecg_read"]["at"], view["alert"]["acknowledgedAt"]);
  EXPECT_EQ(view["timePoints"]["ecg_read"]["by"], "cardio");
  // The tap on one screen closes the alert card on the other.
  json closed = parsed(cardio_tablet->next_of("alert.closed", 10s));
  ASSERT_FALSE(closed.is_null()) << server_->log();
  EXPECT_EQ(closed["case"], case_id);
  EXPECT_EQ(closed["acknowledgedBy"], "cardio");
  json audit = json::parse(server_->get(office, "/api/audit?action=case.ack").body);
  ASSERT_TRUE(audit["records"].is_array());
  int ok = 0, denied = 0;
  for (const json& r : audit["records"]) {
    ok += r["outcome"] == "ok";
    denied += r["outcome"] == "denied";
  }
  EXPECT_EQ(ok, 1);
  EXPECT_EQ(denied, 1);
  // The shift can be removed; then nobody is on call.
  const std::int64_t shift_id = json::parse(added.body)["id"];
  EXPECT_EQ(
      server_->request(office, "DELETE", "/api/oncall/" + std::to_string(shift_id), "").status,
      200);
  json after =
      json::parse(server_->get(office, "/api/oncall/now?institution=ta&service=cardiology").body);
  EXPECT_TRUE(after["primary"].is_null());
}

// The critical maternal care centre: a township doctor opens a case for a haemorrhage after
// birth; the lead's obstetrician on call is alerted and answers with one tap (the expert's
// response time point); the decision-to-delivery interval is kept against its 30 minutes; the
// board is filtered by centre.
TEST_P(TeleconsultTest, a_critical_maternal_case_alerts_the_obstetrician_on_call_and_is_timed) {
  const std::string office = server_->add_user("office", {"admin"}, "lead");
  const std::string obst = server_->add_user("obst", {"physician"}, "lead");
  ASSERT_FALSE(office.empty());
  ASSERT_FALSE(obst.empty());
  tokens_["obst"] = obst;
  // The obstetrician works the centre's cases but reads no queue: township A's CT is not theirs
  // to open, as it is the lead's radiologist's.
  EXPECT_EQ(server_->get(tokens_["radiologist"], "/api/studies/" + study_a_).status, 200);
  EXPECT_EQ(server_->get(obst, "/api/studies/" + study_a_).status, 404);
  const auto now = std::chrono::system_clock::now();
  json shift{{"institution", "lead"},
             {"service", "obstetrics"},
             {"role", "primary"},
             {"user", "obst"},
             {"startsAt", storage::to_iso8601(now - std::chrono::hours(1))},
             {"endsAt", storage::to_iso8601(now + std::chrono::hours(11))}};
  ASSERT_EQ(server_->request(office, "POST", "/api/oncall", shift.dump()).status, 201);
  json unknown = shift;
  unknown["service"] = "dermatology";
  auto refused = server_->request(office, "POST", "/api/oncall", unknown.dump());
  EXPECT_EQ(refused.status, 400);
  EXPECT_NE(refused.body.find("neonatology"), std::string::npos) << refused.body;

  auto obst_ws = connect("obst");
  auto bad = post("doctor", "/api/emergencies", {{"kind", "burns"}, {"patientId", "TA-M1"}});
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("maternal"), std::string::npos) << bad.body;
  auto opened = post("doctor", "/api/emergencies",
                     {{"kind", "maternal"},
                      {"patientId", "TA-M1"},
                      {"patientName", "Wang^Fang"},
                      {"reason", "产后出血 postpartum haemorrhage"}});
  ASSERT_EQ(opened.status, 201) << opened.body;
  json c = json::parse(opened.body);
  EXPECT_EQ(c["kind"], "maternal");
  ASSERT_EQ(c["intervals"].size(), 1u);
  EXPECT_EQ(c["intervals"][0]["name"], "decision_to_delivery");
  EXPECT_EQ(c["intervals"][0]["targetMinutes"], 20);  // the consortium's own
  const std::int64_t case_id = c["id"];

  json alert;
  for (int i = 0; i < 10 && alert.is_null(); ++i) {
    json n = parsed(obst_ws->next_of("notification", 10s));
    if (n.is_null()) break;
    if (n["kind"] == "alert") alert = n;
  }
  ASSERT_FALSE(alert.is_null()) << server_->log();
  EXPECT_EQ(alert["payload"]["service"], "obstetrics");
  EXPECT_EQ(alert["payload"]["case"], case_id);
  const std::string path = "/api/emergencies/" + std::to_string(case_id);
  auto ack = server_->request(obst, "POST", path + "/ack", "");
  ASSERT_EQ(ack.status, 200) << ack.body;
  EXPECT_EQ(json::parse(ack.body)["timePoints"]["expert_response"]["by"], "obst");

  auto at = [&](int minutes_ago) {
    return storage::to_iso8601(now - std::chrono::minutes(minutes_ago));
  };
  const std::string points = path + "/time-points";
  EXPECT_EQ(post("doctor", points, {{"point", "wire_crossing"}}).status, 400);
  ASSERT_EQ(post("doctor", points, {{"point", "delivery"}, {"at", at(2)}}).status, 200);
  auto timed = post("doctor", points, {{"point", "decision_to_deliver"}, {"at", at(37)}});
  ASSERT_EQ(timed.status, 200) << timed.body;
  json interval = json::parse(timed.body)["intervals"][0];
  EXPECT_EQ(interval["status"], "breached");
  EXPECT_NEAR(interval["minutes"].get<double>(), 35, 0.1);

  // The board by centre.
  auto board = [&](const std::string& query) {
    return server_->get(tokens_["cardio"], "/api/emergencies" + query);
  };
  ASSERT_EQ(board("?kind=maternal").status, 200);
  json maternal = json::parse(board("?kind=maternal").body)["cases"];
  ASSERT_EQ(maternal.size(), 1u);
  EXPECT_EQ(maternal[0]["id"], case_id);
  EXPECT_TRUE(json::parse(board("?kind=trauma").body)["cases"].empty());
  EXPECT_EQ(board("?kind=burns").status, 400);

  // The centre's quality figures: a second case within the consortium's 20 minutes, and a
  // third whose delivery is not recorded yet.
  ASSERT_EQ(post("cardio", path + "/close", json::object()).status, 200);
  for (const std::string id : {"TA-M2", "TA-M3"}) {
    auto second = post("doctor", "/api/emergencies", {{"kind", "maternal"}, {"patientId", id}});
    ASSERT_EQ(second.status, 201) << second.body;
    const std::string more = "/api/emergencies/" +
                             std::to_string(json::parse(second.body)["id"].get<std::int64_t>()) +
                             "/time-points";
    ASSERT_EQ(post("doctor", more, {{"point", "decision_to_deliver"}, {"at", at(10)}}).status, 200);
    if (id == "TA-M2") {
      ASSERT_EQ(post("doctor", more, {{"point", "delivery"}, {"at", at(2)}}).status, 200);
    }
  }
  auto stats = server_->get(tokens_["cardio"], "/api/stats/emergency?kind=maternal");
  ASSERT_EQ(stats.status, 200) << stats.body;
  json figures = json::parse(stats.body)["intervals"];
  ASSERT_EQ(figures.size(), 1u) << stats.body;
  EXPECT_EQ(figures[0]["centre"], "maternal");
  EXPECT_EQ(figures[0]["interval"], "decision_to_delivery");
  EXPECT_EQ(figures[0]["targetMinutes"], 20);
  EXPECT_EQ(figures[0]["cases"], 3);
  EXPECT_EQ(figures[0]["started"], 3);
  EXPECT_EQ(figures[0]["done"], 2);
  EXPECT_EQ(figures[0]["met"], 1);
  EXPECT_EQ(figures[0]["metPercent"], 50.0);
  EXPECT_NEAR(figures[0]["medianMinutes"].get<double>(), 8, 0.1);
  EXPECT_NEAR(figures[0]["p90Minutes"].get<double>(), 35, 0.1);
  json by_site = json::parse(
      server_->get(tokens_["cardio"], "/api/stats/emergency?kind=maternal&by=institution").body);
  ASSERT_EQ(by_site["intervals"].size(), 1u);
  EXPECT_EQ(by_site["intervals"][0]["institution"], "ta");
  // By month of opening, in the hub's local time (UTC+8 unless configured).
  json by_month = json::parse(
      server_->get(tokens_["cardio"], "/api/stats/emergency?kind=maternal&by=month").body);
  ASSERT_EQ(by_month["intervals"].size(), 1u) << by_month.dump();
  EXPECT_EQ(by_month["intervals"][0]["month"],
            storage::to_iso8601(now + std::chrono::hours(8)).substr(0, 7));
  EXPECT_EQ(by_month["intervals"][0]["done"], 2);
  auto csv = server_->get(tokens_["cardio"], "/api/stats/emergency?format=csv&kind=maternal");
  EXPECT_NE(csv.body.find("maternal,decision_to_delivery,,20,3,3,2,1,50.0,8.0,35.0,0"),
            std::string::npos)
      << csv.body;
  // Cases opened before the period are not counted; a township doctor sees no statistics.
  auto later =
      server_->get(tokens_["cardio"],
                   "/api/stats/emergency?from=" + storage::to_iso8601(now + std::chrono::hours(1)));
  EXPECT_TRUE(json::parse(later.body)["intervals"].empty()) << later.body;
  EXPECT_EQ(server_->get(tokens_["doctor"], "/api/stats/emergency").status, 403);
  // The centre's data manager (quality control) finds in the theatre record that the decision
  // to deliver was taken 19 minutes before delivery, not 35: they correct the closed
  // case, with the reason. Nobody else may change a closed case; the earlier record stays.
  const std::string qc = server_->add_user("qc", {"qc_reviewer"}, "lead");
  ASSERT_FALSE(qc.empty());
  tokens_["qc"] = qc;
  EXPECT_EQ(post("doctor", points, {{"point", "decision_to_deliver"}, {"at", at(21)}}).status, 409);
  EXPECT_EQ(post("qc", points, {{"point", "decision_to_deliver"}, {"at", at(21)}}).status, 400);
  auto corrected = post(
      "qc", points,
      {{"point", "decision_to_deliver"}, {"at", at(21)}, {"note", "手术记录：决定剖宫产时间"}});
  ASSERT_EQ(corrected.status, 200) << corrected.body;
  json fixed = json::parse(corrected.body);
  EXPECT_EQ(fixed["status"], "closed");
  EXPECT_EQ(fixed["intervals"][0]["status"], "met");
  EXPECT_EQ(fixed["timePoints"]["decision_to_deliver"]["by"], "qc");
  EXPECT_EQ(fixed["timePoints"]["decision_to_deliver"]["note"], "手术记录：决定剖宫产时间");
  int decisions = 0;  // the first record is kept
  for (const json& h : fixed["history"]) decisions += h["point"] == "decision_to_deliver";
  EXPECT_EQ(decisions, 2) << fixed.dump();
  json refigured = json::parse(
      server_->get(tokens_["cardio"], "/api/stats/emergency?kind=maternal").body)["intervals"];
  EXPECT_EQ(refigured[0]["met"], 2) << refigured.dump();
  // The closed cases for review, by the period they were opened in.
  json closed_cases = json::parse(board("?status=closed&kind=maternal").body)["cases"];
  ASSERT_EQ(closed_cases.size(), 1u);
  EXPECT_EQ(closed_cases[0]["id"], case_id);
  EXPECT_EQ(closed_cases[0]["status"], "closed");
  EXPECT_EQ(json::parse(board("?status=open&kind=maternal").body)["cases"].size(), 2u);
  EXPECT_EQ(json::parse(board("?status=all&kind=maternal").body)["cases"].size(), 3u);
  const std::string hour_ahead = storage::to_iso8601(now + std::chrono::hours(1));
  EXPECT_TRUE(json::parse(board("?status=closed&from=" + hour_ahead).body)["cases"].empty());
  EXPECT_EQ(
      json::parse(board("?status=closed&kind=maternal&to=" + hour_ahead).body)["cases"].size(), 1u);
  // Township B's doctor, whose institution neither opened nor serves the cases, sees none.
  EXPECT_TRUE(
      json::parse(
          server_->get(tokens_["tb-doctor"], "/api/emergencies?status=closed").body)["cases"]
          .empty());
  // Page by page: a full page says where the next begins; the last is short, with no next.
  std::set<std::int64_t> paged;
  std::string next;
  for (int page = 0; page < 4; ++page) {
    json p = json::parse(board("?status=open&kind=maternal&limit=1" + next).body);
    for (const json& c : p["cases"]) paged.insert(c["id"].get<std::int64_t>());
    if (p["next"].is_null()) break;
    ASSERT_EQ(p["cases"].size(), 1u) << p.dump();
    EXPECT_EQ(p["next"], p["cases"][0]["id"]);
    next = "&before=" + std::to_string(p["next"].get<std::int64_t>());
  }
  EXPECT_EQ(paged.size(), 2u);
  EXPECT_EQ(board("?status=all&before=9").status, 400);  // open first, then closed: no one order
  EXPECT_EQ(board("?status=closed&limit=501").status, 400);
  EXPECT_EQ(board("?status=closed&before=x").status, 400);
  EXPECT_EQ(board("?status=shut").status, 400);
  EXPECT_EQ(board("?status=closed&from=yesterday").status, 400);
  EXPECT_EQ(server_->get(tokens_["cardio"], "/api/stats/emergency?by=week").status, 400);
}

// A consult's video call gets the ICE servers of [calls]: the STUN servers as configured, the
// TURN servers with a credential for the signed-in user that the TURN server can check with the
// secret it shares with the hub (HMAC-SHA1 over "<expiry>:<user>"), valid for the configured
// hours; no credential for someone not signed in.
TEST(CallServers, a_signed_in_user_gets_stun_and_turn_with_their_own_expiring_credential) {
  testing::TempDir dir;
  const fs::path cfg = testing::write_consortium_config(dir.path(), R"(
[calls]
stun = ["stun:turn.consortium.example:3478"]
turn = ["turn:turn.consortium.example:3478?transport=udp", "turns:turn.consortium.example:5349"]
turn_secret = "consortium-turn-secret"
turn_credential_hours = 6
)");
  ServerProcess server(dir.path() / "data", {"--config", cfg.string()});
  ASSERT_TRUE(server.start()) << server.log();
  const std::string doctor = server.add_user("ta-doctor", {"township_doctor"}, "ta");
  ASSERT_FALSE(doctor.empty());
  auto r = server.get(doctor, "/api/calls/ice-servers");
  ASSERT_EQ(r.status, 200) << r.body;
  const json body = json::parse(r.body);
  ASSERT_EQ(body["iceServers"].size(), 2u) << body.dump();
  EXPECT_EQ(body["iceServers"][0], (json{{"urls", {"stun:turn.consortium.example:3478"}}}));
  const json& turn = body["iceServers"][1];
  EXPECT_EQ(turn["urls"].size(), 2u);
  const std::string username = turn["username"];
  ASSERT_EQ(username.substr(username.find(':')), ":ta-doctor") << username;
  // The expiry is the configured hours after now, as the answer says.
  const auto expires = storage::parse_iso8601(body["expiresAt"].get<std::string>());
  ASSERT_TRUE(expires.has_value()) << body.dump();
  EXPECT_EQ(std::stoll(username.substr(0, username.find(':'))),
            std::chrono::duration_cast<std::chrono::seconds>(expires->time_since_epoch()).count());
  // What the TURN server computes from the shared secret (Python's hmac, independently).
  std::string expected;
  ASSERT_EQ(testing::run_command("/usr/bin/python3 -c \"import base64,hashlib,hmac;print(base64."
                                 "b64encode(hmac.new(b'consortium-turn-secret', b'" +
                                     username + "', hashlib.sha1).digest()).decode())\"",
                                 &expected),
            0);
  EXPECT_EQ(turn["credential"].get<std::string>() + "\n", expected);
  EXPECT_EQ(server.request("", "GET", "/api/calls/ice-servers").status, 401);
  EXPECT_EQ(server.stop(), 0) << server.log();
}

INSTANTIATE_TEST_SUITE_P(Backends, TeleconsultTest, ::testing::Values("sqlite", "postgres"),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
}  // namespace yilian
