// The live hub driven through a fake transport: no sockets, the real stores on an in-memory
// database, the hub's own thread. Waits poll for a state (bounded), never sleep.
#include "yilian/teleconsult/hub.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "test_db.h"
#include "test_util.h"
#include "yilian/identity/accounts.h"

namespace yilian::teleconsult {
namespace {

using nlohmann::json;

// Records what the hub sends, per connection.
class FakeTransport : public Transport {
 public:
  void send(std::uint64_t conn, std::string text) override {
    {
      std::lock_guard lock(mu_);
      sent_[conn].push_back(json::parse(text));
    }
    cv_.notify_all();
  }
  void close(std::uint64_t conn, int code, const std::string&) override {
    {
      std::lock_guard lock(mu_);
      closed_[conn] = code;
    }
    cv_.notify_all();
  }
  // The earliest message of `type` sent to `conn` and not taken yet (messages of other types
  // stay for later calls, whatever order they came in), or null when none comes within a
  // generous bound.
  json next_of(std::uint64_t conn, const std::string& type) {
    std::unique_lock lock(mu_);
    json found;
    cv_.wait_for(lock, std::chrono::seconds(20), [&] {
      auto& list = sent_[conn];
      auto& taken = taken_[conn];
      taken.resize(list.size(), false);
      for (std::size_t i = 0; i < list.size(); ++i) {
        if (!taken[i] && list[i]["type"] == type) {
          taken[i] = true;
          found = list[i];
          return true;
        }
      }
      return false;
    });
    return found;
  }
  // Every message of `type` sent to `conn` so far, taken or not.
  std::vector<json> sent_of(std::uint64_t conn, const std::string& type) {
    std::lock_guard lock(mu_);
    std::vector<json> out;
    for (const json& m : sent_[conn]) {
      if (m["type"] == type) out.push_back(m);
    }
    return out;
  }
  // The close code the hub closed `conn` with (bounded wait), 0 when it did not.
  int close_code(std::uint64_t conn) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(20), [&] { return closed_.count(conn) > 0; });
    auto it = closed_.find(conn);
    return it == closed_.end() ? 0 : it->second;
  }
  bool closed(std::uint64_t conn) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(20), [&] { return closed_.count(conn) > 0; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::uint64_t, std::vector<json>> sent_;
  std::map<std::uint64_t, std::vector<bool>> taken_;
  std::map<std::uint64_t, int> closed_;
};

class HubTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // A file, as the hub has: the hub's thread and the test's read and write it at once, which
    // an in-memory database (shared cache, table locks) refuses now and then.
    db_ = testing::index_database(dir_.path() / "index.sqlite");
    accounts_ = std::make_unique<identity::Accounts>(*db_);
    consults_ = std::make_unique<ConsultStore>(*db_);
    cases_ = std::make_unique<CaseStore>(*db_);
    referrals_ = std::make_unique<ReferralStore>(*db_);
    notifications_ = std::make_unique<NotificationStore>(*db_);
    auto inst = accounts_->put_institution({0, "ta", "Township A", "township", "", {}, {}});
    ASSERT_TRUE(inst.ok());
    institution_ = inst->id;
    for (auto [name, role] :
         {std::pair{"doc", Role::township_doctor}, std::pair{"cardio", Role::cardiologist}}) {
      identity::NewUser u;
      u.username = name;
      u.institution_code = "ta";
      u.roles = 1u << static_cast<unsigned>(role);
      u.password_hash = "unused";
      auto added = accounts_->add_user(u, "2026-12-01T00:00:00.000Z");
      ASSERT_TRUE(added.ok());
      auto p = accounts_->principal(added->id);
      ASSERT_TRUE(p.ok());
      users_[name] = *p;
    }
    start_hub();
  }
  void TearDown() override { hub_->stop(); }

  // Starts the hub; `relayed`: as one node of several, its relayed envelopes kept in relayed_.
  void start_hub(bool relayed = false, HubOptions options = {}) {
    hub_ = std::make_unique<Hub>(
        Stores{*consults_, *cases_, *referrals_, *notifications_},
        [this](std::string_view authorization) -> Result<Principal> {
          for (const auto& [name, p] : users_) {
            if (authorization == "Bearer tok-" + name) return p;
          }
          return make_error(Errc::unauthenticated, "unknown token");
        },
        nullptr, [this] { return now_.load(); }, options);
    hub_->set_sources({.task = [this](std::int64_t id) -> Result<std::optional<reading::TaskRow>> {
                         if (task_ && task_->id == id) return task_;
                         return std::optional<reading::TaskRow>{};
                       },
                       .users = [this]() -> Result<std::vector<Principal>> {
                         std::vector<Principal> out;
                         for (const auto& [name, p] : users_) out.push_back(p);
                         return out;
                       }});
    if (relayed) {
      hub_->set_relay(
          "node-a",
          [this](std::string envelope) {
            std::lock_guard lock(relayed_mu_);
            relayed_.push_back(std::move(envelope));
          },
          [this] {
            std::lock_guard lock(relayed_mu_);
            return peers_;
          });
    }
    hub_->start(transport_);
  }

  // Opens a connection and says hello as `user`.
  std::uint64_t connect(const std::string& user) {
    const std::uint64_t conn = next_conn_++;
    hub_->opened(conn, "", "127.0.0.1");
    hub_->received(conn, json{{"type", "hello"}, {"token", "tok-" + user}}.dump());
    EXPECT_FALSE(transport_.next_of(conn, "welcome").is_null()) << user;
    return conn;
  }

  // Returns once a whole wake-up of the hub thread, housekeeping included, has run after
  // this call: the second pong is sent after the first one's wake-up ended.
  // A user of the lead hospital (after lead_hospital_on_call) with one role and, when given,
  // their services (a reader's queues, a physician's emergency services).
  void lead_user(const std::string& name, Role role,
                 const std::vector<std::string>& services = {}) {
    identity::NewUser u;
    u.username = name;
    u.institution_code = "lh";
    u.roles = 1u << static_cast<unsigned>(role);
    u.password_hash = "unused";
    auto added = accounts_->add_user(u, "2026-12-01T00:00:00.000Z");
    ASSERT_TRUE(added.ok());
    if (!services.empty()) {
      ASSERT_TRUE(accounts_->set_user_services(name, services).ok());
    }
    auto p = accounts_->principal(added->id);
    ASSERT_TRUE(p.ok());
    users_[name] = *p;
  }
  // A radiologist `rad` at the lead hospital, and the lead's `backup` as the on-call primary
  // of `service` from 08:00 to 20:00 (after lead_hospital_on_call).
  void lead_radiologist_and_primary(const std::string& service) {
    lead_user("rad", Role::radiologist);
    ShiftRow s;
    s.institution_id = users_["oncall"].institution_id;
    s.service = service;
    s.role = "primary";
    s.user_id = users_["backup"].user_id;
    s.starts_at = "2026-12-01T08:00:00.000Z";
    s.ends_at = "2026-12-01T20:00:00.000Z";
    s.created_by = "admin";
    s.created_at = "2026-11-30T10:00:00.000Z";
    ASSERT_TRUE(cases_->add_shift(s).ok());
  }

  void sync(std::uint64_t conn) {
    for (int i = 0; i < 2; ++i) {
      hub_->received(conn, json{{"type", "ping"}, {"ref", "sync"}}.dump());
      EXPECT_FALSE(transport_.next_of(conn, "pong").is_null());
    }
  }

  // Task `id` (the only one the hub can look up): STAT, of township A, received at 08:55.
  void stat_task(std::int64_t id, const std::string& modality, const std::string& reason) {
    reading::TaskRow t;
    t.id = id;
    t.institution_id = institution_;
    t.institution_code = "ta";
    t.is_ecg = modality == "ECG";
    t.modality = modality;
    t.priority = 0;
    t.priority_reason = reason;
    t.study_uid = "1.2.3." + std::to_string(id);
    t.patient_id = "P" + std::to_string(id);
    t.received_at = "2026-12-01T08:55:00.000Z";
    task_ = t;
  }

  // The stroke case a STAT CT (task `task`) opens, as `conn` is told of it: its id, or 0.
  std::int64_t stroke_case(std::uint64_t conn, std::int64_t task) {
    stat_task(task, "CT", "stroke");
    hub_->task_event({task, "2026-12-01T08:56:00.000Z", "routed", "", ""});
    json alert = transport_.next_of(conn, "notification");
    if (alert.is_null() || alert["kind"] != "emergency") return 0;
    return alert["payload"]["case"];
  }

  // A consult requested by doc and accepted by cardio: both are participants.
  std::int64_t accepted_consult() {
    NewConsult nc{institution_, users_["doc"].user_id, "P1", "", "chest pain?",
                  "urgent",     "cardiology",          0,    {}};
    auto c = consults_->create(nc, "2026-12-01T08:00:00.000Z", "doc");
    EXPECT_TRUE(c.ok());
    auto accept = [this](const ConsultRow&) -> Result<ConsultChange> {
      ConsultChange ch;
      ch.status = "accepted";
      ch.assignee_id = users_["cardio"].user_id;
      ch.event.type = "accepted";
      return ch;
    };
    EXPECT_TRUE(consults_->change(c->id, accept, "2026-12-01T08:01:00.000Z").ok());
    return c->id;
  }

  testing::TempDir dir_;
  std::unique_ptr<storage::Database> db_;
  std::unique_ptr<identity::Accounts> accounts_;
  std::unique_ptr<ConsultStore> consults_;
  std::unique_ptr<CaseStore> cases_;
  std::unique_ptr<ReferralStore> referrals_;
  std::unique_ptr<NotificationStore> notifications_;
  std::map<std::string, Principal> users_;
  std::int64_t institution_ = 0;
  std::atomic<storage::TimePoint> now_{*storage::parse_iso8601("2026-12-01T09:00:00.000Z")};
  std::optional<reading::TaskRow> task_;
  FakeTransport transport_;
  std::unique_ptr<Hub> hub_;
  std::uint64_t next_conn_ = 1;
  std::mutex relayed_mu_;
  std::vector<std::string> relayed_;
  std::vector<std::string> peers_;  // the other nodes the cluster lists (relayed hubs)
};

