// The oneDNN path (registry first choice) agrees with the reference kernels (the twin).
#include "engine/runtime/execution_context.h"
#include "model_builder.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>

namespace moss::engine {
namespace {

using testing::ModelBuilder;
constexpr int F = onnx::TensorProto::FLOAT;

std::vector<uint8_t> conv_gemm_model() {
  // Conv 3x3 pad 1 stride 2 group 2 -> Flatten -> Gemm(transB) -> MatMul.
  ModelBuilder b(13);
  b.input("x", F, {2, 4, 9, 9}).output("y");
  std::vector<float> w(8 * 2 * 9), g(10 * 200), m(10 * 3);
  for (size_t i = 0; i < w.size(); ++i) w[i] = std::sin(0.1f * static_cast<float>(i));
  for (size_t i = 0; i < g.size(); ++i) g[i] = std::cos(0.01f * static_cast<float>(i)) * 0.1f;
  for (size_t i = 0; i < m.size(); ++i) m[i] = 0.05f * static_cast<float>(i) - 0.5f;
  b.init_f("w", {8, 2, 3, 3}, w).init_f("bias", {8}, {1, 2, 3, 4, 5, 6, 7, 8});
  b.init_f("g", {10, 200}, g).init_f("c", {10}, std::vector<float>(10, 0.5f)).init_f("m", {10, 3}, m);
  auto& conv = b.node("Conv", {"x", "w", "bias"}, {"c1"});
  ModelBuilder::attr_i(conv, "group", 2);
  ModelBuilder::attr_ints(conv, "pads", {1, 1, 1, 1});
  ModelBuilder::attr_ints(conv, "strides", {2, 2});
  b.node("Flatten", {"c1"}, {"f"});
  ModelBuilder::attr_i(b.node("Gemm", {"f", "g", "c"}, {"h"}), "transB", 1);
  b.node("MatMul", {"h", "m"}, {"y"});
  return b.bytes();
}

Tensor run_once(const std::vector<uint8_t>& bytes, const Tensor& x) {
  auto model = CompiledModel::compile(bytes).value_or_die();
  ExecutionContext ctx(model);
  return ctx.run(std::vector<NamedTensor>{{"x", x}}).value_or_die()[0].tensor;
}

TEST(EngineOnednn, ConvGemmMatMulAgreeWithReferenceKernels) {
  // Same model, oneDNN-first registry vs MOSS_ENGINE_REFERENCE_ONLY=1: within 1e-4 relative.
  Tensor x = Tensor::zeros(DType::kFloat32, {2, 4, 9, 9}).value_or_die();
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = std::sin(0.37f * static_cast<float>(i));
  const auto bytes = conv_gemm_model();
  Tensor fast = run_once(bytes, x);
  setenv("MOSS_ENGINE_REFERENCE_ONLY", "1", 1);
  Tensor ref = run_once(bytes, x);
  unsetenv("MOSS_ENGINE_REFERENCE_ONLY");
  ASSERT_EQ(fast.shape(), ref.shape());
  ASSERT_EQ(fast.shape(), (std::vector<int64_t>{2, 3}));
  for (int64_t i = 0; i < fast.numel(); ++i) {
    const float a = fast.data<float>()[i], b = ref.data<float>()[i];
    EXPECT_NEAR(a, b, 1e-4f * (1.0f + std::fabs(b))) << i;
  }
}

}  // namespace
}  // namespace moss::engine
