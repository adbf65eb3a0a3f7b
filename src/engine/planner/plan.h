// A Plan binds a compiled graph to concrete input shapes: every value's dtype and shape, the
// values that became constant once shapes were known (Shape->Gather->Concat chains), the nodes
// left to run, and a static arena layout in which buffers whose lifetimes do not overlap share
// memory. Immutable once built; shared by every ExecutionContext using those shapes.
#pragma once

#include "common/status.h"
#include "engine/graph/graph.h"
#include "engine/kernels/kernel.h"
#include "engine/quant/half_precision.h"

#include <memory>
#include <vector>

namespace moss::engine {

inline constexpr size_t kArenaAlignment = 64;

// What a plan is specialised for: the shape of every graph input, and the contents of the inputs
// that determine shapes (value_bound in CompiledModel; nullptr for the others).
struct Binding {
  std::vector<std::vector<int64_t>> shapes;
  std::vector<std::shared_ptr<const Tensor>> values;
  std::string key() const;  // canonical bytes, for caching
};

struct Plan {
  std::string key;
  // Per value (value carries constants). Values past the graph's are plan temporaries (plain
  // copies of blocked tensors for reference kernels).
  std::vector<TensorInfo> info;
  std::vector<int64_t> offset;    // per value: arena byte offset, -1 when not in the arena
  std::vector<int> steps;         // node indices to run, in order (a fused step: its anchor)
  std::vector<const OpKernel*> kernels;  // per step
  std::vector<std::shared_ptr<const PreparedKernel>> prepared;  // per step; null = kernel->run
  // Per step: the values it reads and writes. Usually the node's; a fused step writes the last
  // fused node's output and reads its residual last; a reorder step reads a blocked value and
  // writes a plain temporary.
  std::vector<std::vector<int>> step_inputs, step_outputs;
  std::vector<std::string> step_labels;  // "" or what was fused ("Add+Relu"), "Reorder"
  // Constants no step reads at run time (packed into a kernel, or only read by fused nodes):
  // with release_packed, build_plan dropped them from info (offset -1, data null at run time).
  std::vector<int> packed_constants;
  // Nodes whose output shapes depend on data (NonZero, If, ...) and every node downstream of
  // them, in order: run by the interpreter after the static steps, with per-request tensors.
  // tail_reads: the static values (arena or constant) they read. Empty for static models.
  std::vector<int> tail;
  std::vector<int> tail_reads;
  HalfPlan half;
  size_t fused_nodes = 0;     // nodes absorbed into oneDNN post-ops
  size_t blocked_values = 0;  // values kept in a oneDNN blocked layout between steps
  size_t scratch_bytes = 0;       // max over prepared kernels (per-context oneDNN scratchpad)
  size_t prepared_weights_bytes = 0;
  size_t arena_bytes = 0;
  size_t unshared_bytes = 0;      // what the arena would need without reuse (for tests/docs)
};

// Builds the plan; `kernels` is per node of g. Errors name the node and operator.
// release_packed: drop the plan's references to packed_constants (the caller then drops the
// graph's, so packed weights are held once; the graph can no longer be planned again).
// half: Plan::half.
Result<std::shared_ptr<const Plan>> build_plan(const Graph& g,
                                               const std::vector<const OpKernel*>& kernels,
                                               const Binding& binding, int threads = 1,
                                               bool release_packed = false,
                                               const HalfPlan& half = {});

struct Interval {
  int64_t first = 0, last = 0;  // step indices, inclusive
  size_t bytes = 0;
};
// Greedy-by-size offset assignment (largest first, lowest non-overlapping offset). Returns the
// offsets and sets total to the arena size. Exposed for tests.
std::vector<int64_t> assign_offsets(const std::vector<Interval>& items, size_t& total);

}  // namespace moss::engine
