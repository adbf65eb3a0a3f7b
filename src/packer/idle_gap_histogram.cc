#include "packer/idle_gap_histogram.h"

#include <algorithm>
#include <cmath>

namespace moss::packer {

TimeMs IdleGapHistogram::upper_edge(int k) {
  return kFirstMs * std::exp2(static_cast<double>(k) / kBucketsPerOctave);
}

void IdleGapHistogram::add(TimeMs gap_ms) {
  if (!(gap_ms >= 0)) return;  // NaN or negative (clock moved back): not a gap
  if (total_ + 1 > kHalveAt) {
    for (float& c : counts_) c *= 0.5f;
    beyond_ *= 0.5f;
    total_ *= 0.5f;
  }
  total_ += 1;
  if (gap_ms > upper_edge(kBuckets - 1)) {
    beyond_ += 1;
    return;
  }
  int k = gap_ms <= kFirstMs
              ? 0
              : static_cast<int>(std::ceil(std::log2(gap_ms / kFirstMs) * kBucketsPerOctave));
  counts_[static_cast<size_t>(std::clamp(k, 0, kBuckets - 1))] += 1;
}

std::optional<TimeMs> IdleGapHistogram::percentile(double p, double min_samples) const {
  if (total_ < min_samples || total_ <= 0) return std::nullopt;
  const double want = p * total_;
  double seen = 0;
  for (int k = 0; k < kBuckets; ++k) {
    seen += counts_[static_cast<size_t>(k)];
    if (seen >= want) return upper_edge(k);
  }
  return std::nullopt;  // the percentile lies past the range
}

}  // namespace moss::packer
