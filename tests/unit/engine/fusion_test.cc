// Plan-level fusion (oneDNN post-ops), blocked layouts between oneDNN steps (chain mode) and
// buffer views: the fused plan agrees with the reference kernels, runs fewer steps, and stays
// bit-identical across concurrent contexts.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <thread>

#include "engine/runtime/execution_context.h"
#include "model_builder.h"

namespace moss::engine {
namespace {

using testing::ModelBuilder;
using testing::wave;
constexpr int F = onnx::TensorProto::FLOAT;

// A residual block: Conv-Relu -> Conv(depthwise)-Clip -> Conv + x -> Relu -> MaxPool -> Conv
// -> GlobalAveragePool -> Flatten -> Gemm, plus a Relu'd side output read by a reference op.
std::vector<uint8_t> residual_cnn() {
  ModelBuilder b(13);
  b.input("x", F, {1, 16, 10, 10}).output("y").output("side");
  b.init_f("w1", {16, 16, 1, 1}, wave(256, 0.11f, 0.3f)).init_f("b1", {16}, wave(16, 0.5f, 0.1f));
  b.init_f("w2", {16, 1, 3, 3}, wave(144, 0.07f, 0.4f)).init_f("b2", {16}, wave(16, 0.3f, 0.1f));
  b.init_f("w3", {16, 16, 3, 3}, wave(2304, 0.013f, 0.1f));
  b.init_f("w4", {32, 16, 3, 3}, wave(4608, 0.017f, 0.1f));
  b.init_f("g", {5, 32}, wave(160, 0.05f, 0.2f)).init_f("gc", {5}, wave(5, 1.0f, 0.1f));
  b.init_f("lo", {}, {0.0f}).init_f("hi", {}, {6.0f});
  b.node("Conv", {"x", "w1", "b1"}, {"c1"});
  b.node("Relu", {"c1"}, {"r1"});
  auto& dw = b.node("Conv", {"r1", "w2", "b2"}, {"c2"});
  ModelBuilder::attr_i(dw, "group", 16);
  ModelBuilder::attr_ints(dw, "pads", {1, 1, 1, 1});
  b.node("Clip", {"c2", "lo", "hi"}, {"r2"});
  ModelBuilder::attr_ints(b.node("Conv", {"r2", "w3"}, {"c3"}), "pads", {1, 1, 1, 1});
  b.node("Add", {"c3", "x"}, {"s"});
  b.node("Relu", {"s"}, {"r3"});
  auto& mp = b.node("MaxPool", {"r3"}, {"p"});
  ModelBuilder::attr_ints(mp, "kernel_shape", {2, 2});
  ModelBuilder::attr_ints(mp, "strides", {2, 2});
  b.node("Conv", {"p", "w4"}, {"c4"});
  b.node("GlobalAveragePool", {"c4"}, {"gap"});
  b.node("Flatten", {"gap"}, {"f"});
  ModelBuilder::attr_i(b.node("Gemm", {"f", "g", "gc"}, {"y"}), "transB", 1);
  b.node("Sigmoid", {"r1"}, {"side"});  // a reference op reading a Conv output
  return b.bytes();
}

// MatMul + bias + Erf GELU (as torch exports it) + MatMul + bias + residual, then a Transpose.
std::vector<uint8_t> ffn_block() {
  ModelBuilder b(17);
  b.input("x", F, {1, 8, 16}).output("y");
  b.init_f("w1", {16, 32}, wave(512, 0.03f, 0.3f)).init_f("b1", {32}, wave(32, 0.2f, 0.1f));
  b.init_f("w2", {32, 16}, wave(512, 0.05f, 0.3f)).init_f("b2", {16}, wave(16, 0.4f, 0.1f));
  b.init_f("sqrt2", {}, {1.41421356f}).init_f("one", {}, {1.0f}).init_f("half", {}, {0.5f});
  b.node("MatMul", {"x", "w1"}, {"m1"});
  b.node("Add", {"b1", "m1"}, {"h"});
  b.node("Div", {"h", "sqrt2"}, {"d"});
  b.node("Erf", {"d"}, {"e"});
  b.node("Add", {"e", "one"}, {"e1"});
  b.node("Mul", {"h", "e1"}, {"g0"});
  b.node("Mul", {"g0", "half"}, {"g"});
  b.node("MatMul", {"g", "w2"}, {"m2"});
  b.node("Add", {"m2", "b2"}, {"o"});
  b.node("Add", {"o", "x"}, {"res"});
  ModelBuilder::attr_ints(b.node("Transpose", {"res"}, {"y"}), "perm", {0, 2, 1});
  return b.bytes();
}

// MatMul + bias + the tanh GELU written out as torch exports it (GPT's MLP), then a MatMul.
// pow: x^3 as Pow(x, 3) instead of Mul(x, Mul(x, x)); half_first: (0.5 * x) * (1 + tanh).
std::vector<uint8_t> tanh_gelu_block(bool pow, bool half_first) {
  ModelBuilder b(17);
  b.input("x", F, {1, 8, 16}).output("y");
  b.init_f("w1", {16, 32}, wave(512, 0.03f, 0.9f)).init_f("b1", {32}, wave(32, 0.2f, 0.3f));
  b.init_f("w2", {32, 16}, wave(512, 0.05f, 0.3f));
  b.init_f("c", {}, {0.044715f}).init_f("k", {}, {0.7978845608f}).init_f("three", {}, {3.0f});
  b.init_f("one", {}, {1.0f}).init_f("half", {}, {0.5f});
  b.node("MatMul", {"x", "w1"}, {"m1"});
  b.node("Add", {"b1", "m1"}, {"h"});
  if (pow) {
    b.node("Pow", {"h", "three"}, {"h3"});
  } else {
    b.node("Mul", {"h", "h"}, {"h2"});
    b.node("Mul", {"h", "h2"}, {"h3"});
  }
  if (half_first) b.node("Mul", {"half", "h"}, {"hh"});
  b.node("Mul", {"c", "h3"}, {"ch3"});
  b.node("Add", {"h", "ch3"}, {"inner"});
  b.node("Mul", {"k", "inner"}, {"kin"});
  b.node("Tanh", {"kin"}, {"t"});
  b.node("Add", {"one", "t"}, {"t1"});
  if (half_first) {
    b.node("Mul", {"hh", "t1"}, {"g"});
  } else {
    b.node("Mul", {"h", "t1"}, {"g0"});
    b.node("Mul", {"half", "g0"}, {"g"});
  }
  b.node("MatMul", {"g", "w2"}, {"y"});
  return b.bytes();
}

// Self-attention over x [1, 2, 6, 6] (batch, heads, sequence, head dim) as exporters write it:
// Q x K^T, a scale, a mask, Softmax, x V. The mask forms:
enum class Mask {
  kRuntimeAdd,     // Div by 2.5, Add of a computed [1, 1, 1, 6] (BERT's padding mask)
  kConstantAdd,    // Mul by 0.4, Add of a constant [6] with -10000 entries, inference Dropout
  kWhereKeepCausal,  // Div by 2, Where(causal, scores, -inf) (GPT's masked_fill of ~tril)
  kWhereFillFuture, // no scale, Where(~causal, -inf, scores)
  kSoftmaxAxis2,   // Softmax over the query axis: not an attention block, not fused
  kRuntimePerHead, // as kRuntimeAdd with a computed [1, 2, 1, 6]: oneDNN 2.6's fast matmul has no
                   // such broadcast, so the block may run unfused (either way, the same results)
};
std::vector<uint8_t> attention_block(Mask mask) {
  ModelBuilder b(17);
  b.input("x", F, {1, 2, 6, 6}).output("y");
  b.init_f("wq", {6, 6}, wave(36, 0.31f, 0.8f)).init_f("wk", {6, 6}, wave(36, 0.17f, 0.8f));
  b.init_f("wv", {6, 6}, wave(36, 0.23f, 0.5f));
  b.node("MatMul", {"x", "wq"}, {"q"});
  b.node("MatMul", {"x", "wk"}, {"k"});
  b.node("MatMul", {"x", "wv"}, {"v"});
  ModelBuilder::attr_ints(b.node("Transpose", {"k"}, {"kt"}), "perm", {0, 1, 3, 2});
  b.node("MatMul", {"q", "kt"}, {"s"});
  std::string scores = "s";
  std::vector<int64_t> tril(36);
  for (int i = 0; i < 36; ++i) tril[i] = i % 6 <= i / 6;
  switch (mask) {
    case Mask::kRuntimeAdd:
    case Mask::kSoftmaxAxis2:
    case Mask::kRuntimePerHead:
      b.init_f("c", {}, {2.5f});
      b.node("Div", {"s", "c"}, {"ss"});
      ModelBuilder::attr_ints(b.node("ReduceMean", {"x"}, {"m"}), "axes",
                              mask == Mask::kRuntimePerHead ? std::vector<int64_t>{2}
                                                            : std::vector<int64_t>{1, 2});
      b.node("Add", {"m", "ss"}, {"sm"});
      scores = "sm";
      break;
    case Mask::kConstantAdd:
      b.init_f("c", {}, {0.4f}).init_f("m", {6}, {0, 0, 0, 0, -10000, -10000});
      b.node("Mul", {"c", "s"}, {"ss"});
      b.node("Add", {"ss", "m"}, {"sm"});
      scores = "sm";
      break;
    case Mask::kWhereKeepCausal:
    case Mask::kWhereFillFuture: {
      const bool fill_future = mask == Mask::kWhereFillFuture;
      b.init_i("tri", {6, 6}, tril).init_f("ninf", {}, {-INFINITY}).init_f("c", {}, {2.0f});
      ModelBuilder::attr_i(b.node("Cast", {"tri"}, {"causal"}), "to", onnx::TensorProto::BOOL);
      b.node("Not", {"causal"}, {"future"});
      if (fill_future) {
        b.node("Where", {"future", "ninf", "s"}, {"sm"});
      } else {
        b.node("Div", {"s", "c"}, {"ss"});
        b.node("Where", {"causal", "ss", "ninf"}, {"sm"});
      }
      scores = "sm";
      break;
    }
  }
  ModelBuilder::attr_i(b.node("Softmax", {scores}, {"p"}), "axis",
                       mask == Mask::kSoftmaxAxis2 ? 2 : -1);
  if (mask == Mask::kConstantAdd) {  // as torchvision's Swin exports it
    b.node("Dropout", {"p"}, {"pd"});
    b.node("MatMul", {"pd", "v"}, {"y"});
  } else {
    b.node("MatMul", {"p", "v"}, {"y"});
  }
  return b.bytes();
}

Tensor input(std::vector<int64_t> shape) {
  Tensor x = Tensor::zeros(DType::kFloat32, shape).value_or_die();
  for (int64_t i = 0; i < x.numel(); ++i)
    x.data<float>()[i] = std::sin(0.37f * static_cast<float>(i));
  return x;
}

std::vector<NamedTensor> run(const std::vector<uint8_t>& bytes, const Tensor& x, bool reference) {
  if (reference) setenv("MOSS_ENGINE_REFERENCE_ONLY", "1", 1);
  auto model = CompiledModel::compile(bytes).value_or_die();
  ExecutionContext ctx(model);
  auto out = ctx.run(std::vector<NamedTensor>{{"x", x}}).value_or_die();
  unsetenv("MOSS_ENGINE_REFERENCE_ONLY");
  return out;
}

void expect_close(const std::vector<NamedTensor>& a, const std::vector<NamedTensor>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t k = 0; k < a.size(); ++k) {
    ASSERT_EQ(a[k].tensor.shape(), b[k].tensor.shape()) << a[k].name;
    for (int64_t i = 0; i < a[k].tensor.numel(); ++i) {
      const float u = a[k].tensor.data<float>()[i], v = b[k].tensor.data<float>()[i];
      EXPECT_NEAR(u, v, 1e-4f * (1.0f + std::fabs(v))) << a[k].name << "[" << i << "]";
    }
  }
}

TEST(EngineFusion, ResidualCnnFusesKeepsBlockedLayoutsAndAgreesWithReference) {
  const auto bytes = residual_cnn();
  const Tensor x = input({1, 16, 10, 10});
  expect_close(run(bytes, x, false), run(bytes, x, true));
  auto model = CompiledModel::compile(bytes).value_or_die();
  auto plan = model->plan_for(Binding{{{1, 16, 10, 10}}, {}}).value_or_die();
  // Relu, Clip, Add and Relu are post-ops. r1 (also read by Sigmoid) is written plain, the
  // tensors between Conv/pool steps stay blocked, and no reorder step is needed.
  EXPECT_EQ(plan->fused_nodes, 4u);
  EXPECT_GE(plan->blocked_values, 2u);
  int reorders = 0;
  for (const auto& l : plan->step_labels) reorders += l == "Reorder";
  EXPECT_EQ(reorders, 0);
}

TEST(EngineFusion, MatmulBiasGeluResidualFusesAndAgreesWithReference) {
  const auto bytes = ffn_block();
  const Tensor x = input({1, 8, 16});
  expect_close(run(bytes, x, false), run(bytes, x, true));
  auto model = CompiledModel::compile(bytes).value_or_die();
  auto plan = model->plan_for(Binding{{{1, 8, 16}}, {}}).value_or_die();
  // Two MatMuls (bias+GELU, bias+residual) and the Transpose.
  EXPECT_EQ(plan->steps.size(), 3u);
  EXPECT_EQ(plan->fused_nodes, 8u);
}

TEST(EngineFusion, MatmulBiasTanhGeluFusesInEveryExportedFormAndAgreesWithReference) {
  const Tensor x = input({1, 8, 16});
  for (bool pow : {false, true}) {
    for (bool half_first : {false, true}) {
      SCOPED_TRACE(::testing::Message() << "pow " << pow << " half_first " << half_first);
      const auto bytes = tanh_gelu_block(pow, half_first);
      expect_close(run(bytes, x, false), run(bytes, x, true));
      auto model = CompiledModel::compile(bytes).value_or_die();
      auto plan = model->plan_for(Binding{{{1, 8, 16}}, {}}).value_or_die();
      ASSERT_EQ(plan->steps.size(), 2u);  // MatMul+Bias+GeluTanh, MatMul
      EXPECT_EQ(plan->step_labels[0], "Bias+GeluTanh");
      EXPECT_EQ(plan->fused_nodes, pow ? 9u : 10u);  // the bias Add and the GELU nodes
    }
  }
}

TEST(EngineFusion, TanhGeluWithAnotherReaderOfItsInputIsNotFused) {
  // h is also a graph output: the pattern's input must stay, so nothing past the bias fuses.
  ModelBuilder b(17);
  b.input("x", F, {1, 4, 8}).output("y").output("h");
  b.init_f("w", {8, 8}, wave(64, 0.1f, 0.5f));
  b.init_f("c", {}, {0.044715f}).init_f("k", {}, {0.7978845608f});
  b.init_f("one", {}, {1.0f}).init_f("half", {}, {0.5f});
  b.node("MatMul", {"x", "w"}, {"h"});
  b.node("Mul", {"h", "h"}, {"h2"});
  b.node("Mul", {"h", "h2"}, {"h3"});
  b.node("Mul", {"c", "h3"}, {"ch3"});
  b.node("Add", {"h", "ch3"}, {"inner"});
  b.node("Mul", {"k", "inner"}, {"kin"});
  b.node("Tanh", {"kin"}, {"t"});
  b.node("Add", {"one", "t"}, {"t1"});
  b.node("Mul", {"h", "t1"}, {"g0"});
  b.node("Mul", {"half", "g0"}, {"y"});
  const auto bytes = b.bytes();
  const Tensor x = input({1, 4, 8});
  expect_close(run(bytes, x, false), run(bytes, x, true));
  auto model = CompiledModel::compile(bytes).value_or_die();
  auto plan = model->plan_for(Binding{{{1, 4, 8}}, {}}).value_or_die();
  EXPECT_EQ(plan->fused_nodes, 0u);
}

TEST(EngineFusion, AttentionBlockFusesEveryMaskFormAndAgreesWithReference) {
  const Tensor x = input({1, 2, 6, 6});
  for (Mask mask : {Mask::kRuntimeAdd, Mask::kConstantAdd, Mask::kWhereKeepCausal,
                    Mask::kWhereFillFuture, Mask::kSoftmaxAxis2, Mask::kRuntimePerHead}) {
    SCOPED_TRACE(static_cast<int>(mask));
    const auto bytes = attention_block(mask);
    expect_close(run(bytes, x, false), run(bytes, x, true));
    if (mask == Mask::kRuntimePerHead) continue;
    auto model = CompiledModel::compile(bytes).value_or_die();
    auto plan = model->plan_for(Binding{{{1, 2, 6, 6}}, {}}).value_or_die();
    int attention = 0;
    for (const auto& l : plan->step_labels) attention += l == "Attention";
    EXPECT_EQ(attention, mask == Mask::kSoftmaxAxis2 ? 0 : 1);
    if (mask == Mask::kSoftmaxAxis2) continue;
    // Q, K, V projections, the Transpose, and one step for scale, mask, Softmax and x V (plus
    // ReduceMean for the computed mask).
    EXPECT_EQ(plan->steps.size(), mask == Mask::kRuntimeAdd ? 6u : 5u);
    const size_t absorbed =
        mask == Mask::kWhereFillFuture ? 3u : mask == Mask::kConstantAdd ? 5u : 4u;
    EXPECT_EQ(plan->fused_nodes, absorbed);
  }
}

TEST(EngineFusion, ResidualThatIsAlsoTheOperandIsNotOverwritten) {
  // y = MatMul(h, w) + h and z = Conv(c, k) + c: the residual's buffer cannot become the output
  // while the same step still reads it as its operand.
  ModelBuilder b(13);
  b.input("x", F, {1, 4, 6, 6}).output("y").output("z");
  b.init_f("w", {6, 6}, wave(36, 0.21f, 0.4f));
  b.node("Relu", {"x"}, {"h"});
  b.node("MatMul", {"h", "w"}, {"m"});
  b.node("Add", {"m", "h"}, {"y"});
  b.init_f("k0", {16, 4, 1, 1}, wave(64, 0.3f, 0.5f));
  b.init_f("k1", {16, 16, 3, 3}, wave(2304, 0.01f, 0.2f));
  b.node("Conv", {"x", "k0"}, {"c"});  // blocked output, read by the next Conv and its Add
  ModelBuilder::attr_ints(b.node("Conv", {"c", "k1"}, {"cv"}), "pads", {1, 1, 1, 1});
  b.node("Add", {"c", "cv"}, {"s"});
  // MaxPool keeps s blocked, so the residual c is blocked too.
  ModelBuilder::attr_ints(b.node("MaxPool", {"s"}, {"z"}), "kernel_shape", {1, 1});
  const auto bytes = b.bytes();
  const Tensor x = input({1, 4, 6, 6});
  expect_close(run(bytes, x, false), run(bytes, x, true));
}

TEST(EngineFusion, BlockedTensorIsReorderedForAReferenceKernel) {
  // AveragePool with count_include_pad and a ceil_mode overhang is not served by oneDNN: the
  // Conv output it reads (blocked, since a pool reads it) is reordered to plain once.
  ModelBuilder b(13);
  b.input("x", F, {1, 8, 10, 10}).output("y");
  b.init_f("k", {16, 8, 3, 3}, wave(1152, 0.02f, 0.2f));
  ModelBuilder::attr_ints(b.node("Conv", {"x", "k"}, {"c"}), "pads", {1, 1, 1, 1});
  auto& ap = b.node("AveragePool", {"c"}, {"y"});
  ModelBuilder::attr_ints(ap, "kernel_shape", {3, 3});
  ModelBuilder::attr_ints(ap, "strides", {2, 2});
  ModelBuilder::attr_ints(ap, "pads", {1, 1, 1, 1});
  ModelBuilder::attr_i(ap, "ceil_mode", 1);
  ModelBuilder::attr_i(ap, "count_include_pad", 1);
  const auto bytes = b.bytes();
  const Tensor x = input({1, 8, 10, 10});
  expect_close(run(bytes, x, false), run(bytes, x, true));
  auto model = CompiledModel::compile(bytes).value_or_die();
  auto plan = model->plan_for(Binding{{{1, 8, 10, 10}}, {}}).value_or_die();
  ASSERT_EQ(plan->steps.size(), 3u);
  EXPECT_EQ(plan->step_labels[1], "Reorder");
  EXPECT_TRUE(plan->prepared[0] && plan->prepared[1] && !plan->prepared[2]);
}

TEST(EngineFusion, ConvBatchNormFoldsAndStandaloneBatchNormRunsOnOnednn) {
  // Conv -> BatchNormalization -> Relu is one step (BN folded into the weights); a second BN on a
  // blocked tensor (after MaxPool) runs on oneDNN in that layout; results match the reference.
  ModelBuilder b(15);
  b.input("x", F, {1, 8, 8, 8}).output("y");
  b.init_f("k", {16, 8, 3, 3}, wave(1152, 0.02f, 0.2f)).init_f("kb", {16}, wave(16, 0.7f, 0.1f));
  for (const char* p : {"1", "2"}) {
    b.init_f(std::string("s") + p, {16}, wave(16, 0.3f, 0.5f));
    b.init_f(std::string("b") + p, {16}, wave(16, 0.9f, 0.2f));
    b.init_f(std::string("m") + p, {16}, wave(16, 1.3f, 0.3f));
    std::vector<float> var = wave(16, 0.4f, 0.5f);
    for (float& v : var) v = v * v + 0.1f;
    b.init_f(std::string("v") + p, {16}, var);
  }
  ModelBuilder::attr_ints(b.node("Conv", {"x", "k", "kb"}, {"c"}), "pads", {1, 1, 1, 1});
  b.node("BatchNormalization", {"c", "s1", "b1", "m1", "v1"}, {"n"});
  b.node("Relu", {"n"}, {"r"});
  ModelBuilder::attr_ints(b.node("MaxPool", {"r"}, {"p"}), "kernel_shape", {2, 2});
  b.node("BatchNormalization", {"p", "s2", "b2", "m2", "v2"}, {"n2"});
  b.node("GlobalAveragePool", {"n2"}, {"y"});
  const auto bytes = b.bytes();
  const Tensor x = input({1, 8, 8, 8});
  expect_close(run(bytes, x, false), run(bytes, x, true));
  auto model = CompiledModel::compile(bytes).value_or_die();
  auto plan = model->plan_for(Binding{{{1, 8, 8, 8}}, {}}).value_or_die();
  ASSERT_EQ(plan->steps.size(), 4u);  // Conv+BatchNorm+Relu, MaxPool, BatchNorm, GAP
  EXPECT_EQ(plan->step_labels[0], "BatchNorm+Relu");
  for (const auto& k : plan->prepared) EXPECT_TRUE(k);
}

TEST(EngineFusion, StaticModelHoldsPackedWeightsOnce) {
  // All inputs static: the compile-time plan is the only one; the Conv weights the kernels
  // packed are dropped from the graph and weights_bytes counts the packed copies once.
  const auto bytes = residual_cnn();
  auto model = CompiledModel::compile(bytes).value_or_die();
  const Graph& g = model->graph();
  const size_t initializers = (256 + 16 + 144 + 16 + 2304 + 4608 + 160 + 5 + 2) * sizeof(float);
  EXPECT_FALSE(g.values[g.find_value("w3")].constant);
  EXPECT_GT(model->weights_bytes(), initializers / 2);
  EXPECT_LT(model->weights_bytes(), initializers * 3 / 2);
  ExecutionContext ctx(model);
  EXPECT_TRUE(ctx.run(std::vector<NamedTensor>{{"x", input({1, 16, 10, 10})}}).ok());
  auto wrong = ctx.run(std::vector<NamedTensor>{{"x", input({1, 16, 12, 10})}});
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.status().message().find("'x'"), std::string::npos);
}

