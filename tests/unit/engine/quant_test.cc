// int8 execution of quantized models (quant/): a QDQ Conv chain becomes one QLinearConv step on
// oneDNN int8 (the plan says so) and agrees within one quantization step with the QDQ float
// semantics and the reference kernel; malformed QDQ patterns are refused at compile; MatMulInteger
// on oneDNN is exact. oneDNN serves the int8 convolutions and matmuls only where it sums exactly
// (onednn::cpu_has_vnni); elsewhere the reference kernels run them, the plan checks are skipped
// and the results are checked all the same.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/kernels/onednn/onednn_ops.h"
#include "engine/runtime/execution_context.h"
#include "engine/tools/model_commands.h"
#include "model_builder.h"

namespace moss::engine {
namespace {

using testing::ModelBuilder;
constexpr int F = onnx::TensorProto::FLOAT;

// Whether the plan checks apply: the int8 convolutions and matmuls run on oneDNN here.
bool int8_on_onednn() { return onednn::cpu_has_vnni(); }

template <typename T>
void init_raw(ModelBuilder& b, const std::string& name, int elem, std::vector<int64_t> dims,
              const std::vector<T>& v) {
  auto* t = b.graph().add_initializer();
  t->set_name(name);
  t->set_data_type(elem);
  for (auto d : dims) t->add_dims(d);
  t->set_raw_data(std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T)));
}

constexpr int64_t kC = 4, kM = 6, kH = 7;
constexpr float kXs = 0.05f, kYs = 0.08f;
constexpr uint8_t kXzp = 120;

std::vector<int8_t> weights() {
  std::vector<int8_t> w(kM * kC * 9);
  for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<int8_t>((i * 37 + 11) % 255 - 127);
  return w;
}
std::vector<float> w_scales() {
  std::vector<float> s(kM);
  for (int64_t m = 0; m < kM; ++m) s[m] = 0.002f + 0.0005f * static_cast<float>(m);
  return s;
}
std::vector<int32_t> bias_q() {
  std::vector<int32_t> b(kM);
  for (int64_t m = 0; m < kM; ++m) b[m] = static_cast<int32_t>(m * 301) - 700;
  return b;
}

struct QdqOptions {
  std::vector<int64_t> w_scale_dims{kM};
  bool w_zp_uint8 = false;  // malformed: zero point type differs from the weights'
  bool relu = true;
};

// x -> Q -> DQ -> Conv(3x3, pad 1, DQ(w int8 per channel), DQ(b int32)) -> Relu -> Q -> DQ -> y
std::vector<uint8_t> qdq_conv(const QdqOptions& o = {}) {
  ModelBuilder b(13);
  b.input("x", F, {1, kC, kH, kH}).output("y");
  b.init_f("xs", {}, {kXs}).init_f("ys", {}, {kYs});
  init_raw<uint8_t>(b, "xzp", onnx::TensorProto::UINT8, {}, {kXzp});
  init_raw<uint8_t>(b, "yzp", onnx::TensorProto::UINT8, {}, {0});
  init_raw<int8_t>(b, "w", onnx::TensorProto::INT8, {kM, kC, 3, 3}, weights());
  std::vector<float> ws = w_scales();
  ws.resize(static_cast<size_t>(o.w_scale_dims[0]), 0.002f);
  b.init_f("ws", o.w_scale_dims, ws);
  if (o.w_zp_uint8) {
    init_raw<uint8_t>(b, "wzp", onnx::TensorProto::UINT8, o.w_scale_dims,
                      std::vector<uint8_t>(static_cast<size_t>(o.w_scale_dims[0]), 0));
  } else {
    init_raw<int8_t>(b, "wzp", onnx::TensorProto::INT8, o.w_scale_dims,
                     std::vector<int8_t>(static_cast<size_t>(o.w_scale_dims[0]), 0));
  }
  init_raw<int32_t>(b, "bq", onnx::TensorProto::INT32, {kM}, bias_q());
  std::vector<float> bs = w_scales();
  for (float& s : bs) s *= kXs;
  b.init_f("bs", {kM}, bs);
  b.node("QuantizeLinear", {"x", "xs", "xzp"}, {"xq"});
  b.node("DequantizeLinear", {"xq", "xs", "xzp"}, {"xd"});
  ModelBuilder::attr_i(b.node("DequantizeLinear", {"w", "ws", "wzp"}, {"wd"}), "axis", 0);
  ModelBuilder::attr_i(b.node("DequantizeLinear", {"bq", "bs"}, {"bd"}), "axis", 0);
  ModelBuilder::attr_ints(b.node("Conv", {"xd", "wd", "bd"}, {"c"}, "conv"), "pads", {1, 1, 1, 1});
  if (o.relu) b.node("Relu", {"c"}, {"r"});
  b.node("QuantizeLinear", {o.relu ? "r" : "c", "ys", "yzp"}, {"yq"});
  b.node("DequantizeLinear", {"yq", "ys", "yzp"}, {"y"});
  return b.bytes();
}

Tensor input() {
  Tensor x = Tensor::zeros(DType::kFloat32, {1, kC, kH, kH}).value_or_die();
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = 4.0f * std::sin(0.37f * i);
  return x;
}

Tensor run(const std::vector<uint8_t>& bytes, const Tensor& x, bool reference) {
  if (reference) setenv("MOSS_ENGINE_REFERENCE_ONLY", "1", 1);
  auto model = CompiledModel::compile(bytes).value_or_die();
  ExecutionContext ctx(model);
  auto out = ctx.run(std::vector<NamedTensor>{{"x", x}}).value_or_die();
  unsetenv("MOSS_ENGINE_REFERENCE_ONLY");
  return out[0].tensor;
}

// The QDQ graph's float semantics, computed directly (double accumulation).
std::vector<float> qdq_expected(const Tensor& x) {
  std::vector<double> xd(static_cast<size_t>(x.numel()));
  for (size_t i = 0; i < xd.size(); ++i) {
    const double q = std::clamp(std::nearbyint(static_cast<double>(x.data<float>()[i]) / kXs) + kXzp, 0.0, 255.0);
    xd[i] = (q - kXzp) * kXs;
  }
  const auto w = weights();
  const auto ws = w_scales();
  const auto bq = bias_q();
  std::vector<float> y(kM * kH * kH);
  for (int64_t m = 0; m < kM; ++m) {
    for (int64_t oy = 0; oy < kH; ++oy) {
      for (int64_t ox = 0; ox < kH; ++ox) {
        double acc = bq[m] * static_cast<double>(kXs * ws[m]);
        for (int64_t c = 0; c < kC; ++c) {
          for (int64_t ky = 0; ky < 3; ++ky) {
            for (int64_t kx = 0; kx < 3; ++kx) {
              const int64_t iy = oy + ky - 1, ix = ox + kx - 1;
              if (iy < 0 || ix < 0 || iy >= kH || ix >= kH) continue;
              acc += xd[(c * kH + iy) * kH + ix] * w[((m * kC + c) * 3 + ky) * 3 + kx] * ws[m];
            }
          }
        }
        const double q = std::clamp(std::nearbyint(std::max(acc, 0.0) / kYs), 0.0, 255.0);
        y[(m * kH + oy) * kH + ox] = static_cast<float>(q * kYs);
      }
    }
  }
  return y;
}

