// The live side of teleconsultation: WebSocket connections, consult rooms, chat, receipts,
// presence, typing, the shared view, annotations and WebRTC signalling.
//
// Threads: the transport (the HTTP server's lws service thread) only queues what happens on a
// connection (opened, a text message, closed); one hub thread takes everything queued, in
// order, and answers through the Transport, which queues the bytes per connection. Chat and
// other durable messages are written in one store batch per wake-up and broadcast only after
// it commits: a message is on disk before anyone sees it, and a burst costs one flush. A join
// (replay from the store) first commits what is pending, so a rejoining client gets every
// message it missed exactly once: the replay holds everything committed up to the join, and
// the broadcasts it receives afterwards all come later.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "yilian/common/principal.h"
#include "yilian/common/result.h"
#include "yilian/identity/audit.h"
#include "yilian/net/limits.h"
#include "yilian/reading/queue_store.h"
#include "yilian/storage/clock.h"
#include "yilian/teleconsult/emergency_rules.h"
#include "yilian/teleconsult/protocol.h"
#include "yilian/teleconsult/stores.h"

namespace yilian::teleconsult {

namespace hub_detail {
class Outbox;
class HubOutbox;
class Notifier;
class EmergencyCases;
}  // namespace hub_detail

// Implemented by the server that owns the sockets; callable from any thread.
class Transport {
 public:
  virtual ~Transport() = default;
  virtual void send(std::uint64_t conn, std::string text) = 0;
  virtual void close(std::uint64_t conn, int code, const std::string& reason) = 0;
};

struct HubOptions {
  std::chrono::seconds hello_timeout{10};     // to authenticate after connecting
  std::chrono::seconds revalidate_every{60};  // sessions re-checked (logout, expiry, disable)
  // Limits that keep one client from starving the others (0: none). Connections beyond them
  // get a too_many_connections error and close 4429; messages above the rate are dropped with
  // a rate_limited error (at most one a second per connection).
  std::size_t max_connections_per_user = 16;       // on this node
  std::size_t max_connections_per_address = 1000;  // a clinic's users share one NAT address
  double messages_per_second = 50;                 // per connection, sustained
  double message_burst = 200;                      // per connection, saved up while quiet
  // An emergency alert sent to an on-call primary and not acknowledged within this time goes
  // to the back-ups and the whole escalation group (emergency_rules.h).
  std::chrono::seconds alert_escalation{60};
  // The consortium's own interval targets (emergency_rules.h); empty: the defaults.
  CaseTargets case_targets{};
};

// Where the hub looks things up that other modules own (set before start()).
struct HubSources {
  std::function<Result<std::optional<reading::TaskRow>>(std::int64_t)> task;  // reading task
  std::function<Result<std::vector<Principal>>()> users;  // every enabled user, as principals
};

struct HubCounters {
  std::uint64_t connections = 0;  // open now
  std::uint64_t authenticated = 0;
  std::uint64_t messages_in = 0, messages_out = 0, chat_messages = 0, errors = 0;
  std::uint64_t batches = 0, commit_failures = 0;
  std::uint64_t deferred = 0;  // messages put off a turn: another node's batch held the consult
  std::uint64_t refused_connections = 0;  // over the per-user or per-address limit
  std::uint64_t rate_limited = 0;         // messages dropped above a connection's rate
};

class Hub {
 public:
  // Checks "Bearer <token>"; the principal, or unauthenticated.
  using Authenticate = std::function<Result<Principal>(std::string_view authorization)>;

  Hub(Stores stores, Authenticate authenticate, identity::Auditor* auditor, storage::Clock clock,
      HubOptions options = {});
  ~Hub();
  Hub(const Hub&) = delete;
  Hub& operator=(const Hub&) = delete;

  void set_sources(HubSources sources) { sources_ = std::move(sources); }
  // Several nodes (set before start()). What this hub sends that users connected to other
  // nodes must see too -- a room's messages, notifications, emergency-case updates, task and
  // consult changes -- also goes to `publish` as an envelope; the envelopes other nodes
  // publish come in through relayed() and reach this node's connections. Each event is
  // stored once, by the node where it happened.
  // `node` names this node in what it relays; `peers` lists the other nodes up now. Presence is
  // exchanged with them: each node relays its own connections' presence as it changes, a node
  // that appears gets this node's whole presence at once, and the presence a node that went
  // had announced is dropped. A participant's presence is the strongest over all nodes; a
  // WebRTC signal for a participant present on no node is answered `peer_offline`.
  void set_relay(std::string node, std::function<void(std::string envelope)> publish,
                 std::function<std::vector<std::string>()> peers) {
    node_ = std::move(node);
    relay_ = std::move(publish);
    peers_ = std::move(peers);
  }
  void relayed(std::string envelope);
  // The periodic work that must run once in the cluster (breached emergency intervals,
  // referral escalation) runs only while this says so; unset: always.
  void set_leader(std::function<bool()> leader) { leader_ = std::move(leader); }
  void start(Transport& transport);
  void stop();

