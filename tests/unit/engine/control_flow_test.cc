// Subgraphs (If, Loop, Scan reading outer-scope values), data-dependent shapes (NonZero,
// Compress, Reshape of a computed shape) and recurrent cells, run through the whole engine.
#include "engine/runtime/execution_context.h"
#include "model_builder.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

namespace moss::engine {
namespace {

using testing::ModelBuilder;
constexpr int F = onnx::TensorProto::FLOAT;
constexpr int I64 = onnx::TensorProto::INT64;
constexpr int BOOL = onnx::TensorProto::BOOL;

// A subgraph built with ModelBuilder's helpers: its graph, moved out.
onnx::GraphProto graph_of(ModelBuilder& b) { return b.graph(); }

std::string compile_error(const std::vector<uint8_t>& bytes) {
  auto m = CompiledModel::compile(bytes);
  return m.ok() ? "" : m.status().message();
}

std::vector<float> floats(const Tensor& t) {
  return std::vector<float>(t.data<float>(), t.data<float>() + t.numel());
}

// y = Relu(If(c, x + k, -x)) * 2, with k an outer initializer read by the then-branch.
std::vector<uint8_t> if_model() {
  ModelBuilder then_b, else_b;
  then_b.output("t");
  then_b.node("Add", {"x", "k"}, {"t"});
  else_b.output("e");
  else_b.node("Neg", {"x"}, {"e"});
  ModelBuilder b;
  b.input("x", F, {3}).input("c", BOOL, {}).output("y");
  b.init_f("k", {3}, {10, 20, 30}).init_f("two", {}, {2});
  auto& n = b.node("If", {"c"}, {"r"}, "branch");
  ModelBuilder::attr_g(n, "then_branch", graph_of(then_b));
  ModelBuilder::attr_g(n, "else_branch", graph_of(else_b));
  b.node("Relu", {"r"}, {"rr"});
  b.node("Mul", {"rr", "two"}, {"y"});
  return b.bytes();
}

TEST(EngineControlFlow, IfRunsTheBranchCondSelectsWithOuterScopeValues) {
  // Both branches on one context: then reads the outer initializer k, else only x.
  auto model = CompiledModel::compile(if_model()).value_or_die();
  ExecutionContext ctx(model);
  Tensor x = Tensor::from_vector<float>({3}, {1, -2, 3});
  auto t = ctx.run(std::vector<NamedTensor>{{"x", x}, {"c", Tensor::from_vector<bool>({}, {true})}});
  ASSERT_TRUE(t.ok()) << t.status().message();
  EXPECT_EQ(floats((*t)[0].tensor), (std::vector<float>{22, 36, 66}));
  auto e = ctx.run(std::vector<NamedTensor>{{"x", x}, {"c", Tensor::from_vector<bool>({}, {false})}});
  ASSERT_TRUE(e.ok()) << e.status().message();
  EXPECT_EQ(floats((*e)[0].tensor), (std::vector<float>{0, 4, 0}));
}

TEST(EngineControlFlow, LoopCarriesValuesAndStacksScanOutputs) {
  // s = 0; for i < 3: s = s + x (x from the outer scope); scan output: s after each trip.
  ModelBuilder body;
  body.input("i", I64, {}).input("cin", BOOL, {}).input("s", F, {2});
  body.output("cout", BOOL).output("s2").output("scan");
  body.node("Identity", {"cin"}, {"cout"});
  body.node("Add", {"s", "x"}, {"s2"});
  body.node("Identity", {"s2"}, {"scan"});
  ModelBuilder b;
  b.input("x", F, {2}).output("final").output("all");
  b.init_i("M", {}, {3}).init_f("s0", {2}, {0, 0});
  auto& n = b.node("Loop", {"M", "", "s0"}, {"final", "all"}, "loop");
  ModelBuilder::attr_g(n, "body", graph_of(body));
  auto model = CompiledModel::compile(b.bytes());
  ASSERT_TRUE(model.ok()) << model.status().message();
  ExecutionContext ctx(*model);
  auto out = ctx.run(std::vector<NamedTensor>{{"x", Tensor::from_vector<float>({2}, {1, 5})}});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(floats((*out)[0].tensor), (std::vector<float>{3, 15}));
  EXPECT_EQ((*out)[1].tensor.shape(), (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(floats((*out)[1].tensor), (std::vector<float>{1, 5, 2, 10, 3, 15}));
}

TEST(EngineControlFlow, LoopTripCountFromTheRequestIsBounded) {
  // M comes from the request: a huge trip count ends with an error, not a thread held for ever.
  ModelBuilder body;
  body.input("i", I64, {}).input("cin", BOOL, {}).input("s", F, {1});
  body.output("cout", BOOL).output("s2");
  body.node("Identity", {"cin"}, {"cout"});
  body.node("Identity", {"s"}, {"s2"});
  ModelBuilder b;
  b.input("M", I64, {}).input("x", F, {1}).output("y");
  auto& n = b.node("Loop", {"M", "", "x"}, {"y"}, "loop");
  ModelBuilder::attr_g(n, "body", graph_of(body));
  auto model = CompiledModel::compile(b.bytes());
  ASSERT_TRUE(model.ok()) << model.status().message();
  ExecutionContext ctx(*model);
  auto out = ctx.run(std::vector<NamedTensor>{{"M", Tensor::from_vector<int64_t>({}, {int64_t{1} << 40})},
                                              {"x", Tensor::from_vector<float>({1}, {1})}});
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), ErrorCode::kResourceExhausted);
  EXPECT_NE(out.status().message().find("iterations"), std::string::npos);
}

TEST(EngineControlFlow, LoopBodyReusesItsBuffersInTheSteadyState) {
  // s = s * a + x over M trips (a, x from the outer scope), with a scan output and a body
  // condition computed each trip. After the first iterations every value of the body lands in a
  // buffer an earlier iteration released: the run allocates as many buffers for 300 trips as for 3.
  auto model = CompiledModel::compile(testing::carried_loop_model(/*scan=*/true, /*limit=*/1000));
  ASSERT_TRUE(model.ok()) << model.status().message();
  auto run = [&](int64_t trips) {
    ExecutionContext ctx(*model);
    auto out = ctx.run(std::vector<NamedTensor>{{"M", Tensor::from_vector<int64_t>({}, {trips})},
                                                {"x", Tensor::from_vector<float>({4}, {1, 2, -1, 4})}});
    EXPECT_TRUE(out.ok()) << out.status().message();
    // s converges to 2x; the last scan row is Relu(s).
    if (out.ok()) {
      const auto& all = (*out)[1].tensor;
      EXPECT_EQ(all.shape(), (std::vector<int64_t>{trips, 4}));
      const float* last = all.data<float>() + (trips - 1) * 4;
      const std::vector<float> final_s = floats((*out)[0].tensor);
      for (int j = 0; j < 4; ++j) EXPECT_EQ(last[j], std::max(final_s[static_cast<size_t>(j)], 0.0f));
      if (trips >= 30) {
        EXPECT_NEAR(final_s[0], 2.0f, 1e-6);
      }
    }
    return ctx.tail_buffer_allocations();
  };
  const size_t three = run(3), many = run(300);
  EXPECT_GT(three, 0u);
  EXPECT_EQ(many, three) << "buffers allocated: " << three << " for 3 trips, " << many << " for 300";
}

TEST(EngineControlFlow, LoopWithGrowingCarriedValueStaysCorrect) {
  // The carried value grows every trip (no buffer fits twice): values stay right.
  ModelBuilder body;
  body.input("i", I64, {}).input("cin", BOOL, {}).input("s", F, {-1});
  body.output("cout", BOOL).output("s2");
  body.node("Identity", {"cin"}, {"cout"});
  body.node("Cast", {"i"}, {"fi"});
  ModelBuilder::attr_i(body.graph().mutable_node(1)[0], "to", F);
  body.node("Unsqueeze", {"fi", "zero"}, {"v"});
  body.init_i("zero", {1}, {0});
  ModelBuilder::attr_i(body.node("Concat", {"s", "v"}, {"s2"}), "axis", 0);
  ModelBuilder b(13);
  b.input("M", I64, {}).output("y");
  b.init_f("s0", {0}, {});
  auto& n = b.node("Loop", {"M", "", "s0"}, {"y"}, "loop");
  ModelBuilder::attr_g(n, "body", graph_of(body));
  auto model = CompiledModel::compile(b.bytes());
  ASSERT_TRUE(model.ok()) << model.status().message();
  ExecutionContext ctx(*model);
  auto out = ctx.run(std::vector<NamedTensor>{{"M", Tensor::from_vector<int64_t>({}, {50})}});
  ASSERT_TRUE(out.ok()) << out.status().message();
  const auto y = floats((*out)[0].tensor);
  ASSERT_EQ(y.size(), 50u);
  for (size_t i = 0; i < y.size(); ++i) EXPECT_EQ(y[i], static_cast<float>(i));
}

TEST(EngineControlFlow, ScanRunsItsBodyOverSlicesInBothDirections) {
  // Running sum over the rows of x, forward; the scan output is written reversed.
  ModelBuilder body;
  body.input("acc", F, {2}).input("row", F, {2});
  body.output("acc2").output("out");
  body.node("Add", {"acc", "row"}, {"acc2"});
  body.node("Identity", {"acc2"}, {"out"});
  ModelBuilder b(16);
  b.input("x", F, {3, 2}).output("sum").output("ys");
  b.init_f("zero", {2}, {0, 0});
  auto& n = b.node("Scan", {"zero", "x"}, {"sum", "ys"}, "scan");
  ModelBuilder::attr_g(n, "body", graph_of(body));
  ModelBuilder::attr_i(n, "num_scan_inputs", 1);
  ModelBuilder::attr_ints(n, "scan_output_directions", {1});
  auto model = CompiledModel::compile(b.bytes());
  ASSERT_TRUE(model.ok()) << model.status().message();
  ExecutionContext ctx(*model);
  auto out = ctx.run(std::vector<NamedTensor>{
      {"x", Tensor::from_vector<float>({3, 2}, {1, 2, 3, 4, 5, 6})}});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(floats((*out)[0].tensor), (std::vector<float>{9, 12}));
  EXPECT_EQ(floats((*out)[1].tensor), (std::vector<float>{9, 12, 4, 6, 1, 2}));
}

TEST(EngineControlFlow, ScanSlicesRowsAsViewsAndColumnsAsCopies) {
  // The same running sum over rows (axis 0: each slice a view of x) and over columns (axis 1:
  // each slice copied into one reused buffer), the columns read in reverse.
  for (int64_t axis : {0, 1}) {
    SCOPED_TRACE(::testing::Message() << "scan input axis " << axis);
    ModelBuilder body;
    body.input("acc", F, {2}).input("slice", F, {2});
    body.output("acc2").output("out");
    body.node("Add", {"acc", "slice"}, {"acc2"});
    body.node("Identity", {"slice"}, {"out"});
    ModelBuilder b(16);
    b.input("x", F, {2, 2}).output("sum").output("ys");
    b.init_f("zero", {2}, {0, 0});
    auto& n = b.node("Scan", {"zero", "x"}, {"sum", "ys"}, "scan");
    ModelBuilder::attr_g(n, "body", graph_of(body));
    ModelBuilder::attr_i(n, "num_scan_inputs", 1);
    ModelBuilder::attr_ints(n, "scan_input_axes", {axis});
    ModelBuilder::attr_ints(n, "scan_input_directions", {axis});
    auto model = CompiledModel::compile(b.bytes());
    ASSERT_TRUE(model.ok()) << model.status().message();
    ExecutionContext ctx(*model);
    auto out = ctx.run(std::vector<NamedTensor>{{"x", Tensor::from_vector<float>({2, 2}, {1, 2, 3, 4})}});
    ASSERT_TRUE(out.ok()) << out.status().message();
    if (axis == 0) {  // rows [1 2], [3 4]
      EXPECT_EQ(floats((*out)[0].tensor), (std::vector<float>{4, 6}));
      EXPECT_EQ(floats((*out)[1].tensor), (std::vector<float>{1, 2, 3, 4}));
    } else {  // columns [2 4], then [1 3]
      EXPECT_EQ(floats((*out)[0].tensor), (std::vector<float>{3, 7}));
      EXPECT_EQ(floats((*out)[1].tensor), (std::vector<float>{2, 4, 1, 3}));
    }
  }
}

TEST(EngineControlFlow, NonZeroOutputShapeFollowsTheDataOnOneContext) {
  // Relu (static step) -> NonZero (data-dependent) -> Transpose (after it, in the tail).
  ModelBuilder b;
  b.input("x", F, {2, 3}).output("idx", I64);
  b.node("Relu", {"x"}, {"r"});
  b.node("NonZero", {"r"}, {"nz"});
  auto& t = b.node("Transpose", {"nz"}, {"idx"});
  ModelBuilder::attr_ints(t, "perm", {1, 0});
  auto model = CompiledModel::compile(b.bytes());
  ASSERT_TRUE(model.ok()) << model.status().message();
  ExecutionContext ctx(*model);
  auto a = ctx.run(std::vector<NamedTensor>{
      {"x", Tensor::from_vector<float>({2, 3}, {0, 1, -1, 2, 0, 3})}});
  ASSERT_TRUE(a.ok()) << a.status().message();
  const Tensor& ia = (*a)[0].tensor;
  ASSERT_EQ(ia.shape(), (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(std::vector<int64_t>(ia.data<int64_t>(), ia.data<int64_t>() + 6),
            (std::vector<int64_t>{0, 1, 1, 0, 1, 2}));
  auto z = ctx.run(std::vector<NamedTensor>{{"x", Tensor::from_vector<float>({2, 3}, {0, 0, 0, 0, 0, -1})}});
  ASSERT_TRUE(z.ok()) << z.status().message();
  EXPECT_EQ((*z)[0].tensor.shape(), (std::vector<int64_t>{0, 2}));
}

TEST(EngineControlFlow, ValuesTheTailReadsOutliveTheStaticSteps) {
  // r feeds NonZero (tail, runs last) and a chain of static Negs whose buffers could reuse r's
  // once r's last static reader ran: the tail must still see r intact.
  ModelBuilder b;
  b.input("x", F, {4}).output("nz", I64).output("d");
  b.node("Relu", {"x"}, {"r"});
  b.node("NonZero", {"r"}, {"nz"});
  b.node("Neg", {"r"}, {"a"});
  b.node("Sigmoid", {"a"}, {"b2"});
  b.node("Neg", {"b2"}, {"c"});
  b.node("Sigmoid", {"c"}, {"d"});
  auto model = CompiledModel::compile(b.bytes());
  ASSERT_TRUE(model.ok()) << model.status().message();
  ExecutionContext ctx(*model);
  auto out = ctx.run(std::vector<NamedTensor>{{"x", Tensor::from_vector<float>({4}, {0, 2, 0, 3})}});
  ASSERT_TRUE(out.ok()) << out.status().message();
  ASSERT_NE(ctx.plan(), nullptr);
  EXPECT_EQ(ctx.plan()->tail.size(), 1u);   // NonZero only
  EXPECT_EQ(ctx.plan()->steps.size(), 5u);  // Relu and the Negs stay static steps
  const Tensor& nz = (*out)[0].tensor;
  ASSERT_EQ(nz.shape(), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(nz.data<int64_t>()[0], 1);
  EXPECT_EQ(nz.data<int64_t>()[1], 3);
  const std::vector<float> d = floats((*out)[1].tensor);
  const float xs[4] = {0, 2, 0, 3};
  for (int i = 0; i < 4; ++i) {
    const float b2 = 1.f / (1.f + std::exp(xs[i]));
    EXPECT_NEAR(d[static_cast<size_t>(i)], 1.f / (1.f + std::exp(b2)), 1e-6f);
  }
}

TEST(EngineControlFlow, StaticModelsHaveNoTail) {
  ModelBuilder b;
  b.input("x", F, {4}).output("y");
  b.node("Relu", {"x"}, {"y"});
  auto model = CompiledModel::compile(b.bytes()).value_or_die();
  ExecutionContext ctx(model);
  ASSERT_TRUE(ctx.run(std::vector<NamedTensor>{{"x", Tensor::from_vector<float>({4}, {1, 2, 3, 4})}}).ok());
  EXPECT_TRUE(ctx.plan()->tail.empty());
}

TEST(EngineControlFlow, ReshapeOfAComputedShapeRunsInsteadOfBeingRefused) {
  // The target shape is computed from an input's contents (s + 0): not known when planning.
  ModelBuilder b;
  b.input("x", F, {6}).input("s", I64, {2}).output("y");
  b.init_i("zero", {2}, {0, 0});
  b.node("Add", {"s", "zero"}, {"shape"});
  b.node("Reshape", {"x", "shape"}, {"y"});
  auto model = CompiledModel::compile(b.bytes());
  ASSERT_TRUE(model.ok()) << model.status().message();
  ExecutionContext ctx(*model);
  Tensor x = Tensor::from_vector<float>({6}, {1, 2, 3, 4, 5, 6});
  for (std::vector<int64_t> s : {std::vector<int64_t>{2, 3}, std::vector<int64_t>{3, 2}}) {
    auto out = ctx.run(std::vector<NamedTensor>{{"x", x}, {"s", Tensor::from_vector<int64_t>({2}, s)}});
    ASSERT_TRUE(out.ok()) << out.status().message();
    EXPECT_EQ((*out)[0].tensor.shape(), s);
  }
}

TEST(EngineControlFlow, CompressKeepsTheSelectedSlices) {
  ModelBuilder b;
  b.input("x", F, {3, 2}).input("c", BOOL, {3}).output("y");
  auto& n = b.node("Compress", {"x", "c"}, {"y"});
  ModelBuilder::attr_i(n, "axis", 0);
  auto model = CompiledModel::compile(b.bytes());
  ASSERT_TRUE(model.ok()) << model.status().message();
  ExecutionContext ctx(*model);
  auto out = ctx.run(std::vector<NamedTensor>{
      {"x", Tensor::from_vector<float>({3, 2}, {1, 2, 3, 4, 5, 6})},
      {"c", Tensor::from_vector<bool>({3}, {true, false, true})}});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ((*out)[0].tensor.shape(), (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(floats((*out)[0].tensor), (std::vector<float>{1, 2, 5, 6}));
}

TEST(EngineControlFlow, MalformedSubgraphsAreRefusedNamingNodeAndOperator) {
  ModelBuilder ok_branch;
  ok_branch.output("t");
  ok_branch.node("Neg", {"x"}, {"t"});
  {  // else_branch missing
    ModelBuilder b;
    b.input("x", F, {3}).input("c", BOOL, {}).output("r");
    auto& n = b.node("If", {"c"}, {"r"}, "half_if");
    ModelBuilder::attr_g(n, "then_branch", graph_of(ok_branch));
    const std::string err = compile_error(b.bytes());
    EXPECT_NE(err.find("half_if"), std::string::npos) << err;
    EXPECT_NE(err.find("If"), std::string::npos) << err;
    EXPECT_NE(err.find("else_branch"), std::string::npos) << err;
  }
  {  // a branch reads a name no scope defines
    ModelBuilder ghost;
    ghost.output("t");
    ghost.node("Neg", {"ghost"}, {"t"});
    ModelBuilder b;
    b.input("x", F, {3}).input("c", BOOL, {}).output("r");
    auto& n = b.node("If", {"c"}, {"r"}, "spooky");
    ModelBuilder::attr_g(n, "then_branch", graph_of(ghost));
    ModelBuilder::attr_g(n, "else_branch", graph_of(ok_branch));
    const std::string err = compile_error(b.bytes());
    EXPECT_NE(err.find("spooky"), std::string::npos) << err;
    EXPECT_NE(err.find("ghost"), std::string::npos) << err;
  }
  {  // branch outputs disagree in type
    ModelBuilder int_branch;
    int_branch.output("t", I64);
    int_branch.node("Shape", {"x"}, {"t"});
    ModelBuilder b;
    b.input("x", F, {3}).input("c", BOOL, {}).output("r");
    auto& n = b.node("If", {"c"}, {"r"}, "mixed");
    ModelBuilder::attr_g(n, "then_branch", graph_of(int_branch));
    ModelBuilder::attr_g(n, "else_branch", graph_of(ok_branch));
    const std::string err = compile_error(b.bytes());
    EXPECT_NE(err.find("mixed"), std::string::npos) << err;
    EXPECT_NE(err.find("int64"), std::string::npos) << err;
  }
  {  // an unsupported operator inside a body is named at compile time
    ModelBuilder body;
    body.input("i", I64, {}).input("cin", BOOL, {}).output("cout", BOOL);
    body.node("FancyOp", {"cin"}, {"cout"}, "inner");
    ModelBuilder b;
    b.input("x", F, {3}).output("x2");
    b.init_i("M", {}, {2});
    b.node("Identity", {"x"}, {"x2"});
    auto& n = b.node("Loop", {"M", ""}, {}, "outer_loop");
    ModelBuilder::attr_g(n, "body", graph_of(body));
    const std::string err = compile_error(b.bytes());
    EXPECT_NE(err.find("FancyOp"), std::string::npos) << err;
  }
  {  // Loop body whose input count does not match the carried values: refused at run time
    ModelBuilder body;
    body.input("i", I64, {}).input("cin", BOOL, {}).output("cout", BOOL).output("s2");
    body.node("Identity", {"cin"}, {"cout"});
    body.node("Identity", {"x"}, {"s2"});
    ModelBuilder b;
    b.input("x", F, {2}).output("final");
    b.init_i("M", {}, {2}).init_f("s0", {2}, {0, 0});
    auto& n = b.node("Loop", {"M", "", "s0"}, {"final"}, "bad_loop");
    ModelBuilder::attr_g(n, "body", graph_of(body));
    auto m = CompiledModel::compile(b.bytes());
    std::string err = m.ok() ? "" : m.status().message();
    if (m.ok()) {
      ExecutionContext ctx(*m);
      auto out = ctx.run(std::vector<NamedTensor>{{"x", Tensor::from_vector<float>({2}, {1, 2})}});
      ASSERT_FALSE(out.ok());
      err = out.status().message();
    }
    EXPECT_NE(err.find("bad_loop"), std::string::npos) << err;
    EXPECT_NE(err.find("Loop"), std::string::npos) << err;
  }
}

TEST(EngineControlFlow, SubgraphNestingIsBounded) {
  // 20 Ifs nested in then-branches (protobuf itself stops parsing near 33): refused by the
  // loader past 16 levels.
  onnx::GraphProto leaf_g, inner;
  {
    ModelBuilder leaf;
    leaf.output("t");
    leaf.node("Neg", {"x"}, {"t"});
    leaf_g = inner = graph_of(leaf);
  }
  for (int d = 0; d < 20; ++d) {
    ModelBuilder level;
    level.output("t");
    auto& n = level.node("If", {"c"}, {"t"});
    ModelBuilder::attr_g(n, "then_branch", inner);
    ModelBuilder::attr_g(n, "else_branch", leaf_g);
    inner = graph_of(level);
  }
  ModelBuilder b;
  b.input("x", F, {3}).input("c", BOOL, {}).output("t");
  auto& n = b.node("If", {"c"}, {"t"});
  ModelBuilder::attr_g(n, "then_branch", inner);
  ModelBuilder::attr_g(n, "else_branch", leaf_g);
  const std::string err = compile_error(b.bytes());
  EXPECT_NE(err.find("nest"), std::string::npos) << err.substr(0, 400);
}

}  // namespace
}  // namespace moss::engine
