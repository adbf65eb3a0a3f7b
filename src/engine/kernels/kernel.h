// The contract between the planner/runtime and an operator implementation.
//
// An operator has two functions: infer() derives output dtypes and shapes (and validates every
// attribute, type and input shape, so that run() never meets something it cannot do), and run()
// computes outputs into buffers the caller allocated with the inferred shapes. Both are pure:
// no state, safe to call from any number of threads. Errors name the node and the operator.
#pragma once

#include "common/status.h"
#include "common/tensor.h"
#include "engine/graph/graph.h"
#include "engine/graph/object.h"

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <type_traits>
#include <vector>

namespace moss::engine {

// What is known about a value before running: dtype, concrete shape, and its contents when it is
// a constant (initializer, folded value, or a shape computed from bound input shapes).
struct TensorInfo {
  DType dtype = DType::kFloat32;
  std::vector<int64_t> shape;
  std::shared_ptr<const Tensor> value;
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
};

// A tensor in memory owned by someone else (the arena, a constant). data is null for an omitted
// optional input.
struct View {
  DType dtype = DType::kFloat32;
  std::span<const int64_t> shape;
  uint8_t* data = nullptr;
  int64_t numel = 0;
  template <typename T> T* as() const { return reinterpret_cast<T*>(data); }
  bool present() const { return data != nullptr || (numel == 0 && !shape.empty()); }
};

// Per-request mutable state a prepared kernel may use (one per ExecutionContext).
namespace onednn { class OnednnScratch; }
struct RunScratch {
  onednn::OnednnScratch* dnnl = nullptr;
};

// A kernel specialised at plan time for concrete shapes and constant weights (e.g. a oneDNN
// primitive with pre-packed weights). Immutable and shared by every context: run() is const.
class PreparedKernel {
 public:
  virtual ~PreparedKernel() = default;
  virtual size_t scratch_bytes() const = 0;
  virtual size_t weights_bytes() const = 0;
  virtual Status run(std::span<const struct View> in, std::span<const struct View> out,
                     RunScratch& scratch) const = 0;
  // Bit i set: input i (a constant) was copied into the kernel at prepare time and run() never
  // reads it, so the planner may release the original (weights held once).
  virtual uint32_t packed_inputs() const { return 0; }
  // The precision this kernel computes in when it is not float32 ("int8", "bf16"), shown in plan
  // step labels and `moss model info`; empty for float32.
  virtual std::string_view kind() const { return {}; }
};

using InferFn = Status (*)(const Node& node, std::span<const TensorInfo* const> in,
                           std::vector<TensorInfo>& out);
using RunFn = Status (*)(const Node& node, std::span<const View> in, std::span<const View> out);
// Returns a prepared kernel, or nullptr when this implementation does not apply (the next entry
// of the registry list, ultimately the reference kernel, is used instead).
using PrepareFn = std::unique_ptr<const PreparedKernel> (*)(const Node& node,
                                                            std::span<const TensorInfo* const> in,
                                                            const std::vector<TensorInfo>& out,
                                                            int threads);

// Operators whose output shapes depend on input contents (NonZero, Compress, ...) or that run
// subgraphs (If, Loop, Scan) cannot be planned statically: run_dynamic allocates their outputs
// per request. The planner runs them, and every node that depends on them, after the static
// steps (Plan::tail). infer() still checks attributes and gives output dtypes (shapes unused).
class SubgraphRunner {
 public:
  virtual ~SubgraphRunner() = default;
  // Runs g (a subgraph of the node being run) on inputs (g.inputs order) and captures
  // (g.captures order, the node's implicit inputs); returns g.outputs.
  virtual Result<std::vector<Tensor>> run(const Graph& g, std::span<const View> inputs,
                                          std::span<const View> captures) = 0;
  // The same, writing output i into outputs[i]: a buffer of the dtype and shape the output had
  // before (a scan state's next buffer, a step's slice of the stacked scan output). The node that
  // computes it writes there directly, anything else is copied in; another dtype or shape is an
  // error. With the body's buffers pooled, a step allocates nothing.
  virtual Status run_into(const Graph& g, std::span<const View> inputs,
                          std::span<const View> captures, std::span<const View> outputs) = 0;
  // The same for values of any kind (graph/object.h: sequences, optionals, string tensors), into
  // outs (one per output; the caller's, reused from run to run). Where into[i] has data and
  // output i is a tensor of its dtype and shape computed by a node of g, the node writes it there
  // and outs[i] is null (a Loop's scan output going straight into its stacked result).
  virtual Status run_objects(const Graph& g, std::span<const ObjectPtr> inputs,
                             std::span<const ObjectPtr> captures, std::vector<ObjectPtr>& outs,
                             std::span<const View> into = {}) = 0;
  // A zero-filled tensor for a value the calling kernel makes between subgraph runs (a Loop's
  // iteration number): a released buffer of the same type and shape when there is one, so a
  // steady loop does not allocate per iteration.
  virtual Result<std::shared_ptr<Tensor>> buffer(DType dtype, std::span<const int64_t> shape) = 0;
};
// Operators on sequences, optionals or string tensors (and If/Loop, which may carry them): the
// interpreter passes every input as an Object (a tensor input wrapped without a copy where it
// can) and stores the outputs. Such nodes always run in the plan's tail.
using ObjectRunFn = Result<std::vector<ObjectPtr>> (*)(const Node& node,
                                                       std::span<const ObjectPtr> in,
                                                       SubgraphRunner& subgraphs);
using DynamicRunFn = Result<std::vector<Tensor>> (*)(const Node& node, std::span<const View> in,
                                                     SubgraphRunner& subgraphs);

struct OpKernel {
  const char* op_type;
  InferFn infer;
  RunFn run;
  // run() reads only the shapes of its inputs (Shape): it can be evaluated as soon as shapes are
  // bound, which folds the shape subgraphs exporters emit.
  bool reads_shapes_only = false;
  // Bit i set: input i determines output shapes by its contents (Reshape's shape, Slice's
  // starts, ...). Such an input must be a constant, or a graph input whose value is then part of
  // the plan binding.
  uint32_t value_inputs = 0;
  PrepareFn prepare = nullptr;  // fast implementations tried before run() (registry order)
  DynamicRunFn run_dynamic = nullptr;  // set: data-dependent outputs (run is unused)
  ObjectRunFn run_object = nullptr;    // set: runs on Objects (run and run_dynamic unused)
  // Only for an object variant of a tensor operator (registry.h: object_kernel_for): whether the
  // node produces a non-tensor value from tensor inputs (Cast to string).
  bool (*makes_objects)(const Node& node) = nullptr;
  // A random generator: a node without a 'seed' attribute draws new values on every run, so it is
  // never folded into a constant (seeded nodes fold: their output is a function of the seed).
  bool random = false;
};

// Whether a node's output may be computed once and reused (false for unseeded random nodes).
inline bool foldable(const OpKernel& k, const Node& node) { return !k.random || node.attr("seed"); }

// ---- helpers shared by kernels --------------------------------------------------------------

// Calls f(T{}) for the C++ type of dtype, or returns unimplemented. The families:
//   dispatch_all      every element type (float16/bfloat16 as moss::Float16/BFloat16)
//   dispatch_numeric  every type but bool
//   dispatch_float    float32, float64, float16, bfloat16
//   dispatch_integer  signed and unsigned integers (8 to 64 bits)
template <typename F>
Status dispatch_integer(const Node& node, DType dt, F&& f) {
  switch (dt) {
    case DType::kInt8: return f(int8_t{});
    case DType::kInt16: return f(int16_t{});
    case DType::kInt32: return f(int32_t{});
    case DType::kInt64: return f(int64_t{});
    case DType::kUInt8: return f(uint8_t{});
    case DType::kUInt16: return f(uint16_t{});
    case DType::kUInt32: return f(uint32_t{});
    case DType::kUInt64: return f(uint64_t{});
    default:
      return unimplemented("{}: element type {} is not supported", node.label(), dtype_name(dt));
  }
}
template <typename F>
Status dispatch_float(const Node& node, DType dt, F&& f) {
  switch (dt) {
    case DType::kFloat32: return f(float{});
    case DType::kFloat64: return f(double{});
    case DType::kFloat16: return f(Float16{});
    case DType::kBFloat16: return f(BFloat16{});
    default:
      return unimplemented("{}: element type {} is not supported", node.label(), dtype_name(dt));
  }
}
template <typename F>
Status dispatch_numeric(const Node& node, DType dt, F&& f) {
  switch (dt) {
    case DType::kFloat32: case DType::kFloat64: case DType::kFloat16: case DType::kBFloat16:
      return dispatch_float(node, dt, f);
    default: return dispatch_integer(node, dt, f);
  }
}
template <typename F>
Status dispatch_all(const Node& node, DType dt, F&& f) {
  if (dt == DType::kBool) return f(bool{});
  return dispatch_numeric(node, dt, f);
}

// The arithmetic type a kernel computes T in: float for 16-bit floats, T otherwise.
template <typename T>
using compute_t = std::conditional_t<std::is_same_v<T, Float16> || std::is_same_v<T, BFloat16>,
                                     float, T>;

// Element-type classes.
bool is_float_dtype(DType d);
bool is_integer_dtype(DType d);
bool is_signed_dtype(DType d);  // floats and signed integers
// Fails unless t is a float type (what), naming the node.
Status require_float(const Node& node, const TensorInfo& t, const char* what);
// Fails unless t is numeric (not bool).
Status require_numeric(const Node& node, const TensorInfo& t, const char* what);
// Fails unless b has a's element type.
Status require_same_dtype(const Node& node, const TensorInfo& a, const TensorInfo& b,
                          const char* what);
// ONNX TensorProto.DataType number -> DType (unsupported numbers fail naming the node).
Result<DType> dtype_from_onnx_number(const Node& node, int64_t t);

Status require_inputs(const Node& node, std::span<const TensorInfo* const> in, size_t min,
                      size_t max);
Status require_dtype(const Node& node, const TensorInfo& t, std::initializer_list<DType> allowed,
                     const char* what);
// Normalizes a possibly negative axis against rank; error names the node.
Result<int64_t> normalize_axis(const Node& node, int64_t axis, int64_t rank);
// Reads an int64/int32 constant input as a vector, or fails when it is not known at plan time.
Result<std::vector<int64_t>> const_ints(const Node& node, const TensorInfo* t, const char* what);
// The same for an input that must hold exactly one value.
Result<int64_t> const_int_scalar(const Node& node, const TensorInfo* t, const char* what);
Result<std::vector<float>> const_floats(const Node& node, const TensorInfo* t, const char* what);
// A run-time view as a TensorInfo holding a copy of its contents (for kernels whose run() re-reads
// a small constant input, e.g. axes, through the same parser as infer()).
Result<TensorInfo> info_with_value(const View& v);
// numpy broadcasting of two shapes.
Result<std::vector<int64_t>> broadcast_shapes(const Node& node, std::span<const int64_t> a,
                                              std::span<const int64_t> b);
// Strides of `in` broadcast to `out` shape (0 along broadcast dims), aligned to out's rank.
std::vector<int64_t> broadcast_strides(std::span<const int64_t> in, std::span<const int64_t> out);
int64_t numel_of(std::span<const int64_t> shape);

}  // namespace moss::engine