TEST(EngineQuant, QdqConvRunsAsOneInt8StepAndAgreesWithinOneStep) {
  const auto bytes = qdq_conv();
  auto model = CompiledModel::compile(bytes).value_or_die();
  EXPECT_EQ(model->qdq_report().rewritten, 1);
  EXPECT_TRUE(model->qdq_report().kept.empty());
  auto plan = model->plan_for(Binding{{{1, kC, kH, kH}}, {}}).value_or_die();
  // QuantizeLinear(x), the int8 convolution (Conv, Relu, QuantizeLinear, weight and bias
  // DequantizeLinear all in it), DequantizeLinear(y).
  ASSERT_EQ(plan->steps.size(), 3u);
  const Node& conv = model->graph().nodes[plan->steps[1]];
  EXPECT_EQ(conv.op_type, "QLinearConv");
  if (int8_on_onednn()) {
    EXPECT_EQ(plan->step_labels[1], "int8");
    EXPECT_TRUE(plan->prepared[1]);
  }
  // Weights held as int8 in the kernel: no float32 copy of them remains in the graph.
  for (const Value& v : model->graph().values) {
    if (v.constant) {
      EXPECT_FALSE(v.constant->dtype() == DType::kFloat32 && v.constant->numel() == kM * kC * 9) << v.name;
    }
  }

  const Tensor x = input();
  const Tensor fast = run(bytes, x, false), ref = run(bytes, x, true);
  const auto want = qdq_expected(x);
  ASSERT_EQ(fast.numel(), static_cast<int64_t>(want.size()));
  int exact = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_LE(std::fabs(fast.data<float>()[i] - want[i]), kYs * 1.001f) << i;
    EXPECT_LE(std::fabs(ref.data<float>()[i] - want[i]), kYs * 1.001f) << i;
    exact += fast.data<float>()[i] == want[i];
  }
  EXPECT_GT(exact, static_cast<int>(want.size() * 9 / 10));  // off by one step only at ties
}

// A network stem as torch quantizes it: the image quantized with a nonzero zero point (62)
// into a padded 7x7 stride-2 convolution, then a 3x3 padded convolution whose input (the first
// one's output, no Relu) has a nonzero zero point too and arrives in oneDNN's layout. The zero
// points are folded into the bias and the padding written out (quant/onednn_qconv.cc), so the
// int8 kernels compute the reference kernel's integers exactly.
std::vector<uint8_t> qdq_stem(int64_t c, int64_t h) {
  ModelBuilder b(13);
  b.input("x", F, {1, c, h, h}).output("y");
  b.init_f("xs", {}, {0.068f}).init_f("as", {}, {0.05f}).init_f("ys", {}, {0.07f});
  init_raw<uint8_t>(b, "xzp", onnx::TensorProto::UINT8, {}, {62});
  init_raw<uint8_t>(b, "azp", onnx::TensorProto::UINT8, {}, {100});
  init_raw<uint8_t>(b, "zero", onnx::TensorProto::UINT8, {}, {0});
  std::vector<int8_t> w1(kM * c * 49), w2(kM * kM * 9);
  for (size_t i = 0; i < w1.size(); ++i) w1[i] = static_cast<int8_t>((i * 37 + 11) % 255 - 127);
  for (size_t i = 0; i < w2.size(); ++i) w2[i] = static_cast<int8_t>((i * 29 + 5) % 255 - 127);
  init_raw<int8_t>(b, "w1", onnx::TensorProto::INT8, {kM, c, 7, 7}, w1);
  init_raw<int8_t>(b, "w2", onnx::TensorProto::INT8, {kM, kM, 3, 3}, w2);
  b.init_f("ws1", {kM}, w_scales());
  b.init_f("ws2", {}, {0.003f});
  init_raw<int32_t>(b, "b1", onnx::TensorProto::INT32, {kM}, bias_q());
  std::vector<float> bs = w_scales();
  for (float& v : bs) v *= 0.068f;
  b.init_f("bs1", {kM}, bs);
  b.node("QuantizeLinear", {"x", "xs", "xzp"}, {"xq"});
  b.node("DequantizeLinear", {"xq", "xs", "xzp"}, {"xd"});
  ModelBuilder::attr_i(b.node("DequantizeLinear", {"w1", "ws1"}, {"w1d"}), "axis", 0);
  ModelBuilder::attr_i(b.node("DequantizeLinear", {"b1", "bs1"}, {"b1d"}), "axis", 0);
  auto& c1 = b.node("Conv", {"xd", "w1d", "b1d"}, {"c1"}, "stem");
  ModelBuilder::attr_ints(c1, "pads", {3, 3, 3, 3});
  ModelBuilder::attr_ints(c1, "strides", {2, 2});
  b.node("QuantizeLinear", {"c1", "as", "azp"}, {"a"});
  b.node("DequantizeLinear", {"a", "as", "azp"}, {"ad"});
  b.node("DequantizeLinear", {"w2", "ws2"}, {"w2d"});
  ModelBuilder::attr_ints(b.node("Conv", {"ad", "w2d"}, {"c2"}, "conv2"), "pads", {1, 1, 1, 1});
  b.node("Relu", {"c2"}, {"r2"});
  b.node("QuantizeLinear", {"r2", "ys", "zero"}, {"yq"});
  b.node("DequantizeLinear", {"yq", "ys", "zero"}, {"y"});
  return b.bytes();
}

