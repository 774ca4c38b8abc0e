// The nodes sharing one database: registration and peers, the periodic-work lease (held by
// one node, taken over when its holder stops renewing) and the relay between nodes, with
// messages larger than one PostgreSQL notification.
#include "yilian/storage/cluster.h"

#include <gtest/gtest.h>

#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "postgres.h"
#include "test_util.h"

namespace yilian::storage {
namespace {

using namespace std::chrono_literals;

std::unique_ptr<Database> open_migrated(const std::string& where) {
  auto db = Database::open(where);
  EXPECT_TRUE(db.ok()) << (db.ok() ? "" : db.error().message);
  if (!db.ok()) return nullptr;
  // The cluster's step alone, numbered 1 here.
  SchemaStep step = cluster_schema_steps()[0];
  step.version = 1;
  auto v = (*db)->migrate(std::span<const SchemaStep>(&step, 1));
  EXPECT_TRUE(v.ok()) << (v.ok() ? "" : v.error().message);
  return std::move(*db);
}

TEST(Cluster, node_ids_are_eight_hex_digits) {
  const std::string id = new_node_id();
  EXPECT_TRUE(valid_node_id(id)) << id;
  EXPECT_FALSE(valid_node_id("ABCDEF12"));
  EXPECT_FALSE(valid_node_id("abc"));
  EXPECT_FALSE(valid_node_id("../../etc"));
}

TEST(Cluster, a_single_embedded_node_leads_and_has_no_peers) {
  testing::TempDir dir;
  auto db = open_migrated((dir.path() / "index.sqlite").string());
  ASSERT_NE(db, nullptr);
  Cluster node(*db, {.node_id = "0000000a", .address = "a:8080"});
  EXPECT_FALSE(node.shared());
  ASSERT_TRUE(node.start().ok());
  EXPECT_TRUE(node.leader());
  EXPECT_TRUE(node.peers().empty());
  EXPECT_TRUE(node.publish("hub", "nobody listens").ok());
  node.stop();
  EXPECT_FALSE(node.leader());
}

class SharedCluster : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    testing::PostgresServer* pg = testing::shared_postgres(&why);
    ASSERT_NE(pg, nullptr) << why;
    const std::string url = pg->fresh_database();
    ASSERT_FALSE(url.empty());
    db_a_ = open_migrated(url);
    auto b = Database::open(url);
    ASSERT_TRUE(b.ok());
    db_b_ = std::move(*b);
    ASSERT_NE(db_a_, nullptr);
  }
  template <typename F>
  static bool eventually(F&& f) {
    for (int i = 0; i < 400; ++i) {  // bounded: 400 x 25 ms
      if (f()) return true;
      std::this_thread::sleep_for(25ms);
    }
    return false;
  }
  std::unique_ptr<Database> db_a_, db_b_;
};

TEST_F(SharedCluster, one_node_leads_each_sees_the_other_and_the_lease_moves_when_it_stops) {
  Cluster a(*db_a_, {.node_id = "0000000a", .address = "a:8080", .heartbeat = 1h});
  Cluster b(*db_b_, {.node_id = "0000000b", .address = "b:8080", .heartbeat = 1h});
  ASSERT_TRUE(a.start().ok());
  ASSERT_TRUE(b.start().ok());
  ASSERT_TRUE(a.beat().ok());
  EXPECT_TRUE(a.leader());
  EXPECT_FALSE(b.leader());
  ASSERT_EQ(a.peers().size(), 1u);
  EXPECT_EQ(a.peers()[0].id, "0000000b");
  EXPECT_EQ(a.peers()[0].address, "b:8080");
  ASSERT_EQ(b.peers().size(), 1u);
  EXPECT_EQ(b.peers()[0].id, "0000000a");
  a.stop();  // leaves: its row and its lease go at once
  ASSERT_TRUE(b.beat().ok());
  EXPECT_TRUE(b.leader());
  EXPECT_TRUE(b.peers().empty());
}

TEST_F(SharedCluster, the_lease_of_a_node_that_stopped_renewing_it_expires_to_another) {
  // A "dies": it never beats again (its heartbeat is an hour away) and never leaves.
  Cluster a(*db_a_, {.node_id = "0000000a", .address = "a", .heartbeat = 1h, .lease = 300ms});
  Cluster b(*db_b_, {.node_id = "0000000b", .address = "b", .heartbeat = 1h, .lease = 300ms});
  ASSERT_TRUE(a.start().ok());
  ASSERT_TRUE(b.start().ok());
  ASSERT_TRUE(a.leader());
  EXPECT_TRUE(eventually([&] { return b.beat().ok() && b.leader(); }));
  EXPECT_TRUE(b.peers().empty());  // A is no longer seen either
}

TEST_F(SharedCluster, relayed_messages_reach_the_other_nodes_whole_and_in_order) {
  Cluster a(*db_a_, {.node_id = "0000000a", .address = "a"});
  Cluster b(*db_b_, {.node_id = "0000000b", .address = "b"});
  std::mutex mu;
  std::vector<std::string> at_a, at_b, other_channel;
  a.subscribe("hub", [&](const std::string& m) {
    std::lock_guard lock(mu);
    at_a.push_back(m);
  });
  b.subscribe("hub", [&](const std::string& m) {
    std::lock_guard lock(mu);
    at_b.push_back(m);
  });
  b.subscribe("other", [&](const std::string& m) {
    std::lock_guard lock(mu);
    other_channel.push_back(m);
  });
  ASSERT_TRUE(a.start().ok());
  ASSERT_TRUE(b.start().ok());
  // Larger than one notification (8000 bytes), cut between the bytes of three-byte characters.
  std::string large;
  while (large.size() < 30000) large += "心电图急诊";
  const std::vector<std::string> sent = {"first", large, "third"};
  // The listener may still be connecting: the first message is sent until it arrives.
  ASSERT_TRUE(eventually([&] {
    EXPECT_TRUE(a.publish("hub", "ping").ok());
    std::lock_guard lock(mu);
    return !at_b.empty();
  }));
  {
    std::lock_guard lock(mu);
    at_b.clear();
  }
  for (const std::string& m : sent) ASSERT_TRUE(a.publish("hub", m).ok());
  ASSERT_TRUE(a.publish("other", "elsewhere").ok());
  // (pings sent while the listener was connecting may still arrive: they are set aside)
  auto received = [&] {
    std::vector<std::string> out;
    for (const std::string& m : at_b) {
      if (m != "ping") out.push_back(m);
    }
    return out;
  };
  ASSERT_TRUE(eventually([&] {
    std::lock_guard lock(mu);
    return received().size() >= sent.size() && !other_channel.empty();
  }));
  std::lock_guard lock(mu);
  const auto got = received();
  ASSERT_EQ(got.size(), sent.size());
  for (std::size_t i = 0; i < sent.size(); ++i) {
    EXPECT_TRUE(got[i] == sent[i])
        << "message " << i << ": " << got[i].size() << " bytes of " << sent[i].size();
  }
  EXPECT_EQ(other_channel, std::vector<std::string>{"elsewhere"});
  EXPECT_TRUE(at_a.empty());  // a node does not hear itself
}

}  // namespace
}  // namespace yilian::storage
