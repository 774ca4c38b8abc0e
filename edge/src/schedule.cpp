#include "yilian/edge/schedule.h"

#include <charconv>
#include <string>

namespace yilian::edge {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// "HH:MM" -> minute of the day; "24:00" only as an end.
std::optional<int> parse_clock(std::string_view s, bool end) {
  if (s.size() != 5 || s[2] != ':') return std::nullopt;
  int h = 0, m = 0;
  for (std::size_t i : {0u, 1u, 3u, 4u}) {
    if (s[i] < '0' || s[i] > '9') return std::nullopt;
  }
  h = (s[0] - '0') * 10 + (s[1] - '0');
  m = (s[3] - '0') * 10 + (s[4] - '0');
  if (m > 59) return std::nullopt;
  if (h == 24 && m == 0 && end) return 1440;
  if (h > 23) return std::nullopt;
  return h * 60 + m;
}

}  // namespace

Result<std::vector<RoutineWindow>> parse_routine_schedule(std::string_view text) {
  std::vector<RoutineWindow> out;
  text = trim(text);
  if (text.empty()) return out;
  while (true) {
    const std::size_t comma = text.find(',');
    const std::string_view item = trim(text.substr(0, comma));
    auto bad = [&](std::string_view why) {
      return make_error(Errc::invalid_argument, "routine schedule: \"" + std::string(item) +
                                                    "\": " + std::string(why) +
                                                    " (expected HH:MM-HH:MM=KBPS or =off)");
    };
    const std::size_t eq = item.find('=');
    const std::size_t dash = item.find('-');
    if (eq == std::string_view::npos || dash == std::string_view::npos || dash > eq)
      return bad("not a window");
    auto start = parse_clock(trim(item.substr(0, dash)), false);
    auto end = parse_clock(trim(item.substr(dash + 1, eq - dash - 1)), true);
    if (!start || !end) return bad("not a time of day");
    if (*start == *end) return bad("an empty window");
    RoutineWindow w{*start, *end, std::nullopt};
    const std::string_view cap = trim(item.substr(eq + 1));
    if (cap != "off") {
      std::uint64_t kbps = 0;
      auto [p, ec] = std::from_chars(cap.data(), cap.data() + cap.size(), kbps);
      if (ec != std::errc() || p != cap.data() + cap.size() || kbps == 0 || kbps > 100'000'000)
        return bad("the cap is not a kbit/s figure above 0, nor off");
      w.bytes_per_second = kbps * 1000 / 8;
    }
    out.push_back(w);
    if (comma == std::string_view::npos) break;
    text = text.substr(comma + 1);
  }
  return out;
}

RoutineCap routine_cap(const std::vector<RoutineWindow>& schedule,
                       std::uint64_t default_bytes_per_second, int minute_of_day) {
  for (const RoutineWindow& w : schedule) {
    const bool inside = w.start_minute < w.end_minute
                            ? minute_of_day >= w.start_minute && minute_of_day < w.end_minute
                            : minute_of_day >= w.start_minute || minute_of_day < w.end_minute;
    if (!inside) continue;
    if (!w.bytes_per_second) return {true, 0};
    return {false, *w.bytes_per_second};
  }
  return {false, default_bytes_per_second};
}

}  // namespace yilian::edge
