// Small hand-computed cases for behaviour the conformance data covers thinly.
#include "engine/runtime/execution_context.h"
#include "model_builder.h"

#include <gtest/gtest.h>

namespace moss::engine {
namespace {

using testing::ModelBuilder;
constexpr int F = onnx::TensorProto::FLOAT;

std::vector<float> run1(ModelBuilder& b, std::vector<NamedTensor> in, std::vector<int64_t>* shape = nullptr) {
  auto model = CompiledModel::compile(b.bytes()).value_or_die();
  ExecutionContext ctx(model);
  auto out = ctx.run(in).value_or_die();
  if (shape) *shape = out[0].tensor.shape();
  const float* p = out[0].tensor.data<float>();
  return std::vector<float>(p, p + out[0].tensor.numel());
}

TEST(EngineOps, SoftmaxAxisMeansCoercionBeforeOpset13) {
  // Opset 11 Softmax over axis 1 of [1,2,2] normalises all 4 values; opset 13 only the last axis.
  Tensor x = Tensor::from_vector<float>({1, 2, 2}, {0, 0, 0, 0});
  ModelBuilder a(11);
  a.input("x", F, {1, 2, 2}).output("y");
  ModelBuilder::attr_i(a.node("Softmax", {"x"}, {"y"}), "axis", 1);
  EXPECT_FLOAT_EQ(run1(a, {{"x", x}})[0], 0.25f);
  ModelBuilder c(13);
  c.input("x", F, {1, 2, 2}).output("y");
  ModelBuilder::attr_i(c.node("Softmax", {"x"}, {"y"}), "axis", 1);
  EXPECT_FLOAT_EQ(run1(c, {{"x", x}})[0], 0.5f);
}

TEST(EngineOps, ClipTakesAttributesBeforeOpset11) {
  // Clip-6 reads min/max attributes.
  ModelBuilder b(6);
  b.input("x", F, {3}).output("y");
  ModelBuilder::attr_f(b.node("Clip", {"x"}, {"y"}), "max", 1.0f);
  auto out = run1(b, {{"x", Tensor::from_vector<float>({3}, {-5, 0.5f, 7})}});
  EXPECT_EQ(out, (std::vector<float>{-5, 0.5f, 1}));
}

TEST(EngineOps, SliceWithNegativeStepReverses) {
  // starts=-1, ends=INT64_MIN, steps=-1 reverses a vector.
  ModelBuilder b(13);
  b.input("x", F, {4}).output("y");
  b.init_i("s", {1}, {-1}).init_i("e", {1}, {INT64_MIN}).init_i("a", {1}, {0}).init_i("st", {1}, {-1});
  b.node("Slice", {"x", "s", "e", "a", "st"}, {"y"});
  EXPECT_EQ(run1(b, {{"x", Tensor::from_vector<float>({4}, {1, 2, 3, 4})}}), (std::vector<float>{4, 3, 2, 1}));
}

TEST(EngineOps, PadReflectAndEdge) {
  // Reflect pads [1,2,3] by 2 on the left as [3,2,1,2,3]; edge repeats the border.
  for (auto [mode, want] : {std::pair<std::string, std::vector<float>>{"reflect", {3, 2, 1, 2, 3}},
                            {"edge", {1, 1, 1, 2, 3}}}) {
    ModelBuilder b(13);
    b.input("x", F, {3}).output("y");
    b.init_i("p", {2}, {2, 0});
    ModelBuilder::attr_s(b.node("Pad", {"x", "p"}, {"y"}), "mode", mode);
    EXPECT_EQ(run1(b, {{"x", Tensor::from_vector<float>({3}, {1, 2, 3})}}), want) << mode;
  }
}

TEST(EngineOps, PadRowsMixCopiedInsidesPaddedEndsAndCroppedEdges) {
  // x [2, 3, 4] = 0..23; pads (begin d0 d1 d2, end d0 d1 d2) = (1, -1, 2, 0, 1, -1): a constant row
  // block before, the first row of each matrix cropped and one constant row after, and per row
  // two padded elements in front and the last element cropped. Each mode against the definition.
  const std::vector<int64_t> pads{1, -1, 2, 0, 1, -1};
  for (const std::string mode : {"constant", "edge", "reflect", "wrap"}) {
    ModelBuilder b(19);
    b.input("x", F, {2, 3, 4}).output("y");
    b.init_i("p", {6}, pads);
    b.init_f("v", {}, {-7});
    std::vector<std::string> in{"x", "p"};
    if (mode == "constant") in.push_back("v");
    ModelBuilder::attr_s(b.node("Pad", in, {"y"}), "mode", mode);
    std::vector<float> x(24);
    for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i);
    const auto y = run1(b, {{"x", Tensor::from_vector<float>({2, 3, 4}, x)}});
    const int64_t is[3] = {2, 3, 4}, os[3] = {3, 3, 5};
    auto source = [&](int64_t i, int64_t dim) -> int64_t {
      if (i >= 0 && i < dim) return i;
      if (mode == "constant") return -1;
      if (mode == "edge") return i < 0 ? 0 : dim - 1;
      if (mode == "wrap") return ((i % dim) + dim) % dim;
      const int64_t p = 2 * (dim - 1), m = ((i % p) + p) % p;
      return m < dim ? m : p - m;
    };
    ASSERT_EQ(y.size(), 45u) << mode;
    for (int64_t a = 0; a < os[0]; ++a) {
      for (int64_t r = 0; r < os[1]; ++r) {
        for (int64_t c = 0; c < os[2]; ++c) {
          const int64_t sa = source(a - pads[0], is[0]), sr = source(r - pads[1], is[1]),
                        sc = source(c - pads[2], is[2]);
          const float want = sa < 0 || sr < 0 || sc < 0 ? -7.0f : x[static_cast<size_t>((sa * 3 + sr) * 4 + sc)];
          EXPECT_EQ(y[static_cast<size_t>((a * 3 + r) * 5 + c)], want) << mode << " at " << a << "," << r << "," << c;
        }
      }
    }
  }
}

TEST(EngineOps, GatherAcceptsNegativeIndicesAndRejectsOutOfRange) {
  // Index -1 picks the last row; index 5 of 3 rows is a run-time error, not a crash.
  ModelBuilder b(13);
  b.input("x", F, {3}).input("i", onnx::TensorProto::INT64, {1}).output("y");
  b.node("Gather", {"x", "i"}, {"y"});
  auto model = CompiledModel::compile(b.bytes()).value_or_die();
  ExecutionContext ctx(model);
  Tensor x = Tensor::from_vector<float>({3}, {10, 20, 30});
  auto ok = ctx.run(std::vector<NamedTensor>{{"x", x}, {"i", Tensor::from_vector<int64_t>({1}, {-1})}});
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ((*ok)[0].tensor.data<float>()[0], 30);
  EXPECT_FALSE(ctx.run(std::vector<NamedTensor>{{"x", x}, {"i", Tensor::from_vector<int64_t>({1}, {5})}}).ok());
}

TEST(EngineOps, SplitWithNumOutputsOpset18) {
  // num_outputs=2 over 5 elements gives chunks of 3 and 2.
  ModelBuilder b(18);
  b.input("x", F, {5}).output("a").output("c");
  ModelBuilder::attr_i(b.node("Split", {"x"}, {"a", "c"}), "num_outputs", 2);
  std::vector<int64_t> shape;
  EXPECT_EQ(run1(b, {{"x", Tensor::from_vector<float>({5}, {1, 2, 3, 4, 5})}}, &shape), (std::vector<float>{1, 2, 3}));
}

TEST(EngineOps, ResizeNearestAsymmetricFloorUpsamples) {
  // [1,2] upsampled x2 with asymmetric/floor is [1,1,2,2].
  ModelBuilder b(13);
  b.input("x", F, {1, 2}).output("y");
  b.init_f("scales", {2}, {1.0f, 2.0f});
  auto& n = b.node("Resize", {"x", "", "scales"}, {"y"});
  ModelBuilder::attr_s(n, "coordinate_transformation_mode", "asymmetric");
  ModelBuilder::attr_s(n, "nearest_mode", "floor");
  EXPECT_EQ(run1(b, {{"x", Tensor::from_vector<float>({1, 2}, {1, 2})}}), (std::vector<float>{1, 1, 2, 2}));
}

TEST(EngineOps, ReduceSumAxesInputFromOpset13) {
  // ReduceSum-13 takes axes as an input; keepdims=0 drops the axis.
  ModelBuilder b(13);
  b.input("x", F, {2, 2}).output("y");
  b.init_i("axes", {1}, {1});
  ModelBuilder::attr_i(b.node("ReduceSum", {"x", "axes"}, {"y"}), "keepdims", 0);
  std::vector<int64_t> shape;
  EXPECT_EQ(run1(b, {{"x", Tensor::from_vector<float>({2, 2}, {1, 2, 3, 4})}}, &shape), (std::vector<float>{3, 7}));
  EXPECT_EQ(shape, (std::vector<int64_t>{2}));
}

TEST(EngineOps, GroupedConvMatchesHandComputation) {
  // Depthwise 1x1 conv with group=2 scales each channel by its own weight plus bias.
  ModelBuilder b(13);
  b.input("x", F, {1, 2, 1, 2}).output("y");
  b.init_f("w", {2, 1, 1, 1}, {2, 3}).init_f("bias", {2}, {1, -1});
  ModelBuilder::attr_i(b.node("Conv", {"x", "w", "bias"}, {"y"}), "group", 2);
  EXPECT_EQ(run1(b, {{"x", Tensor::from_vector<float>({1, 2, 1, 2}, {1, 2, 3, 4})}}), (std::vector<float>{3, 5, 8, 11}));
}

TEST(EngineOps, UnsupportedAttributeValueIsAClearError) {
  // An unknown Resize mode is refused at compile time with the node and operator named.
  ModelBuilder b(13);
  b.input("x", F, {1, 2}).output("y");
  b.init_f("scales", {2}, {1.0f, 2.0f});
  ModelBuilder::attr_s(b.node("Resize", {"x", "", "scales"}, {"y"}, "rs"), "mode", "bicubic");
  auto m = CompiledModel::compile(b.bytes());
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("'rs' (Resize)"), std::string::npos);
}

}  // namespace
}  // namespace moss::engine
