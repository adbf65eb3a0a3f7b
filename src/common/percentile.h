// The one percentile of the project (pool status, benches): nearest rank. Of n values, the p
// percentile (p a fraction, 0..1) is the ceil(p * n)-th smallest (1-based), the smallest for p = 0:
// the smallest value that at least a fraction p of the values are at most. It is always one of
// the values, never an interpolation, so a p99 is a latency some request really had. p50 of an
// even count is the lower of the two middle values.
// Stateless: thread-safe (the in-place form reorders its argument).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <span>
#include <vector>

namespace moss {

// The 0-based position in the sorted values of the p percentile of `n` > 0 values. p is clamped
// to [0, 1]. A p * n within a relative 1e-9 of a whole number counts as that number, so that
// 0.07 * 100 (7.000000000000001 in binary floating point) is rank 7, not 8.
inline size_t percentile_index(size_t n, double p) {
  const double x = std::clamp(p, 0.0, 1.0) * static_cast<double>(n);
  const double rank = std::ceil(x - 1e-9 * std::max(1.0, x));
  return std::min(n, std::max<size_t>(1, static_cast<size_t>(rank))) - 1;
}

// The p percentile of `values` (none NaN), reordering them (nth_element: linear time; several
// percentiles of one set may be taken in turn). 0 for an empty set: the figures it feeds report
// "no samples" beside a count of 0.
inline double percentile_in_place(std::span<double> values, double p) {
  if (values.empty()) return 0;
  const auto k = values.begin() + static_cast<std::ptrdiff_t>(percentile_index(values.size(), p));
  std::nth_element(values.begin(), k, values.end());
  return *k;
}

// The same on a copy, leaving `values` as they are.
inline double percentile(std::span<const double> values, double p) {
  std::vector<double> copy(values.begin(), values.end());
  return percentile_in_place(copy, p);
}

}  // namespace moss