// One user's connections are limited (tabs, devices, a runaway script): beyond the limit the
// connection is told why and closed 4429; closing one makes room again.
TEST_F(HubTest, connections_beyond_the_per_user_limit_are_refused_and_room_comes_back) {
  hub_->stop();
  start_hub(false, HubOptions{.max_connections_per_user = 2});
  const std::uint64_t first = connect("doc");
  connect("doc");
  const std::uint64_t third = next_conn_++;
  hub_->opened(third, "", "127.0.0.1");
  hub_->received(third, json{{"type", "hello"}, {"token", "tok-doc"}}.dump());
  json refused = transport_.next_of(third, "error");
  EXPECT_EQ(refused["code"], "too_many_connections") << refused.dump();
  EXPECT_EQ(transport_.close_code(third), 4429);
  hub_->closed(third);
  // Another user is not affected; once the first of doc's connections is gone, doc gets in.
  connect("cardio");
  hub_->closed(first);
  connect("doc");
  EXPECT_EQ(hub_->counters().refused_connections, 1u);
}

// Connections from one address are limited before anyone signs in.
TEST_F(HubTest, connections_beyond_the_per_address_limit_are_refused_before_hello) {
  hub_->stop();
  start_hub(false, HubOptions{.max_connections_per_address = 2});
  for (int i = 0; i < 2; ++i) hub_->opened(next_conn_++, "", "10.0.0.9");
  const std::uint64_t third = next_conn_++;
  hub_->opened(third, "", "10.0.0.9");
  EXPECT_EQ(transport_.next_of(third, "error")["code"], "too_many_connections");
  EXPECT_EQ(transport_.close_code(third), 4429);
  // What the refused connection sends is not looked at, even a valid hello.
  hub_->received(third, json{{"type", "hello"}, {"token", "tok-doc"}}.dump());
  // Another address connects and signs in.
  const std::uint64_t other = connect("doc");
  sync(other);
  EXPECT_TRUE(transport_.sent_of(third, "welcome").empty());
}

