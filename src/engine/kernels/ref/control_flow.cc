// If, Loop and Scan: operators that run subgraphs. Their output shapes depend on data (which
// branch, how many iterations), so they are dynamic kernels (kernel.h): the planner puts them in
// the plan's tail and the interpreter runs their subgraphs with the node's implicit inputs (the
// outer-scope values the subgraphs read) as captures. Element types are whatever the subgraphs
// produce; slicing and stacking move bytes. If and Loop run on Objects (kernel.h: run_object), so
// a branch may return and a loop may carry sequences and optionals (graph/object.h); Scan's
// states and scan values are tensors by the spec.
#include "engine/kernels/evaluate.h"
#include "engine/kernels/ref/ref_kernels.h"

#include <cstring>
#include <limits>

namespace moss::engine::ref {
namespace {

template <typename T>
std::span<const T> captures_of(const Node& node, std::span<const T> in) {
  return in.subspan(node.explicit_inputs());
}

// Output dtypes from the subgraph's declared outputs (float32 where undeclared: the value only
// matters to readers planned before the tail, and those never read tail values).
void declared_outputs(const Graph& g, size_t skip, size_t count, std::vector<TensorInfo>& out) {
  for (size_t i = 0; i < count && skip + i < g.outputs.size(); ++i) {
    const Value& v = g.values[g.outputs[skip + i]];
    TensorInfo t;
    if (v.type) t.dtype = v.type->dtype;
    out.push_back(std::move(t));
  }
}

Result<const Graph*> subgraph(const Node& node, const char* key) {
  const Graph* g = node.attr_graph(key);
  if (!g) return invalid_argument("{}: graph attribute '{}' is missing", node.label(), key);
  return g;
}

Result<bool> scalar_bool(const Node& node, const View& v, const char* what) {
  if (v.dtype != DType::kBool || v.numel != 1) {
    return invalid_argument("{}: {} must be one bool, got {} {}", node.label(), what,
                            dtype_name(v.dtype), shape_to_string(v.shape));
  }
  return v.as<bool>()[0];
}

// ---- If ----------------------------------------------------------------------------------------

// The branches agree with each other and with the node (also checked at run time: a branch in a
// subgraph is never planned).
Status check_If(const Node& node) {
  if (node.explicit_inputs() != 1 || node.inputs[0] == kNoValue) {
    return invalid_argument("{}: takes exactly one input (cond)", node.label());
  }
  MOSS_ASSIGN_OR_RETURN(const Graph* then_g, subgraph(node, "then_branch"));
  MOSS_ASSIGN_OR_RETURN(const Graph* else_g, subgraph(node, "else_branch"));
  for (const Graph* g : {then_g, else_g}) {
    if (!g->inputs.empty()) return invalid_argument("{}: a branch must take no inputs", node.label());
    if (g->outputs.size() != node.outputs.size()) {
      return invalid_argument("{}: a branch has {} outputs, the node {}", node.label(),
                              g->outputs.size(), node.outputs.size());
    }
  }
  for (size_t i = 0; i < node.outputs.size(); ++i) {
    const auto& a = then_g->values[then_g->outputs[i]].type;
    const auto& b = else_g->values[else_g->outputs[i]].type;
    if (a && b && type_name(*a) != type_name(*b)) {
      return invalid_argument("{}: output {} is {} in then_branch and {} in else_branch",
                              node.label(), i, type_name(*a), type_name(*b));
    }
  }
  return Status::Ok();
}

Status infer_If(const Node& node, std::span<const TensorInfo* const> in,
                std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(check_If(node));
  if (in[0]) MOSS_RETURN_IF_ERROR(require_dtype(node, *in[0], {DType::kBool}, "cond"));
  declared_outputs(*node.attr_graph("then_branch"), 0, node.outputs.size(), out);
  return Status::Ok();
}

Result<std::vector<ObjectPtr>> run_If(const Node& node, std::span<const ObjectPtr> in,
                                      SubgraphRunner& runner) {
  MOSS_RETURN_IF_ERROR(check_If(node));
  MOSS_ASSIGN_OR_RETURN(const Tensor* c, object_tensor(node, in[0], "cond"));
  if (!c) return invalid_argument("{}: cond is missing", node.label());
  MOSS_ASSIGN_OR_RETURN(bool cond, scalar_bool(node, view_of(*c), "cond"));
  MOSS_ASSIGN_OR_RETURN(const Graph* g, subgraph(node, cond ? "then_branch" : "else_branch"));
  std::vector<ObjectPtr> outs;
  MOSS_RETURN_IF_ERROR(runner.run_objects(*g, {}, captures_of(node, in), outs));
  return outs;
}

// ---- stacking along an axis (Loop and Scan outputs, Scan input slices) -----------------------

struct AxisSplit {
  int64_t outer = 1, len = 1, inner_bytes = 0;
};

AxisSplit split_at(std::span<const int64_t> shape, size_t axis, DType dt) {
  AxisSplit s;
  int64_t inner = 1;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (d < axis) s.outer *= shape[d];
    else if (d == axis) s.len = shape[d];
    else inner *= shape[d];
  }
  s.inner_bytes = inner * static_cast<int64_t>(dtype_size(dt));
  return s;
}

// Slices of one tensor along an axis (the axis removed), one at a time. When every dim before the
// axis is 1 (the usual time-major scan axis 0, opset 8's batch axis) a slice is contiguous and
// is handed out as a view of the source; otherwise it is copied into one buffer from the runner's
// pool, reused for every slice. Either way a step allocates nothing.
class AxisSlicer {
 public:
  Status init(const View& src, size_t axis, SubgraphRunner& runner) {
    src_ = src;
    shape_.assign(src.shape.begin(), src.shape.end());
    split_ = split_at(shape_, axis, src.dtype);
    shape_.erase(shape_.begin() + static_cast<std::ptrdiff_t>(axis));
    numel_ = numel_of(shape_);
    if (split_.outer != 1) {
      MOSS_ASSIGN_OR_RETURN(copy_, runner.buffer(src.dtype, shape_));
    }
    return Status::Ok();
  }
  // Slice t; valid until the next call.
  View slice(int64_t t) const {
    if (split_.outer == 1) {
      return View{src_.dtype, shape_, src_.data + t * split_.inner_bytes, numel_};
    }
    for (int64_t o = 0; o < split_.outer && split_.inner_bytes > 0; ++o) {
      std::memcpy(copy_->raw() + o * split_.inner_bytes, src_.data + (o * split_.len + t) * split_.inner_bytes,
                  static_cast<size_t>(split_.inner_bytes));
    }
    return view_of(*copy_);
  }

