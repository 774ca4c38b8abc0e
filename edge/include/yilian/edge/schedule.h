// The time-of-day schedule of an edge's routine traffic, free of I/O: windows of the clinic's
// local day with their own bandwidth cap, or with routine traffic held, so that the clinic's
// other traffic works in its busy hours. STAT transfers never look at it.
//
//   "08:00-12:00=2000, 14:00-17:30=2000, 12:00-14:00=off"
//
// Each window is start-end (24 h, end exclusive; a window may run past midnight, 22:00-06:00)
// with a cap in kbit/s, or "off" (routine traffic waits). Outside every window the edge's
// default cap applies. Where windows overlap, the first one given wins.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "yilian/common/result.h"

namespace yilian::edge {

struct RoutineWindow {
  int start_minute = 0;  // of the day, [0, 1440)
  int end_minute = 0;    // exclusive; below start_minute: the window runs past midnight
  // Bytes per second; nullopt: routine traffic is held.
  std::optional<std::uint64_t> bytes_per_second;
};

// Errors: invalid_argument naming the window that is wrong.
Result<std::vector<RoutineWindow>> parse_routine_schedule(std::string_view text);

struct RoutineCap {
  bool held = false;
  std::uint64_t bytes_per_second = 0;  // 0: no cap
};

// The routine cap at `minute_of_day`; `default_bytes_per_second` outside every window.
RoutineCap routine_cap(const std::vector<RoutineWindow>& schedule,
                       std::uint64_t default_bytes_per_second, int minute_of_day);

}  // namespace yilian::edge
