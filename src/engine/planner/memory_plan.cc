#include "engine/planner/plan.h"

#include <algorithm>
#include <numeric>

namespace moss::engine {

std::vector<int64_t> assign_offsets(const std::vector<Interval>& items, size_t& total) {
  std::vector<size_t> order(items.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return items[a].bytes > items[b].bytes; });
  std::vector<int64_t> offset(items.size(), -1);
  std::vector<size_t> placed;
  total = 0;
  for (size_t i : order) {
    const size_t size = (items[i].bytes + kArenaAlignment - 1) / kArenaAlignment * kArenaAlignment;
    // Busy ranges of already placed buffers whose lifetimes overlap this one, by offset.
    std::vector<std::pair<size_t, size_t>> busy;
    for (size_t j : placed) {
      if (items[j].first <= items[i].last && items[i].first <= items[j].last) {
        size_t sz = (items[j].bytes + kArenaAlignment - 1) / kArenaAlignment * kArenaAlignment;
        busy.emplace_back(static_cast<size_t>(offset[j]), static_cast<size_t>(offset[j]) + sz);
      }
    }
    std::sort(busy.begin(), busy.end());
    size_t at = 0;
    for (const auto& [b, e] : busy) {
      if (at + size <= b) break;
      at = std::max(at, e);
    }
    offset[i] = static_cast<int64_t>(at);
    total = std::max(total, at + size);
    placed.push_back(i);
  }
  return offset;
}

}  // namespace moss::engine
