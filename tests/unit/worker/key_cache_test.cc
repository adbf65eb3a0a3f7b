#include "worker/key_cache.h"
#include "worker_fixture.h"

namespace moss::worker {
namespace {

using namespace testing;

struct FakeClock {
  std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now();
  KeyCache::Clock fn() {
    return [this] { return now; };
  }
};

class KeyCacheTest : public ::testing::Test {
 protected:
  KeyCacheTest() {
    source.set_model_key("o/m", fresh_key());
    source.grant("o/m", kUser, request_key);
  }
  MemoryKeySource source;
  SecretBytes request_key = fresh_key();
  FakeClock clock;
};

// Within the lifetime a second lookup is a hit and does not reach the KeyService.
TEST_F(KeyCacheTest, HitWithinTtl) {
  KeyCache cache(source, std::chrono::seconds(300), 16, clock.fn());
  auto a = cache.get("o/m", kUser);
  ASSERT_TRUE(a.ok()) << a.status().to_string();
  EXPECT_FALSE(a->hit);
  EXPECT_TRUE(a->keys->request_key.key.equals(request_key.span()));
  clock.now += std::chrono::seconds(299);
  auto b = cache.get("o/m", kUser);
  ASSERT_TRUE(b.ok());
  EXPECT_TRUE(b->hit);
  EXPECT_EQ(source.calls.load(), 1);
}

// After the lifetime the KeyService is asked again, so a revocation takes effect.
TEST_F(KeyCacheTest, RevocationTakesEffectAfterTtl) {
  KeyCache cache(source, std::chrono::seconds(300), 16, clock.fn());
  ASSERT_TRUE(cache.get("o/m", kUser).ok());
  source.revoke("o/m", kUser);
  EXPECT_TRUE(cache.get("o/m", kUser).ok());  // still cached
  clock.now += std::chrono::seconds(301);
  auto r = cache.get("o/m", kUser);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kPermissionDenied);
  EXPECT_EQ(source.calls.load(), 2);
}

// Errors are not cached: once the KeyService is back the next request succeeds.
TEST_F(KeyCacheTest, ErrorsAreNotCached) {
  KeyCache cache(source, std::chrono::seconds(300), 16, clock.fn());
  source.down = true;
  auto r = cache.get("o/m", kUser);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kUnavailable);
  source.down = false;
  EXPECT_TRUE(cache.get("o/m", kUser).ok());
  EXPECT_EQ(cache.size(), 1u);
}

// Finding 5: refusals are remembered briefly per (model, user), the caller's check runs before any
// fetch, and fetches per claimed user are rate-limited while other users are not affected.
TEST_F(KeyCacheTest, RefusalsRememberedChecksFirstAndPerUserLimit) {
  KeyCache::Limits limits;
  limits.refusal_ttl = std::chrono::seconds(5);
  limits.user_burst = 3;
  limits.user_refill_per_s = 1;
  KeyCache cache(source, std::chrono::seconds(300), 64, clock.fn(), limits);
  const std::string victim = "fedcba9876543210fedcba9876543210";
  for (int i = 0; i < 5; ++i) EXPECT_EQ(cache.get("o/m", victim).status().code(), ErrorCode::kPermissionDenied);
  EXPECT_EQ(source.calls.load(), 1);
  clock.now += std::chrono::seconds(6);
  EXPECT_EQ(cache.get("o/m", victim).status().code(), ErrorCode::kPermissionDenied);
  EXPECT_EQ(source.calls.load(), 2);

  // The check refuses: the KeyService is not asked.
  int checks = 0;
  auto junk = [&] {
    ++checks;
    return invalid_argument("malformed envelope");
  };
  EXPECT_EQ(cache.get("o/other", victim, junk).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(checks, 1);
  EXPECT_EQ(source.calls.load(), 2);

  // Distinct unknown models for one user: the bucket (3, refilled by the 6 s, one spent since)
  // runs dry after 2.
  int refused = 0;
  for (int i = 0; i < 10; ++i) {
    auto r = cache.get("o/x" + std::to_string(i), victim);
    if (r.status().code() == ErrorCode::kResourceExhausted) ++refused;
  }
  EXPECT_EQ(source.calls.load(), 2 + 2);
  EXPECT_EQ(refused, 8);
  // Another user is not limited; a cached hit needs no token.
  EXPECT_TRUE(cache.get("o/m", kUser).ok());
  EXPECT_TRUE(cache.get("o/m", kUser).ok());
  EXPECT_EQ(source.calls.load(), 5);
  clock.now += std::chrono::seconds(1);
  EXPECT_EQ(cache.get("o/x9", victim).status().code(), ErrorCode::kNotFound);  // refilled
}

// Review finding: when the bucket table is full, a flood of fresh claimed-user names cannot reset
// a drained (limited) user's bucket: the fullest buckets are dropped first, a drained one last.
TEST_F(KeyCacheTest, FreshNameFloodDoesNotResetADrainedBucket) {
  KeyCache::Limits limits;
  limits.user_burst = 2;
  limits.user_refill_per_s = 0.001;
  KeyCache cache(source, std::chrono::seconds(300), 8, clock.fn(), limits);
  const std::string victim(32, '0');  // sorts before every flood name
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(cache.get("o/v" + std::to_string(i), victim).status().code(), ErrorCode::kNotFound);
  }
  EXPECT_EQ(cache.get("o/v2", victim).status().code(), ErrorCode::kResourceExhausted);
  for (int i = 1; i <= 100; ++i) {
    EXPECT_EQ(cache.get("o/f", fmt::format("{:032x}", i)).status().code(), ErrorCode::kNotFound);
  }
  EXPECT_EQ(cache.get("o/v3", victim).status().code(), ErrorCode::kResourceExhausted);
}

// Concurrent misses for one (model, user) share one release call.
TEST_F(KeyCacheTest, ConcurrentMissesFetchOnce) {
  KeyCache cache(source, std::chrono::seconds(300));
  source.delay = std::chrono::milliseconds(100);
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] { ok += cache.get("o/m", kUser).ok() ? 1 : 0; });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 8);
  EXPECT_EQ(source.calls.load(), 1);
}

// The entry count is bounded.
TEST_F(KeyCacheTest, BoundedEntries) {
  for (int i = 0; i < 5; ++i) {
    std::string m = "o/m" + std::to_string(i);
    source.set_model_key(m, fresh_key());
    source.grant(m, kUser, request_key);
  }
  KeyCache cache(source, std::chrono::seconds(300), 3, clock.fn());
  for (int i = 0; i < 5; ++i) {
    clock.now += std::chrono::seconds(1);
    ASSERT_TRUE(cache.get("o/m" + std::to_string(i), kUser).ok());
  }
  EXPECT_EQ(cache.size(), 3u);
}

}  // namespace
}  // namespace moss::worker