  // From the transport, on any thread; handled in order on the hub thread.
  void opened(std::uint64_t conn, std::string authorization, std::string peer);
  void received(std::uint64_t conn, std::string text);
  void closed(std::uint64_t conn);
  // A consult's lifecycle changed (REST): its room learns the new status.
  void consult_changed(std::int64_t consult);
  // A new consult request: the specialists who may take it are notified.
  void consult_requested(std::int64_t consult);
  // An emergency case was opened (`opened`) or a time point recorded: followers get its state;
  // a new case alerts everyone who may see it.
  void case_changed(std::int64_t case_id, bool opened);
  // The interval targets cases are judged by (the defaults, or the consortium's own).
  const CaseTargets& case_targets() const { return options_.case_targets; }
  // Reading-queue events: suspected STEMI ("emergency") opens a chest-pain case, a STAT task
  // notifies its readers (a STAT stroke CT opens a stroke case), a critical result notifies
  // the requesting institution.
  void task_event(const reading::TaskEvent& e);
  // A referral was made or changed: clinicians of both institutions are notified.
  void referral_changed(std::int64_t referral);

  HubCounters counters() const;

 private:
  struct Item {
    enum Kind {
      open,
      message,
      close,
      changed,
      requested,
      case_update,
      task,
      referral,
      relayed
    } kind = message;
    std::uint64_t conn = 0;
    std::string text, peer;
    std::int64_t consult = 0;  // or the case, or the task
    bool flag = false;         // case_update: newly opened
  };
  struct Conn {
    std::optional<Principal> who;
    std::string authorization;  // kept to re-check the session
    std::string peer;
    std::set<std::int64_t> rooms;
    // Per room, the last seq a replay sent: a message another node committed while the replay
    // was read arrives live too and is not sent twice.
    std::map<std::int64_t, std::int64_t> replayed;
    bool away = false;
    storage::TimePoint opened;
    net::TokenBucket messages{0, 0};                     // the connection's message rate
    std::optional<storage::TimePoint> told_limited;      // the last rate_limited error sent
    bool counted_address = false, counted_user = false;  // in per_address_ / per_user_
    bool refused = false;  // over a limit and being closed: nothing it sends is looked at
  };
  struct Room {
    teleconsult::ConsultRow consult;
    std::map<std::int64_t, std::string> participants;  // user id -> role
    std::set<std::uint64_t> conns;
  };
  // Sends staged while a batch is open: delivered after it commits, or replaced by errors
  // to the senders when it fails.
  struct Staged {
    std::vector<std::pair<std::uint64_t, std::string>> on_commit;
    std::vector<std::pair<std::uint64_t, std::string>> on_failure;
    std::vector<std::string> relay_on_commit;  // envelopes for the other nodes
  };

  void run();
  // One turn over the inbox's items; the first `retried` were put off by the last turn.
  void turn(std::deque<Item>& items, std::size_t retried);
  void store_chat();
  // `parsed`: a message item's text, parsed beforehand (run()).
  void handle(const Item& item, const protocol::Parsed& parsed);
  // Dispatch (hub.cpp) to the handlers: rooms (hub_rooms.cpp), notifications (notifier.cpp)
  // and emergency cases (emergency_cases.cpp).
  void handle_message(std::uint64_t conn, Conn& c, const protocol::Inbound& in);
  void on_presence(Conn& c, const protocol::Inbound& in);
  void on_ack(std::uint64_t conn, const Conn& c, const protocol::Inbound& in);
  void on_case_follow(std::uint64_t conn, const Conn& c, const protocol::Inbound& in);
  void on_room_message(std::uint64_t conn, Conn& c, const protocol::Inbound& in);
  void authenticate(std::uint64_t conn, Conn& c, const std::string& authorization);
  void join(std::uint64_t conn, Conn& c, const protocol::Inbound& in);
  void replay(std::uint64_t conn, std::int64_t consult, std::int64_t after);
  void leave(std::uint64_t conn, Conn& c, std::int64_t consult);
  void drop(std::uint64_t conn);
  void refresh_room(std::int64_t consult);
  void housekeeping();
  void on_task_event(std::int64_t task, const std::string& type, const std::string& detail);

