#include "yilian/edge/schedule.h"

#include <gtest/gtest.h>

namespace yilian::edge {
namespace {

int at(int h, int m) { return h * 60 + m; }

TEST(RoutineSchedule, windows_are_parsed_with_their_caps_and_wrong_ones_are_named) {
  auto s = parse_routine_schedule(" 08:00-12:00=2000, 12:00-14:00=off,22:00-06:00 = 20000 ");
  ASSERT_TRUE(s.ok()) << s.error().message;
  ASSERT_EQ(s->size(), 3u);
  EXPECT_EQ((*s)[0].start_minute, at(8, 0));
  EXPECT_EQ((*s)[0].end_minute, at(12, 0));
  EXPECT_EQ((*s)[0].bytes_per_second, 250'000u);  // 2000 kbit/s
  EXPECT_FALSE((*s)[1].bytes_per_second.has_value());
  EXPECT_EQ((*s)[2].start_minute, at(22, 0));
  EXPECT_EQ((*s)[2].end_minute, at(6, 0));
  EXPECT_TRUE(parse_routine_schedule("").ok());
  EXPECT_TRUE(parse_routine_schedule("00:00-24:00=off").ok());

  for (const char* bad : {"08:00-12:00", "08:00=100", "8:00-12:00=100", "08:00-25:00=100",
                          "08:60-12:00=100", "08:00-08:00=100", "08:00-12:00=0", "08:00-12:00=fast",
                          "08:00-12:00=100,", "24:00-01:00=100"}) {
    auto r = parse_routine_schedule(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code, Errc::invalid_argument);
    EXPECT_NE(r.error().message.find("routine schedule"), std::string::npos);
  }
}

TEST(RoutineSchedule, the_cap_follows_the_clock_and_the_first_window_wins) {
  auto s =
      parse_routine_schedule("08:00-12:00=800,12:00-14:00=off,10:00-16:00=1600,22:00-06:00=8000");
  ASSERT_TRUE(s.ok());
  const std::uint64_t other = 50'000;
  EXPECT_EQ(routine_cap(*s, other, at(7, 59)).bytes_per_second, other);
  EXPECT_FALSE(routine_cap(*s, other, at(7, 59)).held);
  EXPECT_EQ(routine_cap(*s, other, at(8, 0)).bytes_per_second, 100'000u);
  EXPECT_EQ(routine_cap(*s, other, at(11, 0)).bytes_per_second, 100'000u);  // first given wins
  EXPECT_TRUE(routine_cap(*s, other, at(12, 0)).held);
  EXPECT_TRUE(routine_cap(*s, other, at(13, 59)).held);
  EXPECT_EQ(routine_cap(*s, other, at(14, 0)).bytes_per_second, 200'000u);
  EXPECT_EQ(routine_cap(*s, other, at(16, 0)).bytes_per_second, other);
  // Past midnight.
  EXPECT_EQ(routine_cap(*s, other, at(23, 30)).bytes_per_second, 1'000'000u);
  EXPECT_EQ(routine_cap(*s, 0, at(2, 0)).bytes_per_second, 1'000'000u);
  EXPECT_EQ(routine_cap(*s, 0, at(6, 0)).bytes_per_second, 0u);  // no cap
  EXPECT_EQ(routine_cap({}, 0, at(12, 0)).bytes_per_second, 0u);
}

}  // namespace
}  // namespace yilian::edge
