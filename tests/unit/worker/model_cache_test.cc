#include "worker/model_cache.h"
#include "worker_fixture.h"

namespace moss::worker {
namespace {

using namespace testing;

// A loader compiling a test model, counting calls, optionally slow or failing.
struct Loader {
  std::string name;
  std::atomic<int> calls{0};
  std::chrono::milliseconds delay{0};
  bool fail = false;
  ModelCache::Loader fn() {
    return [this](LoadTiming& t) -> Result<std::shared_ptr<const engine::CompiledModel>> {
      ++calls;
      if (delay.count()) std::this_thread::sleep_for(delay);
      if (fail) return data_loss("corrupted model file");
      t.compile_ms = 1;
      return engine::CompiledModel::compile(test_model(name));
    };
  }
};

uint64_t footprint(const std::string& name) {
  ModelCache cache({});
  Loader l{name};
  { auto a = cache.acquire("x", l.fn()).value_or_die(); }
  return cache.snapshot().used_bytes;
}

TEST(ModelCacheTest, ColdThenWarmThenSwitch) {
  ModelCache cache({});
  Loader lin{"linear"}, mlp{"mlp"};
  {
    auto a = cache.acquire("o/linear", lin.fn());
    ASSERT_TRUE(a.ok()) << a.status().to_string();
    EXPECT_EQ(a->kind, protocol::RunKind::kCold);
    EXPECT_EQ(a->timing.compile_ms, 1);
  }
  {
    auto b = cache.acquire("o/linear", lin.fn()).value_or_die();
    EXPECT_EQ(b.kind, protocol::RunKind::kWarm);
    EXPECT_EQ(b.timing.compile_ms, 0);
  }
  {
    auto c = cache.acquire("o/mlp", mlp.fn()).value_or_die();
    EXPECT_EQ(c.kind, protocol::RunKind::kSwitch);
  }
  EXPECT_EQ(lin.calls.load(), 1);
  auto s = cache.snapshot();
  EXPECT_EQ(s.models.size(), 2u);
  EXPECT_EQ(s.models[0].model_id, "o/mlp");  // most recent first
  EXPECT_EQ(s.hits, 1u);
  EXPECT_EQ(s.loads, 2u);
  uint64_t sum = 0;
  for (auto& m : s.models) {
    EXPECT_GT(m.weights_bytes, 0u);
    EXPECT_EQ(m.contexts, 1u);
    EXPECT_EQ(m.in_use, 0u);
    sum += m.weights_bytes + m.arena_bytes;
  }
  EXPECT_EQ(s.used_bytes, sum);
}

// Concurrent misses of one model load it once; each request gets its own context.
TEST(ModelCacheTest, SingleFlightLoadAndContextPerRequest) {
  ModelCache cache({});
  Loader lin{"linear"};
  lin.delay = std::chrono::milliseconds(150);
  std::vector<std::thread> threads;
  std::mutex mu;
  std::set<engine::ExecutionContext*> contexts;
  std::atomic<int> cold{0};
  std::vector<ModelCache::Lease> held;
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&] {
      auto a = cache.acquire("o/linear", lin.fn()).value_or_die();
      if (a.kind == protocol::RunKind::kCold) ++cold;
      std::lock_guard l(mu);
      contexts.insert(&a.lease.context());
      held.push_back(std::move(a.lease));
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(lin.calls.load(), 1);
  EXPECT_EQ(cold.load(), 6);  // every waiter paid the cold load
  EXPECT_EQ(contexts.size(), 6u);
  EXPECT_EQ(cache.snapshot().models.at(0).in_use, 6u);
  held.clear();
  auto s = cache.snapshot();
  EXPECT_EQ(s.models.at(0).in_use, 0u);
  EXPECT_EQ(s.models.at(0).contexts, 6u);
}

// Over budget, the least recently used model goes first, one at a time.
TEST(ModelCacheTest, EvictsLeastRecentlyUsed) {
  const uint64_t lin = footprint("linear"), mlp = footprint("mlp");
  ModelCache::Options o;
  o.budget_bytes = lin + mlp + std::min(lin, mlp) / 2;  // two fit, never three
  ModelCache cache(o);
  Loader a{"linear"}, b{"mlp"}, c{"linear"};
  { auto x = cache.acquire("o/a", a.fn()).value_or_die(); }
  { auto x = cache.acquire("o/b", b.fn()).value_or_die(); }
  { auto x = cache.acquire("o/a", a.fn()).value_or_die(); }  // a is now more recent than b
  { auto x = cache.acquire("o/c", c.fn()).value_or_die(); }
  auto s = cache.snapshot();
  ASSERT_EQ(s.models.size(), 2u);
  EXPECT_EQ(s.models[0].model_id, "o/c");
  EXPECT_EQ(s.models[1].model_id, "o/a");
  EXPECT_EQ(s.evictions, 1u);
  EXPECT_LE(s.used_bytes, o.budget_bytes);
}

// A model in use is never evicted: the new load waits, then fails cleanly; once the request
// ends, loading succeeds by evicting it.
TEST(ModelCacheTest, NeverEvictsModelInUse) {
  const uint64_t lin = footprint("linear");
  ModelCache::Options o;
  o.budget_bytes = lin + lin / 2;
  o.wait_for_room = std::chrono::milliseconds(200);
  ModelCache cache(o);
  Loader a{"linear"}, b{"linear"};
  {
    auto held = cache.acquire("o/a", a.fn()).value_or_die();
    auto r = cache.acquire("o/b", b.fn());
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), ErrorCode::kResourceExhausted);
    EXPECT_EQ(cache.snapshot().models.at(0).model_id, "o/a");
  }
  auto r = cache.acquire("o/b", b.fn());
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(cache.snapshot().models.size(), 1u);
}

