#include "packer/idle_gap_histogram.h"

#include <algorithm>
#include <cmath>

namespace moss::packer {

TimeMs IdleGapHistogram::upper_edge(int k) {
  return kFirstMs * std::exp2(static_cast<double>(k) / kBucketsPerOctave);
}

void IdleGapHistogram::add(TimeMs gap_ms) {
  if (!(gap_ms >= 0)) return;  // NaN or negative (clock moved back): not a gap
  if (total_ + 1u > kHalveAt) {
    // Halved (rounding down), and the total recounted so it stays their exact sum.
    uint32_t total = 0;
    for (uint16_t& c : counts_) {
      c = static_cast<uint16_t>(c / 2);
      total += c;
    }
    beyond_ = static_cast<uint16_t>(beyond_ / 2);
    total_ = static_cast<uint16_t>(total + beyond_);
  }
  ++total_;
  if (gap_ms > upper_edge(kBuckets - 1)) {
    ++beyond_;
    return;
  }
  int k = gap_ms <= kFirstMs
              ? 0
              : static_cast<int>(std::ceil(std::log2(gap_ms / kFirstMs) * kBucketsPerOctave));
  ++counts_[static_cast<size_t>(std::clamp(k, 0, kBuckets - 1))];
}

std::optional<TimeMs> IdleGapHistogram::percentile(double p, double min_samples) const {
  if (total_ < min_samples || total_ == 0) return std::nullopt;
  const double want = p * total_;
  double seen = 0;
  for (int k = 0; k < kBuckets; ++k) {
    seen += counts_[static_cast<size_t>(k)];
    if (seen >= want) return upper_edge(k);
  }
  return std::nullopt;  // the percentile lies past the range
}

}  // namespace moss::packer