TEST(EngineQuant, NonzeroSourceZeroPointIsFoldedIntoTheBiasAndPaddingExactly) {
  for (const int64_t c : {3, 8}) {
    for (const int64_t h : {13, 16}) {
      SCOPED_TRACE(fmt::format("channels {} size {}", c, h));
      const auto bytes = qdq_stem(c, h);
      auto model = CompiledModel::compile(bytes).value_or_die();
      EXPECT_EQ(model->qdq_report().rewritten, 2);
      auto plan = model->plan_for(Binding{{{1, c, h, h}}, {}}).value_or_die();
      std::vector<std::string> labels(plan->step_labels.begin(), plan->step_labels.end());
      // Both convolutions int8, the second reading the first's layout (no reorder between).
      ASSERT_EQ(labels.size(), 4u);
      if (int8_on_onednn()) {
        EXPECT_EQ(labels[1], "int8");
        EXPECT_EQ(labels[2], "int8");
      }
      uint32_t state = 4242;
      for (int trial = 0; trial < 3; ++trial) {
        Tensor x = Tensor::zeros(DType::kFloat32, {1, c, h, h}).value_or_die();
        for (int64_t i = 0; i < x.numel(); ++i) {
          state = state * 1664525u + 1013904223u;
          x.data<float>()[i] = (static_cast<float>(state >> 8) / 16777216.0f - 0.4f) * 14.0f;
        }
        const Tensor fast = run(bytes, x, false), ref = run(bytes, x, true);
        ASSERT_EQ(fast.numel(), ref.numel());
        int differ = 0;
        for (int64_t i = 0; i < ref.numel(); ++i) {
          differ += fast.data<float>()[i] != ref.data<float>()[i];
        }
        EXPECT_EQ(differ, 0) << "of " << ref.numel();
      }
    }
  }
}

TEST(EngineQuant, ReluBeforeNonzeroZeroPointOrMissingRequantizeStaysFloat) {
  QdqOptions o;
  o.relu = false;  // Conv -> QuantizeLinear directly: still int8
  EXPECT_EQ(CompiledModel::compile(qdq_conv(o)).value_or_die()->qdq_report().rewritten, 1);
  // A Conv whose output is read by a float op stays float (dequantize -> Conv -> ...), reported.
  ModelBuilder b(13);
  b.input("x", F, {1, kC, kH, kH}).output("c");
  b.init_f("xs", {}, {kXs});
  init_raw<int8_t>(b, "w", onnx::TensorProto::INT8, {kM, kC, 3, 3}, weights());
  b.init_f("ws", {}, {0.01f});
  b.node("QuantizeLinear", {"x", "xs"}, {"xq"});
  b.node("DequantizeLinear", {"xq", "xs"}, {"xd"});
  b.node("DequantizeLinear", {"w", "ws"}, {"wd"});
  b.node("Conv", {"xd", "wd"}, {"c"}, "conv");
  auto model = CompiledModel::compile(b.bytes()).value_or_die();
  EXPECT_EQ(model->qdq_report().rewritten, 0);
  ASSERT_EQ(model->qdq_report().kept.size(), 1u);
  EXPECT_NE(model->qdq_report().kept[0].find("not requantized"), std::string::npos);
}

TEST(EngineQuant, MalformedQdqPatternsAreRefusedAtCompile) {
  QdqOptions wrong_shape;
  wrong_shape.w_scale_dims = {kM - 1};
  auto a = CompiledModel::compile(qdq_conv(wrong_shape));
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.status().message().find("per-axis scale of 5 elements"), std::string::npos)
      << a.status().message();
  QdqOptions wrong_type;
  wrong_type.w_zp_uint8 = true;
  auto b = CompiledModel::compile(qdq_conv(wrong_type));
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.status().message().find("zero point type uint8 differs"), std::string::npos)
      << b.status().message();
}

// A residual int8 block as torch's QDQ export writes it (Cast(to=uint8) after every
// QuantizeLinear): x -> Q -> Cast -> [DQ -> Conv -> Relu -> Q] = a -> DQ -> MaxPool(3x3, pad 1)
// -> Q = p -> [DQ -> Conv -> Q] = c; DQ(c) + DQ(p) -> Relu -> Q -> DQ -> y.
struct ResidualOptions {
  bool residual_is_pool = true;  // the residual is p (also the conv's input), else a
  bool tail_conv = false;        // the sum feeds one more int8 convolution (a blocked output)
};
std::vector<uint8_t> qdq_residual_block(const ResidualOptions& o = {}) {
  ModelBuilder b(13);
  b.input("x", F, {1, kC, kH, kH}).output("y");
  b.init_f("xs", {}, {kXs}).init_f("as", {}, {0.06f}).init_f("cs", {}, {0.09f});
  b.init_f("ys", {}, {0.11f});
  init_raw<uint8_t>(b, "xzp", onnx::TensorProto::UINT8, {}, {kXzp});
  init_raw<uint8_t>(b, "zero", onnx::TensorProto::UINT8, {}, {0});
  init_raw<uint8_t>(b, "czp", onnx::TensorProto::UINT8, {}, {131});
  const auto w1 = weights();
  std::vector<int8_t> w2(kM * kM * 9);
  for (size_t i = 0; i < w2.size(); ++i) w2[i] = static_cast<int8_t>((i * 29 + 5) % 255 - 127);
  init_raw<int8_t>(b, "w1", onnx::TensorProto::INT8, {kM, kC, 3, 3}, w1);
  init_raw<int8_t>(b, "w2", onnx::TensorProto::INT8, {kM, kM, 3, 3}, w2);
  b.init_f("ws", {}, {0.004f});
  b.node("QuantizeLinear", {"x", "xs", "xzp"}, {"xq"});
  ModelBuilder::attr_i(b.node("Cast", {"xq"}, {"xc"}), "to", onnx::TensorProto::UINT8);
  b.node("DequantizeLinear", {"xc", "xs", "xzp"}, {"xd"});
  b.node("DequantizeLinear", {"w1", "ws"}, {"w1d"});
  ModelBuilder::attr_ints(b.node("Conv", {"xd", "w1d"}, {"c1"}, "conv1"), "pads", {1, 1, 1, 1});
  b.node("Relu", {"c1"}, {"r1"});
  b.node("QuantizeLinear", {"r1", "as", "zero"}, {"a"});
  ModelBuilder::attr_i(b.node("Cast", {"a"}, {"ac"}), "to", onnx::TensorProto::UINT8);
  b.node("DequantizeLinear", {"ac", "as", "zero"}, {"ad"});
  auto& pool = b.node("MaxPool", {"ad"}, {"pf"}, "pool");
  ModelBuilder::attr_ints(pool, "kernel_shape", {3, 3});
  ModelBuilder::attr_ints(pool, "pads", {1, 1, 1, 1});
  b.node("QuantizeLinear", {"pf", "as", "zero"}, {"p"});
  b.node("DequantizeLinear", {"p", "as", "zero"}, {"pd"});
  b.node("DequantizeLinear", {"w2", "ws"}, {"w2d"});
  ModelBuilder::attr_ints(b.node("Conv", {"pd", "w2d"}, {"c2"}, "conv2"), "pads", {1, 1, 1, 1});
  b.node("QuantizeLinear", {"c2", "cs", "czp"}, {"c"});
  b.node("DequantizeLinear", {"c", "cs", "czp"}, {"cd"});
  b.node("DequantizeLinear", {o.residual_is_pool ? "p" : "a", "as", "zero"}, {"pd2"});
  b.node("Add", {"cd", "pd2"}, {"sum"}, "add");
  b.node("Relu", {"sum"}, {"sr"});
  b.node("QuantizeLinear", {"sr", "ys", "zero"}, {"yq"});
  if (o.tail_conv) {
    b.node("DequantizeLinear", {"yq", "ys", "zero"}, {"yd"});
    b.node("DequantizeLinear", {"w2", "ws"}, {"w3d"});
    ModelBuilder::attr_ints(b.node("Conv", {"yd", "w3d"}, {"c3"}, "conv3"), "pads", {1, 1, 1, 1});
    b.node("QuantizeLinear", {"c3", "cs", "czp"}, {"tq"});
    b.node("DequantizeLinear", {"tq", "cs", "czp"}, {"y"});
  } else {
    b.node("DequantizeLinear", {"yq", "ys", "zero"}, {"y"});
  }
  return b.bytes();
}

