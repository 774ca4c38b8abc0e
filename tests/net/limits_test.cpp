// The limit primitives: slots per key and the token bucket, driven by a test clock.
#include "yilian/net/limits.h"

#include <gtest/gtest.h>

#include <vector>

namespace yilian::net {
namespace {

TEST(KeyedSlots, each_key_holds_at_most_its_maximum_and_gets_slots_back_when_they_end) {
  KeyedSlots slots(2);
  auto a1 = slots.try_acquire("alice");
  auto a2 = slots.try_acquire("alice");
  ASSERT_TRUE(a1 && a2);
  EXPECT_FALSE(slots.try_acquire("alice"));
  EXPECT_EQ(slots.in_use("alice"), 2u);
  // Another key is not affected.
  auto b = slots.try_acquire("bob");
  EXPECT_TRUE(b);
  a1.reset();
  EXPECT_EQ(slots.in_use("alice"), 1u);
  EXPECT_TRUE(slots.try_acquire("alice"));  // taken and given back at once
  EXPECT_EQ(slots.in_use("alice"), 1u);
  a2.reset();
  b.reset();
  EXPECT_EQ(slots.in_use("alice"), 0u);
  EXPECT_EQ(slots.in_use("bob"), 0u);
}

TEST(KeyedSlots, a_maximum_of_zero_is_no_limit_and_a_slot_may_outlive_its_owner) {
  std::vector<KeyedSlots::Slot> held;
  {
    KeyedSlots unlimited(0);
    for (int i = 0; i < 100; ++i) {
      auto s = unlimited.try_acquire("alice");
      ASSERT_TRUE(s);
      held.push_back(std::move(*s));
    }
    EXPECT_EQ(unlimited.in_use("alice"), 100u);
  }
  held.clear();  // given back after the limiter is gone: no use after free (ASan)
}

TEST(TokenBucket, a_burst_is_allowed_then_the_sustained_rate) {
  using namespace std::chrono_literals;
  TokenBucket bucket(10, 5);  // 10 a second, 5 saved up
  const TokenBucket::TimePoint t0{std::chrono::seconds(1'800'000'000)};
  int taken = 0;
  for (int i = 0; i < 20; ++i) taken += bucket.take(t0) ? 1 : 0;
  EXPECT_EQ(taken, 5);
  EXPECT_FALSE(bucket.take(t0 + 50ms));  // half a token
  EXPECT_TRUE(bucket.take(t0 + 100ms));  // one more token after 0.1 s
  // A long quiet time saves up no more than the burst.
  taken = 0;
  for (int i = 0; i < 20; ++i) taken += bucket.take(t0 + 1h) ? 1 : 0;
  EXPECT_EQ(taken, 5);
  // A clock that goes back gives nothing.
  EXPECT_FALSE(bucket.take(t0));
  TokenBucket unlimited(0, 0);
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(unlimited.take(t0));
}

}  // namespace
}  // namespace yilian::net
