#include "worker/replay_cache.h"

#include <gtest/gtest.h>

namespace moss::worker {
namespace {

struct FakeClock {
  std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now();
  ReplayCache::Clock fn() {
    return [this] { return now; };
  }
};

// Finding 9: a request id is accepted once per (user, model) within the window; forgotten ids
// and ids past the window are accepted again; the bound holds.
TEST(ReplayCacheTest, OncePerWindowBoundedAndForgettable) {
  FakeClock clock;
  ReplayCache cache(std::chrono::seconds(60), 4, clock.fn());
  EXPECT_TRUE(cache.first_use("u", "o/m", "r1"));
  EXPECT_FALSE(cache.first_use("u", "o/m", "r1"));
  EXPECT_TRUE(cache.first_use("v", "o/m", "r1"));  // another user
  EXPECT_TRUE(cache.first_use("u", "o/n", "r1"));  // another model
  cache.forget("u", "o/n", "r1");
  EXPECT_TRUE(cache.first_use("u", "o/n", "r1"));
  clock.now += std::chrono::seconds(61);
  EXPECT_TRUE(cache.first_use("u", "o/m", "r1"));
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(cache.first_use("u", "o/m", "many-" + std::to_string(i)));
  EXPECT_LE(cache.size(), 4u);
}

}  // namespace
}  // namespace moss::worker
