#include "engine/runtime/execution_context.h"
#include "model_builder.h"

#include <gtest/gtest.h>

#include <thread>

namespace moss::engine {
namespace {

using testing::ModelBuilder;
constexpr int F = onnx::TensorProto::FLOAT;
constexpr int I64 = onnx::TensorProto::INT64;

// x[N,4] -> MatMul W[4,3] -> Add b -> Relu -> Softmax: a small MLP with a dynamic batch.
std::vector<uint8_t> mlp_model() {
  ModelBuilder b;
  b.input("x", F, {-1, 4}).output("y");
  std::vector<float> w(12);
  for (int i = 0; i < 12; ++i) w[i] = 0.1f * static_cast<float>(i) - 0.5f;
  b.init_f("W", {4, 3}, w).init_f("B", {3}, {0.1f, -0.2f, 0.3f});
  b.node("MatMul", {"x", "W"}, {"h"});
  b.node("Add", {"h", "B"}, {"h2"});
  b.node("Relu", {"h2"}, {"h3"});
  b.node("Softmax", {"h3"}, {"y"});
  return b.bytes();
}

Tensor ramp(std::vector<int64_t> shape, float scale) {
  Tensor t = Tensor::zeros(DType::kFloat32, shape).value_or_die();
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = scale * static_cast<float>(i % 17) - 1.0f;
  return t;
}

TEST(EngineRuntime, RunsAnMlpAndMatchesHandComputedValues) {
  // A 1-row MLP output equals the softmax of relu(xW+b) computed by hand.
  auto model = CompiledModel::compile(mlp_model()).value_or_die();
  ExecutionContext ctx(model);
  Tensor x = Tensor::from_vector<float>({1, 4}, {1, 2, 3, 4});
  auto out = ctx.run(std::vector<NamedTensor>{{"x", x}}).value_or_die();
  ASSERT_EQ(out.size(), 1u);
  std::vector<float> h(3);
  for (int j = 0; j < 3; ++j) {
    float s = std::vector<float>{0.1f, -0.2f, 0.3f}[j];
    for (int k = 0; k < 4; ++k) s += static_cast<float>(k + 1) * (0.1f * static_cast<float>(k * 3 + j) - 0.5f);
    h[j] = std::max(0.0f, s);
  }
  float z = std::exp(h[0]) + std::exp(h[1]) + std::exp(h[2]);
  for (int j = 0; j < 3; ++j) EXPECT_NEAR(out[0].tensor.data<float>()[j], std::exp(h[j]) / z, 1e-6);
}

TEST(EngineRuntime, EightThreadsOnOneModelMatchSerialBitForBit) {
  // 8 contexts on 8 threads, many runs each, give exactly the bytes of a serial run.
  auto model = CompiledModel::compile(mlp_model()).value_or_die();
  std::vector<Tensor> inputs, expected;
  ExecutionContext serial(model);
  for (int i = 0; i < 8; ++i) {
    inputs.push_back(ramp({static_cast<int64_t>(i + 1), 4}, 0.37f * static_cast<float>(i + 1)));
    expected.push_back(serial.run(std::vector<NamedTensor>{{"x", inputs.back()}}).value_or_die()[0].tensor);
  }
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      ExecutionContext ctx(model);
      for (int r = 0; r < 200; ++r) {
        const int i = (t + r) % 8;
        auto out = ctx.run(std::vector<NamedTensor>{{"x", inputs[i]}});
        if (!out.ok() || !(*out)[0].tensor.equals(expected[i])) ++mismatches;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

TEST(EngineRuntime, FoldsShapeSubgraphsForEachBatchSize) {
  // Shape->Gather->Unsqueeze->Concat->Reshape (as exporters emit) works for different batches.
  ModelBuilder b(13);
  b.input("x", F, {-1, 2, 3}).output("y");
  b.init_i("zero", {}, {0}).init_i("axes0", {1}, {0}).init_i("minus1", {1}, {-1});
  b.node("Shape", {"x"}, {"s"});
  ModelBuilder::attr_i(b.node("Gather", {"s", "zero"}, {"n"}), "axis", 0);
  b.node("Unsqueeze", {"n", "axes0"}, {"n1"});
  ModelBuilder::attr_i(b.node("Concat", {"n1", "minus1"}, {"shape"}), "axis", 0);
  b.node("Reshape", {"x", "shape"}, {"y"});
  auto model = CompiledModel::compile(b.bytes()).value_or_die();
  ExecutionContext ctx(model);
  for (int64_t n : {1, 3, 5}) {
    auto out = ctx.run(std::vector<NamedTensor>{{"x", ramp({n, 2, 3}, 1.0f)}}).value_or_die();
    EXPECT_EQ(out[0].tensor.shape(), (std::vector<int64_t>{n, 6}));
  }
  // Once the batch is bound, the shape chain folds, and the Reshape is a view of x: nothing runs
  // per request but the input copy.
  auto plan = model->plan_for(Binding{{{3, 2, 3}}, {}}).value_or_die();
  EXPECT_EQ(plan->steps.size(), 0u);
}

TEST(EngineRuntime, ReportsWeightAndArenaBytes) {
  // weights_bytes counts initializers once; arena_bytes is set after binding.
  auto model = CompiledModel::compile(mlp_model()).value_or_die();
  EXPECT_EQ(model->weights_bytes(), (12 + 3) * sizeof(float));
  ExecutionContext ctx(model);
  EXPECT_EQ(ctx.arena_bytes(), 0u);
  ASSERT_TRUE(ctx.bind({{2, 4}}).ok());
  EXPECT_GT(ctx.arena_bytes(), 0u);
}

TEST(EngineRuntime, RejectsWrongInputNameTypeAndShape) {
  // Inputs are checked: unknown name, wrong dtype, wrong static dim, missing input.
  auto model = CompiledModel::compile(mlp_model()).value_or_die();
  ExecutionContext ctx(model);
  EXPECT_FALSE(ctx.run(std::vector<NamedTensor>{{"nope", ramp({1, 4}, 1)}}).ok());
  EXPECT_FALSE(ctx.run(std::vector<NamedTensor>{{"x", Tensor::from_vector<int64_t>({1, 4}, {1, 2, 3, 4})}}).ok());
  EXPECT_FALSE(ctx.run(std::vector<NamedTensor>{{"x", ramp({1, 5}, 1)}}).ok());
  EXPECT_FALSE(ctx.run(std::vector<NamedTensor>{}).ok());
}

TEST(EngineRuntime, IntegerInputsFeedingShapesBecomePartOfTheBinding) {
  // A runtime 'shape' input to Reshape is bound by value; new values give new plans.
  ModelBuilder b(13);
  b.input("x", F, {6}).input("shape", I64, {2}).output("y");
  b.node("Reshape", {"x", "shape"}, {"y"});
  auto model = CompiledModel::compile(b.bytes()).value_or_die();
  ExecutionContext ctx(model);
  auto a = ctx.run(std::vector<NamedTensor>{{"x", ramp({6}, 1)}, {"shape", Tensor::from_vector<int64_t>({2}, {2, 3})}});
  auto c = ctx.run(std::vector<NamedTensor>{{"x", ramp({6}, 1)}, {"shape", Tensor::from_vector<int64_t>({2}, {3, -1})}});
  ASSERT_TRUE(a.ok() && c.ok());
  EXPECT_EQ((*a)[0].tensor.shape(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ((*c)[0].tensor.shape(), (std::vector<int64_t>{3, 2}));
}

}  // namespace
}  // namespace moss::engine
