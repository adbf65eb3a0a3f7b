// float16 / bfloat16 models (quant/half_precision.h): computed in float32 on the oneDNN kernels,
// the weights held in the half type and widened per use where that is exact (weights with a
// BatchNormalization folded in stay float32), exactly as the float32 model with the
// half-rounded weights (the reference kernels have no half Conv, so as written such a model is
// refused); half graph inputs and outputs keep their type; `moss model info` says which was
// chosen.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/half.h"
#include "engine/kernels/onednn/onednn_common.h"
#include "engine/kernels/onednn_bridge.h"
#include "engine/runtime/execution_context.h"
#include "engine/tools/model_commands.h"
#include "test_models.h"

namespace moss::engine {
namespace {

using testing::half_conv;
using testing::init_half;
using testing::ModelBuilder;
constexpr int F = onnx::TensorProto::FLOAT;
constexpr int64_t kC = testing::kHalfConvC, kM = testing::kHalfConvM, kH = testing::kHalfConvH;

Tensor input() {
  Tensor x = Tensor::zeros(DType::kFloat32, {1, kC, kH, kH}).value_or_die();
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = 2.0f * std::cos(0.29f * i);
  return x;
}

// Bytes of weights the prepared kernel of the (one) `op` step holds.
size_t step_weights(const CompiledModel& m, const std::string& op, std::vector<int64_t> shape) {
  auto plan = m.plan_for(Binding{{shape}, {}}).value_or_die();
  for (size_t s = 0; s < plan->steps.size(); ++s) {
    if (m.graph().nodes[plan->steps[s]].op_type == op && plan->prepared[s]) {
      return plan->prepared[s]->weights_bytes();
    }
  }
  ADD_FAILURE() << "no prepared " << op << " step";
  return 0;
}

Tensor run(const std::shared_ptr<const CompiledModel>& m, const Tensor& x) {
  ExecutionContext ctx(m);
  return ctx.run(std::vector<NamedTensor>{{"x", x}}).value_or_die()[0].tensor;
}

template <typename H>
void expect_float32_on_onednn(int elem, DType stored) {
  const auto bytes = half_conv<H>(elem);
  auto model = CompiledModel::compile(bytes).value_or_die();
  const HalfPrecisionReport& h = model->half_precision();
  EXPECT_EQ(h.stored, stored);
  EXPECT_TRUE(h.widened) << h.kept;
  EXPECT_EQ(h.half_bytes, (kM * kC * 9 + kM + 1) * 2);
  auto plan = model->plan_for(Binding{{{1, kC, kH, kH}}, {}}).value_or_die();
  bool conv_on_onednn = false;
  for (size_t s = 0; s < plan->steps.size(); ++s) {
    const Node& n = model->graph().nodes[plan->steps[s]];
    if (n.op_type == "Conv") {
      conv_on_onednn = plan->prepared[s] != nullptr;
      EXPECT_EQ(plan->step_labels[s], "Relu+Mul");  // the float32 fusions apply
    }
  }
  EXPECT_TRUE(conv_on_onednn);
  EXPECT_EQ(plan->half.weights, stored);
  EXPECT_EQ(plan->half.compute, HalfCompute::kFloat32);
  // The reference kernels have no float16 Conv: as written, the model is refused.
  CompileOptions as_written;
  as_written.half_in_float32 = false;
  EXPECT_FALSE(CompiledModel::compile(bytes, as_written).ok());
  auto reference = CompiledModel::compile(half_conv<H>(elem, false, true)).value_or_die();
  // The packed weights are held in the half type (half the float model's), the bias in float32.
  const size_t bias = kM * sizeof(float);
  EXPECT_EQ(2 * (step_weights(*model, "Conv", {1, kC, kH, kH}) - bias),
            step_weights(*reference, "Conv", {1, kC, kH, kH}) - bias);
  const Tensor x = input();
  const Tensor got = run(model, x), want = run(reference, x);
  ASSERT_EQ(got.numel(), want.numel());
  for (int64_t i = 0; i < got.numel(); ++i) {
    EXPECT_EQ(got.data<float>()[i], want.data<float>()[i]) << i;
  }
}

// x [3, 40] -> Cast(half) -> Gemm(transB, W half [24, 40], C half [24]) -> Cast(float32) -> y,
// and the float32 model with the half-rounded weights.
template <typename H>
std::vector<uint8_t> half_gemm(int elem, bool as_float) {
  ModelBuilder b(17);
  b.input("x", F, {3, 40}).output("y");
  std::vector<float> w(24 * 40), c(24);
  for (size_t i = 0; i < w.size(); ++i) w[i] = H(0.2f * std::cos(0.3f * static_cast<float>(i)));
  for (size_t i = 0; i < c.size(); ++i) c[i] = H(0.05f * static_cast<float>(i) - 0.4f);
  if (as_float) {
    b.init_f("w", {24, 40}, w).init_f("c", {24}, c);
    ModelBuilder::attr_i(b.node("Gemm", {"x", "w", "c"}, {"y"}, "fc"), "transB", 1);
    return b.bytes();
  }
  init_half<H>(b, "w", elem, {24, 40}, w);
  init_half<H>(b, "c", elem, {24}, c);
  ModelBuilder::attr_i(b.node("Cast", {"x"}, {"xh"}), "to", elem);
  ModelBuilder::attr_i(b.node("Gemm", {"xh", "w", "c"}, {"yh"}, "fc"), "transB", 1);
  ModelBuilder::attr_i(b.node("Cast", {"yh"}, {"y"}), "to", F);
  return b.bytes();
}

template <typename H>
void expect_gemm_weights_held_half(int elem) {
  auto model = CompiledModel::compile(half_gemm<H>(elem, false)).value_or_die();
  auto reference = CompiledModel::compile(half_gemm<H>(elem, true)).value_or_die();
  ASSERT_TRUE(model->half_precision().widened) << model->half_precision().kept;
  const size_t bias = 24 * sizeof(float);
  EXPECT_EQ(2 * (step_weights(*model, "Gemm", {3, 40}) - bias),
            step_weights(*reference, "Gemm", {3, 40}) - bias);
  Tensor x = Tensor::zeros(DType::kFloat32, {3, 40}).value_or_die();
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = std::sin(0.11f * i);
  // Twice: the widened weights live in the context's scratch, rewritten before every use.
  ExecutionContext ctx(model);
  for (int rep = 0; rep < 2; ++rep) {
    const Tensor got = ctx.run(std::vector<NamedTensor>{{"x", x}}).value_or_die()[0].tensor;
    const Tensor want = run(reference, x);
    ASSERT_EQ(got.numel(), want.numel());
    for (int64_t i = 0; i < got.numel(); ++i) {
      EXPECT_EQ(got.data<float>()[i], want.data<float>()[i]) << i;
    }
  }
}

TEST(EngineHalf, Float16ModelComputesInFloat32OnOneDnnLikeTheFloatModelWithHalfWeights) {
  expect_float32_on_onednn<Float16>(onnx::TensorProto::FLOAT16, DType::kFloat16);
}

TEST(EngineHalf, Bfloat16ModelComputesInFloat32OnOneDnnLikeTheFloatModelWithHalfWeights) {
  expect_float32_on_onednn<BFloat16>(onnx::TensorProto::BFLOAT16, DType::kBFloat16);
}

TEST(EngineHalf, GemmWeightsOfAHalfModelAreHeldHalfAndWidenedPerUse) {
  expect_gemm_weights_held_half<Float16>(onnx::TensorProto::FLOAT16);
  expect_gemm_weights_held_half<BFloat16>(onnx::TensorProto::BFLOAT16);
}

TEST(EngineHalf, Bf16ComputeRunsTheConvolutionInBfloat16WhereTheCpuHasIt) {
  const auto bytes = half_conv<Float16>(onnx::TensorProto::FLOAT16);
  CompileOptions options;
  options.half_compute = HalfCompute::kBFloat16;
  auto model = CompiledModel::compile(bytes, options).value_or_die();
  auto plan = model->plan_for(Binding{{{1, kC, kH, kH}}, {}}).value_or_die();
  const bool bf16 = onednn::cpu_has_bf16();
  EXPECT_EQ(plan->half.compute, bf16 ? HalfCompute::kBFloat16 : HalfCompute::kFloat32);
  EXPECT_EQ(model->half_plan().compute, plan->half.compute);
  for (size_t s = 0; s < plan->steps.size(); ++s) {
    if (model->graph().nodes[plan->steps[s]].op_type != "Conv") continue;
    ASSERT_TRUE(plan->prepared[s]);
    EXPECT_EQ(plan->prepared[s]->kind(), bf16 ? "bf16" : "");
  }
  // bfloat16 inputs and weights (8 significant bits), float32 sums: within 1e-2 of float32.
  auto reference = CompiledModel::compile(half_conv<Float16>(onnx::TensorProto::FLOAT16, false,
                                                             true)).value_or_die();
  const Tensor x = input();
  const Tensor got = run(model, x), want = run(reference, x);
  ASSERT_EQ(got.numel(), want.numel());
  double scale = 0;
  for (int64_t i = 0; i < want.numel(); ++i) {
    scale = std::max(scale, std::fabs(static_cast<double>(want.data<float>()[i])));
  }
  for (int64_t i = 0; i < got.numel(); ++i) {
    EXPECT_NEAR(got.data<float>()[i], want.data<float>()[i], 1e-2 * scale) << i;
  }
  if (!bf16) GTEST_SKIP() << "no AVX512-BF16: computed in float32";
}

TEST(EngineHalf, HalfWeightsHoldOnlyValuesThatRoundTripExactly) {
  using onednn::HalfWeights;
  using onednn::WeightStorage;
  const dnnl::memory::desc md = onednn::plain_md({2, 4});
  // Exact in float16 and bfloat16 alike, -0 included.
  const std::vector<float> exact{0.5f, -1.25f, 0.f, -0.f, 3.f, 1024.f, -0.375f, 96.f};
  std::vector<float> inexact = exact;
  inexact[5] = 0.1f;
  for (WeightStorage type : {WeightStorage::kF16, WeightStorage::kBF16}) {
    const HalfWeights held(onednn::wrap(md, exact.data()), type);
    ASSERT_FALSE(held.empty());
    EXPECT_EQ(held.bytes(), exact.size() * 2);
    EXPECT_EQ(held.widened_bytes(), exact.size() * 4);
    std::vector<float> back(exact.size(), 7.f);
    held.widen(back.data());
    EXPECT_EQ(std::memcmp(back.data(), exact.data(), exact.size() * 4), 0);
    const HalfWeights kept(onednn::wrap(md, inexact.data()), type);
    EXPECT_TRUE(kept.empty());
    EXPECT_EQ(kept.bytes(), 0u);
    EXPECT_EQ(kept.widened_bytes(), 0u);
  }
}

// x -> Cast(half) -> Conv(W, B half) -> BatchNormalization(half) -> Cast(float32) -> y, and the
// float32 model with the half-rounded values: the normalisation folds into the Conv's weights,
// which are then off the half grid.
template <typename H>
std::vector<uint8_t> half_conv_bn(int elem, bool as_float) {
  ModelBuilder b(17);
  b.input("x", F, {1, kC, kH, kH}).output("y");
  std::vector<float> w(kM * kC * 9), bias(kM), scale(kM), shift(kM), mean(kM), var(kM);
  for (size_t i = 0; i < w.size(); ++i) w[i] = H(0.3f * std::sin(0.7f * static_cast<float>(i)));
  for (int64_t m = 0; m < kM; ++m) {
    const float f = static_cast<float>(m);
    bias[m] = H(0.1f * f - 0.2f);
    scale[m] = H(0.9f + 0.07f * f);
    shift[m] = H(0.05f * f);
    mean[m] = H(0.01f * f - 0.02f);
    var[m] = H(1.3f + 0.1f * f);
  }
  const std::vector<std::pair<std::string, std::vector<float>*>> params{
      {"s", &scale}, {"sb", &shift}, {"m", &mean}, {"v", &var}};
  if (as_float) {
    b.init_f("w", {kM, kC, 3, 3}, w).init_f("b", {kM}, bias);
    for (const auto& [name, v] : params) b.init_f(name, {kM}, *v);
    ModelBuilder::attr_ints(b.node("Conv", {"x", "w", "b"}, {"c"}, "conv"), "pads", {1, 1, 1, 1});
    b.node("BatchNormalization", {"c", "s", "sb", "m", "v"}, {"y"});
    return b.bytes();
  }
  init_half<H>(b, "w", elem, {kM, kC, 3, 3}, w);
  init_half<H>(b, "b", elem, {kM}, bias);
  for (const auto& [name, v] : params) init_half<H>(b, name, elem, {kM}, *v);
  ModelBuilder::attr_i(b.node("Cast", {"x"}, {"xh"}), "to", elem);
  ModelBuilder::attr_ints(b.node("Conv", {"xh", "w", "b"}, {"c"}, "conv"), "pads", {1, 1, 1, 1});
  b.node("BatchNormalization", {"c", "s", "sb", "m", "v"}, {"n"});
  ModelBuilder::attr_i(b.node("Cast", {"n"}, {"y"}), "to", F);
  return b.bytes();
}

template <typename H>
void expect_folded_weights_kept_float32(int elem) {
  auto model = CompiledModel::compile(half_conv_bn<H>(elem, false)).value_or_die();
  auto reference = CompiledModel::compile(half_conv_bn<H>(elem, true)).value_or_die();
  ASSERT_TRUE(model->half_precision().widened) << model->half_precision().kept;
  // Held in float32 like the float model's (narrowing them would round them once more) ...
  EXPECT_EQ(step_weights(*model, "Conv", {1, kC, kH, kH}), step_weights(*reference, "Conv", {1, kC, kH, kH}));
  // ... so the results are the float model's, bit for bit.
  const Tensor x = input();
  const Tensor got = run(model, x), want = run(reference, x);
  ASSERT_EQ(got.numel(), want.numel());
  for (int64_t i = 0; i < got.numel(); ++i) {
    EXPECT_EQ(got.data<float>()[i], want.data<float>()[i]) << i;
  }
}

TEST(EngineHalf, WeightsWithABatchNormFoldedInStayFloat32) {
  expect_folded_weights_kept_float32<Float16>(onnx::TensorProto::FLOAT16);
  expect_folded_weights_kept_float32<BFloat16>(onnx::TensorProto::BFLOAT16);
}

TEST(EngineHalf, HalfGraphInputsAndOutputsKeepTheirTypeAroundAFloat32Body) {
  auto model = CompiledModel::compile(half_conv<Float16>(onnx::TensorProto::FLOAT16, true))
                   .value_or_die();
  EXPECT_TRUE(model->half_precision().widened) << model->half_precision().kept;
  auto reference = CompiledModel::compile(half_conv<Float16>(onnx::TensorProto::FLOAT16, false,
                                                             true)).value_or_die();
  const Tensor x = input();
  Tensor xh = Tensor::zeros(DType::kFloat16, x.shape()).value_or_die();
  for (int64_t i = 0; i < x.numel(); ++i) xh.data<Float16>()[i] = Float16(x.data<float>()[i]);
  Tensor xr = Tensor::zeros(DType::kFloat32, x.shape()).value_or_die();  // x rounded to half
  for (int64_t i = 0; i < x.numel(); ++i) xr.data<float>()[i] = xh.data<Float16>()[i];
  ExecutionContext ctx(model);
  const Tensor got = ctx.run(std::vector<NamedTensor>{{"x", xh}}).value_or_die()[0].tensor;
  const Tensor want = run(reference, xr);
  ASSERT_EQ(got.dtype(), DType::kFloat16);
  ASSERT_EQ(got.numel(), want.numel());
  for (int64_t i = 0; i < got.numel(); ++i) {
    EXPECT_EQ(static_cast<float>(got.data<Float16>()[i]),
              static_cast<float>(Float16(want.data<float>()[i])))
        << i;
  }
}

TEST(EngineHalf, ModelInfoSaysHowAHalfModelIsComputed) {
  const auto path = std::filesystem::temp_directory_path() / "moss_half_info.onnx";
  {
    const auto bytes = half_conv<Float16>(onnx::TensorProto::FLOAT16);
    std::ofstream f(path, std::ios::binary);
    f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  }
  std::ostringstream out;
  ASSERT_TRUE(model_info(path, out).ok());
  std::filesystem::remove(path);
  EXPECT_NE(out.str().find("half precision: float16 weights (0.0 MB in the file), computed in "
                           "float32 on the oneDNN kernels (weights held in float16, widened per "
                           "use; half_compute=f32)"),
            std::string::npos)
      << out.str();
}

}  // namespace
}  // namespace moss::engine
