#include "packer/idle_gap_histogram.h"

#include <gtest/gtest.h>

namespace moss::packer {
namespace {

// The percentile is the upper edge of the bucket that reaches it, within one bucket (19%).
TEST(IdleGapHistogramTest, PercentileOfTheGaps) {
  IdleGapHistogram h;
  for (int i = 0; i < 99; ++i) h.add(1'000);
  h.add(60'000);
  auto p50 = h.percentile(0.5, 10);
  ASSERT_TRUE(p50);
  EXPECT_GE(*p50, 1'000);
  EXPECT_LT(*p50, 1'190);
  auto p99 = h.percentile(0.99, 10);
  ASSERT_TRUE(p99);
  EXPECT_LT(*p99, 1'190);  // 99 of 100 gaps are 1 s
  auto p100 = h.percentile(1.0, 10);
  ASSERT_TRUE(p100);
  EXPECT_GE(*p100, 60'000);
  EXPECT_LT(*p100, 71'400);
}

// Too few gaps, or a percentile past the range (a model that comes every few hours): no answer.
TEST(IdleGapHistogramTest, NoAnswerWithoutEnoughHistory) {
  IdleGapHistogram h;
  for (int i = 0; i < 5; ++i) h.add(1'000);
  EXPECT_FALSE(h.percentile(0.99, 10));
  IdleGapHistogram rare;
  for (int i = 0; i < 20; ++i) rare.add(6 * 3'600'000.0);  // every 6 hours
  EXPECT_FALSE(rare.percentile(0.5, 10));
  h.add(-5);  // a clock that moved back is not a gap
  EXPECT_EQ(h.count(), 5u);
}

// Counts halve past a limit, so a model whose pattern changed is followed, not averaged forever.
TEST(IdleGapHistogramTest, FollowsAChangedPattern) {
  IdleGapHistogram h;
  for (int i = 0; i < 4000; ++i) h.add(100'000);
  for (int i = 0; i < 8000; ++i) h.add(500);
  EXPECT_LE(h.count(), IdleGapHistogram::kHalveAt);
  auto p90 = h.percentile(0.9, 10);
  ASSERT_TRUE(p90);
  EXPECT_LT(*p90, 1'000);
}

}  // namespace
}  // namespace moss::packer
