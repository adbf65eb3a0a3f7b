// Operators and element types added for engine breadth (issue 13): hand-computed cases for the
// families whose absence blocked whole model architectures, and the refusals infer() must give.
#include "engine/runtime/execution_context.h"
#include "engine/tools/model_commands.h"
#include "model_builder.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace moss::engine {
namespace {

using testing::ModelBuilder;
constexpr int F = onnx::TensorProto::FLOAT;
constexpr int I64 = onnx::TensorProto::INT64;

Tensor run_one(ModelBuilder& b, std::vector<NamedTensor> in) {
  auto model = CompiledModel::compile(b.bytes()).value_or_die();
  ExecutionContext ctx(model);
  auto out = ctx.run(in).value_or_die();
  return std::move(out[0].tensor);
}

template <typename T>
std::vector<T> values(const Tensor& t) {
  const T* p = t.data<T>();
  return std::vector<T>(p, p + t.numel());
}

std::string compile_error(ModelBuilder& b) {
  auto m = CompiledModel::compile(b.bytes());
  return m.ok() ? std::string() : m.status().message();
}

TEST(EngineOpsBreadth, TriluKeepsUpperOrLowerTriangleWithOffset) {
  // GPT-style causal masks: lower triangle (upper=0) and upper with k=1.
  ModelBuilder b(14);
  b.input("x", F, {3, 3}).output("lo").output("up");
  ModelBuilder::attr_i(b.node("Trilu", {"x"}, {"lo"}), "upper", 0);
  b.init_i("k", {}, {1});
  b.node("Trilu", {"x", "k"}, {"up"});
  auto model = CompiledModel::compile(b.bytes()).value_or_die();
  ExecutionContext ctx(model);
  std::vector<NamedTensor> in{{"x", Tensor::from_vector<float>({3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9})}};
  auto out = ctx.run(in).value_or_die();
  EXPECT_EQ(values<float>(out[0].tensor), (std::vector<float>{1, 0, 0, 4, 5, 0, 7, 8, 9}));
  EXPECT_EQ(values<float>(out[1].tensor), (std::vector<float>{0, 2, 3, 0, 0, 6, 0, 0, 0}));
}

TEST(EngineOpsBreadth, ModFollowsDivisorSignUnlessFmod) {
  ModelBuilder b(13);
  b.input("a", I64, {4}).input("d", I64, {4}).output("y", I64);
  b.node("Mod", {"a", "d"}, {"y"});
  auto y = run_one(b, {{"a", Tensor::from_vector<int64_t>({4}, {-7, 7, -7, 7})},
                       {"d", Tensor::from_vector<int64_t>({4}, {3, -3, -3, 3})}});
  EXPECT_EQ(values<int64_t>(y), (std::vector<int64_t>{2, -2, -1, 1}));
  // Floats require fmod=1: refused at compile time naming the node.
  ModelBuilder c(13);
  c.input("a", F, {1}).input("d", F, {1}).output("y");
  c.node("Mod", {"a", "d"}, {"y"}, "m");
  EXPECT_NE(compile_error(c).find("'m' (Mod): fmod must be 1"), std::string::npos);
}

TEST(EngineOpsBreadth, ReduceMaxTakesAxesAsInputFromOpset18) {
  ModelBuilder b(18);
  b.input("x", F, {2, 3}).output("y");
  b.init_i("axes", {1}, {1});
  ModelBuilder::attr_i(b.node("ReduceMax", {"x", "axes"}, {"y"}), "keepdims", 0);
  auto y = run_one(b, {{"x", Tensor::from_vector<float>({2, 3}, {1, 5, 2, -1, -4, -3})}});
  EXPECT_EQ(y.shape(), (std::vector<int64_t>{2}));
  EXPECT_EQ(values<float>(y), (std::vector<float>{5, -1}));
  // The opset-13 form (axes attribute) is refused in an opset-18 model.
  ModelBuilder c(18);
  c.input("x", F, {2, 3}).output("y");
  ModelBuilder::attr_ints(c.node("ReduceMax", {"x"}, {"y"}, "r"), "axes", {1});
  EXPECT_NE(compile_error(c).find("'r' (ReduceMax)"), std::string::npos);
}

TEST(EngineOpsBreadth, InstanceNormalizationPerSampleAndChannel) {
  ModelBuilder b(13);
  b.input("x", F, {1, 2, 2}).output("y");
  b.init_f("s", {2}, {1, 2}).init_f("b", {2}, {0, 1});
  ModelBuilder::attr_f(b.node("InstanceNormalization", {"x", "s", "b"}, {"y"}), "epsilon", 0.0f);
  auto y = values<float>(run_one(b, {{"x", Tensor::from_vector<float>({1, 2, 2}, {1, 3, 10, 20})}}));
  ASSERT_EQ(y.size(), 4u);
  EXPECT_NEAR(y[0], -1, 1e-6);
  EXPECT_NEAR(y[1], 1, 1e-6);
  EXPECT_NEAR(y[2], -1, 1e-6);  // 2 * -1 + 1
  EXPECT_NEAR(y[3], 3, 1e-6);
}

TEST(EngineOpsBreadth, QuantizeLinearRoundsHalfToEvenAndSaturates) {
  ModelBuilder b(13);
  b.input("x", F, {5}).output("q", onnx::TensorProto::UINT8);
  b.init_f("s", {}, {2.0f});
  auto* zp = b.proto().mutable_graph()->add_initializer();
  zp->set_name("zp");
  zp->set_data_type(onnx::TensorProto::UINT8);
  zp->add_int32_data(10);
  b.node("QuantizeLinear", {"x", "s", "zp"}, {"q"});
  auto q = run_one(b, {{"x", Tensor::from_vector<float>({5}, {1, 3, 5, -100, 1000})}});
  // 0.5 -> 0, 1.5 -> 2, 2.5 -> 2 (half to even), then +10, saturated to [0, 255].
  EXPECT_EQ(values<uint8_t>(q), (std::vector<uint8_t>{10, 12, 12, 0, 255}));
}

TEST(EngineOpsBreadth, Float16AddComputesInFloatAndRounds) {
  ModelBuilder b(13);
  b.input("a", onnx::TensorProto::FLOAT16, {3}).input("c", onnx::TensorProto::FLOAT16, {3});
  b.output("y", onnx::TensorProto::FLOAT16);
  b.node("Add", {"a", "c"}, {"y"});
  auto h = [](std::vector<float> v) {
    std::vector<Float16> out(v.begin(), v.end());
    return Tensor::from_vector<Float16>({3}, out);
  };
  auto y = run_one(b, {{"a", h({1.0f, 2048.0f, -0.5f})}, {"c", h({0.5f, 1.0f, 0.25f})}});
  ASSERT_EQ(y.dtype(), DType::kFloat16);
  const Float16* p = y.data<Float16>();
  EXPECT_EQ(static_cast<float>(p[0]), 1.5f);
  EXPECT_EQ(static_cast<float>(p[1]), 2048.0f);  // 2049 is not representable: ties to even
  EXPECT_EQ(static_cast<float>(p[2]), -0.25f);
}

TEST(EngineOpsBreadth, MixedTypesAndBadAttributesAreRefusedNamingTheNode) {
  ModelBuilder b(13);
  b.input("a", F, {2}).input("c", I64, {2}).output("y");
  b.node("Add", {"a", "c"}, {"y"}, "mixed");
  EXPECT_NE(compile_error(b).find("'mixed' (Add)"), std::string::npos);

  ModelBuilder c(14);
  c.input("x", F, {4}).output("y");
  ModelBuilder::attr_s(c.node("Gelu", {"x"}, {"y"}, "g"), "approximate", "cubic");
  EXPECT_NE(compile_error(c).find("'g' (Gelu)"), std::string::npos);
}

TEST(EngineOpsBreadth, UnsupportedOperatorErrorNamesDomainAndOpset) {
  ModelBuilder b(17);
  b.input("x", F, {1}).output("y");
  b.node("FancyOp", {"x"}, {"y"}, "n1");
  const std::string err = compile_error(b);
  EXPECT_NE(err.find("'n1' (FancyOp)"), std::string::npos) << err;
  EXPECT_NE(err.find("ai.onnx"), std::string::npos) << err;
  EXPECT_NE(err.find("opset 17"), std::string::npos) << err;
}

TEST(EngineOpsBreadth, ModelInfoListsEveryOperatorWithSupport) {
  ModelBuilder b(17);
  b.input("x", F, {2}).output("y");
  b.node("Sin", {"x"}, {"s"});
  b.node("FancyOp", {"s"}, {"y"});
  const auto path = std::filesystem::temp_directory_path() / "moss_ops_breadth_info.onnx";
  {
    std::ofstream f(path, std::ios::binary);
    const auto bytes = b.bytes();
    f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  }
  std::ostringstream out;
  ASSERT_TRUE(model_info(path, out).ok());
  std::filesystem::remove(path);
  const std::string s = out.str();
  EXPECT_NE(s.find("Sin"), std::string::npos) << s;
  EXPECT_NE(s.find("supported"), std::string::npos) << s;
  EXPECT_NE(s.find("opset 17"), std::string::npos) << s;
  EXPECT_NE(s.find("unsupported: FancyOp"), std::string::npos) << s;
}

TEST(EngineOpsBreadth, DeformConvSamplesAtOffsetPositions) {
  // X 3x3 = 1..9, a 2x2 kernel of ones: with zero offsets it is a plain convolution; an offset of
  // +0.5 along x samples between columns (bilinear); the mask scales each tap.
  auto run = [](float dx, float mask) {
    ModelBuilder b(19);
    b.input("x", F, {1, 1, 3, 3}).output("y");
    b.init_f("w", {1, 1, 2, 2}, {1, 1, 1, 1});
    std::vector<float> off(8 * 4, 0.0f);
    for (int k = 0; k < 4; ++k) {
      for (int p = 0; p < 4; ++p) off[(2 * k + 1) * 4 + p] = dx;  // channel 2k: dy, 2k+1: dx
    }
    b.init_f("off", {1, 8, 2, 2}, off);
    b.init_f("b", {1}, {0.25f});
    b.init_f("m", {1, 4, 2, 2}, std::vector<float>(16, mask));
    b.node("DeformConv", {"x", "w", "off", "b", "m"}, {"y"});
    return values<float>(run_one(b, {{"x", Tensor::from_vector<float>({1, 1, 3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9})}}));
  };
  EXPECT_EQ(run(0.0f, 1.0f), (std::vector<float>{12.25f, 16.25f, 24.25f, 28.25f}));
  EXPECT_EQ(run(0.0f, 0.5f), (std::vector<float>{6.25f, 8.25f, 12.25f, 14.25f}));
  // (0,0): taps at x = 0.5 and 1.5 of rows 0 and 1: 1.5 + 2.5 + 4.5 + 5.5; (0,1): x = 2.5 is
  // half outside the image (blends with 0): 2.5 + 1.5 + 5.5 + 3.
  EXPECT_EQ(run(0.5f, 1.0f), (std::vector<float>{14.25f, 12.75f, 26.25f, 21.75f}));
}

TEST(EngineOpsBreadth, Col2ImSumsOverlappingBlocks) {
  // 2x2 blocks of ones over a 3x3 image: each pixel counts the blocks covering it.
  ModelBuilder b(18);
  b.input("x", F, {1, 4, 4}).output("y");
  b.init_i("image", {2}, {3, 3}).init_i("block", {2}, {2, 2});
  b.node("Col2Im", {"x", "image", "block"}, {"y"});
  auto y = run_one(b, {{"x", Tensor::from_vector<float>({1, 4, 4}, std::vector<float>(16, 1.0f))}});
  EXPECT_EQ(y.shape(), (std::vector<int64_t>{1, 1, 3, 3}));
  EXPECT_EQ(values<float>(y), (std::vector<float>{1, 2, 1, 2, 4, 2, 1, 2, 1}));
  // The column count must match the blocks the geometry implies.
  ModelBuilder c(18);
  c.input("x", F, {1, 4, 5}).output("y");
  c.init_i("image", {2}, {3, 3}).init_i("block", {2}, {2, 2});
  c.node("Col2Im", {"x", "image", "block"}, {"y"}, "c2i");
  EXPECT_NE(compile_error(c).find("'c2i' (Col2Im): input [1, 4, 5] must be [N, C * 4, 4]"), std::string::npos)
      << compile_error(c);
}

TEST(EngineOpsBreadth, AffineGridOfIdentityIsTheBaseGrid) {
  for (int64_t align : {0, 1}) {
    ModelBuilder b(20);
    b.input("theta", F, {1, 2, 3}).output("grid");
    b.init_i("size", {4}, {1, 1, 2, 2});
    ModelBuilder::attr_i(b.node("AffineGrid", {"theta", "size"}, {"grid"}), "align_corners", align);
    auto g = run_one(b, {{"theta", Tensor::from_vector<float>({1, 2, 3}, {1, 0, 0, 0, 1, 0})}});
    EXPECT_EQ(g.shape(), (std::vector<int64_t>{1, 2, 2, 2}));
    const float e = align ? 1.0f : 0.5f;  // corners, or pixel centres
    EXPECT_EQ(values<float>(g), (std::vector<float>{-e, -e, e, -e, -e, e, e, e})) << "align_corners " << align;
  }
}

}  // namespace
}  // namespace moss::engine