TEST(EngineQuant, ResidualBlockStaysInt8BetweenStepsAndAgreesWithTheUnfusedGraph) {
  const auto bytes = qdq_residual_block();
  auto model = CompiledModel::compile(bytes).value_or_die();
  // Two convolutions, the pooling and the Add (Casts skipped, Relus absorbed).
  EXPECT_EQ(model->qdq_report().rewritten, 4);
  auto plan = model->plan_for(Binding{{{1, kC, kH, kH}}, {}}).value_or_die();
  if (int8_on_onednn()) {
    std::vector<std::string> ops;
    for (size_t s = 0; s < plan->steps.size(); ++s) {
      const Node& n = model->graph().nodes[plan->steps[s]];
      ops.push_back(n.op_type);
      if (n.op_type != "QuantizeLinear" && n.op_type != "DequantizeLinear") {
        EXPECT_TRUE(plan->prepared[s]) << n.op_type;
      }
    }
    // No reorder and no float step between the int8 ones (NHWC from the first convolution on);
    // the Add runs inside the second convolution (sum post-op), whose residual is made plain for
    // the plain reader of the sum (the final DequantizeLinear).
    EXPECT_EQ(ops, (std::vector<std::string>{"QuantizeLinear", "QLinearConv", "MaxPool",
                                             "QLinearConv", "QLinearConv", "DequantizeLinear"}));
    EXPECT_EQ(plan->step_labels[1], "int8");
    EXPECT_EQ(plan->step_labels[3], "Reorder");
    EXPECT_EQ(plan->step_labels[4], "QLinearAdd");
    ASSERT_TRUE(plan->prepared[4]);
    EXPECT_EQ(plan->prepared[4]->kind(), "int8");
    EXPECT_EQ(plan->fused_nodes, 1u);
    EXPECT_GE(plan->blocked_values, 2u);
  }

  CompileOptions unfused;
  unfused.rewrite_qdq = false;
  auto reference = CompiledModel::compile(bytes, unfused).value_or_die();
  EXPECT_EQ(reference->qdq_report().rewritten, 0);
  const Tensor x = input();
  ExecutionContext fast_ctx(model), ref_ctx(reference);
  const Tensor fast = fast_ctx.run(std::vector<NamedTensor>{{"x", x}}).value_or_die()[0].tensor;
  const Tensor want = ref_ctx.run(std::vector<NamedTensor>{{"x", x}}).value_or_die()[0].tensor;
  ASSERT_EQ(fast.numel(), want.numel());
  int exact = 0;
  for (int64_t i = 0; i < want.numel(); ++i) {
    // One output step (0.11), from an intermediate rounded the other way at a tie.
    EXPECT_LE(std::fabs(fast.data<float>()[i] - want.data<float>()[i]), 0.11f * 1.001f) << i;
    exact += fast.data<float>()[i] == want.data<float>()[i];
  }
  EXPECT_GT(exact, static_cast<int>(want.numel() * 9 / 10));
}

TEST(EngineQuant, ResidualAddRunsInsideTheInt8ConvolutionInEveryLayout) {
  // The residual blocked (the sum feeds another int8 convolution) or plain, read by the
  // convolution too or only by the Add (then the output takes its buffer): the same results as
  // the unfused graph, where the conv's output is rounded and clipped before the Add.
  for (const bool pool : {true, false}) {
    for (const bool tail : {true, false}) {
      SCOPED_TRACE(fmt::format("residual {} tail conv {}", pool ? "p" : "a", tail));
      const auto bytes = qdq_residual_block({pool, tail});
      auto model = CompiledModel::compile(bytes).value_or_die();
      auto plan = model->plan_for(Binding{{{1, kC, kH, kH}}, {}}).value_or_die();
      int fused = 0, reorders = 0;
      for (size_t s = 0; s < plan->steps.size(); ++s) {
        fused += plan->step_labels[s] == "QLinearAdd";
        reorders += plan->step_labels[s] == "Reorder";
      }
      if (int8_on_onednn()) {
        EXPECT_EQ(fused, 1);
        EXPECT_EQ(reorders, tail ? 0 : 1);  // the plain residual for the plain reader of the sum
      }
      CompileOptions unfused;
      unfused.rewrite_qdq = false;
      auto reference = CompiledModel::compile(bytes, unfused).value_or_die();
      ExecutionContext fast_ctx(model), ref_ctx(reference);
      uint32_t state = 777;
      for (int trial = 0; trial < 5; ++trial) {
        Tensor x = Tensor::zeros(DType::kFloat32, {1, kC, kH, kH}).value_or_die();
        for (int64_t i = 0; i < x.numel(); ++i) {
          state = state * 1664525u + 1013904223u;
          x.data<float>()[i] = (static_cast<float>(state >> 8) / 16777216.0f - 0.5f) * 12.0f;
        }
        // Twice through the same context: the in-place sum must start from the residual anew.
        Tensor got;
        for (int rep = 0; rep < 2; ++rep) {
          got = fast_ctx.run(std::vector<NamedTensor>{{"x", x}}).value_or_die()[0].tensor;
        }
        const Tensor want =
            ref_ctx.run(std::vector<NamedTensor>{{"x", x}}).value_or_die()[0].tensor;
        ASSERT_EQ(got.numel(), want.numel());
        const float step = tail ? 0.09f : 0.11f;
        int exact = 0;
        for (int64_t i = 0; i < want.numel(); ++i) {
          EXPECT_LE(std::fabs(got.data<float>()[i] - want.data<float>()[i]), step * 1.001f) << i;
          exact += got.data<float>()[i] == want.data<float>()[i];
        }
        EXPECT_GT(exact, static_cast<int>(want.numel() * 9 / 10));
      }
    }
  }
}

