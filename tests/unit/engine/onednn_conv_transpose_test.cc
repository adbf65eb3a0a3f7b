// ConvTranspose on oneDNN's deconvolution agrees with the reference kernel (a U-Net's upsampling
// ran 50x slower than ONNX Runtime on the reference kernel alone), and what oneDNN does not take
// (auto_pad, output_shape) stays on the reference kernel with the same answer.
#include "engine/runtime/execution_context.h"
#include "model_builder.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <functional>

namespace moss::engine {
namespace {

using testing::ModelBuilder;
constexpr int F = onnx::TensorProto::FLOAT;

struct Case {
  std::vector<int64_t> x, w;  // X [N, C, spatial...], W [C, M/group, kernel...]
  int64_t group = 1;
  std::function<void(onnx::NodeProto&)> attrs;
};

std::vector<uint8_t> model(const Case& c) {
  ModelBuilder b(17);
  b.input("x", F, c.x).output("y");
  int64_t wn = 1;
  for (int64_t d : c.w) wn *= d;
  std::vector<float> w(static_cast<size_t>(wn)), bias(static_cast<size_t>(c.w[1] * c.group));
  for (size_t i = 0; i < w.size(); ++i) w[i] = std::sin(0.13f * static_cast<float>(i));
  for (size_t i = 0; i < bias.size(); ++i) bias[i] = 0.1f * static_cast<float>(i) - 0.2f;
  b.init_f("w", c.w, w).init_f("b", {static_cast<int64_t>(bias.size())}, bias);
  auto& n = b.node("ConvTranspose", {"x", "w", "b"}, {"y"});
  if (c.group != 1) ModelBuilder::attr_i(n, "group", c.group);
  c.attrs(n);
  return b.bytes();
}

// Output and whether its one step ran a prepared (oneDNN) kernel.
std::pair<Tensor, bool> run(const std::vector<uint8_t>& bytes, const Tensor& x) {
  auto m = CompiledModel::compile(bytes).value_or_die();
  ExecutionContext ctx(m);
  Tensor y = ctx.run(std::vector<NamedTensor>{{"x", x}}).value_or_die()[0].tensor;
  const Plan* plan = ctx.plan();
  bool prepared = false;
  for (const auto& k : plan->prepared) prepared |= k != nullptr;
  return {std::move(y), prepared};
}

void expect_twin(const Case& c, bool want_onednn, std::vector<int64_t> want_shape) {
  Tensor x = Tensor::zeros(DType::kFloat32, c.x).value_or_die();
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = std::cos(0.29f * static_cast<float>(i));
  const auto bytes = model(c);
  auto [fast, prepared] = run(bytes, x);
  setenv("MOSS_ENGINE_REFERENCE_ONLY", "1", 1);
  auto [ref, ref_prepared] = run(bytes, x);
  unsetenv("MOSS_ENGINE_REFERENCE_ONLY");
  EXPECT_EQ(prepared, want_onednn);
  EXPECT_FALSE(ref_prepared);
  ASSERT_EQ(fast.shape(), want_shape);
  ASSERT_EQ(ref.shape(), want_shape);
  for (int64_t i = 0; i < fast.numel(); ++i) {
    const float a = fast.data<float>()[i], b = ref.data<float>()[i];
    ASSERT_NEAR(a, b, 1e-4f * (1.0f + std::fabs(b))) << i;
  }
}

TEST(EngineOnednnConvTranspose, StridedPaddedUpsamplingAgreesWithReference) {
  // The U-Net's upsampler: kernel 4, stride 2, pads 1 doubles the size.
  expect_twin({{1, 8, 5, 6}, {8, 4, 4, 4}, 1,
               [](onnx::NodeProto& n) {
                 ModelBuilder::attr_ints(n, "strides", {2, 2});
                 ModelBuilder::attr_ints(n, "pads", {1, 1, 1, 1});
               }},
              true, {1, 4, 10, 12});
}

TEST(EngineOnednnConvTranspose, GroupsOutputPaddingAndDilationAgreeWithReference) {
  expect_twin({{2, 6, 4, 5}, {6, 2, 3, 2}, 3,
               [](onnx::NodeProto& n) {
                 ModelBuilder::attr_ints(n, "strides", {3, 2});
                 ModelBuilder::attr_ints(n, "pads", {1, 0, 2, 1});
                 ModelBuilder::attr_ints(n, "output_padding", {2, 1});
                 ModelBuilder::attr_ints(n, "dilations", {2, 1});
               }},
              true, {2, 6, 13, 10});
}

TEST(EngineOnednnConvTranspose, OneAndThreeSpatialDimsAgreeWithReference) {
  expect_twin({{1, 3, 7}, {3, 5, 3}, 1, [](onnx::NodeProto& n) { ModelBuilder::attr_ints(n, "strides", {2}); }},
              true, {1, 5, 15});
  expect_twin({{1, 2, 3, 4, 2}, {2, 3, 2, 2, 2}, 1,
               [](onnx::NodeProto& n) { ModelBuilder::attr_ints(n, "strides", {2, 2, 2}); }},
              true, {1, 3, 6, 8, 4});
}

TEST(EngineOnednnConvTranspose, AutoPadAndOutputShapeStayOnReferenceKernel) {
  expect_twin({{1, 2, 3, 3}, {2, 2, 3, 3}, 1,
               [](onnx::NodeProto& n) {
                 ModelBuilder::attr_ints(n, "strides", {2, 2});
                 ModelBuilder::attr_s(n, "auto_pad", "SAME_UPPER");
               }},
              false, {1, 2, 6, 6});
  expect_twin({{1, 2, 3, 3}, {2, 2, 3, 3}, 1,
               [](onnx::NodeProto& n) {
                 ModelBuilder::attr_ints(n, "strides", {2, 2});
                 ModelBuilder::attr_ints(n, "output_shape", {6, 6});
               }},
              false, {1, 2, 6, 6});
}

}  // namespace
}  // namespace moss::engine
