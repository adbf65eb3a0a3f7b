// The nearest-rank percentile (common/percentile.h): the ceil(p * n)-th smallest value.
#include "common/percentile.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

namespace moss {
namespace {

TEST(PercentileTest, EmptySetIsZeroAndOneValueIsEveryPercentile) {
  EXPECT_EQ(percentile(std::vector<double>{}, 0.5), 0);
  std::vector<double> none;
  EXPECT_EQ(percentile_in_place(none, 0.99), 0);
  for (double p : {0.0, 0.01, 0.5, 0.99, 1.0}) EXPECT_EQ(percentile(std::vector<double>{42}, p), 42) << p;
}

TEST(PercentileTest, ZeroIsTheSmallestAndOneHundredTheLargest) {
  const std::vector<double> v = {5, -3, 9, 9, 0.5};
  EXPECT_EQ(percentile(v, 0.0), -3);
  EXPECT_EQ(percentile(v, 1.0), 9);
  EXPECT_EQ(percentile(v, -1.0), -3);  // clamped
  EXPECT_EQ(percentile(v, 2.0), 9);
  EXPECT_EQ(v, (std::vector<double>{5, -3, 9, 9, 0.5}));  // the copying form leaves them
}

// 1..100 shuffled: the p percentile is p * 100 exactly where that is whole (0.07 * 100 included,
// which is 7.000000000000001 in binary), and the next rank up where it is not.
TEST(PercentileTest, ExactRanks) {
  std::vector<double> v(100);
  std::iota(v.begin(), v.end(), 1.0);
  std::shuffle(v.begin(), v.end(), std::mt19937(7));
  for (int k = 1; k <= 100; ++k) EXPECT_EQ(percentile(v, k / 100.0), k) << k;
  EXPECT_EQ(percentile(v, 0.07), 7);
  EXPECT_EQ(percentile(v, 0.995), 100);
  EXPECT_EQ(percentile(v, 0.001), 1);
  EXPECT_EQ(percentile_index(4, 0.25), 0u);
  EXPECT_EQ(percentile_index(4, 0.26), 1u);
  EXPECT_EQ(percentile_index(10, 0.5), 4u);  // the lower middle of an even count
  EXPECT_EQ(percentile_index(11, 0.5), 5u);
  EXPECT_EQ(percentile_index(1000, 0.99), 989u);
}

// Several percentiles of one set taken in place, in any order, are those of the sorted set.
TEST(PercentileTest, InPlaceTakesSeveralInTurn) {
  std::vector<double> v = {40, 10, 30, 20, 50, 60, 70, 80, 90, 100};
  EXPECT_EQ(percentile_in_place(v, 0.99), 100);
  EXPECT_EQ(percentile_in_place(v, 0.5), 50);
  EXPECT_EQ(percentile_in_place(v, 0.1), 10);
  EXPECT_EQ(percentile_in_place(v, 0.9), 90);
  std::sort(v.begin(), v.end());
  EXPECT_EQ(v.front(), 10);
  EXPECT_EQ(v.back(), 100);
}

}  // namespace
}  // namespace moss
