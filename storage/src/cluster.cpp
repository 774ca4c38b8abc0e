#include "yilian/storage/cluster.h"

#include <libpq-fe.h>
#include <poll.h>
#include <spdlog/spdlog.h>

#include <deque>
#include <map>
#include <random>
#include <sstream>

#include "yilian/storage/sql.h"

namespace yilian::storage {
namespace {

constexpr const char* kRelayChannel = "yilian_relay";
// PostgreSQL refuses notifications of 8000 bytes or more; a part leaves room for its header.
constexpr std::size_t kPartBytes = 7000;
// Parts of unfinished messages kept at most (a sender that died mid-message leaves some).
constexpr std::size_t kMaxPartialMessages = 256;

constexpr const char* kClusterSchema = R"sql(
CREATE TABLE cluster_nodes (
  node_id     TEXT PRIMARY KEY,
  address     TEXT NOT NULL,
  started_ms  INTEGER NOT NULL,
  seen_ms     INTEGER NOT NULL
);
CREATE TABLE cluster_leases (
  name        TEXT PRIMARY KEY,
  holder      TEXT NOT NULL,
  expires_ms  INTEGER NOT NULL
);
)sql";

// The database's clock in Unix milliseconds: one clock for every node.
std::string now_ms(sql::Dialect d) {
  return d == sql::Dialect::postgres
             ? "CAST(extract(epoch from clock_timestamp()) * 1000 AS BIGINT)"
             : "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)";
}

// Where to cut `s` at or before `max` bytes without splitting a UTF-8 sequence.
std::size_t utf8_cut(std::string_view s, std::size_t max) {
  if (s.size() <= max) return s.size();
  std::size_t cut = max;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return cut == 0 ? max : cut;
}

constexpr SchemaStep kClusterSteps[] = {
    {8, "storage", "cluster nodes and the periodic-work lease", kClusterSchema}};

}  // namespace

std::span<const SchemaStep> cluster_schema_steps() { return kClusterSteps; }

std::string new_node_id() {
  std::random_device rd;
  char buf[9];
  std::snprintf(buf, sizeof buf, "%08x", static_cast<unsigned>(rd()));
  return buf;
}