// A connection's messages above its rate are dropped with one rate_limited error a second;
// the rate comes back with time (the hub's injected clock).
TEST_F(HubTest, messages_above_a_connections_rate_are_dropped_with_one_error_a_second) {
  hub_->stop();
  start_hub(false, HubOptions{.messages_per_second = 1, .message_burst = 3});
  const std::uint64_t conn = next_conn_++;
  hub_->opened(conn, "Bearer tok-doc", "127.0.0.1");  // signed in by header: no hello to count
  EXPECT_FALSE(transport_.next_of(conn, "welcome").is_null());
  for (int i = 0; i < 5; ++i) {
    hub_->received(conn, json{{"type", "ping"}, {"ref", "p" + std::to_string(i)}}.dump());
  }
  json limited = transport_.next_of(conn, "error");
  EXPECT_EQ(limited["code"], "rate_limited") << limited.dump();
  EXPECT_EQ(limited["ref"], "p3");
  // p4 is dropped without a word: wait (bounded) until the hub has counted it, before time moves.
  for (int i = 0; i < 2000 && hub_->counters().rate_limited < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  now_ = now_.load() + std::chrono::seconds(1);
  hub_->received(conn, json{{"type", "ping"}, {"ref", "later"}}.dump());
  std::vector<std::string> refs;
  for (int i = 0; i < 4; ++i) refs.push_back(transport_.next_of(conn, "pong")["ref"]);
  EXPECT_EQ(refs, (std::vector<std::string>{"p0", "p1", "p2", "later"}));
  EXPECT_EQ(transport_.sent_of(conn, "error").size(), 1u);  // p4 dropped without a second error
  EXPECT_EQ(hub_->counters().rate_limited, 2u);
}

TEST_F(HubTest, a_bad_token_is_answered_with_an_error_and_the_connection_closed) {
  hub_->opened(99, "", "127.0.0.1");
  hub_->received(99, json{{"type", "hello"}, {"token", "nobody"}}.dump());
  EXPECT_FALSE(transport_.next_of(99, "error").is_null());
  EXPECT_TRUE(transport_.closed(99));
}

TEST_F(HubTest, chat_is_stored_numbered_and_delivered_to_everyone_in_the_room) {
  const std::int64_t consult = accepted_consult();
  const std::uint64_t doc = connect("doc"), cardio = connect("cardio");
  for (std::uint64_t c : {doc, cardio}) {
    hub_->received(c, json{{"type", "join"}, {"consult", consult}}.dump());
    ASSERT_FALSE(transport_.next_of(c, "replayed").is_null());
  }
  hub_->received(
      doc,
      json{{"type", "chat"}, {"consult", consult}, {"text", "ST elevation?"}, {"clientId", "m1"}}
          .dump());
  json seen = transport_.next_of(cardio, "chat");
  ASSERT_FALSE(seen.is_null());
  EXPECT_EQ(seen["seq"], 1);
  EXPECT_EQ(seen["text"], "ST elevation?");
  EXPECT_EQ(transport_.next_of(doc, "chat")["seq"], 1);  // the sender's own confirmation
  // The message is in the store before anyone saw it.
  auto stored = consults_->messages(consult, 0, 10);
  ASSERT_TRUE(stored.ok());
  ASSERT_EQ(stored->size(), 1u);
  EXPECT_EQ(stored->front().text, "ST elevation?");
}

TEST_F(HubTest, a_notification_acknowledged_right_after_a_chat_message_is_acknowledged) {
  // Chat opens the hub's store batch; an acknowledgement handled in the same wake-up writes
  // through the same database and must join that batch, not wait for it.
  const std::int64_t consult = accepted_consult();
  auto id = notifications_->notify(users_["doc"].user_id, "test", "{}", "2026-12-01T08:30:00.000Z");
  ASSERT_TRUE(id.ok());
  const std::uint64_t doc = connect("doc");
  hub_->received(doc, json{{"type", "join"}, {"consult", consult}}.dump());
  ASSERT_FALSE(transport_.next_of(doc, "replayed").is_null());
  hub_->received(doc, json{{"type", "chat"}, {"consult", consult}, {"text", "one"}}.dump());
  hub_->received(doc, json{{"type", "ack"}, {"notification", *id}}.dump());
  EXPECT_EQ(transport_.next_of(doc, "acked")["notification"], *id);
  EXPECT_EQ(transport_.next_of(doc, "chat")["text"], "one");
  auto pending = notifications_->count_pending_notifications(users_["doc"].user_id);
  ASSERT_TRUE(pending.ok());
  EXPECT_EQ(*pending, 0);
}

TEST_F(HubTest, a_consult_another_node_holds_puts_its_messages_off_without_reordering_a_sender) {
  if (!testing::on_postgres()) GTEST_SKIP() << "one SQLite writer: no other node's locks";
  hub_->stop();
  start_hub(/*relayed=*/true);
  const std::int64_t held = accepted_consult(), free = accepted_consult();
  const std::uint64_t doc = connect("doc"), cardio = connect("cardio");
  for (std::uint64_t c : {doc, cardio}) {
    for (std::int64_t consult : {held, free}) {
      hub_->received(c, json{{"type", "join"}, {"consult", consult}}.dump());
      ASSERT_FALSE(transport_.next_of(c, "replayed").is_null());
    }
  }
  // Another node's batch holds the first consult's row.
  auto other = testing::raw_connection(*db_);
  ASSERT_TRUE(other->exec("BEGIN").ok());
  ASSERT_TRUE(
      other
          ->exec(("SELECT id FROM consults WHERE id = " + std::to_string(held) + " FOR UPDATE")
                     .c_str())
          .ok());
  hub_->received(doc, json{{"type", "chat"}, {"consult", held}, {"text", "one"}}.dump());
  hub_->received(doc, json{{"type", "chat"}, {"consult", free}, {"text", "two"}}.dump());
  for (int i = 0; i < 2000 && hub_->counters().deferred == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_GE(hub_->counters().deferred, 1u);
  ASSERT_TRUE(other->exec("COMMIT").ok());
  // Both arrive, each once, in the order doc sent them.
  ASSERT_FALSE(transport_.next_of(cardio, "chat").is_null());
  ASSERT_FALSE(transport_.next_of(cardio, "chat").is_null());
  const auto seen = transport_.sent_of(cardio, "chat");
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0]["text"], "one");
  EXPECT_EQ(seen[0]["seq"], 1);
  EXPECT_EQ(seen[1]["text"], "two");
  for (std::int64_t consult : {held, free}) {
    auto stored = consults_->messages(consult, 0, 10);
    ASSERT_TRUE(stored.ok());
    EXPECT_EQ(stored->size(), 1u);
  }
  std::lock_guard lock(relayed_mu_);
  EXPECT_FALSE(relayed_.empty());  // the other nodes' members get both too
}