 private:
  View src_;
  std::vector<int64_t> shape_;
  AxisSplit split_;
  int64_t numel_ = 0;
  std::shared_ptr<Tensor> copy_;
};

// Stacks equally shaped slices along a new axis; slice i goes to position i (or T-1-i reversed).
// With no slices, the element shape comes from `declared` when it is fully known.
using Slices = std::vector<std::shared_ptr<const Tensor>>;
Result<Tensor> stack_axis(const Node& node, const Slices& slices, size_t axis, bool reverse,
                          DType dtype, const std::optional<TensorType>& declared) {
  std::vector<int64_t> elem;
  if (!slices.empty()) {
    elem = slices[0]->shape();
    dtype = slices[0]->dtype();
  } else if (declared && declared->has_shape) {
    for (const Dim& d : declared->dims) elem.push_back(std::max<int64_t>(d.value, 0));
  }
  if (axis > elem.size()) {
    return invalid_argument("{}: output axis {} is out of range for rank {}", node.label(), axis,
                            elem.size());
  }
  std::vector<int64_t> shape = elem;
  const int64_t T = static_cast<int64_t>(slices.size());
  shape.insert(shape.begin() + static_cast<std::ptrdiff_t>(axis), T);
  MOSS_ASSIGN_OR_RETURN(Tensor out, Tensor::zeros(dtype, shape));
  const AxisSplit s = split_at(shape, axis, dtype);
  for (int64_t i = 0; i < T; ++i) {
    const Tensor& x = *slices[static_cast<size_t>(i)];
    if (x.shape() != elem || x.dtype() != dtype) {
      return invalid_argument("{}: scan output changes shape across iterations ({} then {})",
                              node.label(), shape_to_string(elem), shape_to_string(x.shape()));
    }
    const int64_t pos = reverse ? T - 1 - i : i;
    for (int64_t o = 0; o < s.outer; ++o) {
      if (s.inner_bytes == 0) break;
      std::memcpy(out.raw() + (o * s.len + pos) * s.inner_bytes, x.raw() + o * s.inner_bytes,
                  static_cast<size_t>(s.inner_bytes));
    }
  }
  return out;
}

// ---- Loop --------------------------------------------------------------------------------------

// The body agrees with the node (also checked at run time: a Loop in a subgraph is never planned).
Status check_Loop(const Node& node) {
  const size_t ni = node.explicit_inputs();
  if (ni < 2) return invalid_argument("{}: needs inputs M and cond (either may be empty)", node.label());
  MOSS_ASSIGN_OR_RETURN(const Graph* body, subgraph(node, "body"));
  const size_t n = ni - 2;
  if (body->inputs.size() != n + 2) {
    return invalid_argument("{}: body takes {} inputs, the loop carries {} (+2)", node.label(),
                            body->inputs.size(), n);
  }
  if (body->outputs.size() < n + 1 || node.outputs.size() != body->outputs.size() - 1) {
    return invalid_argument("{}: body has {} outputs, the node {} (carried {})", node.label(),
                            body->outputs.size(), node.outputs.size(), n);
  }
  for (size_t i = 0; i < n; ++i) {
    if (node.inputs[2 + i] == kNoValue) {
      return invalid_argument("{}: loop-carried input {} is missing", node.label(), i);
    }
  }
  return Status::Ok();
}

Status infer_Loop(const Node& node, std::span<const TensorInfo* const> in,
                  std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(check_Loop(node));
  if (in[0]) MOSS_RETURN_IF_ERROR(require_dtype(node, *in[0], {DType::kInt64}, "M"));
  if (in[1]) MOSS_RETURN_IF_ERROR(require_dtype(node, *in[1], {DType::kBool}, "cond"));
  const Graph* body = node.attr_graph("body");
  const size_t n = node.explicit_inputs() - 2;
  for (size_t i = 0; i < n; ++i) {
    const auto& t = body->values[body->inputs[2 + i]].type;
    if (t && t->is_plain() && t->dtype != in[2 + i]->dtype) {
      return invalid_argument("{}: loop-carried value {} is {}, the body takes {}", node.label(), i,
                              dtype_name(in[2 + i]->dtype), dtype_name(t->dtype));
    }
  }
  for (size_t i = 0; i < n; ++i) out.push_back(TensorInfo{in[2 + i]->dtype, {}, nullptr});
  declared_outputs(*body, 1 + n, node.outputs.size() - n, out);
  return Status::Ok();
}

// Far beyond any exported model's loop (beam search, decoding steps, NMS over boxes).
constexpr int64_t kMaxLoopIterations = int64_t{1} << 22;

// Whether b may replace a as a loop-carried value (same kind, same dtype for tensors; an optional
// may come back as its element and the other way round, object.h: type_matches).
bool same_kind(const Object& a, const Object& b) {
  if (a.kind == Object::Kind::kOptional || b.kind == Object::Kind::kOptional) return true;
  if (a.kind != b.kind) return false;
  return !a.is_tensor() || a.tensor->dtype() == b.tensor->dtype();
}

// A scalar the Loop hands its body every iteration (the iteration number, the condition): one
// tensor and wrapper, rewritten in place while nothing from an earlier iteration still holds them
// (a body may return its input, and a carried value then keeps it).
template <typename T>
class LoopScalar {
 public:
  Result<ObjectPtr> set(T value) {
    if (!tensor_ || object_.use_count() != 1 || tensor_.use_count() != 2) {
      MOSS_ASSIGN_OR_RETURN(Tensor t, Tensor::zeros(dtype_of<T>(), {}));
      tensor_ = std::make_shared<Tensor>(std::move(t));
      object_ = std::make_shared<Object>();
      object_->tensor = tensor_;
    }
    tensor_->template data<T>()[0] = value;
    return ObjectPtr(object_);
  }

