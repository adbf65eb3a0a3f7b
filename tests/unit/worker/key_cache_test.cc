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