TEST_F(HubTest, a_participant_whose_node_leaves_the_cluster_is_shown_offline) {
  hub_->stop();
  start_hub(/*relayed=*/true);
  const std::int64_t consult = accepted_consult();
  const std::uint64_t doc = connect("doc");
  hub_->received(doc, json{{"type", "join"}, {"consult", consult}}.dump());
  ASSERT_FALSE(transport_.next_of(doc, "replayed").is_null());
  auto cardio_presence = [&] {  // the room's next word on the cardiologist (doc's own skipped)
    for (int i = 0; i < 10; ++i) {
      json p = transport_.next_of(doc, "presence");
      if (p.is_null() || p["user"] == "cardio") return p;
    }
    return json();
  };
  auto next_second = [&] {  // the hub compares the cluster's node list once a second
    now_ = now_.load() + std::chrono::seconds(2);
    sync(doc);
  };
  {
    std::lock_guard lock(relayed_mu_);
    peers_ = {"node-b"};
  }
  next_second();
  // node-b's cardiologist is in the room.
  hub_->relayed(json{
      {"k", "presence"},
      {"node", "node-b"},
      {"p", json::array({json::array({consult, users_["cardio"].user_id, "cardio", "online"})})}}
                    .dump());
  json online = cardio_presence();
  ASSERT_FALSE(online.is_null());
  EXPECT_EQ(online["status"], "online");
  // node-b is gone from the list (it died): what it had announced goes with it.
  {
    std::lock_guard lock(relayed_mu_);
    peers_.clear();
  }
  next_second();
  json offline = cardio_presence();
  ASSERT_FALSE(offline.is_null());
  EXPECT_EQ(offline["status"], "offline");
}

TEST_F(HubTest, a_message_another_node_committed_during_a_join_reaches_the_joiner_once) {
  hub_->stop();
  start_hub(/*relayed=*/true);
  const std::int64_t consult = accepted_consult();
  // node-b stores the doctor's message; its relayed copy is still on the way when the
  // cardiologist joins here, so the join's replay reads it from the store.
  auto other_node = [&](const std::string& client_id, const std::string& text) {
    auto b = consults_->begin_batch();
    EXPECT_TRUE(b.ok());
    ChatMessage m;
    m.consult_id = consult;
    m.author_id = users_["doc"].user_id;
    m.author = "doc";
    m.client_id = client_id;
    m.at = "2026-12-01T09:00:00.000Z";
    m.text = text;
    bool duplicate = false;
    auto saved = (*b)->append_message(m, duplicate);
    EXPECT_TRUE(saved.ok());
    EXPECT_TRUE((*b)->commit().ok());
    json out = json{{"type", "chat"},
                    {"consult", consult},
                    {"seq", saved->seq},
                    {"from", "doc"},
                    {"text", text}};
    return json{{"k", "room"}, {"id", consult}, {"t", out.dump()}, {"seq", saved->seq}}.dump();
  };
  const std::string first = other_node("d1", "ST elevation in V2-V4?");
  const std::uint64_t cardio = connect("cardio");
  hub_->received(cardio, json{{"type", "join"}, {"consult", consult}, {"afterSeq", 0}}.dump());
  ASSERT_FALSE(transport_.next_of(cardio, "replayed").is_null());
  hub_->relayed(first);  // the live copy of what the replay held
  hub_->relayed(other_node("d2", "Aspirin given."));
  json second = transport_.next_of(cardio, "chat");  // the replayed one is taken first
  second = transport_.next_of(cardio, "chat");
  ASSERT_FALSE(second.is_null());
  EXPECT_EQ(second["seq"], 2);
  sync(cardio);
  const auto chats = transport_.sent_of(cardio, "chat");
  ASSERT_EQ(chats.size(), 2u);
  EXPECT_EQ(chats[0]["seq"], 1);
  EXPECT_EQ(chats[1]["seq"], 2);
  // What this node stores goes to the other nodes with its seq, for the same check there.
  hub_->received(
      cardio,
      json{{"type", "chat"}, {"consult", consult}, {"text", "Cath lab ready."}, {"clientId", "c1"}}
          .dump());
  ASSERT_EQ(transport_.next_of(cardio, "chat")["seq"], 3);
  sync(cardio);  // the relay follows the room's sends in the same commit
  std::lock_guard lock(relayed_mu_);
  bool carried = false;
  for (const std::string& e : relayed_) {
    const json j = json::parse(e);
    carried |= j.value("k", "") == "room" && j.value("seq", 0) == 3;
  }
  EXPECT_TRUE(carried);
}

