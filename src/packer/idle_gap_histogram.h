// IdleGapHistogram: one model's inter-arrival times, for a keep-alive of its own.
//
// One keep-alive for every model (the original's 3 minutes) keeps an instance of a model that
// comes every second for 3 minutes after its last request, and stops the instance of a model
// that comes every 4 minutes just before it returns. Following "Serverless in the Wild" (Shahrad
// et al., USENIX ATC 2020, the hybrid histogram policy), each model keeps a histogram of the gaps
// between its arrivals and is kept warm for a high percentile of them. Buckets are logarithmic (4
// per octave from 250 ms: 0.25 s .. ~3.8 h in 64 buckets, a relative error under 19%), so short
// and long gaps are both resolved in a fixed 134 bytes (16-bit counts); counts halve once they pass a limit, so
// the histogram follows a model whose pattern changes. Gaps past the last bucket are counted
// apart: a model that mostly comes after hours has no useful keep-alive.
// Not thread-safe (owned by a policy under its pool's lock).
#pragma once

#include <array>
#include <cstdint>
#include <optional>

#include "packer/clock.h"

namespace moss::packer {

class IdleGapHistogram {
 public:
  static constexpr int kBuckets = 64;
  static constexpr double kFirstMs = 250;          // upper edge of bucket 0
  static constexpr double kBucketsPerOctave = 4;
  static constexpr uint32_t kHalveAt = 4096;        // total count that triggers halving

  void add(TimeMs gap_ms);
  // The gap that `p` (0..1) of the counted gaps do not exceed (a bucket's upper edge); nullopt
  // with fewer than `min_samples` gaps, or when more than 1 - p of them fell past the range.
  std::optional<TimeMs> percentile(double p, double min_samples) const;
  uint32_t count() const { return total_; }

  // Upper edge of bucket `k`, ms.
  static TimeMs upper_edge(int k);

 private:
  std::array<uint16_t, kBuckets> counts_{};  // each at most kHalveAt
  uint16_t beyond_ = 0;                      // gaps longer than the last bucket
  uint16_t total_ = 0;                       // the sum of the above
};

}  // namespace moss::packer