TEST(EngineQuant, Int8PicksTheUnfusedGraphsTopClassOnRandomInputs) {
  // The classifier criterion of issue 14 on the residual block: per output position, the channel
  // the int8 plan ranks first is a top channel of the unfused QDQ graph, on 40 random inputs.
  const auto bytes = qdq_residual_block();
  auto model = CompiledModel::compile(bytes).value_or_die();
  CompileOptions unfused;
  unfused.rewrite_qdq = false;
  auto reference = CompiledModel::compile(bytes, unfused).value_or_die();
  ExecutionContext fast_ctx(model), ref_ctx(reference);
  uint32_t state = 12345;
  int agree = 0, total = 0;
  for (int trial = 0; trial < 40; ++trial) {
    Tensor x = Tensor::zeros(DType::kFloat32, {1, kC, kH, kH}).value_or_die();
    for (int64_t i = 0; i < x.numel(); ++i) {
      state = state * 1664525u + 1013904223u;
      x.data<float>()[i] = (static_cast<float>(state >> 8) / 16777216.0f - 0.5f) * 12.0f;
    }
    const Tensor got = fast_ctx.run(std::vector<NamedTensor>{{"x", x}}).value_or_die()[0].tensor;
    const Tensor want = ref_ctx.run(std::vector<NamedTensor>{{"x", x}}).value_or_die()[0].tensor;
    for (int64_t pos = 0; pos < kH * kH; ++pos) {
      int64_t best = 0;
      float top = -1e30f;
      for (int64_t m = 0; m < kM; ++m) {
        top = std::max(top, want.data<float>()[m * kH * kH + pos]);
        if (got.data<float>()[m * kH * kH + pos] > got.data<float>()[best * kH * kH + pos]) best = m;
      }
      agree += want.data<float>()[best * kH * kH + pos] == top;
      ++total;
    }
  }
  EXPECT_GE(agree * 100, total * 99) << agree << " of " << total;
}

TEST(EngineQuant, QdqGemmRunsAsOneInt8MatmulWithInt8Weights) {
  // x[2, 16] -> Q -> DQ -> Gemm(transB, DQ(W int8 [8, 16] per row), DQ(b int32)) -> Q -> DQ -> y
  constexpr int64_t kRows = 2, kK = 16, kN = 8;
  ModelBuilder b(13);
  b.input("x", F, {kRows, kK}).output("y");
  b.init_f("xs", {}, {0.03f}).init_f("ys", {}, {0.05f});
  init_raw<uint8_t>(b, "xzp", onnx::TensorProto::UINT8, {}, {128});
  init_raw<uint8_t>(b, "yzp", onnx::TensorProto::UINT8, {}, {100});
  std::vector<int8_t> w(kN * kK);
  for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<int8_t>((i * 41 + 3) % 255 - 127);
  init_raw<int8_t>(b, "w", onnx::TensorProto::INT8, {kN, kK}, w);
  std::vector<float> ws(kN), bs(kN);
  for (int64_t n = 0; n < kN; ++n) ws[n] = 0.001f * static_cast<float>(n + 2);
  for (int64_t n = 0; n < kN; ++n) bs[n] = ws[n] * 0.03f;
  b.init_f("ws", {kN}, ws).init_f("bs", {kN}, bs);
  std::vector<int32_t> bias(kN);
  for (int64_t n = 0; n < kN; ++n) bias[n] = static_cast<int32_t>(n * 250) - 900;
  init_raw<int32_t>(b, "bq", onnx::TensorProto::INT32, {kN}, bias);
  b.node("QuantizeLinear", {"x", "xs", "xzp"}, {"xq"});
  b.node("DequantizeLinear", {"xq", "xs", "xzp"}, {"xd"});
  ModelBuilder::attr_i(b.node("DequantizeLinear", {"w", "ws"}, {"wd"}), "axis", 0);
  ModelBuilder::attr_i(b.node("DequantizeLinear", {"bq", "bs"}, {"bd"}), "axis", 0);
  ModelBuilder::attr_i(b.node("Gemm", {"xd", "wd", "bd"}, {"g"}, "fc"), "transB", 1);
  b.node("QuantizeLinear", {"g", "ys", "yzp"}, {"yq"});
  b.node("DequantizeLinear", {"yq", "ys", "yzp"}, {"y"});
  const auto bytes = b.bytes();

  auto model = CompiledModel::compile(bytes).value_or_die();
  EXPECT_EQ(model->qdq_report().rewritten, 1);
  auto plan = model->plan_for(Binding{{{kRows, kK}}, {}}).value_or_die();
  ASSERT_EQ(plan->steps.size(), 3u);
  EXPECT_EQ(model->graph().nodes[plan->steps[1]].op_type, "QGemm");
  if (int8_on_onednn()) {
    EXPECT_EQ(plan->step_labels[1], "int8");
  }
  for (const Value& v : model->graph().values) {  // no float copy of W
    if (v.constant && v.constant->numel() == kN * kK) {
      EXPECT_NE(v.constant->dtype(), DType::kFloat32) << v.name;
    }
  }
  CompileOptions unfused;
  unfused.rewrite_qdq = false;
  auto reference = CompiledModel::compile(bytes, unfused).value_or_die();
  Tensor x = Tensor::zeros(DType::kFloat32, {kRows, kK}).value_or_die();
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = 3.5f * std::sin(0.7f * i + 0.2f);
  ExecutionContext fast_ctx(model), ref_ctx(reference);
  const Tensor got = fast_ctx.run(std::vector<NamedTensor>{{"x", x}}).value_or_die()[0].tensor;
  const Tensor want = ref_ctx.run(std::vector<NamedTensor>{{"x", x}}).value_or_die()[0].tensor;
  const Tensor slow = run(bytes, x, true);  // the QGemm reference kernel
  ASSERT_EQ(got.numel(), kRows * kN);
  for (int64_t i = 0; i < got.numel(); ++i) {
    EXPECT_LE(std::fabs(got.data<float>()[i] - want.data<float>()[i]), 0.05f * 1.001f) << i;
    EXPECT_EQ(got.data<float>()[i], slow.data<float>()[i]) << i;
  }
}