TEST_F(HubTest, a_suspected_stemi_opens_one_chest_pain_case_and_alerts_its_clinicians) {
  const std::uint64_t cardio = connect("cardio");
  stat_task(7, "ECG", "");
  hub_->task_event({7, "2026-12-01T08:56:00.000Z", "emergency", "ecg", "ST elevation V1-V4"});
  json alert = transport_.next_of(cardio, "notification");
  ASSERT_FALSE(alert.is_null());
  EXPECT_EQ(alert["kind"], "emergency");
  // The same event again (a resent ECG) does not open a second case.
  hub_->task_event({7, "2026-12-01T08:57:00.000Z", "emergency", "ecg", "ST elevation V1-V4"});
  sync(cardio);
  auto open = cases_->open_cases();
  ASSERT_TRUE(open.ok());
  ASSERT_EQ(open->size(), 1u);
  EXPECT_EQ(open->front().kind, "chest_pain");
  EXPECT_EQ(open->front().reason, "ST elevation V1-V4");
}

TEST_F(HubTest, a_stroke_case_past_its_target_is_announced_once_to_followers_and_clinicians) {
  const std::uint64_t cardio = connect("cardio");
  const std::int64_t id = stroke_case(cardio, 8);
  ASSERT_NE(id, 0);
  // Arrival at the door 08:30; the CT (the study's arrival) 08:55: door-to-needle runs.
  {
    auto door = cases_->record_time_point(
        id, {0, "door", "2026-12-01T08:30:00.000Z", "doc", "2026-12-01T08:59:00.000Z", ""});
    ASSERT_TRUE(door.ok()) << door.error().message;
  }
  hub_->received(cardio, json{{"type", "case.join"}, {"case", id}}.dump());
  json view = transport_.next_of(cardio, "case");
  ASSERT_FALSE(view.is_null());
  EXPECT_EQ(view["case"]["id"], id);
  sync(cardio);
  EXPECT_TRUE(transport_.sent_of(cardio, "case.breach").empty());  // 30 of 60 minutes

  now_ = now_.load() + std::chrono::minutes(40);  // 70 minutes since the door
  sync(cardio);
  sync(cardio);
  auto breaches = transport_.sent_of(cardio, "case.breach");
  ASSERT_EQ(breaches.size(), 1u);
  EXPECT_EQ(breaches[0]["interval"], "door_to_needle");
  // Everyone who may see the case has it as a notification, connected or not.
  for (const char* user : {"cardio", "doc"}) {
    auto pending = notifications_->pending_notifications(users_[user].user_id, 10);
    ASSERT_TRUE(pending.ok());
    int n = 0;
    for (const auto& row : *pending) n += row.kind == "breach" ? 1 : 0;
    EXPECT_EQ(n, 1) << user;
  }
}

// A case closed before its needle keeps the minutes its door-to-needle had run at closing: a
// reviewer an hour later sees 20 minutes, not 80 and a breach.
TEST_F(HubTest, a_closed_cases_clocks_stopped_when_it_closed) {
  const std::uint64_t cardio = connect("cardio");
  const std::int64_t id = stroke_case(cardio, 9);
  ASSERT_NE(id, 0);
  ASSERT_TRUE(cases_
                  ->record_time_point(id, {0, "door", "2026-12-01T08:40:00.000Z", "doc",
                                           "2026-12-01T08:59:00.000Z", ""})
                  .ok());
  ASSERT_TRUE(cases_->close_case(id, "2026-12-01T09:00:00.000Z").ok());
  now_ = now_.load() + std::chrono::hours(1);
  hub_->received(cardio, json{{"type", "case.join"}, {"case", id}}.dump());
  json view = transport_.next_of(cardio, "case");
  ASSERT_FALSE(view.is_null());
  EXPECT_EQ(view["case"]["status"], "closed");
  json needle;
  for (const json& i : view["case"]["intervals"]) {
    if (i["name"] == "door_to_needle") needle = i;
  }
  ASSERT_TRUE(needle.is_object()) << view.dump();
  EXPECT_EQ(needle["status"], "running");
  EXPECT_DOUBLE_EQ(needle["minutes"].get<double>(), 20);
  sync(cardio);
  EXPECT_TRUE(transport_.sent_of(cardio, "case.breach").empty());
}