 private:
  std::shared_ptr<Tensor> tensor_;
  std::shared_ptr<Object> object_;
};

// A Loop scan output, stacked along a new first axis in one buffer: from the second iteration
// on, the body writes each value straight into its row (slot()); a value it cannot write there
// (the first, or one computed outside the body's nodes) is copied in (append()). The buffer holds
// every trip of a loop with a trip count M up to 16 MiB of rows, else grows geometrically.
class ScanOutput {
 public:
  explicit ScanOutput(int64_t trips) : trips_(trips) {}

  // Where the next iteration's value goes; a View without data before the first value fixes the
  // element's type and shape (or for empty elements).
  Result<View> slot() {
    if (count_ == 0 || elem_bytes_ == 0) return View{};
    MOSS_RETURN_IF_ERROR(reserve(count_ + 1));
    return View{dtype_, elem_, rows_.raw() + count_ * elem_bytes_, elem_numel_};
  }
  // The iteration wrote its value into slot().
  void wrote_slot() { ++count_; }
  Status append(const Node& node, const Tensor& t) {
    if (count_ == 0) {
      dtype_ = t.dtype();
      elem_ = t.shape();
      elem_numel_ = t.numel();
      elem_bytes_ = static_cast<int64_t>(t.nbytes());
    } else if (t.dtype() != dtype_ || t.shape() != elem_) {
      return invalid_argument("{}: scan output changes shape across iterations ({} then {})", node.label(),
                              shape_to_string(elem_), shape_to_string(t.shape()));
    }
    MOSS_RETURN_IF_ERROR(reserve(count_ + 1));
    if (elem_bytes_ > 0) std::memcpy(rows_.raw() + count_ * elem_bytes_, t.raw(), t.nbytes());
    ++count_;
    return Status::Ok();
  }
  int64_t elem_bytes() const { return elem_bytes_; }
  // [iterations, element shape...]; with no iterations the element shape comes from the body's
  // declared output (stack_axis).
  Result<Tensor> stacked(const Node& node, DType declared_dtype, const std::optional<TensorType>& declared) {
    if (count_ == 0) return stack_axis(node, {}, 0, false, declared_dtype, declared);
    if (elem_bytes_ > 0 && rows_.shape()[0] == count_) return std::move(rows_);
    std::vector<int64_t> shape{count_};
    shape.insert(shape.end(), elem_.begin(), elem_.end());
    return Tensor::from_bytes(dtype_, std::move(shape),
                              rows_.bytes().first(static_cast<size_t>(count_ * elem_bytes_)));
  }

