#pragma once

#include <string>

namespace yilian::storage {

// Current time as ISO 8601 UTC with milliseconds, e.g. 2026-11-22T08:15:30.123Z.
std::string now_utc_iso8601();

}  // namespace yilian::storage