// A centre's list is filtered where the cases are read: a maternal case stays on its board
// (and in its month's review) however many chest-pain cases the institution opened after it.
// The listed cases' alerts are read for all of them at once.
TEST_F(HubTest, a_centres_list_keeps_its_cases_beside_many_newer_cases_of_another_centre) {
  auto open = [&](const std::string& kind, int n) {
    CaseRow c;
    c.kind = kind;
    c.status = "open";
    c.institution_id = institution_;
    c.patient_id = "P" + std::to_string(n);
    c.source = "manual";
    c.opened_by = "doc";
    c.opened_at = "2026-12-01T08:00:00.000Z";
    bool existed = false;
    auto made = cases_->open_case(c, existed);
    EXPECT_TRUE(made.ok());
    return made.ok() ? made->id : 0;
  };
  const std::int64_t maternal = open("maternal", 0);
  std::int64_t last = 0;
  for (int i = 1; i <= 500; ++i) last = open("chest_pain", i);
  ASSERT_NE(maternal, 0);
  auto every = cases_->cases({institution_}, {});
  ASSERT_TRUE(every.ok());
  EXPECT_EQ(every->size(), 500u);  // the bound: the oldest, the maternal case, is not among them
  // Page by page, each case once.
  std::set<std::int64_t> seen;
  CaseStore::Filter page;
  page.limit = 200;
  for (int i = 0; i < 5; ++i) {
    auto got = cases_->cases({institution_}, page);
    ASSERT_TRUE(got.ok());
    for (const CaseRow& c : *got) EXPECT_TRUE(seen.insert(c.id).second) << c.id;
    if (static_cast<std::int64_t>(got->size()) < page.limit) break;
    page.before_id = got->back().id;
  }
  EXPECT_EQ(seen.size(), 501u);
  EXPECT_TRUE(seen.count(maternal));
  CaseStore::Filter one;
  one.kind = "maternal";
  auto board = cases_->cases({institution_}, one);
  ASSERT_TRUE(board.ok());
  ASSERT_EQ(board->size(), 1u);
  EXPECT_EQ(board->front().id, maternal);

  ASSERT_TRUE(
      cases_
          ->record_alert(maternal, users_["cardio"].user_id, "on_call", "2026-12-01T08:01:00.000Z")
          .ok());
  ASSERT_TRUE(
      cases_->record_alert(last, users_["doc"].user_id, "escalation", "2026-12-01T08:02:00.000Z")
          .ok());
  ASSERT_TRUE(
      cases_->record_alert(last, users_["cardio"].user_id, "on_call", "2026-12-01T08:01:30.000Z")
          .ok());
  auto alerted = cases_->alerts(std::vector<std::int64_t>{maternal, last, last - 1});
  ASSERT_TRUE(alerted.ok());
  EXPECT_EQ(alerted->size(), 2u);  // a case nobody was alerted for is absent
  ASSERT_EQ((*alerted)[maternal].size(), 1u);
  EXPECT_EQ((*alerted)[maternal][0].username, "cardio");
  ASSERT_EQ((*alerted)[last].size(), 2u);
  EXPECT_EQ((*alerted)[last][0].username, "cardio");  // in the order they were alerted
  EXPECT_EQ((*alerted)[last][1].stage, "escalation");
  auto single = cases_->alerts(last);
  ASSERT_TRUE(single.ok());
  EXPECT_EQ(single->size(), 2u);
}

// A lead hospital (parent of township A, reading its ECGs) with three cardiologists and an ECG
// reader; `oncall` is the cardiology primary and `backup` the back-up from 08:00 to 20:00.
void lead_hospital_on_call(identity::Accounts& accounts, CaseStore& cases,
                           std::map<std::string, Principal>& users) {
  ASSERT_TRUE(accounts.put_institution({0, "lh", "Lead Hospital", "lead", "", {}, {}}).ok());
  ASSERT_TRUE(accounts.put_institution({0, "ta", "Township A", "township", "lh", {}, {}}).ok());
  ASSERT_TRUE(accounts.add_reading_service({"lh", "ta", "ecg"}).ok());
  ASSERT_TRUE(accounts.add_reading_service({"lh", "ta", "imaging"}).ok());
  for (auto [name, role] :
       {std::pair{"oncall", Role::cardiologist}, std::pair{"backup", Role::cardiologist},
        std::pair{"cardio2", Role::cardiologist}, std::pair{"reader", Role::ecg_reader},
        std::pair{"er", Role::physician}}) {
    identity::NewUser u;
    u.username = name;
    u.institution_code = "lh";
    u.roles = 1u << static_cast<unsigned>(role);
    u.password_hash = "unused";
    auto added = accounts.add_user(u, "2026-12-01T00:00:00.000Z");
    ASSERT_TRUE(added.ok());
  }
  for (auto& [name, p] : users) {
    auto again = accounts.principal(p.user_id);  // reading services changed what they serve
    ASSERT_TRUE(again.ok());
    p = *again;
  }
  for (const char* name : {"oncall", "backup", "cardio2", "reader", "er"}) {
    auto u = accounts.find_user(name);
    ASSERT_TRUE(u.ok() && u->has_value());
    auto p = accounts.principal((*u)->id);
    ASSERT_TRUE(p.ok());
    users[name] = *p;
  }
  auto lh = accounts.find_institution("lh");
  ASSERT_TRUE(lh.ok() && lh->has_value());
  for (auto [name, role] : {std::pair{"oncall", "primary"}, std::pair{"backup", "backup"}}) {
    ShiftRow s;
    s.institution_id = (*lh)->id;
    s.service = "cardiology";
    s.role = role;
    s.user_id = users[name].user_id;
    s.starts_at = "2026-12-01T08:00:00.000Z";
    s.ends_at = "2026-12-01T20:00:00.000Z";
    s.created_by = "admin";
    s.created_at = "2026-11-30T10:00:00.000Z";
    ASSERT_TRUE(cases.add_shift(s).ok());
  }
}

std::vector<std::string> kinds_of(NotificationStore& store, const Principal& p) {
  std::vector<std::string> out;
  auto pending = store.pending_notifications(p.user_id, 50);
  EXPECT_TRUE(pending.ok());
  if (pending.ok()) {
    for (const auto& n : *pending) out.push_back(n.kind);
  }
  return out;
}

bool has_kind(const std::vector<std::string>& kinds, const std::string& kind) {
  return std::find(kinds.begin(), kinds.end(), kind) != kinds.end();
}

