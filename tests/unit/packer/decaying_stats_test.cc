#include "packer/decaying_stats.h"

#include <gtest/gtest.h>

#include "packer/stats_book.h"

namespace moss::packer {
namespace {

// A steady stream converges to its true rate.
TEST(DecayingRateTest, SteadyStreamConvergesToItsRate) {
  DecayingRate r(10'000);
  for (int i = 0; i < 2000; ++i) r.add_event(i * 100.0);  // 10 per second
  EXPECT_NEAR(r.per_second(199'900), 10.0, 0.5);
}

// With no events the rate halves every half-life.
TEST(DecayingRateTest, HalvesEveryHalfLifeWithoutEvents) {
  DecayingRate r(1'000);
  for (int i = 0; i < 500; ++i) r.add_event(i * 10.0);
  double at = r.per_ms(4'990);
  EXPECT_NEAR(r.per_ms(5'990), at / 2, at * 1e-9);
  EXPECT_NEAR(r.per_ms(7'990), at / 8, at * 1e-9);
  EXPECT_EQ(DecayingRate().per_ms(100), 0.0);
}

// The mean is the prior before samples, the sample after one, and recent samples dominate.
TEST(DecayingMeanTest, RecentSamplesDominateOldOnes) {
  DecayingMean m(50, 1'000);
  EXPECT_EQ(m.mean(0), 50);
  m.add(200, 0);
  EXPECT_DOUBLE_EQ(m.mean(0), 200);
  for (int i = 0; i < 10; ++i) m.add(200, i);
  m.add(10, 10'000);  // ten half-lives later: the old samples weigh ~0.01 together
  EXPECT_NEAR(m.mean(10'000), 10, 3);
}

// Once every sample has faded the estimate returns to the prior.
TEST(DecayingMeanTest, ReturnsToPriorWhenSamplesFade) {
  DecayingMean m(50, 1'000);
  m.add(500, 0);
  EXPECT_DOUBLE_EQ(m.mean(500), 500);
  EXPECT_NEAR(m.mean(20'000), 50, 0.01);
  double mid = m.mean(4'000);  // weight 1/16 < 0.1: between sample and prior
  EXPECT_GT(mid, 50);
  EXPECT_LT(mid, 500);
}

// Offered load is arrival rate times service time (Little's law).
TEST(StatsBookTest, OfferedLoadIsRateTimesServiceTime) {
  StatsBook book({.service_ms = 50, .load_ms = 500, .cold_start_ms = 1000, .half_life_ms = 5'000});
  for (int i = 0; i < 3000; ++i) book.model("a/m").arrivals.add_event(i * 20.0);  // 50/s
  book.model("a/m").service_ms.add(40, 59'980);
  EXPECT_NEAR(book.offered_load("a/m", 59'980), 2.0, 0.1);
  EXPECT_EQ(book.offered_load("a/unknown", 0), 0.0);
  EXPECT_EQ(book.service_ms("a/unknown", 0), 50);
}

}  // namespace
}  // namespace moss::packer