// Serial result vs 4 threads x 20 runs, each thread with its own context on one model.
void expect_concurrent_runs_identical(const std::vector<uint8_t>& bytes,
                                      const std::vector<int64_t>& shape, int intra) {
  CompileOptions options;
  options.intra_op_threads = intra;  // each oneDNN step runs a team of `intra` threads
  auto model = CompiledModel::compile(bytes, options).value_or_die();
  const Tensor x = input(shape);
  ExecutionContext serial(model);
  const auto want = serial.run(std::vector<NamedTensor>{{"x", x}}).value_or_die();
  std::vector<int> mismatches(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      ExecutionContext ctx(model);
      for (int i = 0; i < 20; ++i) {
        auto got = ctx.run(std::vector<NamedTensor>{{"x", x}}).value_or_die();
        for (size_t k = 0; k < got.size(); ++k) {
          mismatches[t] +=
              std::memcmp(got[k].tensor.raw(), want[k].tensor.raw(), want[k].tensor.nbytes()) != 0;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int m : mismatches) EXPECT_EQ(m, 0) << "intra-op threads " << intra;
}

TEST(EngineFusion, ConcurrentContextsAreBitIdentical) {
  for (int intra : {1, 2}) {
    expect_concurrent_runs_identical(residual_cnn(), {1, 16, 10, 10}, intra);
    expect_concurrent_runs_identical(ffn_block(), {1, 8, 16}, intra);
  }
}

}  // namespace
}  // namespace moss::engine
