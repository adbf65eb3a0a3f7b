// CompiledModel: an ONNX model loaded, checked and optimised once, then shared read-only by every
// request. It owns the weights (constants) and the per-shape plans; it never changes after
// compile() except for the plan cache and the snapshot handed over by take_snapshot(), both
// internally synchronised. Thread-safe.
//
//   auto model = CompiledModel::compile(bytes);            // once
//   ExecutionContext ctx(*model);                          // one per concurrent request
//   auto outputs = ctx.run({{"input", tensor}});           // any number of times
#pragma once

#include "common/status.h"
#include "common/tensor.h"
#include "engine/graph/graph.h"
#include "engine/kernels/kernel.h"
#include "engine/loader/onnx_loader.h"
#include "engine/planner/plan.h"
#include "engine/quant/half_precision.h"
#include "engine/quant/qdq_rewrite.h"
#include "engine/runtime/packed_weights.h"
#include "engine/runtime/plan_snapshot.h"

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace moss::engine {

// A graph input or output as declared by the model. dims[i] < 0 means symbolic (dim_params[i]).
struct IoInfo {
  std::string name;
  DType dtype = DType::kFloat32;
  bool has_shape = false;
  std::vector<int64_t> dims;
  std::vector<std::string> dim_params;
  // A sequence, optional or string tensor (graph/object.h): only with
  // CompileOptions::allow_non_tensor_io, passed to ExecutionContext::run_objects. dtype and dims
  // then describe the innermost tensor.
  std::optional<TensorType> object_type;
};

struct CompileOptions {
  LoadLimits limits;
  size_t max_cached_plans = 16;  // distinct input-shape bindings kept per model
  // OpenMP threads each oneDNN kernel uses within one request (fixed per kernel, so results do
  // not depend on which thread runs it). Reference kernels are single-threaded.
  int intra_op_threads = 1;
  // Accept graph inputs and outputs that are sequences, optionals or string tensors (run with
  // ExecutionContext::run_objects). Off for the worker and the CLI, whose requests and tensor
  // bundles carry numeric tensors only: such a model is refused at compile, naming the value.
  bool allow_non_tensor_io = false;
  // Turn QDQ chains into int8 operators (quant/qdq_rewrite.h). Off: every chain runs as written
  // (dequantize -> float -> quantize), the reference the int8 paths are tested against.
  bool rewrite_qdq = true;
  // Compiled-plan cache (packed_weights.h), for models whose input shapes are all static: keep
  // the weights the compile packed (packed_weights()) and the snapshot of the compiled graph
  // (snapshot(), take_snapshot(), plan_snapshot.h), and/or take the packed weights from an
  // earlier compile of the same model with the same engine build, CPU features and
  // intra_op_threads.
  bool record_packed_weights = false;
  std::shared_ptr<const PackedWeights> packed_weights;
  // Compute a float16/bfloat16 model in float32 on the oneDNN kernels (quant/half_precision.h).
  // Off: every half operator runs as written on the reference kernels.
  bool half_in_float32 = true;
  // How such a model's convolutions compute: float32 (its half weights widened per use), or
  // bfloat16 where the CPU has AVX512-BF16 (weights packed once as bf16; float32 elsewhere).
  // What was granted is CompiledModel::half_plan() and every plan's Plan::half.
  HalfCompute half_compute = HalfCompute::kFloat32;
};

// Where compile() spent its time, in milliseconds (`moss model bench`, bench/engine/compile_bench).
struct CompileTiming {
  double parse_ms = 0;    // ONNX bytes -> graph (protobuf parse, initializers copied out), or
                          // the graph read back from a PlanSnapshot (compile_snapshot)
  double passes_ms = 0;   // operator check, constant folding, QDQ rewrite, dead nodes
  double kernels_ms = 0;  // oneDNN primitive descriptors and primitives (packing excluded)
  double pack_ms = 0;     // weights reordered into the layouts the kernels chose
  double plan_ms = 0;     // the rest of the plan: shape inference, fusion, scheduling, arena
  double total_ms = 0;
};

class CompiledModel {
 public:
  static Result<std::shared_ptr<const CompiledModel>> compile(std::span<const uint8_t> bytes,
                                                              const CompileOptions& options = {});
  // The compile that `snapshot` was recorded from, redone without the ONNX model: the recorded
  // graph planned again (kernels created), every packed weight replayed from the snapshot.
  // failed-precondition, reason kSnapshotDoesNotReplay, when the snapshot does not replay in
  // full on this engine (a kernel asked to pack something else) or a weight stored without
  // bytes would be read other than through its packed copy: its stand-in would be packed or
  // read as zeros, so the model is refused, never served; the caller compiles
  // from the model instead; likewise (reason kSnapshotHalfComputeDiffers) when its half plan
  // computes otherwise than this CPU and `options` grant. half_plan() is the recorded one; the
  // qdq and half precision reports are empty (the snapshot holds the rewritten graph only).
  static Result<std::shared_ptr<const CompiledModel>> compile_snapshot(
      const PlanSnapshot& snapshot, const CompileOptions& options = {});

  const std::vector<IoInfo>& inputs() const { return inputs_; }
  const std::vector<IoInfo>& outputs() const { return outputs_; }
  // Bytes of weights held once for all contexts: constants (initializers and folded values)
  // plus the copies kernels packed into their own formats (per cached plan). For models with
  // static input shapes, originals that a kernel packed are dropped at compile time.
  size_t weights_bytes() const;
  const Graph& graph() const { return graph_; }
  // QDQ chains rewritten into int8 operators, and those kept in float with the reason.
  const QdqReport& qdq_report() const { return qdq_; }
  const HalfPrecisionReport& half_precision() const { return half_; }
  // How a half model's float kernels hold and compute its weights (all kFloat32 otherwise).
  const HalfPlan& half_plan() const { return half_plan_; }
  const CompileTiming& compile_timing() const { return timing_; }
  // With record_packed_weights: every weight buffer the compile packed, in order (null for a
  // model with dynamic input shapes, whose plans are built per request).
  std::shared_ptr<const PackedWeights> packed_weights() const { return recorded_; }
  // With record_packed_weights: the compiled graph and its packed weights, for
  // compile_snapshot() (null for a model with dynamic input shapes, one the snapshot format
  // cannot hold, or once taken).
  std::shared_ptr<const PlanSnapshot> snapshot() const;
  // The snapshot handed over: the model lets go of it (its copy of the graph's constants is
  // memory no request needs), so it lives only as long as its writer; null the second time.
  std::shared_ptr<const PlanSnapshot> take_snapshot() const;
  // With CompileOptions::packed_weights: whether every packed weight came from it.
  bool packed_weights_replayed() const { return replayed_all_; }

  // Inputs whose contents determine shapes (an int tensor feeding Reshape's shape, Slice's
  // starts, ...): their values become part of the plan binding. Per input, like inputs().
  const std::vector<bool>& value_bound() const { return value_bound_; }

  // The plan for this binding; built on first use, then cached (up to max_cached_plans).
  Result<std::shared_ptr<const Plan>> plan_for(const Binding& binding) const;

  CompiledModel(const CompiledModel&) = delete;
  CompiledModel& operator=(const CompiledModel&) = delete;

 private:
  CompiledModel() = default;
  using TimePoint = std::chrono::steady_clock::time_point;
  // compile() and compile_snapshot() after the graph is read: kernels, I/O, the static plan.
  static Result<std::shared_ptr<const CompiledModel>> finish(std::shared_ptr<CompiledModel> m,
                                                             const CompileOptions& options,
                                                             TimePoint t_start, TimePoint t_parsed,
                                                             TimePoint t_passed);

  Graph graph_;
  std::vector<const OpKernel*> kernels_;  // per node
  std::vector<IoInfo> inputs_, outputs_;
  std::vector<bool> value_bound_;
  size_t weights_bytes_ = 0;  // constants still held by the graph
  bool packed_only_ = false;   // static model: the compile-time plan is the only one
  size_t max_cached_plans_ = 16;
  int threads_ = 1;
  QdqReport qdq_;
  HalfPrecisionReport half_;
  HalfPlan half_plan_;
  CompileTiming timing_;
  std::shared_ptr<const PackedWeights> recorded_;
  std::shared_ptr<const PackedWeights> replayed_;  // its bytes back kernels' weights
  bool replayed_all_ = false;
  mutable std::mutex mu_;
  mutable std::shared_ptr<const PlanSnapshot> snapshot_;  // guarded by mu_ (take_snapshot)
  mutable std::map<std::string, std::shared_ptr<const Plan>> plans_;
};

}  // namespace moss::engine