  // The open batch, begun on first use; commit() flushes staged sends.
  teleconsult::ConsultStore::Batch* batch();
  void commit();

  void send(std::uint64_t conn, std::string text);
  void audit(const Conn& c, const char* action, const char* object_type, std::int64_t object_id,
             const char* outcome);
  void send_error(std::uint64_t conn, const std::string& code, const std::string& message,
                  const std::string& ref);
  // To the room's connections here and, unless `local`, on the other nodes. `seq`: a chat
  // message's, which connections whose replay held it already do not get again.
  void broadcast(const Room& room, const std::string& text, std::uint64_t except = 0,
                 bool staged = false, bool local = false, std::int64_t seq = 0);
  void relay(const nlohmann::json& envelope, bool staged = false);
  void on_relayed(const std::string& envelope);
  // A task change to the open worklists and township screens of this node.
  void task_live(const reading::TaskRow& t, const std::string& type);
  // A user's presence in a room from this node's connections only, and over all nodes.
  std::string local_presence(const Room& room, std::int64_t user) const;
  std::string presence_of(std::int64_t consult, std::int64_t user) const;
  std::string remote_presence(std::int64_t consult, std::int64_t user) const;
  // `before`: the user's presence here in each room before the change.
  void presence_changed(std::int64_t user, const std::string& username,
                        const std::set<std::int64_t>& rooms,
                        const std::map<std::int64_t, std::string>& before);
  // Presence another node announced: `entries` are [consult, user, username, status]; `all`
  // replaces everything that node had announced.
  void on_remote_presence(const std::string& node, const nlohmann::json& entries, bool all);
  // Peers that appeared get this node's presence; those that went lose theirs.
  void exchange_presence();
  bool present_elsewhere(std::int64_t consult, const std::string& username) const;
  Room* room_for(std::uint64_t conn, Conn& c, const protocol::Inbound& in);
  std::string now() const;

  Stores stores_;
  Authenticate authenticate_;
  identity::Auditor* auditor_;
  storage::Clock clock_;
  HubOptions options_;
  Transport* transport_ = nullptr;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> inbox_;  // guarded by mu_
  bool stop_ = false;       // guarded by mu_
  HubCounters counters_;    // guarded by mu_
  std::thread thread_;

  // Hub thread only.
  std::map<std::uint64_t, Conn> conns_;
  std::set<std::uint64_t> unauthenticated_;         // connections waiting for hello (housekeeping)
  std::map<std::string, std::size_t> per_address_;  // open connections by peer address
  std::map<std::int64_t, std::size_t> per_user_;    // authenticated connections by user
  // Refuses `conn` for a limit: error, close 4429, counted.
  void refuse(std::uint64_t conn, const std::string& message);
  std::map<std::int64_t, Room> rooms_;
  std::unique_ptr<teleconsult::ConsultStore::Batch> batch_;
  Staged staged_;
  std::deque<Item> deferred_;  // put off to the next turn (turn())
  struct PendingChat {
    std::uint64_t conn = 0;
    std::string ref;
    teleconsult::ChatMessage message;
  };
  std::vector<PendingChat> chats_;        // this turn's chat, stored by store_chat()
  std::uint64_t batch_serial_ = 0;        // counts the batches begun
  std::uint64_t locked_batch_ = 0;        // the batch holding the turn's up-front consult locks
  storage::TimePoint next_revalidation_;  // times from the injected clock
  std::uint64_t revalidate_cursor_ = 0;   // the last connection re-checked
  storage::TimePoint next_clock_check_, next_referral_check_;
  HubSources sources_;
  std::function<void(std::string)> relay_;
  std::string node_;
  std::function<std::vector<std::string>()> peers_;
  std::set<std::string> known_peers_;
  // Participants' presence on other nodes: consult -> user -> their name and, per node, the
  // status there (absent: offline).
  struct RemotePresence {
    std::string name;
    std::map<std::string, std::string> nodes;
  };
  std::map<std::int64_t, std::map<std::int64_t, RemotePresence>> remote_presence_;
  std::function<bool()> leader_;
  std::unique_ptr<hub_detail::HubOutbox> outbox_;
  std::unique_ptr<hub_detail::Notifier> notifier_;
  std::unique_ptr<hub_detail::EmergencyCases> cases_;
  friend class hub_detail::HubOutbox;
};

}  // namespace yilian::teleconsult