TEST(EngineQuant, ModelInfoShowsTheInt8StepsAndStoredWeightTypes) {
  const auto path = std::filesystem::temp_directory_path() / "moss_quant_info.onnx";
  {
    const auto bytes = qdq_conv();
    std::ofstream f(path, std::ios::binary);
    f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  }
  std::ostringstream out;
  ASSERT_TRUE(model_info(path, out).ok());
  std::filesystem::remove(path);
  const std::string s = out.str();
  EXPECT_NE(s.find("int8     2 steps: DequantizeLinear x1 QLinearConv x1"), std::string::npos) << s;
  EXPECT_NE(s.find("float32  1 steps: QuantizeLinear x1"), std::string::npos) << s;
  EXPECT_NE(s.find("(in the file: float32"), std::string::npos) << s;
  EXPECT_NE(s.find(" int8 0.0 MB"), std::string::npos) << s;
}

TEST(EngineQuant, VectorizedQuantizersEqualTheReferenceKernels) {
  // DynamicQuantizeLinear -> (y, scale, zp), and QuantizeLinear -> DequantizeLinear of the input,
  // 203 elements (not a multiple of the vector width).
  ModelBuilder b(13);
  b.input("x", F, {7, 29}).output("y", onnx::TensorProto::UINT8).output("s").output(
      "z", onnx::TensorProto::UINT8).output("d");
  b.init_f("qs", {}, {0.021f});
  init_raw<int8_t>(b, "qz", onnx::TensorProto::INT8, {}, {-3});
  b.node("DynamicQuantizeLinear", {"x"}, {"y", "s", "z"});
  b.node("QuantizeLinear", {"x", "qs", "qz"}, {"q"});
  b.node("DequantizeLinear", {"q", "qs", "qz"}, {"d"});
  const auto bytes = b.bytes();
  auto model = CompiledModel::compile(bytes).value_or_die();
  auto plan = model->plan_for(Binding{{{7, 29}}, {}}).value_or_die();
  for (size_t s = 0; s < plan->steps.size(); ++s) EXPECT_TRUE(plan->prepared[s]) << s;
  Tensor x = Tensor::zeros(DType::kFloat32, {7, 29}).value_or_die();
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = 3.1f * std::sin(1.3f * i) - 0.4f;
  x.data<float>()[17] = 0.5f * 0.021f * 3;  // a tie: x / scale = 1.5
  ExecutionContext ctx(model);
  const auto fast = ctx.run(std::vector<NamedTensor>{{"x", x}}).value_or_die();
  setenv("MOSS_ENGINE_REFERENCE_ONLY", "1", 1);
  auto ref_model = CompiledModel::compile(bytes).value_or_die();
  unsetenv("MOSS_ENGINE_REFERENCE_ONLY");
  ExecutionContext ref_ctx(ref_model);
  const auto ref = ref_ctx.run(std::vector<NamedTensor>{{"x", x}}).value_or_die();
  ASSERT_EQ(fast.size(), 4u);
  for (size_t o = 0; o < fast.size(); ++o) {
    ASSERT_EQ(fast[o].tensor.nbytes(), ref[o].tensor.nbytes());
    EXPECT_EQ(std::memcmp(fast[o].tensor.raw(), ref[o].tensor.raw(), fast[o].tensor.nbytes()), 0)
        << fast[o].name;
  }
}

TEST(EngineQuant, QLinearAddBroadcastsOnTheReferenceKernel) {
  // com.microsoft QLinearAdd as ONNX Runtime's quantizer writes it, B broadcast along rows.
  ModelBuilder b(13);
  b.input("a", onnx::TensorProto::INT8, {2, 3}).input("b", onnx::TensorProto::INT8, {3});
  b.output("c", onnx::TensorProto::INT8);
  b.init_f("as", {}, {0.5f}).init_f("bs", {}, {0.25f}).init_f("cs", {}, {1.0f});
  init_raw<int8_t>(b, "az", onnx::TensorProto::INT8, {}, {2});
  init_raw<int8_t>(b, "bz", onnx::TensorProto::INT8, {}, {-4});
  init_raw<int8_t>(b, "cz", onnx::TensorProto::INT8, {}, {10});
  b.node("QLinearAdd", {"a", "as", "az", "b", "bs", "bz", "cs", "cz"}, {"c"}).set_domain(
      "com.microsoft");
  auto* opset = b.proto().add_opset_import();
  opset->set_domain("com.microsoft");
  opset->set_version(1);
  auto model = CompiledModel::compile(b.bytes()).value_or_die();
  Tensor a = Tensor::from_vector<int8_t>({2, 3}, {0, 12, -100, 127, -128, 40});
  Tensor bt = Tensor::from_vector<int8_t>({3}, {-4, 100, 8});
  ExecutionContext ctx(model);
  auto out = ctx.run(std::vector<NamedTensor>{{"a", a}, {"b", bt}}).value_or_die();
  const Tensor& c = out[0].tensor;
  ASSERT_EQ(c.numel(), 6);
  for (int64_t r = 0; r < 2; ++r) {
    for (int64_t j = 0; j < 3; ++j) {
      const double v = 0.5 * (a.data<int8_t>()[r * 3 + j] - 2) + 0.25 * (bt.data<int8_t>()[j] + 4);
      const double want = std::clamp(std::nearbyint(v) + 10, -128.0, 127.0);
      EXPECT_EQ(c.data<int8_t>()[r * 3 + j], static_cast<int8_t>(want)) << r << "," << j;
    }
  }
}