TEST_F(HubTest, a_stemi_alert_goes_to_the_on_call_cardiologist_and_escalates_unacknowledged) {
  lead_hospital_on_call(*accounts_, *cases_, users_);
  const std::uint64_t oncall = connect("oncall");
  const std::uint64_t cardio2 = connect("cardio2");
  stat_task(7, "ECG", "");
  hub_->task_event({7, "2026-12-01T08:56:00.000Z", "emergency", "ecg", "ST elevation V1-V4"});
  // Only the on-call primary is alerted (the township's own clinicians are told of the case).
  json alert = transport_.next_of(oncall, "notification");
  ASSERT_FALSE(alert.is_null());
  EXPECT_EQ(alert["kind"], "alert");
  EXPECT_EQ(alert["payload"]["stage"], "on_call");
  EXPECT_EQ(alert["payload"]["escalateAfterSeconds"], 60);
  const std::int64_t id = alert["payload"]["case"];
  sync(cardio2);
  EXPECT_TRUE(transport_.sent_of(cardio2, "notification").empty());
  EXPECT_FALSE(has_kind(kinds_of(*notifications_, users_["backup"]), "alert"));
  EXPECT_TRUE(has_kind(kinds_of(*notifications_, users_["doc"]), "emergency"));

  // 59 s: not yet. 60 s: the back-up and every cardiologist of the lead hospital.
  now_ = now_.load() + std::chrono::seconds(59);
  sync(cardio2);
  sync(cardio2);
  EXPECT_TRUE(transport_.sent_of(cardio2, "notification").empty());
  now_ = now_.load() + std::chrono::seconds(1);
  sync(cardio2);
  sync(cardio2);
  auto escalated = transport_.sent_of(cardio2, "notification");
  ASSERT_EQ(escalated.size(), 1u);
  EXPECT_EQ(escalated[0]["kind"], "alert");
  EXPECT_EQ(escalated[0]["payload"]["stage"], "escalation");
  EXPECT_TRUE(has_kind(kinds_of(*notifications_, users_["backup"]), "alert"));
  EXPECT_FALSE(has_kind(kinds_of(*notifications_, users_["reader"]), "alert"))
      << "an ECG reader is not a cardiologist";
  // The on-call primary is not alerted twice; the escalation happens once.
  now_ = now_.load() + std::chrono::seconds(120);
  sync(oncall);
  sync(oncall);
  EXPECT_EQ(transport_.sent_of(oncall, "notification").size(), 1u);
  EXPECT_EQ(transport_.sent_of(cardio2, "notification").size(), 1u);

  // The case shows whom the alert reached and when.
  auto row = cases_->get_case(id);
  ASSERT_TRUE(row.ok() && row->has_value());
  EXPECT_EQ((*row)->alert_service, "cardiology");
  EXPECT_EQ((*row)->escalated_at, "2026-12-01T09:01:00.000Z");
  auto alerted = cases_->alerts(id);
  ASSERT_TRUE(alerted.ok());
  std::map<std::string, std::string> stage;
  for (const auto& a : *alerted) stage[a.username] = a.stage;
  EXPECT_EQ(stage["oncall"], "on_call");
  EXPECT_EQ(stage["backup"], "escalation");
  EXPECT_EQ(stage["cardio2"], "escalation");
  EXPECT_EQ(stage.count("reader"), 0u);

  // One tap by the escalated cardiologist: it is the case's ecg_read time point.
  hub_->received(cardio2, json{{"type", "case.ack"}, {"case", id}}.dump());
  json acked = transport_.next_of(cardio2, "case.acked");
  ASSERT_FALSE(acked.is_null());
  EXPECT_EQ(acked["case"]["alert"]["acknowledgedBy"], "cardio2");
  EXPECT_EQ(acked["case"]["timePoints"]["ecg_read"]["at"], "2026-12-01T09:03:00.000Z");
  // Nobody else it reached has it left to answer: their cards close now and their pending
  // alerts are not shown again at their next connection.
  json closed = transport_.next_of(oncall, "alert.closed");
  ASSERT_FALSE(closed.is_null());
  EXPECT_EQ(closed["case"], id);
  EXPECT_EQ(closed["acknowledgedBy"], "cardio2");
  for (const char* who : {"oncall", "backup", "cardio2"}) {
    EXPECT_FALSE(has_kind(kinds_of(*notifications_, users_[who]), "alert")) << who;
  }
  EXPECT_TRUE(has_kind(kinds_of(*notifications_, users_["doc"]), "emergency"))
      << "the case's own notifications stay until read";
  // A later tap does not move it.
  now_ = now_.load() + std::chrono::seconds(30);
  hub_->received(oncall, json{{"type", "case.ack"}, {"case", id}}.dump());
  json again = transport_.next_of(oncall, "case.acked");
  ASSERT_FALSE(again.is_null());
  EXPECT_EQ(again["case"]["alert"]["acknowledgedBy"], "cardio2");
}

TEST_F(HubTest, an_alert_acknowledged_in_time_does_not_escalate) {
  lead_hospital_on_call(*accounts_, *cases_, users_);
  const std::uint64_t oncall = connect("oncall");
  const std::uint64_t cardio2 = connect("cardio2");
  stat_task(9, "ECG", "");
  hub_->task_event({9, "2026-12-01T08:56:00.000Z", "emergency", "ecg", "ST elevation II III aVF"});
  json alert = transport_.next_of(oncall, "notification");
  ASSERT_FALSE(alert.is_null());
  const std::int64_t id = alert["payload"]["case"];
  now_ = now_.load() + std::chrono::seconds(20);
  hub_->received(oncall, json{{"type", "case.ack"}, {"case", id}}.dump());
  ASSERT_FALSE(transport_.next_of(oncall, "case.acked").is_null());
  now_ = now_.load() + std::chrono::seconds(300);
  sync(cardio2);
  sync(cardio2);
  EXPECT_TRUE(transport_.sent_of(cardio2, "notification").empty());
  auto row = cases_->get_case(id);
  ASSERT_TRUE(row.ok() && row->has_value());
  EXPECT_EQ((*row)->acknowledged_by, "oncall");
  EXPECT_EQ((*row)->escalated_at, "");
  // Someone who may not see the case cannot acknowledge it.
  identity::NewUser u;
  u.username = "elsewhere";
  ASSERT_TRUE(accounts_->put_institution({0, "tb", "Township B", "township", "", {}, {}}).ok());
  u.institution_code = "tb";
  u.roles = 1u << static_cast<unsigned>(Role::cardiologist);
  u.password_hash = "unused";
  auto added = accounts_->add_user(u, "2026-12-01T00:00:00.000Z");
  ASSERT_TRUE(added.ok());
  auto p = accounts_->principal(added->id);
  ASSERT_TRUE(p.ok());
  users_["elsewhere"] = *p;
  const std::uint64_t other = connect("elsewhere");
  hub_->received(other, json{{"type", "case.ack"}, {"case", id}}.dump());
  json refused = transport_.next_of(other, "error");
  ASSERT_FALSE(refused.is_null());
  EXPECT_EQ(refused["code"], "not_found");
}

