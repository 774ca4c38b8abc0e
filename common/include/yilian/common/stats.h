// Summary statistics for the dashboards' aggregates. Pure.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

namespace yilian {

// The nearest-rank percentile (0 < pct <= 100) of ascending values; 0 for none.
inline double nearest_rank_percentile(const std::vector<double>& sorted, double pct) {
  if (sorted.empty()) return 0;
  auto rank = static_cast<std::size_t>(std::ceil(pct / 100.0 * static_cast<double>(sorted.size())));
  return sorted[std::min(std::max<std::size_t>(rank, 1), sorted.size()) - 1];
}

}  // namespace yilian
