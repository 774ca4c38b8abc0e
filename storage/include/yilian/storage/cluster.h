// The nodes that share one database: who is up, which node runs the cluster's periodic work,
// and a relay that carries live messages from one node to the others.
//
// Every node registers itself in `cluster_nodes` and refreshes its row each heartbeat; the
// peers are the other nodes seen within `lease`. One lease row (`cluster_leases`) names the
// node that runs the periodic work (stable studies, escalations, emergency clocks): its holder
// renews it each heartbeat; when the holder stops renewing (its node died or lost the
// database), the lease expires and the first node to ask after that takes it over. Lease
// times come from the database's own clock, so the nodes' clocks need not agree.
//
// The relay (PostgreSQL only) uses LISTEN/NOTIFY: publish() sends a message to every other
// node, in order per sender; a message larger than one notification is sent in parts and put
// back together. On SQLite there is one node: it always leads and the relay has nobody to
// reach.
//
// Threads: start() runs one heartbeat thread and, on PostgreSQL, two relay threads: a listener
// that calls the receivers, and a publisher that sends what publish() queued (publish() never
// waits for the database; it may be called from any thread).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "yilian/common/result.h"
#include "yilian/storage/database.h"

namespace yilian::storage {

struct ClusterOptions {
  std::string node_id;  // stable across restarts (the data directory remembers it)
  std::string address;  // how peers and operators reach this node, e.g. "10.0.0.5:8080"
  std::chrono::milliseconds heartbeat{1000};
  // A node not seen for this long is gone; the periodic-work lease lasts this long.
  std::chrono::milliseconds lease{10000};
};

struct NodeInfo {
  std::string id, address;
  std::int64_t started_ms = 0, seen_ms = 0;  // the database's clock, Unix milliseconds
};

// The cluster's tables (schema step 8 of the consortium's history).
std::span<const SchemaStep> cluster_schema_steps();

// A new node id: 8 hex digits, random.
std::string new_node_id();
// Node ids are 8 lowercase hex digits (they end every blob key the node writes).
bool valid_node_id(std::string_view id);

class Cluster {
 public:
  using Receiver = std::function<void(const std::string& payload)>;

  Cluster(Database& db, ClusterOptions options);
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  // Receivers of relayed messages, one per channel; set before start().
  void subscribe(std::string channel, Receiver r);
  // Registers the node, takes the lease if it is free and starts the threads.
  Status start();
  // Leaves the cluster: the node's row goes and its lease is given up at once.
  void stop();

  const std::string& node_id() const { return options_.node_id; }
  // The address peers see from the next heartbeat on (a node learns its port after start()).
  void set_address(std::string address);
  // True when several nodes can share the database (PostgreSQL).
  bool shared() const { return db_.dialect() == sql::Dialect::postgres; }
  // Whether this node holds the periodic-work lease now.
  bool leader() const { return leader_.load(); }
  // The other nodes seen within the lease time, as of the last heartbeat.
  std::vector<NodeInfo> peers() const;
  // Queues `payload` on `channel` for the other nodes (nothing on SQLite). unavailable when
  // too much is waiting (the database away): what is relayed is live traffic, never the only
  // copy of data, and is dropped rather than held without bound.
  Status publish(std::string_view channel, std::string_view payload);

  // One heartbeat now (tests; the thread beats every `heartbeat`).
  Status beat();

 private:
  class Listener;
  void run();
  void deliver(const std::string& channel, const std::string& data);

  Database& db_;
  ClusterOptions options_;
  std::vector<std::pair<std::string, Receiver>> receivers_;
  std::atomic<bool> leader_{false};
  mutable std::mutex mu_;  // peers_, stop_, started_
  std::condition_variable cv_;
  std::vector<NodeInfo> peers_;
  bool stop_ = false;
  bool started_ = false;
  std::atomic<std::uint64_t> next_message_{0};
  std::thread thread_;
  std::unique_ptr<Listener> listener_;
};

}  // namespace yilian::storage
