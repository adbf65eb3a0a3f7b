#include "packer/original_policy.h"

#include <gtest/gtest.h>

#include "policy_test_util.h"

namespace moss::packer {
namespace {

using testing::instance;
using testing::pool;
using testing::resident;
using testing::teach;

// The first free function is taken, whatever it holds: no affinity.
TEST(OriginalPolicyTest, TakesFirstFreeFunctionIgnoringResidency) {
  OriginalPolicy p;
  auto view = pool({instance("i0", 0, {resident("o/b")}), instance("i1", 0, {resident("o/a")})}, 2);
  Decision d = p.route("o/a", view, 0);
  EXPECT_EQ(d.instance_id, "i0");
  EXPECT_EQ(d.kind, DecisionKind::kSwitch);
}

// A function not yet started counts as free: the pool starts it.
TEST(OriginalPolicyTest, StartsFunctionWhenNoneIdle) {
  OriginalPolicy p;
  auto view = pool({instance("i0", 1, {resident("o/b", 0, 1)})}, 2);
  EXPECT_EQ(p.route("o/a", view, 0).kind, DecisionKind::kCold);
}

// All busy and the pool at its maximum: hard failure.
TEST(OriginalPolicyTest, FailsWhenAllFunctionsBusy) {
  OriginalPolicy p;
  auto view = pool(
      {instance("i0", 1, {resident("o/b", 0, 1)}), instance("i1", 1, {resident("o/c", 0, 1)})}, 2);
  Decision d = p.route("o/a", view, 0);
  EXPECT_EQ(d.kind, DecisionKind::kReject);
  EXPECT_NE(d.reason.find("no free function"), std::string::npos);
}

// A model with requests in flight keeps its function exclusively and sends concurrent requests
// there, until its concurrency limit, then fails.
TEST(OriginalPolicyTest, ConcurrentRequestsShareTheClaimedFunctionThenFail) {
  OriginalPolicy p;
  p.on_dispatch("o/a", "i1", 0);
  auto view = pool({instance("i0"), instance("i1", 2, {resident("o/a", 0, 2)})}, 2, 3);
  Decision d = p.route("o/a", view, 1);
  EXPECT_EQ(d.instance_id, "i1");
  EXPECT_EQ(d.kind, DecisionKind::kWarm);
  auto at_limit = pool({instance("i0"), instance("i1", 3, {resident("o/a", 0, 3)})}, 2, 3);
  EXPECT_EQ(p.route("o/a", at_limit, 1).kind, DecisionKind::kReject);
}

// The claim lapses after twice the model's last execution time; until then others stay off.
TEST(OriginalPolicyTest, ClaimLapsesAfterTwiceLastExecutionTime) {
  OriginalPolicy p;
  p.on_dispatch("o/a", "i0", 0);
  teach(p, "o/a", 100, 0, 1'000);  // finished at t=1000 after 100 ms: claim holds until 1200
  auto view = pool({instance("i0", 0, {resident("o/a")})}, 1);
  EXPECT_TRUE(p.claim_holds("o/a", view, 1'150));
  EXPECT_EQ(p.route("o/b", view, 1'150).kind, DecisionKind::kReject);
  EXPECT_FALSE(p.claim_holds("o/a", view, 1'250));
  Decision d = p.route("o/b", view, 1'250);
  EXPECT_EQ(d.kind, DecisionKind::kSwitch);
  EXPECT_EQ(d.instance_id, "i0");
  // Its own claim brings the model back to its function while it holds.
  EXPECT_EQ(p.route("o/a", view, 1'150).instance_id, "i0");
}

// Policies are chosen by name.
TEST(RoutingPolicyTest, FactoryKnowsBothPolicies) {
  EXPECT_EQ((*make_routing_policy("moss"))->name(), "moss");
  EXPECT_EQ((*make_routing_policy("original"))->name(), "original");
  EXPECT_FALSE(make_routing_policy("random").ok());
}

}  // namespace
}  // namespace moss::packer