bool valid_node_id(std::string_view id) {
  if (id.size() != 8) return false;
  for (char c : id) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// The relay's two PostgreSQL connections, each with a thread of its own: one LISTENs and
// hands what arrives to the receivers; the other publishes what publish() queued, as many
// queued notifications as there are in one statement (one round trip), so the thread that
// publishes (the hub's) never waits for the database. Either connection is opened again after
// a failure.
class Cluster::Listener {
 public:
  using Deliver = std::function<void(const std::string& channel, const std::string& data)>;
  Listener(std::string url, std::string node, Deliver deliver)
      : url_(std::move(url)), node_(std::move(node)), deliver_(std::move(deliver)) {}
  ~Listener() {
    stop();
    if (pub_) PQfinish(pub_);
  }

  void start() {
    thread_ = std::thread([this] { run(); });
    publisher_ = std::thread([this] { publish_loop(); });
  }
  void stop() {
    {
      std::lock_guard lock(queue_mu_);
      stop_ = true;
    }
    queue_cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    if (publisher_.joinable()) publisher_.join();
  }

  // Queues the parts of one message (sent together and in order). unavailable when the
  // queue is full (the database has been unreachable for a while): live traffic is dropped
  // rather than held without bound.
  Status enqueue(std::vector<std::string> parts) {
    {
      std::lock_guard lock(queue_mu_);
      if (queued_parts_ + parts.size() > kMaxQueuedParts) {
        return make_error(Errc::unavailable, "relay: too many messages waiting for PostgreSQL");
      }
      queued_parts_ += parts.size();
      queued_.push_back(std::move(parts));
    }
    queue_cv_.notify_one();
    return Status::Ok();
  }

 private:
  static constexpr std::size_t kMaxQueuedParts = 20000;
  static constexpr std::size_t kPartsPerStatement = 256;

  // `parts` as a PostgreSQL text array literal.
  static std::string array_literal(const std::vector<std::string>& parts) {
    std::string out = "{";
    for (std::size_t i = 0; i < parts.size(); ++i) {
      if (i) out += ',';
      out += '"';
      for (char c : parts[i]) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
      }
      out += '"';
    }
    out += '}';
    return out;
  }

  bool connected() {
    if (pub_ && PQstatus(pub_) == CONNECTION_OK) return true;
    if (pub_) PQfinish(pub_);
    pub_ = PQconnectdb(url_.c_str());
    if (PQstatus(pub_) != CONNECTION_OK) {
      PQfinish(pub_);
      pub_ = nullptr;
      return false;
    }
    PQsetNoticeProcessor(
        pub_, [](void*, const char*) {}, nullptr);
    return true;
  }

  // One statement: every notification of `parts`, in order.
  bool send(const std::vector<std::string>& parts) {
    const std::string array = array_literal(parts);
    const char* values[2] = {kRelayChannel, array.c_str()};
    PGresult* r = PQexecParams(pub_, "SELECT pg_notify($1, x) FROM unnest($2::text[]) AS u(x)", 2,
                               nullptr, values, nullptr, nullptr, 0);
    const bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
    PQclear(r);
    return ok;
  }

  void publish_loop() {
    bool failing = false;
    std::unique_lock lock(queue_mu_);
    while (true) {
      queue_cv_.wait(lock, [&] { return stop_ || !queued_.empty(); });
      if (queued_.empty()) return;  // stopping, everything sent
      // Whole messages, until the statement holds kPartsPerStatement parts or more.
      std::vector<std::string> batch;
      while (!queued_.empty() && batch.size() < kPartsPerStatement) {
        for (std::string& p : queued_.front()) batch.push_back(std::move(p));
        queued_.pop_front();
      }
      queued_parts_ -= batch.size();
      lock.unlock();
      bool sent = false;
      for (int attempt = 0; attempt < 2 && !sent; ++attempt) sent = connected() && send(batch);
      if (!sent && !failing) {
        spdlog::warn("relay: cannot publish to PostgreSQL: {}",
                     pub_ ? PQerrorMessage(pub_) : "not connected");
      } else if (sent && failing) {
        spdlog::info("relay: publishing again");
      }
      failing = !sent;
      lock.lock();
      if (stop_ && failing) return;  // nobody to deliver to: what is left is dropped
    }
  }

  void run() {
    PGconn* conn = nullptr;
    int failures = 0;
    while (!stop_) {
      if (!conn) {
        conn = PQconnectdb(url_.c_str());
        PGresult* r = PQstatus(conn) == CONNECTION_OK
                          ? PQexec(conn, (std::string("LISTEN ") + kRelayChannel).c_str())
                          : nullptr;
        const bool ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
        if (r) PQclear(r);
        if (!ok) {
          if (failures++ == 0) {
            spdlog::warn("relay: cannot listen on PostgreSQL: {}", PQerrorMessage(conn));
          }
          PQfinish(conn);
          conn = nullptr;
          for (int i = 0; i < 10 && !stop_; ++i) ::poll(nullptr, 0, 50);
          continue;
        }
        if (failures > 0) spdlog::info("relay: listening again");
        failures = 0;
      }
      pollfd pfd{PQsocket(conn), POLLIN, 0};
      if (::poll(&pfd, 1, 200) < 0) continue;
      if (!PQconsumeInput(conn)) {
        spdlog::warn("relay: lost the PostgreSQL connection: {}", PQerrorMessage(conn));
        PQfinish(conn);
        conn = nullptr;
        continue;
      }
      while (PGnotify* n = PQnotifies(conn)) {
        received(n->extra);
        PQfreemem(n);
      }
    }
    if (conn) PQfinish(conn);
  }

  // "<node> <message> <part> <parts> <channel>\n<data>"; a node's own messages come back to
  // it and are dropped here.
  void received(const std::string& n) {
    const std::size_t nl = n.find('\n');
    if (nl == std::string::npos) return;
    std::istringstream head(n.substr(0, nl));
    std::string node, channel;
    std::uint64_t message = 0;
    std::size_t part = 0, count = 0;
    if (!(head >> node >> message >> part >> count >> channel) || count == 0 || part >= count)
      return;
    if (node == node_) return;
    std::string data = n.substr(nl + 1);
    if (count > 1) {
      const std::string key = node + ' ' + std::to_string(message);
      auto& parts = partial_[key];
      if (parts.size() != part) {  // out of order or a lost part: drop the message
        partial_.erase(key);
        return;
      }
      parts.push_back(std::move(data));
      if (parts.size() < count) {
        if (partial_.size() > kMaxPartialMessages) partial_.clear();
        return;
      }
      data.clear();
      for (const std::string& p : parts) data += p;
      partial_.erase(key);
    }
    deliver_(channel, data);
  }

  std::string url_, node_;
  Deliver deliver_;
  std::map<std::string, std::vector<std::string>> partial_;  // listener thread only
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::thread publisher_;
  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::deque<std::vector<std::string>> queued_;  // messages, each its parts; guarded by queue_mu_
  std::size_t queued_parts_ = 0;                 // guarded by queue_mu_
  PGconn* pub_ = nullptr;                        // the publisher thread's
};

Cluster::Cluster(Database& db, ClusterOptions options) : db_(db), options_(std::move(options)) {}

Cluster::~Cluster() { stop(); }

void Cluster::subscribe(std::string channel, Receiver r) {
  receivers_.emplace_back(std::move(channel), std::move(r));
}

Status Cluster::start() {
  if (!valid_node_id(options_.node_id)) {
    return make_error(Errc::invalid_argument, "node id must be 8 hex digits");
  }
  const std::string now = now_ms(db_.dialect());
  Status s = write(db_, [&](sql::Db& db) -> Status {
    return sql::run(db,
                    "INSERT INTO cluster_nodes(node_id, address, started_ms, seen_ms) "
                    "VALUES(?1, ?2, " +
                        now + ", " + now +
                        ") ON CONFLICT(node_id) DO UPDATE SET address = excluded.address, "
                        "started_ms = excluded.started_ms, seen_ms = excluded.seen_ms",
                    [&](sql::Stmt& st) {
                      st.bind(1, options_.node_id);
                      st.bind(2, options_.address);
                    });
  });
  if (!s) return s;
  if (shared()) {
    listener_ = std::make_unique<Listener>(
        db_.location(), options_.node_id,
        [this](const std::string& channel, const std::string& data) { deliver(channel, data); });
    listener_->start();
  }
  (void)beat();
  {
    std::lock_guard lock(mu_);
    stop_ = false;
    started_ = true;
  }
  thread_ = std::thread([this] { run(); });
  return Status::Ok();
}

