// Sigmoid, Tanh and HardSwish standing alone (not fused after a Conv or MatMul) run on oneDNN's
// eltwise primitive and agree with the reference kernels, over the whole float range the
// activations saturate in; other element types stay on the reference kernels.
#include "engine/runtime/execution_context.h"
#include "model_builder.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>

namespace moss::engine {
namespace {

using testing::ModelBuilder;

std::pair<Tensor, bool> run(const std::string& op, int elem, const Tensor& x) {
  ModelBuilder b(17);
  b.input("x", elem, x.shape()).output("y", elem);
  b.node(op, {"x"}, {"y"});
  auto m = CompiledModel::compile(b.bytes()).value_or_die();
  ExecutionContext ctx(m);
  Tensor y = ctx.run(std::vector<NamedTensor>{{"x", x}}).value_or_die()[0].tensor;
  bool prepared = false;
  for (const auto& k : ctx.plan()->prepared) prepared |= k != nullptr;
  return {std::move(y), prepared};
}

TEST(EngineOnednnEltwise, ActivationsAgreeWithReferenceKernels) {
  Tensor x = Tensor::zeros(DType::kFloat32, {3, 7, 41}).value_or_die();
  for (int64_t i = 0; i < x.numel(); ++i) {
    x.data<float>()[i] = 30.f * std::sin(0.37f * static_cast<float>(i)) * std::cos(0.011f * static_cast<float>(i));
  }
  for (const char* op : {"Sigmoid", "Tanh", "HardSwish"}) {
    SCOPED_TRACE(op);
    auto [fast, prepared] = run(op, onnx::TensorProto::FLOAT, x);
    setenv("MOSS_ENGINE_REFERENCE_ONLY", "1", 1);
    auto [ref, ref_prepared] = run(op, onnx::TensorProto::FLOAT, x);
    unsetenv("MOSS_ENGINE_REFERENCE_ONLY");
    EXPECT_TRUE(prepared);
    EXPECT_FALSE(ref_prepared);
    ASSERT_EQ(fast.shape(), ref.shape());
    for (int64_t i = 0; i < fast.numel(); ++i) {
      const float a = fast.data<float>()[i], b = ref.data<float>()[i];
      ASSERT_NEAR(a, b, 1e-6f + 1e-5f * std::fabs(b)) << "x = " << x.data<float>()[i];
    }
  }
}

TEST(EngineOnednnEltwise, DoubleStaysOnReferenceKernel) {
  Tensor x = Tensor::zeros(DType::kFloat64, {5}).value_or_die();
  for (int64_t i = 0; i < 5; ++i) x.data<double>()[i] = static_cast<double>(i) - 2.0;
  auto [y, prepared] = run("Sigmoid", onnx::TensorProto::DOUBLE, x);
  EXPECT_FALSE(prepared);
  EXPECT_NEAR(y.data<double>()[4], 1.0 / (1.0 + std::exp(-2.0)), 1e-15);
}

}  // namespace
}  // namespace moss::engine
