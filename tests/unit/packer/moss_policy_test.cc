#include "packer/moss_policy.h"

#include <gtest/gtest.h>

#include <set>

#include "policy_test_util.h"

namespace moss::packer {
namespace {

using testing::instance;
using testing::pool;
using testing::resident;
using testing::teach;

constexpr uint64_t kMiB = 1024 * 1024;

// An instance that holds the model warm wins over an idle one that would have to load it.
TEST(MossPolicyTest, PrefersInstanceHoldingTheModel) {
  MossPolicy p;
  teach(p, "o/a", 20, 400, 0);
  auto view = pool({instance("i0"), instance("i1", 1, {resident("o/a")})}, 2);
  Decision d = p.route("o/a", view, 10);
  EXPECT_EQ(d.kind, DecisionKind::kWarm);
  EXPECT_EQ(d.instance_id, "i1");
  EXPECT_FALSE(d.prewarm);
}

// Affinity survives load on the warm instance as long as queueing there is cheaper than a switch.
TEST(MossPolicyTest, ChoosesCheapestBetweenQueueingAndSwitching) {
  MossPolicy p;
  teach(p, "o/a", 20, 400, 0);
  // 3 requests ahead on a 1-way instance: ~60 ms wait < 400 ms load on the idle instance.
  auto busy_warm = pool({instance("i0"), instance("i1", 3, {resident("o/a")})}, 2, 8);
  EXPECT_EQ(p.route("o/a", busy_warm, 10).instance_id, "i1");
  // 30 requests ahead: ~600 ms wait > switching on the idle instance.
  auto very_busy = pool({instance("i0"), instance("i1", 30, {resident("o/a")})}, 2, 64);
  Decision d = p.route("o/a", very_busy, 10);
  EXPECT_EQ(d.kind, DecisionKind::kSwitch);
  EXPECT_EQ(d.instance_id, "i0");
}

// Starting a new instance is chosen only when it beats every running option.
TEST(MossPolicyTest, GrowsOnlyWhenColdStartIsCheapest) {
  MossPolicy p(StatsPriors{.service_ms = 20, .load_ms = 100, .cold_start_ms = 300});
  auto empty = pool({}, 2);
  EXPECT_EQ(p.route("o/a", empty, 0).kind, DecisionKind::kCold);
  // A running instance busy with another model (1 request, 1-way): wait 20 + load 100 < 300+100.
  auto one = pool({instance("i0", 1, {resident("o/b", 0, 1)})}, 2);
  EXPECT_EQ(p.route("o/a", one, 0).kind, DecisionKind::kSwitch);
  // Heavily loaded: a new instance is cheaper.
  auto loaded = pool({instance("i0", 40, {resident("o/b", 0, 40)})}, 2, 64);
  EXPECT_EQ(p.route("o/a", loaded, 0).kind, DecisionKind::kCold);
}

// When every instance is full and the pool is at its maximum, the request queues: no failure.
TEST(MossPolicyTest, QueuesInsteadOfFailingWhenAllBusy) {
  MossPolicy p;
  auto full =
      pool({instance("i0", 2, {resident("o/b", 0, 2)}), instance("i1", 2, {resident("o/c", 0, 2)})},
           2, 2);
  Decision d = p.route("o/a", full, 0);
  EXPECT_EQ(d.kind, DecisionKind::kQueue);
  // A full instance that holds the model: queue for it rather than cold-starting elsewhere.
  auto full_warm = pool({instance("i0", 2, {resident("o/a", 0, 2)})}, 3, 2);
  Decision w = p.route("o/a", full_warm, 0);
  EXPECT_EQ(w.kind, DecisionKind::kQueue);
  EXPECT_EQ(w.instance_id, "i0");
  // A busy instance about to free a slot beats starting a new one (cold start 1 s by default).
  MossPolicy q(StatsPriors{.service_ms = 5, .load_ms = 50, .cold_start_ms = 1000});
  auto busy = pool({instance("i0", 2, {resident("o/b", 0, 2)})}, 2, 2);
  Decision b = q.route("o/a", busy, 0);
  EXPECT_EQ(b.kind, DecisionKind::kQueue);
  EXPECT_EQ(b.instance_id, "i0");
}

// A hot model gets ceil(rate x service / parallelism) instances to itself; others stay off them.
TEST(MossPolicyTest, DedicatesInstancesToHotModel) {
  MossPolicy p(StatsPriors{.half_life_ms = 5'000});
  TimeMs t = 0;
  for (int i = 0; i < 3000; ++i, t += 10) p.on_arrival("o/hot", t);  // 100/s
  teach(p, "o/hot", 25, 300, t);                                     // load 2.5
  auto view = pool({instance("i0", 0, {resident("o/hot")}), instance("i1", 0, {resident("o/hot")}),
                    instance("i2"), instance("i3", 0, {resident("o/cold")})},
                   6, 4, 1);
  EXPECT_EQ(p.instances_needed("o/hot", view, t), 3);
  auto dedicated = p.dedicated_instances(view, t);
  EXPECT_EQ(dedicated.size(), 2u);
  EXPECT_EQ(dedicated["i0"], "o/hot");
  EXPECT_EQ(dedicated["i1"], "o/hot");
  // Needs 3, holds 2: route warm and ask for one more instance.
  Decision d = p.route("o/hot", view, t);
  EXPECT_EQ(d.kind, DecisionKind::kWarm);
  EXPECT_TRUE(d.prewarm);
  // Another model never switches onto the hot model's instances, even when they are idle.
  Decision other = p.route("o/new", view, t);
  EXPECT_EQ(other.kind, DecisionKind::kSwitch);
  EXPECT_EQ(other.instance_id, "i2");
  // With nowhere else to go it queues (or grows) instead of evicting the hot model.
  auto no_room = pool({instance("i0", 0, {resident("o/hot")})}, 1);
  p.on_arrival("o/hot", t);
  EXPECT_EQ(p.route("o/new", no_room, t).kind, DecisionKind::kQueue);
}

// Instances kept for a hot model stay off-limits to other models only while waiting still meets
// their deadline: a request that would otherwise fail switches onto one.
TEST(MossPolicyTest, SwitchesOntoAHotModelsInstanceRatherThanMissItsDeadline) {
  MossPolicy p(StatsPriors{.half_life_ms = 5'000});
  TimeMs t = 0;
  for (int i = 0; i < 3000; ++i, t += 10) p.on_arrival("o/hot", t);  // 100/s
  teach(p, "o/hot", 25, 300, t);                                     // load 2.5: needs 3
  // Both instances are kept for o/hot (one running it, one idle) and the pool cannot grow.
  auto view = pool(
      {instance("i0", 1, {resident("o/hot", 0, 1)}), instance("i1", 0, {resident("o/hot")})}, 2,
      4, 1);
  ASSERT_EQ(p.dedicated_instances(view, t).size(), 2u);
  view.deadline_ms = t + 4'000;  // time to wait for the pool to change
  EXPECT_EQ(p.route("o/rare", view, t).kind, DecisionKind::kQueue);
  view.deadline_ms = t + 1'000;  // near: take the idle one
  Decision d = p.route("o/rare", view, t);
  EXPECT_EQ(d.kind, DecisionKind::kSwitch);
  EXPECT_EQ(d.instance_id, "i1");
  // Both full: waiting for a slot on one of them (then switching) beats refusing it.
  auto full = pool({instance("i0", 4, {resident("o/hot", 0, 4)}),
                    instance("i1", 4, {resident("o/hot", 0, 4)})},
                   2, 4, 1);
  full.deadline_ms = t + 1'000;
  Decision w = p.route("o/rare", full, t);
  EXPECT_EQ(w.kind, DecisionKind::kQueue);
  EXPECT_FALSE(w.instance_id.empty());
}

// Memory: a model that does not fit next to busy models is not switched onto that instance.
TEST(MossPolicyTest, AccountsMemoryFromReportedWeightsAndArena) {
  MossPolicy p;
  teach(p, "o/big", 20, 200, 0, 600 * kMiB);
  auto view = pool({instance("i0", 1, {resident("o/b", 500 * kMiB, 1)}),
                    instance("i1", 1, {resident("o/c", 100 * kMiB, 1)})},
                   2, 4, 1, 1024 * kMiB);
  Decision d = p.route("o/big", view, 1);
  EXPECT_EQ(d.kind, DecisionKind::kSwitch);
  EXPECT_EQ(d.instance_id, "i1");  // 100 + 600 fits; 500 + 600 does not and o/b is busy
  // Neither fits (both busy): queue rather than overcommit.
  auto tight = pool({instance("i0", 1, {resident("o/b", 500 * kMiB, 1)})}, 1, 4, 1, 1024 * kMiB);
  EXPECT_EQ(p.route("o/big", tight, 1).kind, DecisionKind::kQueue);
  // An idle resident model can be evicted to make room (with its reload cost as a penalty).
  auto evictable =
      pool({instance("i0", 0, {resident("o/b", 500 * kMiB, 0)})}, 1, 4, 1, 1024 * kMiB);
  Decision e = p.route("o/big", evictable, 1);
  EXPECT_EQ(e.kind, DecisionKind::kSwitch);
  EXPECT_EQ(e.instance_id, "i0");
}

// The eviction penalty steers a switch away from an instance whose model is still in demand.
TEST(MossPolicyTest, AvoidsEvictingModelsLikelyToReturn) {
  MossPolicy p;
  TimeMs t = 0;
  for (int i = 0; i < 100; ++i, t += 100) p.on_arrival("o/popular", t);  // 10/s
  teach(p, "o/popular", 5, 800, t, 600 * kMiB);
  teach(p, "o/rare", 5, 800, t, 600 * kMiB);
  teach(p, "o/new", 5, 300, t, 600 * kMiB);
  auto view = pool({instance("i0", 0, {resident("o/popular", 600 * kMiB)}),
                    instance("i1", 0, {resident("o/rare", 600 * kMiB)})},
                   2, 4, 1, 1024 * kMiB);
  Decision d = p.route("o/new", view, t);
  EXPECT_EQ(d.instance_id, "i1");
}

// An instance already starting is used instead of starting yet another.
TEST(MossPolicyTest, UsesInstanceAlreadyStarting) {
  MossPolicy p(StatsPriors{.service_ms = 20, .load_ms = 100, .cold_start_ms = 1000});
  InstanceView starting = instance("i0");
  starting.state = InstanceState::kStarting;
  starting.started_ms = 0;
  Decision d = p.route("o/a", pool({starting}, 3), 800);
  EXPECT_EQ(d.kind, DecisionKind::kStarting);
  EXPECT_EQ(d.instance_id, "i0");
}

// Statistics decay: a model hot ten minutes ago is no longer hot and loses its dedication.
TEST(MossPolicyTest, HotnessDecaysWhenModelGoesQuiet) {
  MossPolicy p(StatsPriors{.half_life_ms = 10'000});
  TimeMs t = 0;
  for (int i = 0; i < 1000; ++i, t += 10) p.on_arrival("o/hot", t);
  teach(p, "o/hot", 25, 300, t);
  auto view = pool({instance("i0", 0, {resident("o/hot")})}, 2);
  EXPECT_EQ(p.dedicated_instances(view, t).size(), 1u);
  EXPECT_EQ(p.dedicated_instances(view, t + 600'000).size(), 0u);
  Decision d = p.route("o/other", view, t + 600'000);
  EXPECT_EQ(d.kind, DecisionKind::kSwitch);
}

}  // namespace
}  // namespace moss::packer

namespace moss::packer {
namespace {

// Queueing is priced by the backlog ahead: with few requests waiting, a full warm instance is
// worth waiting for; with hundreds waiting (a burst), the pool grows instead.
TEST(MossPolicyTest, QueueOptionCountsTheBacklogAhead) {
  MossPolicy p;
  testing::teach(p, "o/a", 20, 200, 0);
  auto view = testing::one_full_instance_running("o/a", 4);
  EXPECT_EQ(p.route("o/a", view, 1).kind, DecisionKind::kQueue);
  view.queued = 400;  // 400 x 20 ms / 2 slots = 4 s ahead, more than a cold start
  view.queued_for_model = 400;  // all of them for this model (its FIFO)
  EXPECT_EQ(p.route("o/a", view, 1).kind, DecisionKind::kCold);
}

// Deadline admission: when the cheapest option is to queue longer than the request's deadline
// allows, it is refused at once with a retry-after estimate; with time enough it queues.
TEST(MossPolicyTest, RejectsAtOnceWhenQueueingCannotMeetTheDeadline) {
  MossPolicy p;
  testing::teach(p, "o/a", 20, 200, 0);
  // One instance at its limit holding o/a, the pool at its maximum: the only option is to wait.
  auto view = testing::one_full_instance_running("o/a", 1);
  view.queued = view.queued_for_model = 100;  // 100 x 20 ms / 2 = 1 s ahead
  view.deadline_ms = 1'000 + 5'000;
  EXPECT_EQ(p.route("o/a", view, 1'000).kind, DecisionKind::kQueue);
  view.deadline_ms = 1'000 + 300;
  Decision d = p.route("o/a", view, 1'000);
  EXPECT_EQ(d.kind, DecisionKind::kReject);
  EXPECT_GT(d.retry_after_ms, 300);
  // Once the deadline has passed the pool times the request out itself (deadline-exceeded).
  EXPECT_EQ(p.route("o/a", view, 2'000).kind, DecisionKind::kQueue);
  // With admission off it waits (and would time out).
  MossPolicy q(StatsPriors{}, MossPolicyOptions{.admission = false});
  testing::teach(q, "o/a", 20, 200, 0);
  EXPECT_EQ(q.route("o/a", view, 1'000).kind, DecisionKind::kQueue);
}

// A burst makes a model hot within seconds (short window) and the decision asks for every
// missing instance at once, loaded with the model; an instance already starting for it counts.
TEST(MossPolicyTest, PrewarmsSeveralInstancesWithTheHotModel) {
  MossPolicy p;  // long half-life 60 s: alone it would read the burst as a trickle
  TimeMs t = 0;
  for (int i = 0; i < 1000; ++i, t += 10) p.on_arrival("o/hot", t);  // 100/s for 10 s
  // Short window ~75/s x 50 ms: load ~3.8 (the long window alone: ~11/s, load ~0.5).
  testing::teach(p, "o/hot", 50, 300, t);
  auto view = testing::pool({testing::instance("i0", 1, {testing::resident("o/hot", 0, 1)})}, 10,
                            4, 1);
  const int need = p.instances_needed("o/hot", view, t);
  ASSERT_GE(need, 3);
  Decision d = p.route("o/hot", view, t);
  EXPECT_EQ(d.kind, DecisionKind::kWarm);
  EXPECT_EQ(d.prewarm, need - 1);
  EXPECT_EQ(d.prewarm_model, "o/hot");
  // The prewarmed instances are in the view as starting with the model (not loaded yet): no more.
  const char* const names[] = {"s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7"};
  ASSERT_LE(d.prewarm, 8);
  for (int k = 0; k < d.prewarm; ++k) {
    InstanceView starting = testing::instance(names[k]);
    starting.state = InstanceState::kStarting;
    starting.started_ms = t;
    ResidentModel m = testing::resident("o/hot");
    m.loaded = false;
    starting.models.push_back(m);
    view.instances.push_back(starting);
  }
  EXPECT_EQ(p.route("o/hot", view, t).prewarm, 0);
  // Never more than the pool may grow.
  auto small = testing::pool({testing::instance("i0", 1, {testing::resident("o/hot", 0, 1)})}, 2,
                             4, 1);
  EXPECT_EQ(p.route("o/hot", small, t).prewarm, 1);
}

// The hot set is kept as arrivals come: a model that was never hot is never scanned, and statistics
// of models quiet for long are pruned (decisions cost O(instances), not O(models ever seen)).
TEST(MossPolicyTest, ForgetsModelsQuietForLong) {
  MossPolicy p(StatsPriors{.half_life_ms = 1'000, .short_half_life_ms = 500});
  for (int m = 0; m < 5000; ++m) p.on_arrival("o/m" + std::to_string(m), m);
  EXPECT_GT(p.stats().models().size(), 4000u);
  // 20 half-lives later, enough arrivals of one model trigger the amortised prune.
  for (int i = 0; i < 5000; ++i) p.on_arrival("o/live", 100'000 + i);
  EXPECT_LT(p.stats().models().size(), 10u);
  EXPECT_NE(p.stats().find("o/live"), nullptr);
}

// The pool's budget (all instances together): a switch evicts what the pool's budget (not only
// the instance's) needs, and no instance is started for a model the budget has no room for.
TEST(MossPolicyTest, NeverPlansMoreThanThePoolBudget) {
  MossPolicy p(StatsPriors{.service_ms = 20, .load_ms = 100, .cold_start_ms = 50});
  p.learn_size("o/a", 150 * kMiB);
  auto view = pool({instance("i0", 0, {resident("o/b", 200 * kMiB)})}, 4, 4, 1, 1024 * kMiB);
  Decision free = p.route("o/a", view, 1);
  EXPECT_EQ(free.kind, DecisionKind::kSwitch);
  EXPECT_TRUE(free.evict.empty());  // 350 MiB fit the instance's 1 GiB
  view.pool_memory_budget_bytes = 300 * kMiB;  // 200 held + 150 does not fit the pool
  Decision d = p.route("o/a", view, 1);
  EXPECT_EQ(d.kind, DecisionKind::kSwitch);
  EXPECT_EQ(d.instance_id, "i0");
  EXPECT_EQ(d.evict, std::vector<std::string>{"o/b"});
  // The instance full and its model busy: without the pool's budget a new instance, within it
  // nothing can be evicted and no instance started, so the request waits.
  view.instances[0] = instance("i0", 4, {resident("o/b", 200 * kMiB, 4)});
  view.pool_memory_budget_bytes = 0;
  EXPECT_EQ(p.route("o/a", view, 1).kind, DecisionKind::kCold);
  view.pool_memory_budget_bytes = 300 * kMiB;
  EXPECT_EQ(p.route("o/a", view, 1).kind, DecisionKind::kQueue);
}

// Which idle models go is decided by value (expected reload cost per byte), not by recency: the
// least recently used model here is the popular one.
TEST(MossPolicyTest, EvictsByValueNotRecency) {
  MossPolicy p;
  TimeMs t = 0;
  for (int i = 0; i < 100; ++i, t += 100) p.on_arrival("o/popular", t);  // 10/s
  teach(p, "o/popular", 5, 800, t, 300 * kMiB);
  teach(p, "o/rare", 5, 800, t, 300 * kMiB);
  p.learn_size("o/new", 300 * kMiB);
  // Least recently used first: o/popular, then o/rare. 600 + 300 > 700: one must go.
  auto view = pool({instance("i0", 0, {resident("o/popular", 300 * kMiB),
                                       resident("o/rare", 300 * kMiB)})},
                   1, 4, 1, 700 * kMiB);
  Decision d = p.route("o/new", view, t);
  EXPECT_EQ(d.kind, DecisionKind::kSwitch);
  EXPECT_EQ(d.evict, std::vector<std::string>{"o/rare"});
}

// Prewarms for a hot model are started only as far as the pool's budget holds its copies.
TEST(MossPolicyTest, PrewarmsOnlyWhatThePoolBudgetHolds) {
  MossPolicy p;
  TimeMs t = 0;
  for (int i = 0; i < 1000; ++i, t += 10) p.on_arrival("o/hot", t);
  testing::teach(p, "o/hot", 50, 300, t, 100 * kMiB);
  auto view = pool({instance("i0", 1, {resident("o/hot", 100 * kMiB, 1)})}, 10, 4, 1, 1024 * kMiB);
  ASSERT_GE(p.instances_needed("o/hot", view, t), 3);
  EXPECT_GE(p.route("o/hot", view, t).prewarm, 2);
  view.pool_memory_budget_bytes = 250 * kMiB;  // one more copy fits, not two
  Decision d = p.route("o/hot", view, t);
  EXPECT_EQ(d.kind, DecisionKind::kWarm);
  EXPECT_EQ(d.prewarm, 1);
}

// A model larger than an instance's budget can be placed nowhere: refused at once, not queued.
TEST(MossPolicyTest, RejectsAModelLargerThanTheBudget) {
  MossPolicy p;
  p.learn_size("o/huge", 2048 * kMiB);
  auto view = pool({instance("i0")}, 4, 4, 1, 1024 * kMiB);
  Decision d = p.route("o/huge", view, 1);
  EXPECT_EQ(d.kind, DecisionKind::kReject);
  EXPECT_NE(d.reason.find("memory budget"), std::string::npos);
  EXPECT_EQ(d.prewarm, 0);
}

// Keep-alive per model, from its own gaps between arrivals: a model that comes every second is
// kept the minimum (10 s), one that comes every 4 minutes a little over 4 minutes; a model with
// too little history keeps the pool's fixed timeout. An instance keeps the longest of its models'.
TEST(MossPolicyTest, KeepAliveFollowsEachModelsOwnGaps) {
  MossPolicy p;
  TimeMs t = 0;
  for (int i = 0; i < 100; ++i, t += 1'000) p.on_arrival("o/often", t);
  for (int i = 0; i < 20; ++i, t += 240'000) p.on_arrival("o/seldom", t);
  p.on_arrival("o/new", t);
  const TimeMs fixed = 180'000;
  EXPECT_EQ(p.keep_alive_ms("o/often", fixed), 10'000);
  const TimeMs seldom = p.keep_alive_ms("o/seldom", fixed);
  EXPECT_GT(seldom, 240'000);
  EXPECT_LT(seldom, 1.3 * 240'000);
  EXPECT_EQ(p.keep_alive_ms("o/new", fixed), fixed);
  // A pool idle timeout below the 10 s floor lowers the floor: never longer than the fixed one.
  EXPECT_EQ(p.keep_alive_ms("o/often", 5'000), 5'000);
  InstanceView often = instance("i0", 0, {resident("o/often")});
  often.last_used_ms = t;
  EXPECT_EQ(p.keep_until(often, fixed), t + 10'000);
  InstanceView both = instance("i1", 0, {resident("o/often"), resident("o/seldom")});
  both.last_used_ms = t;
  EXPECT_EQ(p.keep_until(both, fixed), t + seldom);
  // The fixed keep-alive (the baseline option) ignores the histograms.
  MossPolicy fixed_policy(StatsPriors{}, MossPolicyOptions{.adaptive_keep_alive = false});
  for (int i = 0; i < 100; ++i) fixed_policy.on_arrival("o/often", i * 1'000.0);
  EXPECT_EQ(fixed_policy.keep_until(often, fixed), t + fixed);
}

// Deliberate shrink: a pool running more instances than its load needs drains the least useful
// ones (no new requests unless nothing else beats a cold start; stopped soon once idle), so its
// affinity does not keep every instance it ever started busy.
TEST(MossPolicyTest, DrainsInstancesThePoolDoesNotNeed) {
  MossPolicy p(StatsPriors{.service_ms = 10, .load_ms = 50, .cold_start_ms = 1000});
  TimeMs t = 0;
  for (int i = 0; i < 20; ++i, t += 500) p.on_arrival(i % 2 ? "o/a" : "o/b", t);  // 2/s, 10 s
  teach(p, "o/a", 10, 50, t);
  teach(p, "o/b", 10, 50, t);
  EXPECT_EQ(p.pool_instances_needed(pool({}, 3, 4, 2), t), 1);  // offered load 0.02
  InstanceView i0 = instance("i0", 0, {resident("o/a")});
  i0.last_used_ms = t - 100;
  InstanceView i1 = instance("i1", 0, {resident("o/b")});
  i1.last_used_ms = t - 50;
  InstanceView i2 = instance("i2", 0, {resident("o/b")});
  i2.last_used_ms = t - 2'000;  // the least recently used
  auto view = pool({i0, i1, i2}, 3, 4, 2);
  Decision b = p.route("o/b", view, t);
  EXPECT_EQ(b.kind, DecisionKind::kWarm);
  EXPECT_EQ(b.instance_id, "i1");
  EXPECT_EQ(p.draining(), (std::set<std::string, std::less<>>{"i0", "i2"}));
  // o/a moves off its draining instance: a switch (60 ms) beats a cold start.
  Decision a = p.route("o/a", view, t + 1);
  EXPECT_EQ(a.kind, DecisionKind::kSwitch);
  EXPECT_EQ(a.instance_id, "i1");
  // Once idle, a draining instance goes after the drain grace, not its models' keep-alive.
  EXPECT_EQ(p.keep_until(view.instances[0], 5'000), i0.last_used_ms + 1'000);
  EXPECT_EQ(p.keep_until(view.instances[1], 5'000), i1.last_used_ms + 5'000);
  // When nothing else beats a cold start, a draining instance is used again instead.
  auto busy = pool({i0, instance("i1", 300, {resident("o/b", 0, 300)}), i2}, 3, 400, 2);
  Decision again = p.route("o/a", busy, t + 2);
  EXPECT_EQ(again.kind, DecisionKind::kWarm);
  EXPECT_EQ(again.instance_id, "i0");
  // Without the shrink option nothing drains.
  MossPolicy keep(StatsPriors{.service_ms = 10, .load_ms = 50, .cold_start_ms = 1000},
                  MossPolicyOptions{.shrink = false});
  for (int i = 0; i < 20; ++i) keep.on_arrival("o/a", i * 500.0);
  EXPECT_EQ(keep.route("o/a", view, t).instance_id, "i0");
  EXPECT_TRUE(keep.draining().empty());
}

// No shrink before the pool has seen arrivals for a while (the rates mean nothing yet), nor below
// what its planned model bytes fill at the per-instance budget.
TEST(MossPolicyTest, ShrinksNeitherOnAShortHistoryNorBelowTheMemoryNeeded) {
  MossPolicy p(StatsPriors{.service_ms = 10, .load_ms = 50, .cold_start_ms = 1000});
  p.on_arrival("o/a", 0);
  p.on_arrival("o/b", 1'000);
  auto view = pool({instance("i0", 0, {resident("o/a", 300 * kMiB)}),
                    instance("i1", 0, {resident("o/b", 300 * kMiB)})},
                   2, 4, 2, 512 * kMiB);
  p.route("o/a", view, 2'000);
  EXPECT_TRUE(p.draining().empty());
  p.on_arrival("o/a", 9'000);
  EXPECT_EQ(p.pool_instances_needed(view, 10'000), 3);  // 600 MiB planned, half of 512 each
  p.route("o/a", view, 10'000);
  EXPECT_TRUE(p.draining().empty());
}

// The index PoolView keeps through add/set/erase (Pool and the simulation) follows every change:
// holders per model, instances by load, planned bytes.
TEST(PoolViewTest, IndexFollowsAddSetErase) {
  PoolView v;
  v.add(instance("i0", 2, {resident("o/a", 100), resident("o/b", 50)}));
  v.add(instance("i1", 0, {resident("o/a", 100)}));
  v.add(instance("i2", 1));
  ASSERT_TRUE(v.indexed());
  ASSERT_NE(v.holders("o/a"), nullptr);
  EXPECT_EQ(*v.holders("o/a"), (std::vector<uint32_t>{0, 1}));
  EXPECT_EQ(v.planned_total(), 250u);
  EXPECT_EQ(std::get<2>(*v.by_load().begin()), 1u);  // fewest in flight
  v.set(0, instance("i0", 0, {resident("o/c", 10)}));
  EXPECT_EQ(v.holders("o/b"), nullptr);
  EXPECT_EQ(*v.holders("o/a"), (std::vector<uint32_t>{1}));
  EXPECT_EQ(v.planned_total(), 110u);
  v.erase(0);  // positions shift
  EXPECT_EQ(*v.holders("o/a"), (std::vector<uint32_t>{0}));
  EXPECT_EQ(v.holders("o/c"), nullptr);
  EXPECT_EQ(v.planned_total(), 100u);
  EXPECT_EQ(v.by_load().size(), 2u);
  // A view filled by hand has no index (and is scanned whole): the same planned total.
  PoolView hand = pool({instance("i0"), instance("i1", 0, {resident("o/a", 100), resident("o/b", 50)})}, 2);
  EXPECT_FALSE(hand.indexed());
  EXPECT_EQ(hand.planned_total(), 150u);
}

// On an indexed view the policy visits the model's holders and the least loaded instances only,
// and decides as the whole-pool scan does: here 200 busy instances and one idle one far down.
// (Without the deliberate shrink: this pool is 30 times what its load needs, and the idle
// instance would be the first to drain.)
TEST(MossPolicyTest, IndexedViewDecidesAsTheFullScan) {
  MossPolicy p(StatsPriors{}, MossPolicyOptions{.shrink = false});
  TimeMs t = 0;
  for (int i = 0; i < 1000; ++i, t += 10) p.on_arrival("o/hot", t);
  teach(p, "o/hot", 50, 300, t, 10 * kMiB);
  teach(p, "o/a", 20, 400, t, 10 * kMiB);
  std::vector<InstanceView> all;
  for (int i = 0; i < 200; ++i) {
    std::string id(1, 'b');  // not "b" + ...: GCC 12 warns falsely (-Wrestrict)
    id += std::to_string(i);
    all.push_back(instance(id, 3, {resident(id + "-model", kMiB, 3)}));
  }
  all.push_back(instance("warm", 3, {resident("o/a", 10 * kMiB, 3)}));  // holds o/a, busy
  all.push_back(instance("idle"));
  all.push_back(instance("hot0", 0, {resident("o/hot", 10 * kMiB)}));  // kept for o/hot
  PoolView scanned = pool(all, 300, 4, 1, 512 * kMiB);
  PoolView indexed = pool({}, 300, 4, 1, 512 * kMiB);
  for (const InstanceView& i : all) indexed.add(i);
  ASSERT_TRUE(indexed.indexed());
  ASSERT_FALSE(scanned.indexed());
  for (const char* model : {"o/a", "o/new", "o/hot"}) {
    Decision a = p.route(model, scanned, t);
    Decision b = p.route(model, indexed, t);
    EXPECT_EQ(a.kind, b.kind) << model;
    EXPECT_EQ(a.instance_id, b.instance_id) << model;
    EXPECT_EQ(a.prewarm, b.prewarm) << model;
  }
  EXPECT_EQ(p.route("o/new", indexed, t).instance_id, "idle");  // not the hot model's instance
}

}  // namespace
}  // namespace moss::packer