TEST_F(HubTest, a_stroke_ct_alerts_the_neurology_on_call_and_escalates_to_the_radiologists) {
  lead_hospital_on_call(*accounts_, *cases_, users_);
  lead_radiologist_and_primary("neurology");  // `backup` is tonight's stroke on-call
  const std::uint64_t neuro = connect("backup");
  const std::uint64_t radiologist = connect("rad");
  stat_task(8, "CT", "suspected stroke, onset 1 h");
  hub_->task_event({8, "2026-12-01T08:56:00.000Z", "routed", "", ""});
  json alert = transport_.next_of(neuro, "notification");
  ASSERT_FALSE(alert.is_null());
  EXPECT_EQ(alert["kind"], "alert");
  EXPECT_EQ(alert["payload"]["service"], "neurology");
  EXPECT_EQ(alert["payload"]["kind"], "stroke");
  // The cardiology on-call is not disturbed by a stroke.
  EXPECT_FALSE(has_kind(kinds_of(*notifications_, users_["oncall"]), "alert"));
  now_ = now_.load() + std::chrono::seconds(61);
  sync(radiologist);
  sync(radiologist);
  json escalated;  // the STAT task's own notification came first
  for (const json& n : transport_.sent_of(radiologist, "notification")) {
    if (n["kind"] == "alert") escalated = n;
  }
  ASSERT_FALSE(escalated.is_null());
  EXPECT_EQ(escalated["payload"]["stage"], "escalation");
  EXPECT_FALSE(has_kind(kinds_of(*notifications_, users_["cardio2"]), "alert"))
      << "a stroke escalates to radiologists, not cardiologists";
  const std::int64_t id = alert["payload"]["case"];
  hub_->received(radiologist, json{{"type", "case.ack"}, {"case", id}}.dump());
  json acked = transport_.next_of(radiologist, "case.acked");
  ASSERT_FALSE(acked.is_null());
  EXPECT_FALSE(acked["case"]["timePoints"]["ct_read"].is_null());
}

// The trauma centre: a STAT CT for a road-crash polytrauma opens a trauma case; the lead's
// trauma on-call is alerted; unanswered, it escalates to the physicians of the trauma service
// (the emergency physician, who names no service; not the obstetrician, who names obstetrics),
// not to the radiologists or the cardiologists; the acknowledgement is the expert's response.
TEST_F(HubTest, a_polytrauma_ct_opens_a_trauma_case_alerting_the_trauma_on_call) {
  lead_hospital_on_call(*accounts_, *cases_, users_);
  lead_radiologist_and_primary("trauma");  // `backup` is tonight's trauma surgeon on call
  lead_user("obst", Role::physician, {"obstetrics"});
  const std::uint64_t surgeon = connect("backup");
  const std::uint64_t physician = connect("er");
  const std::uint64_t obstetrician = connect("obst");
  const std::uint64_t cardiologist = connect("cardio2");
  const std::uint64_t radiologist = connect("rad");
  stat_task(9, "CT", "车祸多发伤 road-crash polytrauma");
  hub_->task_event({9, "2026-12-01T08:56:00.000Z", "routed", "", ""});
  json alert = transport_.next_of(surgeon, "notification");
  ASSERT_FALSE(alert.is_null());
  EXPECT_EQ(alert["kind"], "alert");
  EXPECT_EQ(alert["payload"]["service"], "trauma");
  EXPECT_EQ(alert["payload"]["kind"], "trauma");
  EXPECT_FALSE(has_kind(kinds_of(*notifications_, users_["oncall"]), "alert"))
      << "the cardiology on-call is not disturbed by a trauma case";
  const std::int64_t id = alert["payload"]["case"];
  auto row = cases_->get_case(id);
  ASSERT_TRUE(row.ok() && row->has_value());
  EXPECT_EQ((*row)->source, "stat_ct");

  now_ = now_.load() + std::chrono::seconds(61);
  sync(physician);
  sync(physician);
  json escalated;
  for (const json& n : transport_.sent_of(physician, "notification")) {
    if (n["kind"] == "alert") escalated = n;
  }
  ASSERT_FALSE(escalated.is_null());
  EXPECT_EQ(escalated["payload"]["stage"], "escalation");
  // Physicians of the trauma service, not the obstetrician, the radiologists or the
  // cardiologists.
  for (std::uint64_t other : {obstetrician, radiologist, cardiologist}) {
    sync(other);
    for (const json& n : transport_.sent_of(other, "notification")) {
      EXPECT_NE(n["kind"], "alert") << "a trauma case escalates to the physicians";
    }
  }
  hub_->received(physician, json{{"type", "case.ack"}, {"case", id}}.dump());
  json acked = transport_.next_of(physician, "case.acked");
  ASSERT_FALSE(acked.is_null());
  EXPECT_EQ(acked["case"]["timePoints"]["expert_response"]["by"], "er");
  EXPECT_FALSE(acked["case"]["timePoints"]["ct"].is_null());
  ASSERT_EQ(acked["case"]["intervals"].size(), 3u);
  EXPECT_EQ(acked["case"]["intervals"][0]["name"], "team_response");
}

TEST_F(HubTest, with_nobody_on_call_everyone_who_may_see_the_case_is_alerted_at_once) {
  const std::uint64_t cardio = connect("cardio");
  stat_task(8, "CT", "stroke");
  hub_->task_event({8, "2026-12-01T08:56:00.000Z", "routed", "", ""});
  json alert = transport_.next_of(cardio, "notification");
  ASSERT_FALSE(alert.is_null());
  EXPECT_EQ(alert["kind"], "emergency");
  auto open = cases_->open_cases();
  ASSERT_TRUE(open.ok() && open->size() == 1u);
  EXPECT_EQ(open->front().alert_service, "");  // nothing to escalate
}

}  // namespace
}  // namespace yilian::teleconsult
