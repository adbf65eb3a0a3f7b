// Operator forms the engine does not implement are refused when the model is compiled, with an
// error naming the node, the operator and what is missing: never a crash at run time and never a
// silent wrong answer.
#include "engine/runtime/compiled_model.h"
#include "model_builder.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

namespace moss::engine {
namespace {

using testing::ModelBuilder;
constexpr int F = onnx::TensorProto::FLOAT;

// The compile error of b's model (empty when it compiles), and its code.
struct Refusal {
  std::string message;
  ErrorCode code = ErrorCode::kOk;
};
Refusal refusal(ModelBuilder& b) {
  auto m = CompiledModel::compile(b.bytes());
  if (m.ok()) return {};
  return {m.status().message(), m.status().code()};
}

void use_contrib_domain(ModelBuilder& b) {
  auto* os = b.proto().add_opset_import();
  os->set_domain("com.microsoft");
  os->set_version(1);
}

#define EXPECT_REFUSED(b, code_, text)                                        \
  do {                                                                        \
    const Refusal r = refusal(b);                                             \
    EXPECT_EQ(r.code, code_) << r.message;                                    \
    EXPECT_NE(r.message.find(text), std::string::npos) << r.message;          \
  } while (0)

TEST(EngineOpsRefusal, RoiAlignUnknownMode) {
  ModelBuilder b(16);
  b.input("x", F, {1, 1, 4, 4}).input("rois", F, {1, 4}).input("bi", onnx::TensorProto::INT64, {1});
  b.output("y");
  ModelBuilder::attr_s(b.node("RoiAlign", {"x", "rois", "bi"}, {"y"}, "roi"), "mode", "bilinear");
  EXPECT_REFUSED(b, ErrorCode::kInvalidArgument, "'roi' (RoiAlign): mode 'bilinear' is not valid (avg, max)");
}

TEST(EngineOpsRefusal, RandomGeneratorWithUnsupportedDtype) {
  {  // An integer output type: the spec allows only floats.
    ModelBuilder b(1);
    b.output("y", onnx::TensorProto::INT32);
    auto& n = b.node("RandomUniform", {}, {"y"}, "ru");
    ModelBuilder::attr_ints(n, "shape", {2, 2});
    ModelBuilder::attr_i(n, "dtype", onnx::TensorProto::INT32);
    EXPECT_REFUSED(b, ErrorCode::kInvalidArgument, "'ru' (RandomUniform): dtype must be a float type, got int32");
  }
  {  // A float8 type has no element type in the engine: named, not a number.
    ModelBuilder b(15);
    b.input("x", F, {3}).output("y");
    ModelBuilder::attr_i(b.node("RandomNormalLike", {"x"}, {"y"}, "rn"), "dtype", 17);
    EXPECT_REFUSED(b, ErrorCode::kUnimplemented, "'rn' (RandomNormalLike): element type float8e4m3fn (ONNX type 17)");
  }
}

TEST(EngineOpsRefusal, ContribAttentionWithPastOrPresent) {
  auto attention = [](bool past_in, bool present_out) {
    ModelBuilder b(17);
    use_contrib_domain(b);
    b.input("x", F, {1, 2, 4}).input("w", F, {4, 12}).input("bias", F, {12});
    if (past_in) b.input("past", F, {2, 1, 2, 1, 2});
    b.output("y");
    if (present_out) b.output("present");
    std::vector<std::string> ins{"x", "w", "bias"};
    if (past_in) ins.insert(ins.end(), {"", "past"});
    std::vector<std::string> outs{"y"};
    if (present_out) outs.push_back("present");
    auto& n = b.node("Attention", ins, outs, "att");
    n.set_domain("com.microsoft");
    ModelBuilder::attr_i(n, "num_heads", 2);
    return b;
  };
  {
    ModelBuilder b = attention(true, false);
    EXPECT_REFUSED(b, ErrorCode::kUnimplemented, "'att' (Attention): input 4 ('past') is not supported");
  }
  {
    ModelBuilder b = attention(false, true);
    EXPECT_REFUSED(b, ErrorCode::kUnimplemented, "'att' (Attention): output 'present' (key/value cache) is not supported");
  }
  {  // Without either the same node compiles.
    ModelBuilder b = attention(false, false);
    EXPECT_EQ(refusal(b).message, "");
  }
}

TEST(EngineOpsRefusal, FusedMatMulTransBatch) {
  for (const char* attr : {"transBatchA", "transBatchB"}) {
    ModelBuilder b(17);
    use_contrib_domain(b);
    b.input("a", F, {2, 3, 4}).input("b", F, {2, 4, 5}).output("y");
    auto& n = b.node("FusedMatMul", {"a", "b"}, {"y"}, "fmm");
    n.set_domain("com.microsoft");
    ModelBuilder::attr_i(n, attr, 1);
    EXPECT_REFUSED(b, ErrorCode::kUnimplemented, "'fmm' (FusedMatMul): transBatchA/transBatchB are not supported");
  }
}

TEST(EngineOpsRefusal, ContribMixingFloat16AndFloat32) {
  // float16 runs (widened to float32); a float16 input with a float32 bias is refused.
  ModelBuilder b(17);
  use_contrib_domain(b);
  b.input("x", onnx::TensorProto::FLOAT16, {2, 4}).input("bias", F, {4}).output("y", onnx::TensorProto::FLOAT16);
  b.node("BiasGelu", {"x", "bias"}, {"y"}, "bg").set_domain("com.microsoft");
  EXPECT_REFUSED(b, ErrorCode::kInvalidArgument, "'bg' (BiasGelu): float16 and float32 inputs are mixed");
}

TEST(EngineOpsRefusal, CastToFloat8) {
  // Every float8 type, with and without opset 19's saturate (which only concerns float8).
  const std::pair<int, const char*> types[] = {
      {17, "float8e4m3fn"}, {18, "float8e4m3fnuz"}, {19, "float8e5m2"}, {20, "float8e5m2fnuz"}};
  for (const auto& [number, name] : types) {
    ModelBuilder b(19);
    b.input("x", F, {4}).output("y");
    auto& n = b.node("Cast", {"x"}, {"h"}, "c8");
    ModelBuilder::attr_i(n, "to", number);
    ModelBuilder::attr_i(n, "saturate", 0);
    ModelBuilder::attr_i(b.node("Cast", {"h"}, {"y"}), "to", onnx::TensorProto::FLOAT);
    EXPECT_REFUSED(b, ErrorCode::kUnimplemented,
                   fmt::format("'c8' (Cast): element type {} (ONNX type {}) is not supported", name, number));
  }
  {  // A float8 value in the graph's interface is refused by the loader, naming the type.
    ModelBuilder b(19);
    b.input("x", 19, {4}).output("y", F);
    ModelBuilder::attr_i(b.node("Cast", {"x"}, {"y"}), "to", onnx::TensorProto::FLOAT);
    EXPECT_REFUSED(b, ErrorCode::kUnimplemented, "ONNX element type 19 (float8e5m2) is not supported");
  }
}

TEST(EngineOpsRefusal, DeformConvBeyondTwoDimensions) {
  ModelBuilder b(19);
  b.input("x", F, {1, 1, 3, 3, 3}).input("w", F, {1, 1, 2, 2, 2}).input("off", F, {1, 24, 2, 2, 2}).output("y");
  b.node("DeformConv", {"x", "w", "off"}, {"y"}, "dc");
  EXPECT_REFUSED(b, ErrorCode::kUnimplemented, "'dc' (DeformConv): only 2-D DeformConv");
}

}  // namespace
}  // namespace moss::engine