 private:
  // Room for `rows` rows (callers keep rows * elem_bytes_ within kMaxTensorBytes).
  Status reserve(int64_t rows) {
    if (elem_bytes_ == 0) return Status::Ok();
    const int64_t have = rows_.rank() ? rows_.shape()[0] : 0;
    if (rows <= have) return Status::Ok();
    constexpr int64_t kUpFront = int64_t{16} << 20;
    const int64_t max_rows = std::max<int64_t>(1, static_cast<int64_t>(kMaxTensorBytes) / elem_bytes_);
    int64_t want = have == 0 ? std::max<int64_t>(1, std::min(trips_, kUpFront / elem_bytes_))
                             : 2 * have;
    if (have == 0 && trips_ == std::numeric_limits<int64_t>::max()) want = std::min<int64_t>(want, 16);
    want = std::min(std::max(want, rows), std::max(max_rows, rows));
    std::vector<int64_t> shape{want};
    shape.insert(shape.end(), elem_.begin(), elem_.end());
    MOSS_ASSIGN_OR_RETURN(Tensor grown, Tensor::zeros(dtype_, std::move(shape)));
    if (count_ > 0) std::memcpy(grown.raw(), rows_.raw(), static_cast<size_t>(count_ * elem_bytes_));
    rows_ = std::move(grown);
    return Status::Ok();
  }