// A load waiting for room proceeds as soon as the request holding the other model ends.
TEST(ModelCacheTest, WaitsForRoomThenLoads) {
  const uint64_t lin = footprint("linear");
  ModelCache::Options o;
  o.budget_bytes = lin + lin / 2;
  ModelCache cache(o);
  Loader a{"linear"}, b{"linear"};
  auto held = std::make_unique<ModelCache::Acquired>(cache.acquire("o/a", a.fn()).value_or_die());
  std::thread releaser([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    held.reset();
  });
  auto r = cache.acquire("o/b", b.fn());
  releaser.join();
  ASSERT_TRUE(r.ok()) << r.status().to_string();
}

// A model larger than the whole budget is refused at once; failed loads are not cached.
TEST(ModelCacheTest, TooLargeAndFailedLoads) {
  ModelCache::Options o;
  o.budget_bytes = 16;
  ModelCache small(o);
  Loader a{"linear"};
  auto r = small.acquire("o/a", a.fn());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kResourceExhausted);

  ModelCache::Options quick;
  quick.failure_backoff = std::chrono::milliseconds(0);
  ModelCache cache(quick);
  Loader bad{"linear"};
  bad.fail = true;
  EXPECT_EQ(cache.acquire("o/a", bad.fn()).status().code(), ErrorCode::kDataLoss);
  bad.fail = false;
  EXPECT_TRUE(cache.acquire("o/a", bad.fn()).ok());
  EXPECT_EQ(bad.calls.load(), 2);
  EXPECT_EQ(cache.snapshot().load_failures, 1u);
}

// Finding 12: a failed load is remembered for the backoff (the loader — fetch and decrypt — is not
// run again per request), then retried; it does not count as a load, so the first success is cold.
TEST(ModelCacheTest, FailedLoadIsRememberedAndIsNoLoad) {
  ModelCache::Options o;
  o.failure_backoff = std::chrono::milliseconds(200);
  ModelCache cache(o);
  Loader bad{"linear"};
  bad.fail = true;
  for (int i = 0; i < 10; ++i) EXPECT_EQ(cache.acquire("o/a", bad.fn()).status().code(), ErrorCode::kDataLoss);
  EXPECT_EQ(bad.calls.load(), 1);
  auto s = cache.snapshot();
  EXPECT_EQ(s.load_failures, 1u);
  EXPECT_EQ(s.failures_remembered, 9u);
  EXPECT_EQ(s.loads, 0u);
  bad.fail = false;
  std::this_thread::sleep_for(std::chrono::milliseconds(250));
  auto ok = cache.acquire("o/a", bad.fn());
  ASSERT_TRUE(ok.ok()) << ok.status().to_string();
  EXPECT_EQ(ok->kind, protocol::RunKind::kCold);
  EXPECT_EQ(bad.calls.load(), 2);
  EXPECT_EQ(cache.snapshot().loads, 1u);
}

// Finding 3: the model is resident per key generation: new keys load the model afresh and the
// copy loaded under the old keys is dropped, never served again.
TEST(ModelCacheTest, NewKeyGenerationReloadsAndDropsTheOld) {
  ModelCache cache({});
  Loader lin{"linear"}, mlp{"mlp"};
  { auto a = cache.acquire("o/m", lin.fn(), "gen-1").value_or_die(); }
  { EXPECT_EQ(cache.acquire("o/m", lin.fn(), "gen-1").value_or_die().kind, protocol::RunKind::kWarm); }
  {
    auto b = cache.acquire("o/m", mlp.fn(), "gen-2").value_or_die();
    EXPECT_EQ(b.kind, protocol::RunKind::kSwitch);
    EXPECT_EQ(mlp.calls.load(), 1);
  }
  auto s = cache.snapshot();
  ASSERT_EQ(s.models.size(), 1u);
  EXPECT_EQ(s.used_bytes, s.models[0].weights_bytes + s.models[0].arena_bytes);
  // The old generation is gone: asking for it loads again.
  { auto c = cache.acquire("o/m", lin.fn(), "gen-1").value_or_die(); }
  EXPECT_EQ(lin.calls.load(), 2);
}

}  // namespace
}  // namespace moss::worker
