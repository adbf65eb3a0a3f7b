// Training-mode forms of inference operators (issue 13): Dropout drops at random (seeded as the
// ONNX reference draws; unseeded differently per run) and BatchNormalization normalizes with the
// batch's statistics. The ONNX test data checks the exact values (engine_conformance); these check
// the properties a model relies on.
#include "engine/runtime/execution_context.h"
#include "model_builder.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

namespace moss::engine {
namespace {

using testing::ModelBuilder;
constexpr int F = onnx::TensorProto::FLOAT;
constexpr int B = onnx::TensorProto::BOOL;

// Dropout(x, ratio 0.5, training_mode true) with x all ones; optional seed.
ModelBuilder dropout_model(bool seeded) {
  ModelBuilder b(13);
  b.input("x", F, {1000}).output("y").output("mask", B);
  b.init_f("r", {}, {0.5f});
  auto* t = b.graph().add_initializer();
  t->set_name("t");
  t->set_data_type(B);
  t->add_int32_data(1);
  auto& n = b.node("Dropout", {"x", "r", "t"}, {"y", "mask"});
  if (seeded) ModelBuilder::attr_i(n, "seed", 7);
  return b;
}

std::vector<bool> run_dropout(ExecutionContext& ctx) {
  std::vector<NamedTensor> in{{"x", Tensor::from_vector<float>({1000}, std::vector<float>(1000, 1.f))}};
  auto out = ctx.run(in).value_or_die();
  const float* y = out[0].tensor.data<float>();
  const bool* m = out[1].tensor.data<bool>();
  std::vector<bool> mask(m, m + 1000);
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(y[i], m[i] ? 2.f : 0.f) << i;  // kept ones scale by 1/(1-0.5)
  return mask;
}

TEST(EngineTrainingMode, DropoutKeepsAboutOneMinusRatioAndScalesWhatItKeeps) {
  for (bool seeded : {true, false}) {
    auto model = CompiledModel::compile(dropout_model(seeded).bytes()).value_or_die();
    ExecutionContext ctx(model);
    auto a = run_dropout(ctx), b = run_dropout(ctx);
    const long kept = std::count(a.begin(), a.end(), true);
    EXPECT_GT(kept, 400);
    EXPECT_LT(kept, 600);
    // A seeded node draws the same mask every run; an unseeded one draws a new one.
    if (seeded) EXPECT_EQ(a, b);
    else EXPECT_NE(a, b);
  }
}

TEST(EngineTrainingMode, DropoutRatioOneIsRefused) {
  auto b = dropout_model(true);
  b.graph().mutable_initializer(0)->set_float_data(0, 1.f);
  auto m = CompiledModel::compile(b.bytes());
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("not in [0, 1)"), std::string::npos) << m.status().message();
}

TEST(EngineTrainingMode, BatchNormalizationUsesBatchStatisticsAndUpdatesRunningOnes) {
  ModelBuilder b(15);
  b.input("x", F, {2, 1, 2}).output("y").output("rm").output("rv");
  b.init_f("s", {1}, {2.f}).init_f("bias", {1}, {1.f}).init_f("m", {1}, {10.f}).init_f("v", {1}, {4.f});
  auto& n = b.node("BatchNormalization", {"x", "s", "bias", "m", "v"}, {"y", "rm", "rv"});
  ModelBuilder::attr_i(n, "training_mode", 1);
  auto model = CompiledModel::compile(b.bytes()).value_or_die();
  ExecutionContext ctx(model);
  // Batch mean 2.5, biased variance 1.25 over {1, 2, 3, 4}.
  std::vector<NamedTensor> in{{"x", Tensor::from_vector<float>({2, 1, 2}, {1, 2, 3, 4})}};
  auto out = ctx.run(in).value_or_die();
  const float* y = out[0].tensor.data<float>();
  const float inv = 1.f / std::sqrt(1.25f + 1e-5f);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(y[i], (i + 1 - 2.5f) * inv * 2.f + 1.f, 1e-5f);
  EXPECT_NEAR(out[1].tensor.data<float>()[0], 10.f * 0.9f + 2.5f * 0.1f, 1e-5f);
  EXPECT_NEAR(out[2].tensor.data<float>()[0], 4.f * 0.9f + 1.25f * 0.1f, 1e-5f);
}

}  // namespace
}  // namespace moss::engine
