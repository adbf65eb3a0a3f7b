// PackedWeights: a compile's packed weights recorded, serialised, parsed back and replayed give
// the same outputs as a fresh compile; a recording of another model is not replayed (and the
// compile still gives the right outputs); damaged serialisations are refused.
#include "engine/runtime/compiled_model.h"
#include "engine/runtime/execution_context.h"
#include "engine/runtime/packed_weights.h"
#include "test_models.h"

#include <gtest/gtest.h>

namespace moss::engine {
namespace {

using testing::cnn;

Tensor run(const std::shared_ptr<const CompiledModel>& m) { return testing::run_once(m); }

// The recording serialised and parsed back into its own buffer, as the plan cache does.
std::shared_ptr<const PackedWeights> round_trip(const PackedWeights& recorded) {
  auto bytes = std::make_shared<std::vector<uint8_t>>(recorded.serialize());
  return PackedWeights::parse(bytes, *bytes).value_or_die();
}

TEST(PackedWeightsTest, ReplayGivesTheOutputsOfAFreshCompile) {
  const auto bytes = cnn(32);
  CompileOptions record;
  record.record_packed_weights = true;
  auto first = CompiledModel::compile(bytes, record).value_or_die();
  ASSERT_TRUE(first->packed_weights());
  EXPECT_GE(first->packed_weights()->buffers().size(), 4u);  // two Convs and the Gemm
  auto stored = round_trip(*first->packed_weights());
  ASSERT_EQ(stored->buffers().size(), first->packed_weights()->buffers().size());
  EXPECT_EQ(stored->bytes(), first->packed_weights()->bytes());

  CompileOptions replay;
  replay.packed_weights = stored;
  auto second = CompiledModel::compile(bytes, replay).value_or_die();
  EXPECT_TRUE(second->packed_weights_replayed());
  auto fresh = CompiledModel::compile(bytes).value_or_die();
  EXPECT_FALSE(fresh->packed_weights_replayed());
  const Tensor expected = run(fresh);
  EXPECT_TRUE(run(second).equals(expected));
  EXPECT_TRUE(run(first).equals(expected));
  stored.reset();  // the replayed model keeps the stored bytes alive
  EXPECT_TRUE(run(second).equals(expected));
}

TEST(PackedWeightsTest, AnotherModelsRecordingIsNotReplayed) {
  CompileOptions record;
  record.record_packed_weights = true;
  auto other = CompiledModel::compile(cnn(48), record).value_or_die();
  const auto bytes = cnn(32);
  CompileOptions replay;
  replay.packed_weights = round_trip(*other->packed_weights());
  auto m = CompiledModel::compile(bytes, replay).value_or_die();
  EXPECT_FALSE(m->packed_weights_replayed());
  EXPECT_TRUE(run(m).equals(run(CompiledModel::compile(bytes).value_or_die())));
}

TEST(PackedWeightsTest, DamagedSerialisationIsRefused) {
  CompileOptions record;
  record.record_packed_weights = true;
  auto m = CompiledModel::compile(cnn(32), record).value_or_die();
  const std::vector<uint8_t> good = m->packed_weights()->serialize();
  auto parse = [](std::vector<uint8_t> b) {
    auto keep = std::make_shared<std::vector<uint8_t>>(std::move(b));
    return PackedWeights::parse(keep, *keep).status();
  };
  EXPECT_TRUE(parse(good).ok());
  EXPECT_FALSE(parse({good.begin(), good.begin() + static_cast<long>(good.size() / 2)}).ok());
  EXPECT_FALSE(parse({good.begin(), good.begin() + 40}).ok());
  std::vector<uint8_t> bad_magic = good;
  bad_magic[0] ^= 1;
  EXPECT_FALSE(parse(bad_magic).ok());
  std::vector<uint8_t> huge_count = good;
  huge_count[11] = 0x7f;
  EXPECT_FALSE(parse(huge_count).ok());
}

TEST(PackedWeightsTest, KeyIngredientsAreNamed) {
  EXPECT_NE(engine_build_id().find("onednn-"), std::string::npos);
  EXPECT_EQ(cpu_feature_set().rfind("cpuid ", 0), 0u);
}

}  // namespace
}  // namespace moss::engine