// ONNX Runtime's quantize_dynamic form of two Linear layers reading one input (one shared
// DynamicQuantizeLinear, as ORT writes for Q/K/V): x[1,5,32] -> DynamicQuantizeLinear ->
//   MatMulInteger(W1 int8, per-tensor) -> Cast -> Mul(x_scale * w1_scale) -> Add b1 -> Erf GELU = y
//   MatMulInteger(W2 int8, per-column) -> Cast -> Mul(x_scale * w2_scale[24]) -> Add b2 -> Add r = z
constexpr int64_t kDk = 32, kDn = 24, kDrows = 5;
std::vector<uint8_t> dynamic_chain() {
  ModelBuilder b(13);
  b.input("x", F, {1, kDrows, kDk}).input("r", F, {1, kDrows, kDn}).output("y").output("z");
  std::vector<int8_t> w1(kDk * kDn), w2(kDk * kDn);
  for (size_t i = 0; i < w1.size(); ++i) {
    w1[i] = static_cast<int8_t>((i * 37 + 11) % 255 - 127);
    w2[i] = static_cast<int8_t>((i * 53 + 7) % 255 - 127);
  }
  init_raw<int8_t>(b, "w1", onnx::TensorProto::INT8, {kDk, kDn}, w1);
  init_raw<int8_t>(b, "w2", onnx::TensorProto::INT8, {kDk, kDn}, w2);
  init_raw<int8_t>(b, "wz", onnx::TensorProto::INT8, {}, {0});
  std::vector<float> s2(kDn), b1(kDn), b2(kDn);
  for (int64_t n = 0; n < kDn; ++n) {
    s2[n] = 0.001f * static_cast<float>(n + 3);
    b1[n] = 0.05f * static_cast<float>(n) - 0.6f;
    b2[n] = 0.3f - 0.02f * static_cast<float>(n);
  }
  b.init_f("s1", {}, {0.004f}).init_f("s2", {kDn}, s2).init_f("b1", {kDn}, b1).init_f("b2", {kDn}, b2);
  b.init_f("sqrt2", {}, {1.41421356f}).init_f("one", {}, {1.0f}).init_f("half", {}, {0.5f});
  b.node("DynamicQuantizeLinear", {"x"}, {"xq", "xs", "xz"});
  b.node("MatMulInteger", {"xq", "w1", "xz", "wz"}, {"i1"}, "fc1");
  ModelBuilder::attr_i(b.node("Cast", {"i1"}, {"f1"}), "to", F);
  b.node("Mul", {"xs", "s1"}, {"k1"});
  b.node("Mul", {"f1", "k1"}, {"m1"});
  b.node("Add", {"m1", "b1"}, {"h"});
  b.node("Div", {"h", "sqrt2"}, {"g1"});
  b.node("Erf", {"g1"}, {"g2"});
  b.node("Add", {"g2", "one"}, {"g3"});
  b.node("Mul", {"h", "g3"}, {"g4"});
  b.node("Mul", {"g4", "half"}, {"y"});
  b.node("MatMulInteger", {"xq", "w2", "xz"}, {"i2"}, "fc2");
  ModelBuilder::attr_i(b.node("Cast", {"i2"}, {"f2"}), "to", F);
  b.node("Mul", {"xs", "s2"}, {"k2"});
  b.node("Mul", {"k2", "f2"}, {"m2"});
  b.node("Add", {"b2", "m2"}, {"o"});
  b.node("Add", {"o", "r"}, {"z"});
  return b.bytes();
}

std::vector<NamedTensor> dynamic_inputs(float shift) {
  Tensor x = Tensor::zeros(DType::kFloat32, {1, kDrows, kDk}).value_or_die();
  Tensor r = Tensor::zeros(DType::kFloat32, {1, kDrows, kDn}).value_or_die();
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = 2.7f * std::sin(0.61f * i) + shift;
  for (int64_t i = 0; i < r.numel(); ++i) r.data<float>()[i] = std::cos(0.3f * i);
  return {{"x", x}, {"r", r}};
}

TEST(EngineQuant, DynamicQuantizationChainRunsAsOneInt8MatmulWithBiasAndGeluFused) {
  const auto bytes = dynamic_chain();
  auto model = CompiledModel::compile(bytes).value_or_die();
  EXPECT_EQ(model->qdq_report().rewritten, 2);
  auto plan = model->plan_for(Binding{{{1, kDrows, kDk}, {1, kDrows, kDn}}, {}}).value_or_die();
  // One step per Linear: the quantization of x, the int8 matmul, the scales, the bias and the
  // GELU (or the residual Add) all in it.
  if (int8_on_onednn()) {
    ASSERT_EQ(plan->steps.size(), 2u);
    std::vector<std::string> labels;
    for (size_t s = 0; s < plan->steps.size(); ++s) {
      EXPECT_EQ(model->graph().nodes[plan->steps[s]].op_type, "DynamicQuantizeMatMul");
      ASSERT_TRUE(plan->prepared[s]);
      EXPECT_EQ(plan->prepared[s]->kind(), "int8");
      labels.push_back(plan->step_labels[s]);
    }
    std::sort(labels.begin(), labels.end());
    EXPECT_EQ(labels, (std::vector<std::string>{"Add", "Gelu"}));
  }
  for (const Value& v : model->graph().values) {  // weights held as int8 only
    if (v.constant && v.constant->numel() == kDk * kDn) {
      EXPECT_EQ(v.constant->dtype(), DType::kInt8);
    }
  }
  CompileOptions unfused;
  unfused.rewrite_qdq = false;
  auto chain = CompiledModel::compile(bytes, unfused).value_or_die();
  ExecutionContext fast_ctx(model), chain_ctx(chain);
  for (float shift : {0.0f, 1.5f, -0.7f}) {
    const auto in = dynamic_inputs(shift);
    const auto got = fast_ctx.run(in).value_or_die();
    const auto want = chain_ctx.run(in).value_or_die();
    ASSERT_EQ(got.size(), 2u);
    for (size_t o = 0; o < 2; ++o) {
      ASSERT_EQ(got[o].tensor.numel(), want[o].tensor.numel());
      for (int64_t i = 0; i < want[o].tensor.numel(); ++i) {
        const float w = want[o].tensor.data<float>()[i];
        // The integer products are exact; the float epilogue (oneDNN's GELU) rounds differently.
        EXPECT_NEAR(got[o].tensor.data<float>()[i], w, 1e-5f + 1e-5f * std::fabs(w)) << o << "," << i;
      }
    }
  }
}

TEST(EngineQuant, DynamicQuantizeMatMulReferenceKernelEqualsTheChainExactly) {
  const auto bytes = dynamic_chain();
  setenv("MOSS_ENGINE_REFERENCE_ONLY", "1", 1);
  auto fused = CompiledModel::compile(bytes).value_or_die();
  CompileOptions unfused;
  unfused.rewrite_qdq = false;
  auto chain = CompiledModel::compile(bytes, unfused).value_or_die();
  unsetenv("MOSS_ENGINE_REFERENCE_ONLY");
  EXPECT_EQ(fused->qdq_report().rewritten, 2);
  ExecutionContext fused_ctx(fused), chain_ctx(chain);
  for (float shift : {0.0f, 3.0f}) {
    const auto in = dynamic_inputs(shift);
    const auto got = fused_ctx.run(in).value_or_die();
    const auto want = chain_ctx.run(in).value_or_die();
    for (size_t o = 0; o < got.size(); ++o) {
      ASSERT_EQ(got[o].tensor.nbytes(), want[o].tensor.nbytes());
      EXPECT_EQ(std::memcmp(got[o].tensor.raw(), want[o].tensor.raw(), got[o].tensor.nbytes()), 0)
          << got[o].name;
    }
  }
}

