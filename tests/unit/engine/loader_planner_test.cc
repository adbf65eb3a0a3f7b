#include "engine/loader/onnx_loader.h"
#include "engine/planner/plan.h"
#include "engine/runtime/execution_context.h"
#include "model_builder.h"

#include <gtest/gtest.h>

namespace moss::engine {
namespace {

using testing::ModelBuilder;
constexpr int F = onnx::TensorProto::FLOAT;

std::vector<uint8_t> relu_model() {
  ModelBuilder b;
  b.input("x", F, {2, 3}).output("y");
  b.node("Relu", {"x"}, {"y"});
  return b.bytes();
}

std::string compile_error(const std::vector<uint8_t>& bytes) {
  auto m = CompiledModel::compile(bytes);
  return m.ok() ? "" : m.status().message();
}

TEST(EngineLoader, RejectsTruncatedAndGarbageBytes) {
  // Every truncation of a valid model and random bytes fail cleanly (or load a valid prefix).
  auto bytes = relu_model();
  for (size_t n = 0; n < bytes.size(); ++n) {
    std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + n);
    auto g = load_onnx(cut);
    if (g.ok()) {
      EXPECT_FALSE(g->outputs.empty());
    }
  }
  EXPECT_FALSE(load_onnx(std::vector<uint8_t>{0xff, 0xff, 0xff, 0x0f}).ok());
  EXPECT_FALSE(load_onnx(std::vector<uint8_t>{}).ok());
}

TEST(EngineLoader, RejectsACycle) {
  // a = Relu(b), b = Relu(a): a cycle is named in the error.
  ModelBuilder b;
  b.input("x", F, {1}).output("a");
  b.node("Add", {"x", "b"}, {"a"}, "first");
  b.node("Relu", {"a"}, {"b"}, "second");
  EXPECT_NE(compile_error(b.bytes()).find("cycle"), std::string::npos);
}

TEST(EngineLoader, RejectsUndefinedInputsAndDuplicateOutputs) {
  // An input nobody defines, and a value produced twice, are invalid models.
  ModelBuilder b;
  b.input("x", F, {1}).output("y");
  b.node("Add", {"x", "ghost"}, {"y"});
  EXPECT_NE(compile_error(b.bytes()).find("ghost"), std::string::npos);
  ModelBuilder c;
  c.input("x", F, {1}).output("y");
  c.node("Relu", {"x"}, {"y"});
  c.node("Neg", {"x"}, {"y"});
  EXPECT_NE(compile_error(c.bytes()).find("produced twice"), std::string::npos);
}

TEST(EngineLoader, UnknownOperatorErrorNamesNodeAndOperator) {
  // An unsupported operator is refused with the node's name and the op type.
  ModelBuilder b;
  b.input("x", F, {1}).output("y");
  b.node("FancyOp", {"x"}, {"y"}, "my_node");
  const std::string err = compile_error(b.bytes());
  EXPECT_NE(err.find("my_node"), std::string::npos);
  EXPECT_NE(err.find("FancyOp"), std::string::npos);
}

TEST(EngineLoader, RefusesExternalData) {
  // Initializers stored in external files are refused: decrypted models never touch disk.
  ModelBuilder b;
  b.input("x", F, {1}).output("y");
  b.init_f("w", {1}, {1.0f});
  auto* t = b.proto().mutable_graph()->mutable_initializer(0);
  t->clear_float_data();
  t->set_data_location(onnx::TensorProto::EXTERNAL);
  auto* e = t->add_external_data();
  e->set_key("location");
  e->set_value("weights.bin");
  b.node("Add", {"x", "w"}, {"y"});
  EXPECT_NE(compile_error(b.bytes()).find("external data"), std::string::npos);
}

TEST(EngineLoader, RejectsBadShapesAndAbsurdSizes) {
  // Non-broadcastable shapes and a ConstantOfShape of 2^60 elements fail at compile time.
  ModelBuilder b;
  b.input("x", F, {2, 3}).input("z", F, {4}).output("y");
  b.node("Add", {"x", "z"}, {"y"}, "adder");
  EXPECT_NE(compile_error(b.bytes()).find("adder"), std::string::npos);
  ModelBuilder c(13);
  c.input("x", F, {1}).output("y");
  c.init_i("shape", {3}, {1 << 20, 1 << 20, 1 << 20});
  c.node("ConstantOfShape", {"shape"}, {"big"});
  c.node("Add", {"x", "big"}, {"y"});
  EXPECT_FALSE(compile_error(c.bytes()).empty());
}

TEST(EngineLoader, RejectsWrongTypes) {
  // A float Gather index and a bool Relu input are type errors naming the node.
  ModelBuilder b;
  b.input("x", F, {4}).input("i", F, {2}).output("y");
  b.node("Gather", {"x", "i"}, {"y"}, "g");
  EXPECT_NE(compile_error(b.bytes()).find("'g'"), std::string::npos);
  ModelBuilder c;
  c.input("x", onnx::TensorProto::BOOL, {4}).output("y");
  c.node("Relu", {"x"}, {"y"}, "r");
  EXPECT_NE(compile_error(c.bytes()).find("'r'"), std::string::npos);
}

TEST(EnginePlanner, ReusesBuffersWhoseLifetimesDoNotOverlap) {
  // Three sequential buffers: the first and third share an offset; the arena is below the sum.
  std::vector<Interval> items{{0, 1, 1000}, {1, 2, 1000}, {2, 3, 1000}};
  size_t total = 0;
  auto off = assign_offsets(items, total);
  EXPECT_EQ(off[0], off[2]);
  EXPECT_NE(off[0], off[1]);
  EXPECT_LT(total, 3 * 1024u);
}

TEST(EnginePlanner, ChainOfOpsUsesLessArenaThanUnsharedBuffers) {
  // Relu chain of 6 nodes: the plan's arena is smaller than one buffer per value.
  ModelBuilder b;
  b.input("x", F, {64, 64}).output("v6");
  const std::vector<std::string> names{"x", "v1", "v2", "v3", "v4", "v5", "v6"};
  for (size_t i = 1; i < names.size(); ++i) b.node(i % 2 ? "Relu" : "Neg", {names[i - 1]}, {names[i]});
  auto model = CompiledModel::compile(b.bytes()).value_or_die();
  auto plan = model->plan_for(Binding{{{64, 64}}, {}}).value_or_die();
  EXPECT_LT(plan->arena_bytes, plan->unshared_bytes);
  EXPECT_LE(plan->arena_bytes, 3u * 64 * 64 * 4);
}

}  // namespace
}  // namespace moss::engine
