// Heap allocations per Loop iteration and Scan step in the steady state, counted with a
// replacement operator new (this thread only, while a run is being measured). The body's buffers
// come from the pool (control_flow_test: LoopBodyReusesItsBuffersInTheSteadyState); this counts
// everything else: environments, shapes, object wrappers, scan output copies.
#include "engine/runtime/execution_context.h"
#include "model_builder.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <new>

// GCC pairs the replaced operator delete with inlined std::allocator news and warns.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace {
thread_local bool g_counting = false;
thread_local size_t g_allocations = 0;
}  // namespace

void* operator new(size_t n) {
  if (g_counting) ++g_allocations;
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](size_t n) { return operator new(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }

namespace moss::engine {
namespace {

using testing::ModelBuilder;
constexpr int F = onnx::TensorProto::FLOAT;

// Heap allocations of one run on a fresh context (the model's plans for these inputs are cached
// by an earlier run).
size_t allocations_for(const std::shared_ptr<const CompiledModel>& model, std::vector<NamedTensor> in) {
  ExecutionContext ctx(model);
  g_allocations = 0;
  g_counting = true;
  auto out = ctx.run(in);
  g_counting = false;
  EXPECT_TRUE(out.ok()) << out.status().message();
  return g_allocations;
}

// Per iteration: the difference between runs of 1100 and 100 trips, over 1000. `inputs(trips)`
// gives a run's inputs.
template <typename Inputs>
double allocations_per_iteration(const std::shared_ptr<const CompiledModel>& model, const char* what,
                                 Inputs inputs) {
  allocations_for(model, inputs(3));  // warm-up (logger, oneDNN, static tables)
  allocations_for(model, inputs(100));
  allocations_for(model, inputs(1100));
  const size_t few = allocations_for(model, inputs(100)), many = allocations_for(model, inputs(1100));
  const double per_iteration = (static_cast<double>(many) - static_cast<double>(few)) / 1000.0;
  std::printf("%s: %.3f heap allocations per iteration (%zu for 100 trips, %zu for 1100)\n", what,
              per_iteration, few, many);
  return per_iteration;
}

std::vector<NamedTensor> loop_inputs(int64_t trips) {
  std::vector<NamedTensor> in;
  in.push_back({"M", Tensor::from_vector<int64_t>({}, {trips})});
  in.push_back({"x", Tensor::from_vector<float>({4}, {1, 2, -1, 4})});
  return in;
}

// 34 per iteration before the interpreter kept each subgraph's environment, its infer() results
// and its working vectors from one run to the next, 9 before the Loop kept its iteration number
// and condition, the body's outputs reused their wrappers (Env::wrap) and the caller's output
// vector, and a scan output went straight into its row of the stacked result.
TEST(EngineLoopAllocations, SteadyStateLoopIterationsDoNotAllocate) {
  auto model = CompiledModel::compile(testing::carried_loop_model(/*scan=*/false, 1000000)).value_or_die();
  EXPECT_EQ(allocations_per_iteration(model, "loop body of 3 nodes", loop_inputs), 0.0);
}

TEST(EngineLoopAllocations, ScanOutputsOfALoopGoStraightIntoTheStackedResult) {
  // The rows of M trips are allocated once (M known): no per-iteration copy or growth.
  auto model = CompiledModel::compile(testing::carried_loop_model(/*scan=*/true, 1000000)).value_or_die();
  EXPECT_EQ(allocations_per_iteration(model, "loop body of 4 nodes with a scan output", loop_inputs), 0.0);
}

TEST(EngineLoopAllocations, SteadyStateScanStepsDoNotAllocate) {
  // acc = acc + row over the rows of x; scan output Relu(acc): states alternate between two
  // buffers and each step's output is written into its row of the result.
  ModelBuilder body;
  body.input("acc", F, {4}).input("row", F, {4});
  body.output("acc2").output("out");
  body.node("Add", {"acc", "row"}, {"acc2"});
  body.node("Relu", {"acc2"}, {"out"});
  ModelBuilder b(16);
  b.input("x", F, {-1, 4}).output("sum").output("ys");
  b.init_f("zero", {4}, {0, 0, 0, 0});
  auto& n = b.node("Scan", {"zero", "x"}, {"sum", "ys"}, "scan");
  ModelBuilder::attr_g(n, "body", body.graph());
  ModelBuilder::attr_i(n, "num_scan_inputs", 1);
  auto model = CompiledModel::compile(b.bytes()).value_or_die();
  auto inputs = [](int64_t rows) {
    std::vector<float> x(static_cast<size_t>(rows) * 4);
    for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 7) - 3.0f;
    std::vector<NamedTensor> in;
    in.push_back({"x", Tensor::from_vector<float>({rows, 4}, x)});
    return in;
  };
  EXPECT_EQ(allocations_per_iteration(model, "scan body of 2 nodes", inputs), 0.0);
  // The values are right (rows of x: i % 7 - 3, running sums, Relu).
  ExecutionContext ctx(model);
  auto out = ctx.run(inputs(9));
  ASSERT_TRUE(out.ok()) << out.status().message();
  std::vector<float> acc(4, 0.0f);
  const Tensor& ys = (*out)[1].tensor;
  ASSERT_EQ(ys.shape(), (std::vector<int64_t>{9, 4}));
  for (int64_t t = 0; t < 9; ++t) {
    for (size_t j = 0; j < 4; ++j) {
      acc[j] += static_cast<float>((static_cast<size_t>(t) * 4 + j) % 7) - 3.0f;
      EXPECT_EQ(ys.data<float>()[t * 4 + static_cast<int64_t>(j)], std::max(acc[j], 0.0f));
    }
  }
  for (size_t j = 0; j < 4; ++j) EXPECT_EQ((*out)[0].tensor.data<float>()[j], acc[j]);
}

}  // namespace
}  // namespace moss::engine