  int64_t trips_;
  DType dtype_ = DType::kFloat32;
  std::vector<int64_t> elem_;
  int64_t elem_numel_ = 0, elem_bytes_ = 0, count_ = 0;
  Tensor rows_;  // [capacity, elem...]
};

Result<std::vector<ObjectPtr>> run_Loop(const Node& node, std::span<const ObjectPtr> in,
                                        SubgraphRunner& runner) {
  MOSS_RETURN_IF_ERROR(check_Loop(node));
  const Graph* body = node.attr_graph("body");
  const size_t n = node.explicit_inputs() - 2;
  const size_t k = node.outputs.size() - n;
  int64_t trips = std::numeric_limits<int64_t>::max();
  MOSS_ASSIGN_OR_RETURN(const Tensor* m, object_tensor(node, in[0], "M"));
  if (m) {
    if (m->dtype() != DType::kInt64 || m->numel() != 1) {
      return invalid_argument("{}: M must be one int64", node.label());
    }
    trips = m->data<int64_t>()[0];
  }
  bool cond = true;
  MOSS_ASSIGN_OR_RETURN(const Tensor* c, object_tensor(node, in[1], "cond"));
  if (c) {
    MOSS_ASSIGN_OR_RETURN(cond, scalar_bool(node, view_of(*c), "cond"));
  }
  std::vector<ObjectPtr> carried(in.begin() + 2, in.begin() + 2 + static_cast<std::ptrdiff_t>(n));
  std::vector<ScanOutput> scans(k, ScanOutput(m ? std::max<int64_t>(trips, 0) : trips));
  size_t scan_bytes = 0;
  std::vector<ObjectPtr> body_in(n + 2), outs;
  std::vector<View> into(body->outputs.size());
  LoopScalar<int64_t> iteration;
  LoopScalar<bool> condition;
  for (int64_t i = 0; i < trips && cond; ++i) {
    // M and cond may come from request data: a bounded loop holds a request thread for a bounded
    // time, and its (possibly empty) scan slices stay bounded in count.
    if (i >= kMaxLoopIterations) {
      return resource_exhausted("{}: more than {} iterations", node.label(), kMaxLoopIterations);
    }
    body_in[0].reset();
    body_in[1].reset();
    MOSS_ASSIGN_OR_RETURN(body_in[0], iteration.set(i));
    MOSS_ASSIGN_OR_RETURN(body_in[1], condition.set(cond));
    for (size_t j = 0; j < n; ++j) body_in[2 + j] = carried[j];
    for (size_t s = 0; s < k; ++s) {
      auto slot = scans[s].slot();
      if (!slot.ok()) return std::move(slot).status().with_context(node.label());
      into[1 + n + s] = *slot;
    }
    MOSS_RETURN_IF_ERROR(runner.run_objects(*body, body_in, captures_of(node, in), outs, into));
    if (!outs[0]) return invalid_argument("{}: the body's cond output is missing", node.label());
    MOSS_ASSIGN_OR_RETURN(const Tensor* next, object_tensor(node, outs[0], "body's cond output"));
    MOSS_ASSIGN_OR_RETURN(cond, scalar_bool(node, view_of(*next), "body's cond output"));
    for (size_t j = 0; j < n; ++j) {
      if (!outs[1 + j]) return invalid_argument("{}: loop-carried output {} is missing", node.label(), j);
      if (!same_kind(*carried[j], *outs[1 + j])) {
        return invalid_argument("{}: body changes loop-carried value {} from {} to {}",
                                node.label(), j, type_name(type_of(*carried[j])),
                                type_name(type_of(*outs[1 + j])));
      }
      carried[j] = std::move(outs[1 + j]);
    }
    for (size_t s = 0; s < k; ++s) {
      const ObjectPtr& o = outs[1 + n + s];
      const Tensor* t = nullptr;
      if (o) {
        MOSS_ASSIGN_OR_RETURN(t, object_tensor(node, o, "a scan output"));
      }
      scan_bytes += t ? t->nbytes() : static_cast<size_t>(scans[s].elem_bytes());
      // A loop that never ends stops at the tensor size limit instead of exhausting memory.
      if (scan_bytes > kMaxTensorBytes) {
        return resource_exhausted("{}: scan outputs exceed {} bytes after {} iterations",
                                  node.label(), kMaxTensorBytes, i + 1);
      }
      if (t) {
        MOSS_RETURN_IF_ERROR(scans[s].append(node, *t));
      } else {
        scans[s].wrote_slot();
      }
    }
  }
  std::vector<ObjectPtr> result = std::move(carried);
  for (size_t s = 0; s < k; ++s) {
    const Value& decl = body->values[body->outputs[1 + n + s]];
    const DType dt = decl.type ? decl.type->dtype : DType::kFloat32;
    MOSS_ASSIGN_OR_RETURN(Tensor t, scans[s].stacked(node, dt, decl.type));
    result.push_back(tensor_object(std::make_shared<const Tensor>(std::move(t))));
  }
  return result;
}

// ---- Scan --------------------------------------------------------------------------------------
// Opset 9+: inputs are N states then M scan inputs, each scanned along its own axis. Opset 8:
// an optional sequence_lens first, and every state and scan input has a leading batch axis; the
// body runs per batch entry over axis 1 and outputs are stacked back along the batch.

struct ScanAttrs {
  size_t first = 0;  // 1 for opset 8 (sequence_lens)
  size_t states = 0, scan_in = 0, scan_out = 0;
  std::vector<int64_t> in_axes, in_dirs, out_axes, out_dirs;
};

Result<ScanAttrs> scan_attrs(const Node& node, const Graph& body) {
  ScanAttrs a;
  a.first = node.opset < 9 ? 1 : 0;
  const int64_t m = node.attr_int("num_scan_inputs", -1);
  const size_t ni = node.explicit_inputs();
  if (m < 1 || static_cast<size_t>(m) + a.first > ni) {
    return invalid_argument("{}: num_scan_inputs {} does not fit {} inputs", node.label(), m, ni);
  }
  a.scan_in = static_cast<size_t>(m);
  a.states = ni - a.first - a.scan_in;
  if (body.inputs.size() != ni - a.first || body.outputs.size() != node.outputs.size() ||
      node.outputs.size() < a.states) {
    return invalid_argument("{}: body has {} inputs and {} outputs, the node {} and {}",
                            node.label(), body.inputs.size(), body.outputs.size(), ni - a.first,
                            node.outputs.size());
  }
  a.scan_out = node.outputs.size() - a.states;
  auto list = [&](const char* key, size_t count, std::vector<int64_t>& v) -> Status {
    v = node.attr_ints(key);
    if (v.empty()) v.assign(count, 0);
    if (v.size() != count) {
      return invalid_argument("{}: {} has {} entries, expected {}", node.label(), key, v.size(),
                              count);
    }
    return Status::Ok();
  };
  if (a.first) {
    a.in_axes.assign(a.scan_in, 0);
    a.out_axes.assign(a.scan_out, 0);
    a.out_dirs.assign(a.scan_out, 0);
    MOSS_RETURN_IF_ERROR(list("directions", a.scan_in, a.in_dirs));
    return a;
  }
  MOSS_RETURN_IF_ERROR(list("scan_input_axes", a.scan_in, a.in_axes));
  MOSS_RETURN_IF_ERROR(list("scan_input_directions", a.scan_in, a.in_dirs));
  MOSS_RETURN_IF_ERROR(list("scan_output_axes", a.scan_out, a.out_axes));
  MOSS_RETURN_IF_ERROR(list("scan_output_directions", a.scan_out, a.out_dirs));
  return a;
}

Status infer_Scan(const Node& node, std::span<const TensorInfo* const> in,
                  std::vector<TensorInfo>& out) {
  MOSS_ASSIGN_OR_RETURN(const Graph* body, subgraph(node, "body"));
  MOSS_ASSIGN_OR_RETURN(ScanAttrs a, scan_attrs(node, *body));
  for (size_t i = a.first; i < node.explicit_inputs(); ++i) {
    if (!in[i]) return invalid_argument("{}: input {} is missing", node.label(), i);
    if (a.first && in[i]->shape.size() < (i < a.first + a.states ? 1u : 2u)) {
      return invalid_argument("{}: input {} lacks the batch (and sequence) axes", node.label(), i);
    }
  }
  if (a.first && in[0]) MOSS_RETURN_IF_ERROR(require_dtype(node, *in[0], {DType::kInt64}, "sequence_lens"));
  for (size_t i = 0; i < a.states; ++i) {
    out.push_back(TensorInfo{in[a.first + i]->dtype, {}, nullptr});
  }
  declared_outputs(*body, a.states, a.scan_out, out);
  return Status::Ok();
}

// Where step `pos` of a scan output goes in its stacked result: a contiguous row when every dim
// before the output axis is 1 (the body then writes it there), else rows copied from a staging
// buffer.
class StackedOutput {
 public:
  Status init(const Tensor& first, int64_t len, int64_t axis, SubgraphRunner& runner) {
    elem_ = first.shape();
    std::vector<int64_t> shape = elem_;
    shape.insert(shape.begin() + axis, len);
    MOSS_ASSIGN_OR_RETURN(stacked_, Tensor::zeros(first.dtype(), shape));
    split_ = split_at(shape, static_cast<size_t>(axis), first.dtype());
    if (split_.outer != 1) {
      MOSS_ASSIGN_OR_RETURN(staging_, runner.buffer(first.dtype(), elem_));
    }
    return Status::Ok();
  }
  // The buffer step `pos` writes into.
  View slot(int64_t pos) {
    if (split_.outer != 1) return view_of(*staging_);
    return View{stacked_.dtype(), elem_, stacked_.raw() + pos * split_.inner_bytes,
                numel_of(elem_)};
  }
  // After step `pos` wrote slot(pos) (or `from`, when given): its rows into the stacked result.
  void place(int64_t pos, const uint8_t* from = nullptr) {
    if (!from) {
      if (split_.outer == 1) return;
      from = staging_->raw();
    }
    for (int64_t o = 0; o < split_.outer && split_.inner_bytes > 0; ++o) {
      std::memcpy(stacked_.raw() + (o * split_.len + pos) * split_.inner_bytes,
                  from + o * split_.inner_bytes, static_cast<size_t>(split_.inner_bytes));
    }
  }
  Tensor take() { return std::move(stacked_); }

