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

// Two time scales: a burst shows within seconds (short window), and the rate shrinks back only as
// the long window forgets it.
TEST(StatsBookTest, ArrivalRateGrowsOnABurstAndShrinksSlowly) {
  StatsBook book({.half_life_ms = 60'000, .short_half_life_ms = 5'000});
  TimeMs t = 0;
  for (int i = 0; i < 120; ++i, t += 1'000) book.add_arrival("a/m", t);  // 1/s for 2 minutes
  EXPECT_NEAR(book.rate_per_ms("a/m", t) * 1000, 1.0, 0.3);
  for (int i = 0; i < 100; ++i, t += 20) book.add_arrival("a/m", t);  // 50/s for 2 s
  const double burst = book.rate_per_ms("a/m", t) * 1000;
  EXPECT_GT(burst, 8.0);  // the long window alone reads about 2/s here
  const double later = book.rate_per_ms("a/m", t + 30'000) * 1000;
  EXPECT_GT(later, 1.0);  // 30 s later the short window is near 0; the long one still remembers
  EXPECT_LT(later, burst);
}

// A model not measured yet is priced with what the pool measured on its other models, not the
// fixed prior (20 copies of one small model: every first request priced at a 500 ms load).
TEST(StatsBookTest, AModelNotMeasuredYetIsPricedWithThePoolsMeans) {
  StatsBook book({.service_ms = 50, .load_ms = 500});
  book.add_service("a/m", 4, 0);
  book.add_load("a/m", 30, 0);
  EXPECT_DOUBLE_EQ(book.load_ms("a/unknown", 10), 30);
  EXPECT_DOUBLE_EQ(book.service_ms("a/unknown", 10), 4);
  book.add_arrival("a/new", 10);  // known, but not measured
  EXPECT_DOUBLE_EQ(book.load_ms("a/new", 10), 30);
  book.add_load("a/new", 90, 20);  // its own measurement wins
  EXPECT_DOUBLE_EQ(book.load_ms("a/new", 20), 90);
  EXPECT_NEAR(book.load_ms("a/unknown", 20), 60, 0.1);  // the pool's mean of 30 and 90
}

// With a worker load rate set, before the pool has measured any load, a model whose size is known
// (the store's metadata) is priced at that rate for its size, not the fixed 500 ms guess. Once the
// pool measures a load, its mean takes over as above. Without a rate (the default) the guess stays.
TEST(StatsBookTest, AFirstLoadIsPricedFromTheModelsSizeBeforeThePoolMeasuredAny) {
  StatsBook plain;
  plain.model("a/big").bytes = 100u << 20;
  EXPECT_DOUBLE_EQ(plain.load_ms("a/big", 0), 500);
  StatsBook book({.service_ms = 50, .load_ms = 500, .load_base_ms = 30, .load_ms_per_mib = 9.4});
  book.model("a/big").bytes = 100u << 20;
  book.model("a/tiny").bytes = 150'000;  // the digits example
  EXPECT_DOUBLE_EQ(book.load_ms("a/big", 0), 30 + 940);
  EXPECT_NEAR(book.load_ms("a/tiny", 0), 31.3, 0.1);
  EXPECT_DOUBLE_EQ(book.load_ms("a/unsized", 0), 500);  // size unknown: the prior
  EXPECT_DOUBLE_EQ(book.first_load_ms(0, 0), 500);
  book.add_load("a/other", 80, 10);
  EXPECT_DOUBLE_EQ(book.load_ms("a/big", 10), 80);
  EXPECT_DOUBLE_EQ(book.load_ms("a/unsized", 10), 80);
  // Once the pool's samples have faded (the model went quiet), the size-based estimate returns.
  EXPECT_NEAR(book.load_ms("a/tiny", 10 + 60'000 * 20), 31.3, 0.1);
}

// The pool's arrival rate (all models, long window) reads the rate even early on: a decayed count
// over less than its time constant is corrected for the short history.
TEST(StatsBookTest, PoolRateReadsTheRateAfterAShortHistory) {
  StatsBook book({.service_ms = 10, .half_life_ms = 60'000});
  EXPECT_EQ(book.pool_rate_per_ms(0), 0);
  TimeMs t = 0;
  for (int i = 0; i < 300; ++i, t += 100) book.add_arrival(i % 2 ? "a/x" : "a/y", t);  // 10/s
  EXPECT_NEAR(book.pool_rate_per_ms(t) * 1000, 10, 0.5);  // uncorrected: about 3
  EXPECT_NEAR(book.pool_offered_load(t), 0.1, 0.01);      // x 10 ms (the prior, unmeasured)
  EXPECT_NEAR(book.history_ms(t), 30'000, 1);
}

// Models quiet for longer than the pruning age are forgotten; recent ones stay.
TEST(StatsBookTest, PrunesModelsQuietForLong) {
  StatsBook book;
  book.add_arrival("a/old", 0);
  book.add_arrival("a/new", 500'000);
  EXPECT_EQ(book.prune(600'000, 300'000), 1u);
  EXPECT_EQ(book.find("a/old"), nullptr);
  EXPECT_NE(book.find("a/new"), nullptr);
}

}  // namespace
}  // namespace moss::packer