// com.microsoft MatMulIntegerToFloat (A quantized already; its scale and zero point inputs of
// the request), per-column B scale and zero point, bias, Relu fused: one int8 step on oneDNN
// whose results are the reference kernel's up to the order of the two scale products.
TEST(EngineQuant, MatMulIntegerToFloatRunsOnInt8WithPerRequestScales) {
  constexpr int64_t kK = 32, kN = 24, kRows = 5;
  for (const int a_type : {onnx::TensorProto::UINT8, onnx::TensorProto::INT8}) {
    SCOPED_TRACE(a_type == onnx::TensorProto::UINT8 ? "uint8 A" : "int8 A");
    ModelBuilder b(13);
    b.input("a", a_type, {1, kRows, kK}).input("as", F, {}).input("az", a_type, {}).output("y");
    std::vector<int8_t> w(kK * kN), wz(kN);
    std::vector<float> ws(kN), bias(kN);
    for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<int8_t>((i * 53 + 7) % 201 - 100);
    for (int64_t n = 0; n < kN; ++n) {
      wz[n] = static_cast<int8_t>(n % 5 - 2);
      ws[n] = 0.001f * static_cast<float>(n + 3);
      bias[n] = 0.05f * static_cast<float>(n) - 0.6f;
    }
    init_raw<int8_t>(b, "w", onnx::TensorProto::INT8, {kK, kN}, w);
    init_raw<int8_t>(b, "wz", onnx::TensorProto::INT8, {kN}, wz);
    b.init_f("ws", {kN}, ws).init_f("bias", {kN}, bias);
    b.node("MatMulIntegerToFloat", {"a", "w", "as", "ws", "az", "wz", "bias"}, {"m"}, "fc")
        .set_domain("com.microsoft");
    b.node("Relu", {"m"}, {"y"});
    auto* opset = b.proto().add_opset_import();
    opset->set_domain("com.microsoft");
    opset->set_version(1);
    const auto bytes = b.bytes();
    auto model = CompiledModel::compile(bytes).value_or_die();
    auto plan = model->plan_for(Binding{{{1, kRows, kK}, {}, {}}, {}}).value_or_die();
    if (int8_on_onednn()) {
      ASSERT_EQ(plan->steps.size(), 1u);
      ASSERT_TRUE(plan->prepared[0]);
      EXPECT_EQ(plan->prepared[0]->kind(), "int8");
      EXPECT_EQ(plan->step_labels[0], "Relu");
    }

    Tensor a = Tensor::zeros(a_type == onnx::TensorProto::UINT8 ? DType::kUInt8 : DType::kInt8,
                             {1, kRows, kK}).value_or_die();
    for (int64_t i = 0; i < a.numel(); ++i) a.raw()[i] = static_cast<uint8_t>((i * 97 + 13) % 256);
    auto at = [&](int64_t i) -> int32_t {
      return a.dtype() == DType::kUInt8 ? a.data<uint8_t>()[i] : a.data<int8_t>()[i];
    };
    Tensor az = Tensor::zeros(a.dtype(), {}).value_or_die();
    az.raw()[0] = a.dtype() == DType::kUInt8 ? 131 : static_cast<uint8_t>(-7);
    const int32_t a_zp = a.dtype() == DType::kUInt8 ? 131 : -7;
    const std::vector<NamedTensor> in{
        {"a", a}, {"as", Tensor::from_vector<float>({}, {0.02f})}, {"az", az}};
    ExecutionContext ctx(model);
    const Tensor fast = ctx.run(in).value_or_die()[0].tensor;
    setenv("MOSS_ENGINE_REFERENCE_ONLY", "1", 1);
    auto ref_model = CompiledModel::compile(bytes).value_or_die();
    unsetenv("MOSS_ENGINE_REFERENCE_ONLY");
    ExecutionContext ref_ctx(ref_model);
    const Tensor ref = ref_ctx.run(in).value_or_die()[0].tensor;
    ASSERT_EQ(fast.numel(), kRows * kN);
    ASSERT_EQ(ref.numel(), kRows * kN);
    for (int64_t r = 0; r < kRows; ++r) {
      for (int64_t n = 0; n < kN; ++n) {
        int32_t acc = 0;
        for (int64_t i = 0; i < kK; ++i) acc += (at(r * kK + i) - a_zp) * (w[i * kN + n] - wz[n]);
        const float want = std::max(static_cast<float>(acc) * (0.02f * ws[n]) + bias[n], 0.0f);
        EXPECT_EQ(ref.data<float>()[r * kN + n], want) << r << "," << n;
        EXPECT_NEAR(fast.data<float>()[r * kN + n], want, 1e-5f + 1e-5f * std::fabs(want))
            << r << "," << n;
      }
    }
  }
}

TEST(EngineQuant, MatMulIntegerRunsOnInt8AndIsExact) {
  constexpr int64_t kK = 32, kN = 24, kRows = 5;
  ModelBuilder b(13);
  b.input("a", onnx::TensorProto::UINT8, {1, kRows, kK})
      .input("azp", onnx::TensorProto::UINT8, {})
      .output("y", onnx::TensorProto::INT32);
  std::vector<int8_t> w(kK * kN);
  for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<int8_t>((i * 53 + 7) % 255 - 127);
  init_raw<int8_t>(b, "b", onnx::TensorProto::INT8, {kK, kN}, w);
  b.node("MatMulInteger", {"a", "b", "azp"}, {"y"});
  auto model = CompiledModel::compile(b.bytes()).value_or_die();
  auto plan = model->plan_for(Binding{{{1, kRows, kK}, {}}, {}}).value_or_die();
  ASSERT_EQ(plan->steps.size(), 1u);
  if (int8_on_onednn()) {
    EXPECT_EQ(plan->step_labels[0], "int8");
  }
  Tensor a = Tensor::zeros(DType::kUInt8, {1, kRows, kK}).value_or_die();
  for (int64_t i = 0; i < a.numel(); ++i) a.data<uint8_t>()[i] = static_cast<uint8_t>(i * 29 % 256);
  Tensor zp = Tensor::zeros(DType::kUInt8, {}).value_or_die();
  zp.data<uint8_t>()[0] = 131;
  ExecutionContext ctx(model);
  auto out = ctx.run(std::vector<NamedTensor>{{"a", a}, {"azp", zp}}).value_or_die();
  const Tensor& y = out[0].tensor;
  for (int64_t r = 0; r < kRows; ++r) {
    for (int64_t n = 0; n < kN; ++n) {
      int32_t want = 0;
      for (int64_t k = 0; k < kK; ++k) want += (a.data<uint8_t>()[r * kK + k] - 131) * w[k * kN + n];
      EXPECT_EQ(y.data<int32_t>()[r * kN + n], want) << r << "," << n;
    }
  }
}

}  // namespace
}  // namespace moss::engine