 private:
  std::vector<int64_t> elem_;
  Tensor stacked_;
  AxisSplit split_;
  std::shared_ptr<Tensor> staging_;
};

// One scan over states and scan inputs (no batch axis); returns final states then scan outputs.
// The first step runs with run() (the scan outputs' shapes are unknown until then); every later
// step with run_into(), writing the states into the other of two buffers and the scan outputs
// into their rows of the stacked results.
Result<std::vector<Tensor>> scan_once(const Node& node, const Graph& body, const ScanAttrs& a,
                                      std::span<const View> states_in,
                                      std::span<const View> scan_in,
                                      std::span<const View> captures, SubgraphRunner& runner) {
  std::vector<int64_t> axes(a.scan_in);
  int64_t len = 0;
  for (size_t j = 0; j < a.scan_in; ++j) {
    const View& v = scan_in[j];
    MOSS_ASSIGN_OR_RETURN(axes[j], normalize_axis(node, a.in_axes[j],
                                                  static_cast<int64_t>(v.shape.size())));
    const int64_t l = v.shape[static_cast<size_t>(axes[j])];
    if (j > 0 && l != len) return invalid_argument("{}: scan inputs differ in length", node.label());
    len = l;
  }
  std::vector<Tensor> states, next;
  for (const View& v : states_in) {
    MOSS_ASSIGN_OR_RETURN(Tensor t, tensor_of(v));
    states.push_back(std::move(t));
  }
  std::vector<StackedOutput> scans(a.scan_out);
  std::vector<AxisSlicer> slicers(a.scan_in);
  for (size_t j = 0; j < a.scan_in; ++j) {
    MOSS_RETURN_IF_ERROR(slicers[j].init(scan_in[j], static_cast<size_t>(axes[j]), runner));
  }
  std::vector<View> body_in(a.states + a.scan_in), into(a.states + a.scan_out);
  for (int64_t t = 0; t < len; ++t) {
    for (size_t j = 0; j < a.scan_in; ++j) {
      body_in[a.states + j] = slicers[j].slice(a.in_dirs[j] ? len - 1 - t : t);
    }
    for (size_t i = 0; i < a.states; ++i) body_in[i] = view_of(states[i]);
    if (t > 0) {
      for (size_t i = 0; i < a.states; ++i) into[i] = view_of(next[i]);
      for (size_t s = 0; s < a.scan_out; ++s) {
        into[a.states + s] = scans[s].slot(a.out_dirs[s] ? len - 1 - t : t);
      }
      const Status st = runner.run_into(body, body_in, captures, into);
      if (!st.ok()) return st.with_context(node.label());
      for (size_t s = 0; s < a.scan_out; ++s) scans[s].place(a.out_dirs[s] ? len - 1 - t : t);
      std::swap(states, next);
      continue;
    }
    MOSS_ASSIGN_OR_RETURN(auto outs, runner.run(body, body_in, captures));
    for (size_t i = 0; i < a.states; ++i) {
      if (outs[i].dtype() != states[i].dtype() || outs[i].shape() != states[i].shape()) {
        return invalid_argument("{}: body changes state {} from {} {} to {} {}", node.label(), i,
                                dtype_name(states[i].dtype()), shape_to_string(states[i].shape()),
                                dtype_name(outs[i].dtype()), shape_to_string(outs[i].shape()));
      }
      next.push_back(std::move(states[i]));  // the buffer step 1 writes into
      states[i] = std::move(outs[i]);
    }
    for (size_t s = 0; s < a.scan_out; ++s) {
      const Tensor& y = outs[a.states + s];
      MOSS_ASSIGN_OR_RETURN(int64_t ax, normalize_axis(node, a.out_axes[s], static_cast<int64_t>(y.rank()) + 1));
      MOSS_RETURN_IF_ERROR(scans[s].init(y, len, ax, runner));
      scans[s].place(a.out_dirs[s] ? len - 1 : 0, y.raw());
    }
  }
  std::vector<Tensor> result = std::move(states);
  for (size_t s = 0; s < a.scan_out; ++s) {
    if (len > 0) {
      result.push_back(scans[s].take());
      continue;
    }
    const Value& decl = body.values[body.outputs[a.states + s]];
    const DType dt = decl.type ? decl.type->dtype : DType::kFloat32;
    const int64_t rank = decl.type ? static_cast<int64_t>(decl.type->dims.size()) : 0;
    MOSS_ASSIGN_OR_RETURN(int64_t ax, normalize_axis(node, a.out_axes[s], rank + 1));
    MOSS_ASSIGN_OR_RETURN(Tensor t, stack_axis(node, {}, static_cast<size_t>(ax), a.out_dirs[s] != 0, dt, decl.type));
    result.push_back(std::move(t));
  }
  return result;
}

Result<std::vector<Tensor>> run_Scan(const Node& node, std::span<const View> in,
                                     SubgraphRunner& runner) {
  MOSS_ASSIGN_OR_RETURN(const Graph* body, subgraph(node, "body"));
  MOSS_ASSIGN_OR_RETURN(ScanAttrs a, scan_attrs(node, *body));
  const auto states = in.subspan(a.first, a.states);
  const auto scans = in.subspan(a.first + a.states, a.scan_in);
  if (!a.first) return scan_once(node, *body, a, states, scans, captures_of(node, in), runner);
  const int64_t batch = scans[0].shape[0];
  for (const View& v : in.subspan(a.first, a.states + a.scan_in)) {
    if (v.shape[0] != batch) return invalid_argument("{}: inputs differ in batch size", node.label());
  }
  if (in[0].present()) {
    for (int64_t b = 0; b < in[0].numel; ++b) {
      if (in[0].numel != batch || in[0].as<int64_t>()[b] != scans[0].shape[1]) {
        return unimplemented("{}: sequence_lens shorter than the sequence are not supported",
                             node.label());
      }
    }
  }
  std::vector<Slices> per_output(node.outputs.size());
  std::vector<AxisSlicer> slicers(a.states + a.scan_in);
  for (size_t i = 0; i < slicers.size(); ++i) {
    MOSS_RETURN_IF_ERROR(slicers[i].init(in[a.first + i], 0, runner));
  }
  std::vector<View> views(a.states + a.scan_in);
  for (int64_t b = 0; b < batch; ++b) {
    for (size_t i = 0; i < views.size(); ++i) views[i] = slicers[i].slice(b);
    MOSS_ASSIGN_OR_RETURN(auto outs, scan_once(node, *body, a,
                                               std::span<const View>(views).first(a.states),
                                               std::span<const View>(views).subspan(a.states),
                                               captures_of(node, in), runner));
    for (size_t o = 0; o < outs.size(); ++o) {
      per_output[o].push_back(std::make_shared<const Tensor>(std::move(outs[o])));
    }
  }
  std::vector<Tensor> result;
  for (size_t o = 0; o < per_output.size(); ++o) {
    const Value& decl = body->values[body->outputs[o]];
    const DType dt = decl.type ? decl.type->dtype : DType::kFloat32;
    MOSS_ASSIGN_OR_RETURN(Tensor t, stack_axis(node, per_output[o], 0, false, dt, std::nullopt));
    result.push_back(std::move(t));
  }
  return result;
}

}  // namespace

std::vector<OpKernel> control_flow_kernels() {
  return {object_kernel("If", infer_If, run_If), object_kernel("Loop", infer_Loop, run_Loop),
          dynamic_kernel("Scan", infer_Scan, run_Scan)};
}

}  // namespace moss::engine::ref
