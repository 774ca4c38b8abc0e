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
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "yilian/common/principal.h"
#include "yilian/common/result.h"
#include "yilian/identity/audit.h"
#include "yilian/storage/clock.h"
#include "yilian/storage/consult_store.h"
#include "yilian/teleconsult/protocol.h"

namespace yilian::teleconsult {

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
};

struct HubCounters {
  std::uint64_t connections = 0;  // open now
  std::uint64_t authenticated = 0;
  std::uint64_t messages_in = 0, messages_out = 0, chat_messages = 0, errors = 0;
  std::uint64_t batches = 0, commit_failures = 0;
};

class Hub {
 public:
  // Checks "Bearer <token>"; the principal, or unauthenticated.
  using Authenticate = std::function<Result<Principal>(std::string_view authorization)>;

  Hub(storage::ConsultStore& store, Authenticate authenticate, identity::Auditor* auditor,
      storage::Clock clock, HubOptions options = {});
  ~Hub();
  Hub(const Hub&) = delete;
  Hub& operator=(const Hub&) = delete;

  void start(Transport& transport);
  void stop();

  // From the transport, on any thread; handled in order on the hub thread.
  void opened(std::uint64_t conn, std::string authorization, std::string peer);
  void received(std::uint64_t conn, std::string text);
  void closed(std::uint64_t conn);
  // A consult's lifecycle changed (REST): its room learns the new status.
  void consult_changed(std::int64_t consult);

  HubCounters counters() const;

 private:
  struct Item {
    enum Kind { open, message, close, changed } kind = message;
    std::uint64_t conn = 0;
    std::string text, peer;
    std::int64_t consult = 0;
  };
  struct Conn {
    std::optional<Principal> who;
    std::string authorization;  // kept to re-check the session
    std::string peer;
    std::set<std::int64_t> rooms;
    bool away = false;
    std::chrono::steady_clock::time_point opened;
  };
  struct Room {
    storage::ConsultRow consult;
    std::map<std::int64_t, std::string> participants;  // user id -> role
    std::set<std::uint64_t> conns;
  };
  // Sends staged while a batch is open: delivered after it commits, or replaced by errors
  // to the senders when it fails.
  struct Staged {
    std::vector<std::pair<std::uint64_t, std::string>> on_commit;
    std::vector<std::pair<std::uint64_t, std::string>> on_failure;
  };

  void run();
  void handle(const Item& item);
  void handle_message(std::uint64_t conn, Conn& c, const protocol::Inbound& in);
  void authenticate(std::uint64_t conn, Conn& c, const std::string& authorization);
  void join(std::uint64_t conn, Conn& c, const protocol::Inbound& in);
  void replay(std::uint64_t conn, std::int64_t consult, std::int64_t after);
  void leave(std::uint64_t conn, Conn& c, std::int64_t consult);
  void drop(std::uint64_t conn);
  void refresh_room(std::int64_t consult);
  void housekeeping();

  // The open batch, begun on first use; commit() flushes staged sends.
  storage::ConsultStore::Batch* batch();
  void commit();

  void send(std::uint64_t conn, std::string text);
  void send_error(std::uint64_t conn, const std::string& code, const std::string& message,
                  const std::string& ref);
  void broadcast(const Room& room, const std::string& text, std::uint64_t except = 0,
                 bool staged = false);
  std::string presence_of(const Room& room, std::int64_t user) const;
  void presence_changed(std::int64_t user, const std::string& username,
                        const std::set<std::int64_t>& rooms,
                        const std::map<std::int64_t, std::string>& before);
  Room* room_for(std::uint64_t conn, Conn& c, const protocol::Inbound& in);
  std::string now() const;

  storage::ConsultStore& store_;
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
  std::map<std::int64_t, Room> rooms_;
  std::unique_ptr<storage::ConsultStore::Batch> batch_;
  Staged staged_;
  std::chrono::steady_clock::time_point next_revalidation_;
};

}  // namespace yilian::teleconsult