void Cluster::stop() {
  {
    std::lock_guard lock(mu_);
    if (!started_) return;
    started_ = false;
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (listener_) listener_->stop();
  Status s = write(db_, [&](sql::Db& db) -> Status {
    if (Status d = sql::run(db, "DELETE FROM cluster_nodes WHERE node_id = ?1",
                            [&](sql::Stmt& st) { st.bind(1, options_.node_id); });
        !d)
      return d;
    return sql::run(db, "DELETE FROM cluster_leases WHERE holder = ?1",
                    [&](sql::Stmt& st) { st.bind(1, options_.node_id); });
  });
  if (!s) spdlog::warn("cluster: leaving: {}", s.error().message);
  leader_ = false;
}

void Cluster::run() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    cv_.wait_for(lock, options_.heartbeat, [this] { return stop_; });
    if (stop_) break;
    lock.unlock();
    if (Status s = beat(); !s) {
      spdlog::warn("cluster: heartbeat: {}", s.error().message);
    }
    lock.lock();
  }
}

void Cluster::set_address(std::string address) {
  std::lock_guard lock(mu_);
  options_.address = std::move(address);
}

Status Cluster::beat() {
  const std::string now = now_ms(db_.dialect());
  std::string address;
  {
    std::lock_guard lock(mu_);
    address = options_.address;
  }
  const std::int64_t lease_ms = options_.lease.count();
  bool holds = false;
  std::vector<NodeInfo> peers;
  Status s = write(
      db_,
      [&](sql::Db& db) -> Status {
        if (Status u = sql::run(
                db,
                "UPDATE cluster_nodes SET seen_ms = " + now + ", address = ?2 WHERE node_id = ?1",
                [&](sql::Stmt& st) {
                  st.bind(1, options_.node_id);
                  st.bind(2, address);
                });
            !u)
          return u;
        if (Status l = sql::query(
                db,
                "INSERT INTO cluster_leases(name, holder, expires_ms) VALUES('periodic', ?1, " +
                    now +
                    " + ?2) ON CONFLICT(name) DO UPDATE SET holder = excluded.holder, "
                    "expires_ms = excluded.expires_ms WHERE cluster_leases.holder = "
                    "excluded.holder OR cluster_leases.expires_ms < " +
                    now + " RETURNING holder",
                [&](sql::Stmt& st) {
                  st.bind(1, options_.node_id);
                  st.bind(2, lease_ms);
                },
                [&](sql::Stmt& st) { holds = st.text(0) == options_.node_id; });
            !l)
          return l;
        return sql::query(
            db,
            "SELECT node_id, address, started_ms, seen_ms FROM cluster_nodes "
            "WHERE node_id <> ?1 AND seen_ms >= " +
                now + " - ?2 ORDER BY node_id",
            [&](sql::Stmt& st) {
              st.bind(1, options_.node_id);
              st.bind(2, lease_ms);
            },
            [&](sql::Stmt& st) {
              peers.push_back({st.text(0), st.text(1), st.int64(2), st.int64(3)});
            });
      },
      /*durable=*/false);
  if (!s) {
    // Without the database this node cannot know it still holds the lease.
    leader_ = false;
    return s;
  }
  if (holds != leader_.load()) {
    spdlog::info("cluster: node {} {} the periodic work", options_.node_id,
                 holds ? "now runs" : "no longer runs");
  }
  leader_ = holds;
  std::lock_guard lock(mu_);
  peers_ = std::move(peers);
  return Status::Ok();
}

std::vector<NodeInfo> Cluster::peers() const {
  std::lock_guard lock(mu_);
  return peers_;
}

Status Cluster::publish(std::string_view channel, std::string_view payload) {
  if (!listener_) return Status::Ok();
  const std::uint64_t id = ++next_message_;
  std::vector<std::string> chunks;
  do {
    const std::size_t cut = utf8_cut(payload, kPartBytes);
    chunks.emplace_back(payload.substr(0, cut));
    payload.remove_prefix(cut);
  } while (!payload.empty());
  std::vector<std::string> parts;
  for (std::size_t i = 0; i < chunks.size(); ++i) {
    std::ostringstream head;
    head << options_.node_id << ' ' << id << ' ' << i << ' ' << chunks.size() << ' ' << channel
         << '\n';
    parts.push_back(head.str() + chunks[i]);
  }
  return listener_->enqueue(std::move(parts));
}

void Cluster::deliver(const std::string& channel, const std::string& data) {
  for (const auto& [name, receiver] : receivers_) {
    if (name == channel) receiver(data);
  }
}

}  // namespace yilian::storage
