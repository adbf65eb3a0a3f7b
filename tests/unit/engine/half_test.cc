// float16 / bfloat16 models (quant/half_precision.h): computed in float32 on the oneDNN kernels,
// exactly as the float32 model with the half-rounded weights (the reference kernels have no half
// Conv, so as written such a model is refused); half graph inputs and outputs keep their type;
// `moss model info` says which was chosen.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/half.h"
#include "engine/runtime/execution_context.h"
#include "engine/tools/model_commands.h"
#include "model_builder.h"

namespace moss::engine {
namespace {

using testing::ModelBuilder;
constexpr int F = onnx::TensorProto::FLOAT;
constexpr int64_t kC = 4, kM = 6, kH = 8;

template <typename H>
void init_half(ModelBuilder& b, const std::string& name, int elem, std::vector<int64_t> dims,
               const std::vector<float>& v) {
  std::vector<uint16_t> bits;
  for (float f : v) bits.push_back(H(f).bits);
  auto* t = b.graph().add_initializer();
  t->set_name(name);
  t->set_data_type(elem);
  for (auto d : dims) t->add_dims(d);
  t->set_raw_data(std::string(reinterpret_cast<const char*>(bits.data()), bits.size() * 2));
}

// x (float32) -> Cast(half) -> Conv(3x3, pad 1, W and B half) -> Relu -> Mul(half constant)
// -> Cast(float32) -> y, as a converter with keep_io_types writes a half model.
// as_float: the float32 model with the half-rounded weights (what widening should compute).
template <typename H>
std::vector<uint8_t> half_conv(int elem, bool half_io = false, bool as_float = false) {
  ModelBuilder b(17);
  b.input("x", half_io ? elem : F, {1, kC, kH, kH}).output("y", half_io ? elem : F);
  std::vector<float> w(kM * kC * 9), bias(kM);
  for (size_t i = 0; i < w.size(); ++i) w[i] = 0.3f * std::sin(0.7f * static_cast<float>(i));
  for (int64_t m = 0; m < kM; ++m) bias[m] = 0.1f * static_cast<float>(m) - 0.2f;
  if (as_float) {
    for (float& v : w) v = H(v);
    for (float& v : bias) v = H(v);
    b.init_f("w", {kM, kC, 3, 3}, w).init_f("b", {kM}, bias).init_f("k", {}, {1.5f});
    elem = F;
  } else {
    init_half<H>(b, "w", elem, {kM, kC, 3, 3}, w);
    init_half<H>(b, "b", elem, {kM}, bias);
    init_half<H>(b, "k", elem, {}, {1.5f});
  }
  if (half_io) {
    b.node("Identity", {"x"}, {"xh"});
  } else {
    ModelBuilder::attr_i(b.node("Cast", {"x"}, {"xh"}), "to", elem);
  }
  ModelBuilder::attr_ints(b.node("Conv", {"xh", "w", "b"}, {"c"}, "conv"), "pads", {1, 1, 1, 1});
  b.node("Relu", {"c"}, {"r"});
  b.node("Mul", {"r", "k"}, {"m"});
  if (half_io) {
    b.node("Identity", {"m"}, {"y"});
  } else {
    ModelBuilder::attr_i(b.node("Cast", {"m"}, {"y"}), "to", F);
  }
  return b.bytes();
}

Tensor input() {
  Tensor x = Tensor::zeros(DType::kFloat32, {1, kC, kH, kH}).value_or_die();
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = 2.0f * std::cos(0.29f * i);
  return x;
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
  // The reference kernels have no float16 Conv: as written, the model is refused.
  CompileOptions as_written;
  as_written.half_in_float32 = false;
  EXPECT_FALSE(CompiledModel::compile(bytes, as_written).ok());
  auto reference = CompiledModel::compile(half_conv<H>(elem, false, true)).value_or_die();
  const Tensor x = input();
  const Tensor got = run(model, x), want = run(reference, x);
  ASSERT_EQ(got.numel(), want.numel());
  for (int64_t i = 0; i < got.numel(); ++i) {
    EXPECT_EQ(got.data<float>()[i], want.data<float>()[i]) << i;
  }
}

TEST(EngineHalf, Float16ModelComputesInFloat32OnOneDnnLikeTheFloatModelWithHalfWeights) {
  expect_float32_on_onednn<Float16>(onnx::TensorProto::FLOAT16, DType::kFloat16);
}

TEST(EngineHalf, Bfloat16ModelComputesInFloat32OnOneDnnLikeTheFloatModelWithHalfWeights) {
  expect_float32_on_onednn<BFloat16>(onnx::TensorProto::BFLOAT16, DType::kBFloat16);
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
                           "float32 on the oneDNN kernels"),
            std::string::npos)
      << out.str();
}

}  // namespace
}  // namespace moss::engine
