// Heap allocations per Loop iteration in the steady state, counted with a replacement operator
// new (this thread only, while a run is being measured). The body's buffers come from the pool
// (control_flow_test: LoopBodyReusesItsBuffersInTheSteadyState); this counts everything else the
// interpreter allocates per iteration: environments, shapes, object wrappers.
#include "engine/runtime/execution_context.h"
#include "model_builder.h"

#include <gtest/gtest.h>

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
constexpr int I64 = onnx::TensorProto::INT64;
constexpr int BOOL = onnx::TensorProto::BOOL;

// Heap allocations of one run of a Loop of `trips` iterations: s = relu(s * a + x), a body
// condition computed each trip, a and x read from the outer scope.
size_t allocations_for(const std::shared_ptr<const CompiledModel>& model, int64_t trips) {
  ExecutionContext ctx(model);
  std::vector<NamedTensor> in;
  in.push_back({"M", Tensor::from_vector<int64_t>({}, {trips})});
  in.push_back({"x", Tensor::from_vector<float>({4}, {1, 2, -1, 4})});
  g_allocations = 0;
  g_counting = true;
  auto out = ctx.run(in);
  g_counting = false;
  EXPECT_TRUE(out.ok()) << out.status().message();
  return g_allocations;
}

TEST(EngineLoopAllocations, SteadyStateIterationsAllocateLittle) {
  ModelBuilder body;
  body.input("i", I64, {}).input("cin", BOOL, {}).input("s", F, {4});
  body.output("cout", BOOL).output("s3");
  body.init_i("limit", {}, {1000000});
  body.node("Less", {"i", "limit"}, {"cout"});
  body.node("Mul", {"s", "a"}, {"t"});
  body.node("Add", {"t", "x"}, {"s2"});
  body.node("Relu", {"s2"}, {"s3"});
  ModelBuilder b;
  b.input("M", I64, {}).input("x", F, {4}).output("final");
  b.init_f("a", {4}, {0.5f, 0.5f, 0.5f, 0.5f}).init_f("s0", {4}, {0, 0, 0, 0});
  auto& n = b.node("Loop", {"M", "", "s0"}, {"final"}, "loop");
  ModelBuilder::attr_g(n, "body", body.graph());
  auto model = CompiledModel::compile(b.bytes()).value_or_die();
  allocations_for(model, 3);  // warm-up (logger, oneDNN, static tables)
  const size_t few = allocations_for(model, 100), many = allocations_for(model, 1100);
  const double per_iteration = static_cast<double>(many - few) / 1000.0;
  std::printf("loop body of 4 nodes: %.2f heap allocations per iteration (%zu for 100 trips, %zu for 1100)\n",
              per_iteration, few, many);
  // 34 before the interpreter kept each subgraph's environment, its infer() results and its
  // working vectors from one run to the next; what is left is the Object wrappers of the body's
  // inputs and outputs, the outputs vector and the reference binary kernels' broadcast shapes.
  EXPECT_LE(per_iteration, 9.0);
}

}  // namespace
}  // namespace moss::engine
