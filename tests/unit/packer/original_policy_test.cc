// Scenario tests for the seed FnPacker's rule (src/packer/original_policy.h). Each expected
// decision is derived by walking SeSeMI's fnpacker/fnpack/controller.go and stats.go by hand;
// the Go line that decides is cited next to it. The pool is a fixed set of functions f0, f1, ...
// (as Go's pool_size functions), all running.
#include "packer/original_policy.h"

#include <gtest/gtest.h>

#include "policy_test_util.h"

namespace moss::packer {
namespace {

using testing::instance;
using testing::pool;
using testing::resident;

// Routes and, unless the decision is reject or queue, dispatches as Pool does.
Decision send(OriginalPolicy& p, const std::string& model, const PoolView& view, TimeMs now) {
  Decision d = p.route(model, view, now);
  if (d.kind != DecisionKind::kReject && d.kind != DecisionKind::kQueue &&
      d.kind != DecisionKind::kCold) {
    p.on_dispatch(model, d.instance_id, now);
  }
  return d;
}

// A request of `model` sent at `sent` finishes at `now` after `activation_ms` (the worker's whole
// time: OpenWhisk's duration, which the original used as exec time).
void finish(OriginalPolicy& p, const std::string& model, TimeMs sent, TimeMs now,
            double activation_ms, double load_ms = 0) {
  // Designated initialisers: GCC 12 warns falsely (-Wrestrict) on assigning short literals here.
  Completion c{.model_id = model,
               .instance_id = std::string(1, 'x'),
               .ok = true,
               .run = load_ms > 0 ? protocol::RunKind::kSwitch : protocol::RunKind::kWarm};
  c.inference_ms = activation_ms - load_ms;
  c.load_ms = load_ms;
  c.activation_ms = activation_ms;
  c.sent_ms = sent;
  c.now = now;
  p.on_complete(c);
}

PoolView functions(int n, int max_concurrency = 4) {
  std::vector<InstanceView> v;
  for (int i = 0; i < n; ++i) {
    std::string id(1, 'f');  // not "f" + ...: GCC 12 warns falsely (-Wrestrict)
    id += std::to_string(i);
    v.push_back(instance(id));
  }
  return pool(std::move(v), static_cast<size_t>(n), max_concurrency);
}

// Behaviour 1: a claim is made only when a model has 2 requests in flight (controller.go
// 208-212), and a function taken over by another model loses its claim (steal_func, 161).
TEST(OriginalPolicyTest, ClaimsOnlyAtTwoInFlightAndTakeOverClearsTheClaim) {
  OriginalPolicy p;
  PoolView view = functions(2);
  // A, first request: in_use 1 -> steal_func takes f0 (158-162); no claim yet.
  EXPECT_EQ(send(p, "A", view, 0).instance_id, "f0");
  EXPECT_TRUE(p.busy("f0"));
  EXPECT_EQ(p.claim_on("f0"), "");
  // A, second concurrent request: in_use 2 -> funcs[mapping] = A (209-212), same function.
  EXPECT_EQ(send(p, "A", view, 10).instance_id, "f0");
  EXPECT_EQ(p.claim_on("f0"), "A");
  // Both finish at 100 after 100 ms: busy cleared (269); last_call = 100, exec = 100 (stats.go
  // 52-59): the claim blocks others while now - 100 < 200.
  finish(p, "A", 0, 100, 100);
  finish(p, "A", 10, 100, 100);
  EXPECT_FALSE(p.busy("f0"));
  EXPECT_EQ(p.in_use("A"), 0);
  // B at 250: f0 claimed by A (150 < 200, line 147) -> f1.
  EXPECT_EQ(send(p, "B", view, 250).instance_id, "f1");
  finish(p, "B", 250, 260, 10);
  // C at 300: A's claim has lapsed (200 >= 200) -> C takes f0 and the claim is cleared (161).
  EXPECT_EQ(send(p, "C", view, 300).instance_id, "f0");
  EXPECT_EQ(p.claim_on("f0"), "");
  // A single request of B never claimed f1.
  EXPECT_EQ(p.claim_on("f1"), "");
}

// Behaviour 2: an idle model takes the first free function; its own claim only means "not blocked
// for me" (check_busy_or_exclusive 141), it does not bring the model back to that function.
TEST(OriginalPolicyTest, IdleModelTakesFirstFreeFunctionNotItsClaimedOne) {
  OriginalPolicy p;
  PoolView view = functions(2);
  EXPECT_EQ(send(p, "B", view, 0).instance_id, "f0");
  EXPECT_EQ(send(p, "A", view, 1).instance_id, "f1");  // f0 busy (137)
  EXPECT_EQ(send(p, "A", view, 2).instance_id, "f1");  // claims f1 (209-212)
  EXPECT_EQ(p.claim_on("f1"), "A");
  finish(p, "B", 0, 50, 50);
  finish(p, "A", 1, 100, 99);
  finish(p, "A", 2, 100, 98);
  // A at 120, claim on f1 still holding, f1 holds A's model: steal_func scans from f0, which is
  // free and unclaimed (140-142), so A goes to f0 and must switch there.
  PoolView resident_view =
      pool({instance("f0", 0, {resident("B")}), instance("f1", 0, {resident("A")})}, 2);
  Decision d = send(p, "A", resident_view, 120);
  EXPECT_EQ(d.instance_id, "f0");
  EXPECT_EQ(d.kind, DecisionKind::kSwitch);
  // The claim on f1 stays (only the taken function's claim is cleared): B is now locked out of
  // f1 while A's claim holds (120 - 100 < 2 x 98), and f0 is busy: B fails (221-223).
  EXPECT_EQ(p.claim_on("f1"), "A");
  Decision b = send(p, "B", resident_view, 130);
  EXPECT_EQ(b.kind, DecisionKind::kReject);
  // After the claim lapses (100 + 196), B takes f1.
  EXPECT_EQ(send(p, "B", resident_view, 297).instance_id, "f1");
}

// Behaviour 3: no concurrency limit at the packer for an active model (213-214): every
// concurrent request goes to its function, beyond the instance's max_concurrency (OpenWhisk
// adds containers to the action).
TEST(OriginalPolicyTest, ActiveModelHasNoConcurrencyLimitAtThePacker) {
  OriginalPolicy p;
  PoolView view = functions(3, /*max_concurrency=*/2);
  for (int i = 0; i < 6; ++i) {
    Decision d = send(p, "A", view, i);
    EXPECT_EQ(d.instance_id, "f0") << "request " << i;
    EXPECT_NE(d.kind, DecisionKind::kReject);
  }
  EXPECT_EQ(p.in_use("A"), 6);
  // The other functions stay free for other models.
  EXPECT_EQ(send(p, "B", view, 10).instance_id, "f1");
}

// Behaviour 4: a claim lasts 2 x the whole activation time of the claimant's latest request,
// model switch included (stats.go 52 with packer.go 136: OpenWhisk's duration), counted from the
// end of its latest non-overlapping request (stats.go 54-59).
TEST(OriginalPolicyTest, ClaimLastsTwiceTheWholeActivationTime) {
  OriginalPolicy p;
  PoolView view = functions(1);
  send(p, "A", view, 800);
  send(p, "A", view, 850);  // claims f0
  // First request: 10 ms inference after a 190 ms model switch, ends at 1000: last_call 1000.
  finish(p, "A", 800, 1000, 200, 190);
  // Second request started (850) before last_call (1000): overlapping, last_call stays 1000;
  // exec_time becomes this one's 200 ms.
  finish(p, "A", 850, 1050, 200, 190);
  // The claim holds until 1000 + 2 x 200 = 1400 (not 2 x 10 ms of inference alone).
  EXPECT_TRUE(p.busy_or_exclusive("f0", "B", 1399));
  EXPECT_EQ(send(p, "B", view, 1399).kind, DecisionKind::kReject);
  EXPECT_FALSE(p.busy_or_exclusive("f0", "B", 1400));
  EXPECT_EQ(send(p, "B", view, 1400).instance_id, "f0");
}

// A model seen for the first time when every function is busy fails at once (197-200); a pool
// that may still start a function starts one.
TEST(OriginalPolicyTest, StartsAFunctionOrFailsWhenNoneIsFree) {
  OriginalPolicy p;
  PoolView one = pool({instance("f0")}, 2);
  EXPECT_EQ(send(p, "A", one, 0).instance_id, "f0");
  EXPECT_EQ(p.route("B", one, 1).kind, DecisionKind::kCold);
  PoolView full = functions(1);
  Decision d = p.route("B", full, 1);
  EXPECT_EQ(d.kind, DecisionKind::kReject);
  EXPECT_NE(d.reason.find("no free function"), std::string::npos);
}

// A failed request releases its in-use count (deviation in the baseline's favour: Go would keep
// it, packer.go 126-133): the function is free again.
TEST(OriginalPolicyTest, FailedRequestReleasesItsFunction) {
  OriginalPolicy p;
  PoolView view = functions(1);
  send(p, "A", view, 0);
  Completion c{.model_id = std::string(1, 'A'),
               .instance_id = std::string("f0"),
               .ok = false,
               .run = std::nullopt};
  c.now = 5;
  p.on_complete(c);
  EXPECT_EQ(p.in_use("A"), 0);
  EXPECT_FALSE(p.busy("f0"));
  EXPECT_EQ(send(p, "B", view, 6).instance_id, "f0");
}

// The "original + queue" baseline: the same rule, but with no free function the request waits and
// routes again instead of failing.
TEST(OriginalPolicyTest, QueueVariantWaitsWhereTheOriginalFails) {
  OriginalPolicy p(StatsPriors{}, /*queue_when_busy=*/true);
  EXPECT_EQ(p.name(), "original+queue");
  PoolView view = functions(1);
  send(p, "A", view, 0);
  EXPECT_EQ(p.route("B", view, 1).kind, DecisionKind::kQueue);
  finish(p, "A", 0, 10, 10);
  // A's single request made no claim: B takes f0 as soon as it is free.
  EXPECT_EQ(send(p, "B", view, 11).instance_id, "f0");
}

// Policies are chosen by kind, and each reports the kind's name.
TEST(RoutingPolicyTest, FactoryKnowsAllPolicies) {
  for (PolicyKind k : {PolicyKind::kMoss, PolicyKind::kOriginal, PolicyKind::kOriginalQueue}) {
    EXPECT_EQ(make_routing_policy(k)->name(), policy_kind_name(k));
  }
}

}  // namespace
}  // namespace moss::packer
