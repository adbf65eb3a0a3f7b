// ReduceSum and ReduceMean: axes as an attribute (ReduceSum < 13, ReduceMean < 18) or an input,
// keepdims, noop_with_empty_axes. Accumulates in double so long reductions stay accurate.
#include "engine/kernels/ref/broadcast.h"
#include "engine/kernels/ref/ref_kernels.h"

#include <algorithm>

namespace moss::engine::ref {
namespace {

int axes_input_opset(const Node& node) { return node.op_type == "ReduceSum" ? 13 : 18; }

// Which input dims are reduced; empty result + noop means identity.
Result<std::vector<bool>> reduced_dims(const Node& node, std::span<const int64_t> shape,
                                       const TensorInfo* axes_in, bool& noop) {
  std::vector<int64_t> axes;
  if (node.opset < axes_input_opset(node)) {
    axes = node.attr_ints("axes");
  } else {
    MOSS_ASSIGN_OR_RETURN(axes, const_ints(node, axes_in, "axes"));
  }
  const int64_t r = static_cast<int64_t>(shape.size());
  noop = axes.empty() && node.attr_int("noop_with_empty_axes", 0) != 0;
  std::vector<bool> red(shape.size(), axes.empty() && !noop);
  for (int64_t a : axes) {
    MOSS_ASSIGN_OR_RETURN(int64_t ax, normalize_axis(node, a, r));
    red[ax] = true;
  }
  return red;
}

Status infer_reduce(const Node& node, std::span<const TensorInfo* const> in,
                    std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 1, node.opset < axes_input_opset(node) ? 1 : 2));
  MOSS_RETURN_IF_ERROR(require_dtype(node, *in[0], {DType::kFloat32, DType::kInt64, DType::kInt32}, "data"));
  bool noop = false;
  MOSS_ASSIGN_OR_RETURN(auto red, reduced_dims(node, in[0]->shape, in.size() > 1 ? in[1] : nullptr, noop));
  const bool keep = node.attr_int("keepdims", 1) != 0;
  out.resize(1);
  out[0].dtype = in[0]->dtype;
  for (size_t i = 0; i < red.size(); ++i) {
    if (!red[i]) out[0].shape.push_back(in[0]->shape[i]);
    else if (keep) out[0].shape.push_back(1);
  }
  return Status::Ok();
}

Status run_reduce(const Node& node, std::span<const View> in, std::span<const View> out) {
  const auto s = in[0].shape;
  std::vector<bool> red(s.size(), false);
  // The plan already validated axes; recompute them from the constant input/attribute.
  TensorInfo axes_info;
  const TensorInfo* axes_ptr = nullptr;
  if (in.size() > 1 && in[1].data) {
    axes_info.dtype = in[1].dtype;
    axes_info.shape.assign(in[1].shape.begin(), in[1].shape.end());
    MOSS_ASSIGN_OR_RETURN(auto t, Tensor::from_bytes(in[1].dtype, axes_info.shape,
                                                     {in[1].data, static_cast<size_t>(in[1].numel) * dtype_size(in[1].dtype)}));
    axes_info.value = std::make_shared<const Tensor>(std::move(t));
    axes_ptr = &axes_info;
  }
  bool noop = false;
  MOSS_ASSIGN_OR_RETURN(red, reduced_dims(node, s, axes_ptr, noop));
  const bool mean = node.op_type == "ReduceMean";
  // Strides of the (keepdims) output seen from the input shape: 0 along reduced dims.
  std::vector<int64_t> kshape(s.begin(), s.end());
  int64_t count = 1;
  for (size_t i = 0; i < s.size(); ++i) {
    if (red[i]) {
      kshape[i] = 1;
      count *= s[i];
    }
  }
  auto ost = broadcast_strides(kshape, s);
  const int64_t n_out = out[0].numel;
  std::vector<double> acc(static_cast<size_t>(n_out), 0.0);
  return dispatch_numeric(node, in[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* x = in[0].as<T>();
    std::vector<int64_t> ist(s.size(), 1);
    for (size_t i = s.size(); i-- > 1;) ist[i - 1] = ist[i] * s[i];
    for_each_row<2>(s, {&ost, &ist}, [&](int64_t, std::array<int64_t, 2> off, int64_t n, std::array<int64_t, 2> st) {
      for (int64_t i = 0; i < n; ++i) acc[off[0] + i * st[0]] += static_cast<double>(x[off[1] + i * st[1]]);
    });
    T* y = out[0].as<T>();
    for (int64_t i = 0; i < n_out; ++i) {
      double v = acc[i];
      if (mean) v = count ? v / static_cast<double>(count) : 0.0;
      y[i] = static_cast<T>(v);
    }
    return Status::Ok();
  });
}

}  // namespace

std::vector<OpKernel> reduce_kernels() {
  return {
      {"ReduceSum", infer_reduce, run_reduce, false, 0b10},
      {"ReduceMean", infer_reduce, run_reduce, false, 0b10},
  };
}

}  // namespace moss::engine::ref
