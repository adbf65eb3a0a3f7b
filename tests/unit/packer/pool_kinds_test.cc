#include "packer/pool_kinds.h"

#include "packer/pool_spec.h"

#include <gtest/gtest.h>

namespace moss::packer {
namespace {

// Each kind prints to the name that parses back to it; other names are refused, naming the choices.
TEST(PoolKindsTest, NamesRoundTripAndUnknownNamesAreRefused) {
  for (BackendKind k : {BackendKind::kLocal, BackendKind::kOpenWhisk}) {
    EXPECT_EQ(*parse_backend_kind(backend_kind_name(k)), k);
  }
  for (PolicyKind k : {PolicyKind::kMoss, PolicyKind::kOriginal, PolicyKind::kOriginalQueue}) {
    EXPECT_EQ(*parse_policy_kind(policy_kind_name(k)), k);
  }
  auto backend = parse_backend_kind("knative");
  ASSERT_FALSE(backend.ok());
  EXPECT_EQ(backend.status().message(), "unknown backend 'knative' (expected local or openwhisk)");
  EXPECT_FALSE(parse_backend_kind("Local").ok());
  auto policy = parse_policy_kind("random");
  ASSERT_FALSE(policy.ok());
  EXPECT_EQ(policy.status().message(), "unknown policy 'random' (expected moss, original or original+queue)");
  // An outside name that could split or forge a log line is not echoed.
  auto forged = parse_policy_kind("moss'\nERROR forged");
  ASSERT_FALSE(forged.ok());
  EXPECT_EQ(forged.status().message(),
            "unknown policy (a name of 18 bytes) (expected moss, original or original+queue)");
  EXPECT_EQ(parse_backend_kind(std::string(65, 'a')).status().message(),
            "unknown backend (a name of 65 bytes) (expected local or openwhisk)");
}

// A spec names its kinds once; an unknown backend is refused, never taken as OpenWhisk.
TEST(PoolKindsTest, SpecParsesKindsAndPrintsThemBack) {
  auto spec = parse_pool_spec(nlohmann::json::parse(
      R"({"name":"p","backend":"local","policy":"original+queue","worker_binary":"/w"})"));
  ASSERT_TRUE(spec.ok()) << spec.status().to_string();
  EXPECT_EQ(spec->backend, BackendKind::kLocal);
  EXPECT_EQ(spec->policy, PolicyKind::kOriginalQueue);
  EXPECT_EQ(spec->to_json()["policy"], "original+queue");
  EXPECT_EQ(spec->to_json()["backend"], "local");
  auto unknown = parse_pool_spec(nlohmann::json::parse(R"({"name":"p","backend":"knative","worker_binary":"/w"})"));
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("unknown backend 'knative'"), std::string::npos);
}

}  // namespace
}  // namespace moss::packer
