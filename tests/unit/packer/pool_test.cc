#include "packer/pool.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>
#include <vector>

#include "crypto/envelope.h"
#include "packer/pool_manager.h"
#include "packer_test_util.h"
#include "support/temp_dir.h"

namespace moss::packer {
namespace {

using nlohmann::json;

class PoolTest : public ::testing::Test {
 protected:
  // `clock`: the pool's time. Tests of timeouts use manual_ and move it instead of sleeping;
  // routing tests whose workers take real time use steady_.
  PoolPtr make(json spec, const Clock* clock = nullptr) {
    PoolManagerOptions o;
    o.reap_interval = std::chrono::hours(1);  // tests call reap_idle() themselves
    manager_ = std::make_unique<PoolManager>(o, clock ? *clock : steady_);
    auto pool = manager_->create(spec);
    EXPECT_TRUE(pool.ok()) << pool.status().to_string();
    return *pool;
  }
  SteadyClock steady_;
  ManualClock manual_{1'000'000};
  std::unique_ptr<PoolManager> manager_;
};

using steady = std::chrono::steady_clock;
double ms_since(steady::time_point t) {
  return std::chrono::duration<double, std::milli>(steady::now() - t).count();
}

// A binary request's binary reply passes through the pool as the worker sent it (no JSON/base64
// round trip): the envelope byte for byte (the stand-in echoes the request), run and timing read
// from its headers, FnPacker's annotation added beside it.
TEST_F(PoolTest, BinaryReplyPassesThroughUnconverted) {
  PoolPtr pool = make(testing::local_pool_json("p", 1, 4));
  std::vector<uint8_t> key(32, 3);
  const std::string request =
      crypto::seal_envelope(key, {"owner/model", "user-1", "r-1", protocol::Direction::kRequest}, {}, {},
                            protocol::EnvelopeEncoding::kBinary)
          .value_or_die();
  auto reply = pool->invoke("owner/model", request);
  ASSERT_TRUE(reply.ok()) << reply.status().to_string();
  EXPECT_EQ(reply->encoding(), protocol::EnvelopeEncoding::kBinary);
  EXPECT_EQ(reply->envelope, request);
  EXPECT_EQ(reply->run, protocol::RunKind::kCold);
  EXPECT_TRUE(reply->timing_ms.contains("inference"));
  EXPECT_EQ(reply->packer["decision"], "cold");
  EXPECT_EQ(pool->counters().runs_cold, 1u);
  EXPECT_EQ(pool->status()["instances"][0]["models"][0]["model_id"], "owner/model");
}

// Requests for a model go back to the instance that holds it; another model gets its own.
TEST_F(PoolTest, RoutesBackToTheInstanceHoldingTheModel) {
  PoolPtr pool = make(testing::local_pool_json("p", 2, 4));
  auto a1 = testing::result_json(pool->invoke("o/a", testing::costs(1)).value_or_die());
  EXPECT_EQ(a1["packer"]["decision"], "cold");
  EXPECT_EQ(a1["run"], "cold");
  // While o/a's instance is busy, o/b arrives; later o/a comes back to its instance warm.
  auto b = std::async(std::launch::async, [&] { return pool->invoke("o/b", testing::costs(300)); });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  auto a2 = testing::result_json(pool->invoke("o/a", testing::costs(1)).value_or_die());
  EXPECT_EQ(a2["run"], "warm");
  EXPECT_EQ(a2["packer"]["instance"], a1["packer"]["instance"]);
  ASSERT_TRUE(b.get().ok());
  EXPECT_EQ(pool->counters().served, 3u);
  EXPECT_EQ(pool->counters().failed, 0u);
}

// The per-instance concurrency limit holds: extra requests queue and are all served.
TEST_F(PoolTest, QueuesBeyondTheConcurrencyLimit) {
  PoolPtr pool = make(testing::local_pool_json("p", 1, 2));
  ASSERT_TRUE(pool->invoke("o/a", testing::costs(1)).ok());  // start the instance
  std::vector<std::future<Result<protocol::InferResult>>> calls;
  for (int i = 0; i < 6; ++i) {
    calls.push_back(
        std::async(std::launch::async, [&] { return pool->invoke("o/a", testing::costs(100)); }));
  }
  int max_seen = 0;
  for (auto& c : calls) {
    auto r = c.get();
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    max_seen = std::max(max_seen, testing::result_json(*r)["instance"]["in_flight"].get<int>());
  }
  PoolCounters k = pool->counters();
  EXPECT_EQ(k.served, 7u);
  EXPECT_GE(k.queued, 1u);
  EXPECT_EQ(k.rejected, 0u);
  EXPECT_LE(max_seen, 2);
  EXPECT_EQ(k.instance_starts, 1u);
}

// A request that cannot get an instance within its deadline fails with deadline-exceeded. The
// deadline is on the pool's clock: it passes when the clock moves, not after real waiting.
TEST_F(PoolTest, QueueHonoursTheDeadlineOnThePoolClock) {
  PoolPtr pool = make(testing::local_pool_json("p", 1, 1), &manual_);
  ASSERT_TRUE(pool->invoke("o/a", testing::costs(1)).ok());
  auto slow =
      std::async(std::launch::async, [&] { return pool->invoke("o/a", testing::costs(3'000)); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // let it take the only slot
  // A 60 s deadline on the pool clock: still queued after real time passes.
  auto late = std::async(std::launch::async,
                         [&] { return pool->invoke("o/b", testing::costs(1), 60'000); });
  EXPECT_EQ(late.wait_for(std::chrono::milliseconds(300)), std::future_status::timeout);
  auto moved = steady::now();
  manual_.advance(60'001);
  pool->wake();
  ASSERT_EQ(late.wait_for(std::chrono::milliseconds(1'000)), std::future_status::ready);
  EXPECT_LT(ms_since(moved), 1'000.0);
  auto r = late.get();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kDeadlineExceeded);
  EXPECT_TRUE(slow.get().ok());
  EXPECT_EQ(pool->counters().timed_out, 1u);
}

// Deadline admission on the pool clock: a request whose only option is to wait longer than its
// deadline allows is refused at once (resource-exhausted with a retry-after), not held until it
// times out; with a deadline it can meet it queues.
TEST_F(PoolTest, RefusesAtOnceWhatCannotMeetItsDeadline) {
  PoolPtr pool = make(testing::local_pool_json("p", 1, 1), &manual_);
  // The pool's requests take 20 ms: o/b, not measured yet, is priced like them.
  ASSERT_TRUE(pool->invoke("o/a", testing::costs(20)).ok());
  auto slow =
      std::async(std::launch::async, [&] { return pool->invoke("o/a", testing::costs(1'000)); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // let it take the only slot
  // The clock does not move: only the estimate (a service time at least) can refuse it.
  double retry_after_ms = 0;
  auto refused = pool->invoke("o/b", testing::costs(1), /*max_wait_ms=*/5, &retry_after_ms);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), ErrorCode::kResourceExhausted);
  EXPECT_GT(retry_after_ms, 5.0);
  EXPECT_EQ(pool->counters().rejected, 1u);
  EXPECT_EQ(pool->counters().timed_out, 0u);
  // A deadline it can meet: it waits for the slot and is served.
  auto waits = std::async(std::launch::async,
                          [&] { return pool->invoke("o/b", testing::costs(1), 60'000); });
  EXPECT_TRUE(slow.get().ok());
  auto served = waits.get();
  EXPECT_TRUE(served.ok()) << served.status().to_string();
}

// A finished request hands its slot to the next queued request the instance suits: the oldest one
// for a model it holds goes before an older request that would have to switch it.
TEST_F(PoolTest, FreedSlotGoesToTheQueuedRequestForAResidentModel) {
  PoolPtr pool = make(testing::local_pool_json("p", 1, 1));
  ASSERT_TRUE(pool->invoke("o/a", testing::costs(1)).ok());
  auto slow =
      std::async(std::launch::async, [&] { return pool->invoke("o/a", testing::costs(600)); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  auto other = std::async(std::launch::async, [&] {
    auto r = pool->invoke("o/b", testing::costs(1));
    return std::make_pair(std::move(r), steady::now());
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // o/b queues first
  auto same = std::async(std::launch::async, [&] {
    auto r = pool->invoke("o/a", testing::costs(1));
    return std::make_pair(std::move(r), steady::now());
  });
  ASSERT_TRUE(slow.get().ok());
  auto [a, a_done] = same.get();
  auto [b, b_done] = other.get();
  ASSERT_TRUE(a.ok()) << a.status().to_string();
  ASSERT_TRUE(b.ok()) << b.status().to_string();
  EXPECT_EQ(testing::result_json(*a)["run"], "warm");
  EXPECT_LT(a_done, b_done);
  EXPECT_EQ(pool->counters().queued, 2u);
}

// The original rule fails a request when every function is busy; MOSS would have queued it.
TEST_F(PoolTest, OriginalRuleFailsWhenAllBusy) {
  PoolPtr pool = make(testing::local_pool_json("p", 1, 4, "original"));
  ASSERT_TRUE(pool->invoke("o/a", testing::costs(1)).ok());
  auto slow =
      std::async(std::launch::async, [&] { return pool->invoke("o/a", testing::costs(500)); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  auto other = pool->invoke("o/b", testing::costs(1));
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.status().code(), ErrorCode::kResourceExhausted);
  EXPECT_TRUE(slow.get().ok());
  EXPECT_EQ(pool->counters().rejected, 1u);
}

// Idle instances are stopped after the idle timeout; the next request starts one again.
TEST_F(PoolTest, StopsIdleInstances) {
  json spec = testing::local_pool_json("p", 2, 4);
  spec["idle_timeout_s"] = 1;
  PoolPtr pool = make(spec, &manual_);
  ASSERT_TRUE(pool->invoke("o/a", testing::costs(1)).ok());
  manual_.advance(900);
  pool->reap_idle();
  EXPECT_EQ(pool->status()["instances"].size(), 1u);  // not idle long enough yet
  manual_.advance(200);
  pool->reap_idle();
  EXPECT_EQ(pool->status()["instances"].size(), 0u);
  EXPECT_EQ(pool->counters().instance_stops, 1u);
  auto again = testing::result_json(pool->invoke("o/a", testing::costs(1)).value_or_die());
  EXPECT_EQ(again["run"], "cold");
}

// Per-model keep-alive: a model that came every second keeps its instance for the minimum (10 s),
// not the pool's fixed 180 s.
TEST_F(PoolTest, StopsAnInstanceAfterItsModelsOwnKeepAlive) {
  PoolPtr pool = make(testing::local_pool_json("p", 2, 4), &manual_);  // idle_timeout_s 180
  for (int i = 0; i < 12; ++i) {
    ASSERT_TRUE(pool->invoke("o/a", testing::costs(1)).ok());
    manual_.advance(1'000);
  }
  manual_.advance(8'000);  // 9 s since the last request
  pool->reap_idle();
  EXPECT_EQ(pool->status()["instances"].size(), 1u);
  manual_.advance(2'000);
  pool->reap_idle();
  EXPECT_EQ(pool->status()["instances"].size(), 0u);
  EXPECT_EQ(pool->counters().instance_stops, 1u);
}

// The pool's memory budget (all instances together): with one 50 MiB model resident, a second one
// (its size known from the store before its first load) does not get an instance of its own in a
// 60 MiB pool; it switches onto the running one.
TEST_F(PoolTest, PoolMemoryBudgetKeepsASecondModelOffANewInstance) {
  test_support::TempDir store("moss-pool-budget");
  std::filesystem::create_directories(store.path() / "o");
  const std::filesystem::path model_b = store.path() / "o" / "b.moss";
  std::ofstream(model_b).close();
  std::filesystem::resize_file(model_b, 50u << 20);  // sparse: only its size is read
  json spec = testing::local_pool_json("p", 2, 4);
  spec["pool_memory_budget_mb"] = 60;
  spec["worker_config"]["model_store"] = store.path().string();
  PoolPtr pool = make(spec, &manual_);
  ASSERT_TRUE(pool->invoke("o/a", testing::costs(1, 10, 50)).ok());
  manual_.advance(100);
  auto b = testing::result_json(pool->invoke("o/b", testing::costs(1, 10, 50)).value_or_die());
  EXPECT_EQ(b["packer"]["decision"], "switch");
  EXPECT_EQ(pool->counters().instance_starts, 1u);
  EXPECT_EQ(pool->spec().to_json()["pool_memory_budget_mb"], 60);
}

// A pool's first requests, before anything was measured, with a worker load rate set
// (StatsPriors::load_ms_per_mib, off by default) and the models' sizes known from the store
// (1 MiB each): the first load is priced at about 40 ms, so requests arriving while the first
// instance starts join it instead of each starting another; priced at the fixed 500 ms guess (the
// default), the third request saw two 500 ms loads ahead of it on the starting instance and
// started a second one.
TEST_F(PoolTest, FirstRequestsJoinTheStartingInstanceWhenTheirSizeIsKnown) {
  test_support::TempDir store("moss-pool-first-load");
  std::filesystem::create_directories(store.path() / "o");
  for (const char* name : {"a", "b", "c"}) {
    const std::filesystem::path model = store.path() / "o" / (std::string(name) + ".moss");
    std::ofstream(model).close();
    std::filesystem::resize_file(model, 1u << 20);
  }
  json spec = testing::local_pool_json("p", 3, 4);
  spec["worker_config"]["model_store"] = store.path().string();
  spec["worker_config"]["sim_start_ms"] = 1'500;  // the first instance is still starting below
  PoolSpec parsed = parse_pool_spec(spec).value_or_die();
  auto pool = std::make_shared<Pool>(
      parsed, make_backend(parsed, {}).value_or_die(),
      make_routing_policy(parsed.policy, StatsPriors{.load_base_ms = 30, .load_ms_per_mib = 9.4}),
      manual_);
  std::vector<std::future<Result<protocol::InferResult>>> calls;
  for (int i = 0; i < 3; ++i) {
    const std::string model = std::string("o/") + "abc"[i];
    calls.push_back(std::async(std::launch::async,
                               [&, model] { return pool->invoke(model, testing::costs(1, 10, 1)); }));
    for (int k = 0; k < 500; ++k) {  // until it is routed (on an instance)
      int in_flight = 0;
      const json status = pool->status();
      for (const json& inst : status["instances"]) in_flight += inst["in_flight"].get<int>();
      if (in_flight == i + 1) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    manual_.advance(100);  // 100 ms of the start have passed for the next one
  }
  EXPECT_EQ(pool->status()["instances"].size(), 1u);
  for (auto& c : calls) {
    auto r = c.get();
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_EQ(testing::result_json(*r)["packer"]["instance"], "i0");
  }
  EXPECT_EQ(pool->counters().instance_starts, 1u);
}

// min_instances are started ahead of demand and never reaped.
TEST_F(PoolTest, KeepsMinimumInstances) {
  json spec = testing::local_pool_json("p", 2, 4);
  spec["min_instances"] = 1;
  spec["idle_timeout_s"] = 1;
  PoolPtr pool = make(spec, &manual_);
  for (int i = 0; i < 200 && pool->counters().instance_starts == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // a real process starting
  }
  EXPECT_EQ(pool->counters().instance_starts, 1u);
  manual_.advance(10'000);
  pool->reap_idle();
  EXPECT_EQ(pool->status()["instances"].size(), 1u);
}

// A hot model (arrival rate x service time above what one instance computes) gets a second
// instance started ahead of the next request, and its requests spread over both.
TEST_F(PoolTest, StartsAnotherInstanceForAHotModel) {
  json spec = testing::local_pool_json("p", 3, 8);
  spec["stats_half_life_s"] = 1;
  PoolPtr pool = make(spec);
  ASSERT_TRUE(pool->invoke("o/hot", testing::costs(1)).ok());
  // 25 requests/s of 200 ms: offered load 5, parallelism 2 -> needs 3 instances.
  std::vector<std::future<Result<protocol::InferResult>>> calls;
  for (int i = 0; i < 50; ++i) {
    calls.push_back(
        std::async(std::launch::async, [&] { return pool->invoke("o/hot", testing::costs(200)); }));
    std::this_thread::sleep_for(std::chrono::milliseconds(40));
  }
  std::set<std::string> instances;
  for (auto& c : calls) {
    auto r = c.get();
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    instances.insert(testing::result_json(*r)["packer"]["instance"].get<std::string>());
  }
  EXPECT_GE(pool->counters().instance_starts, 2u);
  EXPECT_GE(instances.size(), 2u);
  EXPECT_EQ(pool->counters().failed, 0u);
}

// The worker's reported resident models and memory reach the pool status.
TEST_F(PoolTest, StatusShowsResidentModelsAndMemory) {
  PoolPtr pool = make(testing::local_pool_json("p", 1, 4));
  ASSERT_TRUE(pool->invoke("o/a", testing::costs(1, 10, 40)).ok());
  ASSERT_TRUE(pool->invoke("o/b", testing::costs(1, 10, 60)).ok());
  json s = pool->status();
  ASSERT_EQ(s["instances"].size(), 1u);
  EXPECT_EQ(s["instances"][0]["memory_used_bytes"], 100ull << 20);
  EXPECT_EQ(s["instances"][0]["models"].size(), 2u);
  EXPECT_EQ(s["latency_ms"]["count"], 2);
  EXPECT_EQ(pool->peak_memory_bytes(), 100ull << 20);
  EXPECT_GT(pool->instance_seconds(), 0.0);
}

// A backend that records which instances the pool stopped (the local backend does the work).
class StopRecordingBackend final : public Backend {
 public:
  explicit StopRecordingBackend(BackendPtr inner) : inner_(std::move(inner)) {}
  std::string_view kind() const override { return inner_->kind(); }
  Result<InstancePtr> start(const std::string& instance_id) override {
    MOSS_ASSIGN_OR_RETURN(InstancePtr inst, inner_->start(instance_id));
    return InstancePtr(std::make_unique<Recorded>(std::move(inst), instance_id, *this));
  }
  std::set<std::string> stopped() const {
    std::lock_guard lock(mu_);
    return stopped_;
  }

 private:
  struct Recorded final : Instance {
    Recorded(InstancePtr inner, std::string id, StopRecordingBackend& owner)
        : inner(std::move(inner)), id(std::move(id)), owner(owner) {}
    std::string endpoint() const override { return inner->endpoint(); }
    Result<protocol::InferResult> invoke(std::string_view body,
                                         std::chrono::milliseconds timeout) override {
      return inner->invoke(body, timeout);
    }
    void stop() override {
      inner->stop();
      std::lock_guard lock(owner.mu_);
      owner.stopped_.insert(id);
    }
    InstancePtr inner;
    std::string id;
    StopRecordingBackend& owner;
  };
  BackendPtr inner_;
  mutable std::mutex mu_;
  std::set<std::string> stopped_;
};

// The deliberate shrink on a real pool, on the manual clock: a burst of four models grows the pool
// to four instances; over a quiet tail (one model, one request every 2 s) the long window no
// longer needs them, and the spare instances drain and are stopped, but not below what the models
// still resident need in memory (two models of 150 MiB are more than half of one instance's
// 512 MiB budget: two instances stay).
TEST_F(PoolTest, DrainsAndStopsTheSpareInstancesAfterABurst) {
  json j = testing::local_pool_json("p", 4, 1);  // one request per instance: a burst grows it
  PoolSpec spec = parse_pool_spec(j).value_or_die();
  auto backend = std::make_unique<StopRecordingBackend>(make_backend(spec, {}).value_or_die());
  StopRecordingBackend& recorded = *backend;
  auto pool = std::make_shared<Pool>(spec, std::move(backend),
                                     make_routing_policy(spec.policy, StatsPriors{}), manual_);
  // The burst: each request is held 500 ms (real time) by its worker, so the next one finds every
  // instance busy and starts another (the clock does not move: the measured start is 0 ms).
  std::vector<std::future<Result<protocol::InferResult>>> burst;
  for (int i = 0; i < 4; ++i) {
    const std::string model = "o/m" + std::to_string(i);
    burst.push_back(std::async(std::launch::async, [&, model] {
      return pool->invoke(model, testing::costs(500, 10, 150));
    }));
    for (int k = 0; k < 500; ++k) {  // until it is on its instance
      int in_flight = 0;
      const json status = pool->status();
      for (const json& inst : status["instances"]) in_flight += inst["in_flight"].get<int>();
      if (in_flight == i + 1) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  std::set<std::string> served_on;
  for (auto& b : burst) {
    auto r = b.get();
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    served_on.insert(testing::result_json(*r)["packer"]["instance"].get<std::string>());
  }
  ASSERT_EQ(served_on.size(), 4u);
  ASSERT_EQ(pool->counters().instance_starts, 4u);
  // The quiet tail: 60 s of one request every 2 s for o/m0, the pool reaped after each.
  std::string m0_instance;
  for (int s = 0; s < 30; ++s) {
    manual_.advance(2'000);
    auto r = pool->invoke("o/m0", testing::costs(1, 10, 150));
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    json reply = testing::result_json(*r);
    EXPECT_EQ(reply["run"], "warm");  // o/m0 stays where it is
    m0_instance = reply["packer"]["instance"].get<std::string>();
    pool->reap_idle();
  }
  json status = pool->status();
  ASSERT_EQ(status["instances"].size(), 2u);
  uint64_t resident = 0;
  std::set<std::string> left;
  for (const json& inst : status["instances"]) {
    left.insert(inst["id"].get<std::string>());
    for (const json& m : inst["models"]) resident += m["bytes"].get<uint64_t>();
  }
  EXPECT_TRUE(left.count(m0_instance));
  EXPECT_GT(resident, 256ull << 20);  // one instance at half its budget would not hold them
  // Drained ones were stopped, not just forgotten; the two left were not.
  std::set<std::string> stopped = recorded.stopped();
  EXPECT_EQ(stopped.size(), 2u);
  for (const std::string& id : left) EXPECT_FALSE(stopped.count(id)) << id;
  EXPECT_EQ(pool->counters().instance_stops, 2u);
  // A longer tail drains nothing more: the memory need holds.
  for (int s = 0; s < 15; ++s) {
    manual_.advance(2'000);
    ASSERT_TRUE(pool->invoke("o/m0", testing::costs(1, 10, 150)).ok());
    pool->reap_idle();
  }
  EXPECT_EQ(pool->status()["instances"].size(), 2u);
  EXPECT_EQ(pool->counters().failed, 0u);
  pool->shutdown();
}

// A crashed worker being restarted (its instance busy for the whole start) blocks neither
// status() nor routing: the pool lock is never held while an instance is asked anything.
TEST_F(PoolTest, CrashedWorkerUnderRestartBlocksNeitherRoutingNorStatus) {
  // The original rule: its decisions here do not depend on timing (o/b finds i0 busy and starts
  // i1), so the test shows routing going on rather than a policy's estimate.
  json spec = testing::local_pool_json("p", 2, 4, "original");
  spec["worker_config"]["sim_start_ms"] = 2'000;  // every start, and so the restart, takes 2 s
  PoolPtr pool = make(spec);
  ASSERT_TRUE(pool->invoke("o/a", testing::costs(1)).ok());
  ASSERT_FALSE(pool->invoke("test/crash", testing::costs(1)).ok());  // the worker exits
  // The next request for o/a goes to its instance, finds the process dead and restarts it.
  auto restarted =
      std::async(std::launch::async, [&] { return pool->invoke("o/a", testing::costs(1)); });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the restart is under way
  ASSERT_EQ(restarted.wait_for(std::chrono::milliseconds(0)), std::future_status::timeout);
  auto t = steady::now();
  json s = pool->status();
  EXPECT_LT(ms_since(t), 500.0);
  EXPECT_EQ(s["instances"].size(), 1u);
  // Routing goes on: a request for another model is decided at once (a cold start on a second
  // instance, whose own 2 s start is not under the pool lock either) while the restart runs.
  t = steady::now();
  auto other =
      std::async(std::launch::async, [&] { return pool->invoke("o/b", testing::costs(1)); });
  for (int i = 0; i < 50 && pool->status()["instances"].size() < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_LT(ms_since(t), 500.0);
  EXPECT_EQ(pool->status()["instances"].size(), 2u);
  EXPECT_EQ(restarted.wait_for(std::chrono::milliseconds(0)), std::future_status::timeout);
  auto r = restarted.get();
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(testing::result_json(*r)["run"], "cold");  // a fresh process
  EXPECT_TRUE(other.get().ok());
  EXPECT_EQ(pool->status()["instances"][0]["restarts"], 1);
}

}  // namespace
}  // namespace moss::packer
