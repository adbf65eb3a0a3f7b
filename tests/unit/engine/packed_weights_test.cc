// PackedWeights: a compile's packed weights recorded, serialised, parsed back and replayed give
// the same outputs as a fresh compile; a recording of another model is not replayed (and the
// compile still gives the right outputs); damaged serialisations are refused.
#include "engine/runtime/compiled_model.h"
#include "engine/runtime/execution_context.h"
#include "engine/runtime/packed_weights.h"
#include "model_builder.h"

#include <gtest/gtest.h>

#include <cmath>

namespace moss::engine {
namespace {

using testing::ModelBuilder;
using testing::wave;
constexpr int F = onnx::TensorProto::FLOAT;

// Two Convs (blocked weights), a residual, a Gemm: several packed buffers.
std::vector<uint8_t> cnn(int channels) {
  const int64_t c = channels;
  ModelBuilder b(13);
  b.input("x", F, {1, 16, 10, 10}).output("y");
  b.init_f("w1", {c, 16, 3, 3}, wave(static_cast<size_t>(c) * 144, 0.05f, 0.3f));
  b.init_f("b1", {c}, wave(static_cast<size_t>(c), 0.5f, 0.1f));
  b.init_f("w2", {16, c, 1, 1}, wave(static_cast<size_t>(c) * 16, 0.07f, 0.4f));
  b.init_f("g", {5, 16}, wave(80, 0.05f, 0.2f)).init_f("gc", {5}, wave(5, 1.0f, 0.1f));
  ModelBuilder::attr_ints(b.node("Conv", {"x", "w1", "b1"}, {"c1"}), "pads", {1, 1, 1, 1});
  b.node("Relu", {"c1"}, {"r1"});
  b.node("Conv", {"r1", "w2"}, {"c2"});
  b.node("Add", {"c2", "x"}, {"s"});
  b.node("GlobalAveragePool", {"s"}, {"gap"});
  b.node("Flatten", {"gap"}, {"f"});
  ModelBuilder::attr_i(b.node("Gemm", {"f", "g", "gc"}, {"y"}), "transB", 1);
  return b.bytes();
}

Tensor run(const std::shared_ptr<const CompiledModel>& m) {
  Tensor x = Tensor::zeros(DType::kFloat32, {1, 16, 10, 10}).value_or_die();
  auto* d = x.data<float>();
  for (int64_t i = 0; i < x.numel(); ++i) d[i] = std::cos(0.01f * static_cast<float>(i));
  ExecutionContext ctx(m);
  const std::vector<NamedTensor> in{{"x", x}};
  auto out = ctx.run(in).value_or_die();
  return out.at(0).tensor;
}

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
