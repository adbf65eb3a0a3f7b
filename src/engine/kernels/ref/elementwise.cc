// Element-wise operators that fit no family: Identity, Where, Clip.
#include "engine/kernels/ref/broadcast.h"
#include "engine/kernels/ref/ref_kernels.h"

#include <cmath>
#include <cstring>
#include <limits>

namespace moss::engine::ref {
namespace {

Status infer_same(const Node& node, std::span<const TensorInfo* const> in,
                  std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 1, 1));
  out.resize(1);
  out[0].dtype = in[0]->dtype;
  out[0].shape = in[0]->shape;
  return Status::Ok();
}

Status run_Identity(const Node&, std::span<const View> in, std::span<const View> out) {
  if (out[0].numel > 0) std::memcpy(out[0].data, in[0].data, out[0].numel * dtype_size(in[0].dtype));
  return Status::Ok();
}

// ---- Where ----------------------------------------------------------------------------------

Status infer_Where(const Node& node, std::span<const TensorInfo* const> in,
                   std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 3, 3));
  MOSS_RETURN_IF_ERROR(require_dtype(node, *in[0], {DType::kBool}, "condition"));
  if (in[2]->dtype != in[1]->dtype) {
    return invalid_argument("{}: X and Y have different types", node.label());
  }
  out.resize(1);
  out[0].dtype = in[1]->dtype;
  MOSS_ASSIGN_OR_RETURN(auto s, broadcast_shapes(node, in[0]->shape, in[1]->shape));
  MOSS_ASSIGN_OR_RETURN(out[0].shape, broadcast_shapes(node, s, in[2]->shape));
  return Status::Ok();
}

Status run_Where(const Node& node, std::span<const View> in, std::span<const View> out) {
  return dispatch_all(node, in[1].dtype, [&](auto tag) {
    using T = decltype(tag);
    auto sc = broadcast_strides(in[0].shape, out[0].shape);
    auto sx = broadcast_strides(in[1].shape, out[0].shape);
    auto sy = broadcast_strides(in[2].shape, out[0].shape);
    const bool* c = in[0].as<bool>();
    const T* x = in[1].as<T>();
    const T* y = in[2].as<T>();
    T* z = out[0].as<T>();
    for_each_row<3>(out[0].shape, {&sc, &sx, &sy},
                    [&](int64_t o, std::array<int64_t, 3> off, int64_t n,
                        std::array<int64_t, 3> st) {
                      for (int64_t i = 0; i < n; ++i) {
                        z[o + i] = c[off[0] + i * st[0]] ? x[off[1] + i * st[1]]
                                                         : y[off[2] + i * st[2]];
                      }
                    });
    return Status::Ok();
  });
}

// ---- Clip -----------------------------------------------------------------------------------

Status infer_Clip(const Node& node, std::span<const TensorInfo* const> in,
                  std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 1, node.opset < 11 ? 1 : 3));
  MOSS_RETURN_IF_ERROR(require_numeric(node, *in[0], "input"));
  for (size_t i = 1; i < in.size(); ++i) {
    if (in[i] && (in[i]->dtype != in[0]->dtype || in[i]->numel() != 1)) {
      return invalid_argument("{}: min/max must be scalars of the input type", node.label());
    }
  }
  out.resize(1);
  out[0].dtype = in[0]->dtype;
  out[0].shape = in[0]->shape;
  return Status::Ok();
}

Status run_Clip(const Node& node, std::span<const View> in, std::span<const View> out) {
  return dispatch_numeric(node, in[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    T lo = std::numeric_limits<T>::lowest();
    T hi = std::numeric_limits<T>::max();
    if (node.opset < 11) {
      if constexpr (is_float_type_v<T>) {
        lo = T(node.attr_float("min", -INFINITY));
        hi = T(node.attr_float("max", INFINITY));
      }
    } else {
      if (in.size() > 1 && in[1].data) lo = in[1].as<T>()[0];
      if (in.size() > 2 && in[2].data) hi = in[2].as<T>()[0];
    }
    const T* x = in[0].as<T>();
    T* y = out[0].as<T>();
    using C = compute_t<T>;
    const C l = static_cast<C>(lo), h = static_cast<C>(hi);
    for (int64_t i = 0; i < out[0].numel; ++i) {
      const C v = static_cast<C>(x[i]);
      y[i] = T(v < l ? l : (v > h ? h : v));
    }
    return Status::Ok();
  });
}

}  // namespace

std::vector<OpKernel> elementwise_kernels() {
  return {
      {"Identity", infer_same, run_Identity},
      {"Where", infer_Where, run_Where},
      {"Clip", infer_Clip, run_Clip},
  };
}

}  // namespace moss::engine::ref
