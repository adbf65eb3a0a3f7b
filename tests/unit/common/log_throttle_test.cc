#include "common/log_throttle.h"

#include <gtest/gtest.h>

namespace moss::log {
namespace {

using namespace std::chrono_literals;

TEST(LogThrottleTest, PassesABurstThenCountsWhatItDrops) {
  LogThrottle throttle(3, 1000ms);
  auto t0 = LogThrottle::Clock::time_point{} + 10s;
  for (int i = 0; i < 3; ++i) {
    auto pass = throttle.admit_at(t0);
    ASSERT_TRUE(pass.has_value());
    EXPECT_EQ(*pass, 0u);
  }
  for (int i = 0; i < 100; ++i) EXPECT_FALSE(throttle.admit_at(t0 + 500ms).has_value());
  // The next window opens; its first line reports the 100 dropped ones, once.
  auto next = throttle.admit_at(t0 + 1001ms);
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(*next, 100u);
  auto after = throttle.admit_at(t0 + 1002ms);
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ(*after, 0u);
}

TEST(LogThrottleTest, AFloodWritesAtMostBurstLinesPerInterval) {
  LogThrottle throttle(5, 1000ms);
  auto t0 = LogThrottle::Clock::time_point{} + 10s;
  int written = 0;
  // 100,000 lines over 5 s: at most 5 per second pass.
  for (int i = 0; i < 100000; ++i) {
    if (throttle.admit_at(t0 + std::chrono::microseconds(i * 50))) ++written;
  }
  EXPECT_LE(written, 30);
  EXPECT_GE(written, 25);
}

}  // namespace
}  // namespace moss::log
