#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace yilian::storage {

using TimePoint = std::chrono::system_clock::time_point;
// Injected wherever time decides something (session expiry), so tests can move it.
using Clock = std::function<TimePoint()>;

// ISO 8601 UTC with milliseconds, e.g. 2026-11-22T08:15:30.123Z. These strings sort in
// time order, which the index relies on.
std::string to_iso8601(TimePoint t);
std::string now_utc_iso8601();
// Parses "YYYY-MM-DDTHH:MM:SS[.fff]Z"; nothing else.
std::optional<TimePoint> parse_iso8601(std::string_view text);

}  // namespace yilian::storage
