// Index-driven data movement: GatherElements, GatherND (batch_dims), ScatterElements and its
// predecessor Scatter, ScatterND (reduction none/add/mul/max/min). Indices may be negative (counted
// from the end); an index out of range is an error at run time, never an out-of-bounds access.
#include "engine/kernels/ref/ref_kernels.h"
#include "engine/kernels/ref/ref_util.h"

#include <algorithm>
#include <cstring>

namespace moss::engine::ref {
namespace {

Result<int64_t> read_index(const Node& node, const View& idx, int64_t i, int64_t dim) {
  int64_t v = idx.dtype == DType::kInt64 ? idx.as<int64_t>()[i] : idx.as<int32_t>()[i];
  if (v < 0) v += dim;
  if (v < 0 || v >= dim) {
    return invalid_argument("{}: index {} is out of range for a dimension of size {}",
                            node.label(), v < 0 ? v - dim : v, dim);
  }
  return v;
}

// Multi-index odometer over a shape: calls f(flat index in `shape`, coordinates).
template <typename F>
Status for_each_index(std::span<const int64_t> shape, F f) {
  const int64_t n = numel_of(shape);
  std::vector<int64_t> idx(shape.size(), 0);
  for (int64_t i = 0; i < n; ++i) {
    MOSS_RETURN_IF_ERROR(f(i, idx));
    for (size_t d = shape.size(); d-- > 0;) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
  return Status::Ok();
}

// ---- GatherElements / ScatterElements ---------------------------------------------------------

Status check_elements(const Node& node, const TensorInfo& data, const TensorInfo& indices,
                      int64_t& axis) {
  MOSS_RETURN_IF_ERROR(require_dtype(node, indices, {DType::kInt32, DType::kInt64}, "indices"));
  const int64_t r = static_cast<int64_t>(data.shape.size());
  if (r == 0 || static_cast<int64_t>(indices.shape.size()) != r) {
    return invalid_argument("{}: data and indices must have the same rank >= 1", node.label());
  }
  MOSS_ASSIGN_OR_RETURN(axis, normalize_axis(node, node.attr_int("axis", 0), r));
  return Status::Ok();
}

Status infer_GatherElements(const Node& node, std::span<const TensorInfo* const> in,
                            std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 2, 2));
  int64_t axis = 0;
  MOSS_RETURN_IF_ERROR(check_elements(node, *in[0], *in[1], axis));
  for (size_t d = 0; d < in[0]->shape.size(); ++d) {
    if (static_cast<int64_t>(d) != axis && in[1]->shape[d] > in[0]->shape[d]) {
      return invalid_argument("{}: indices dimension {} exceeds data's", node.label(), d);
    }
  }
  return set_out(out, in[0]->dtype, in[1]->shape);
}

Status run_GatherElements(const Node& node, std::span<const View> in, std::span<const View> out) {
  const int64_t axis = *normalize_axis(node, node.attr_int("axis", 0), static_cast<int64_t>(in[0].shape.size()));
  const auto ds = dense_strides(in[0].shape);
  const size_t es = dtype_size(in[0].dtype);
  return for_each_index(in[1].shape, [&](int64_t i, const std::vector<int64_t>& idx) -> Status {
    MOSS_ASSIGN_OR_RETURN(int64_t j, read_index(node, in[1], i, in[0].shape[static_cast<size_t>(axis)]));
    int64_t src = 0;
    for (size_t d = 0; d < idx.size(); ++d) src += (static_cast<int64_t>(d) == axis ? j : idx[d]) * ds[d];
    std::memcpy(out[0].data + i * es, in[0].data + src * es, es);
    return Status::Ok();
  });
}

Status check_scatter_reduction(const Node& node) {
  const std::string r = node.attr_string("reduction", "none");
  if (r != "none" && r != "add" && r != "mul" && r != "max" && r != "min") {
    return invalid_argument("{}: reduction must be none, add, mul, max or min, got '{}'", node.label(), r);
  }
  return Status::Ok();
}

Status infer_ScatterElements(const Node& node, std::span<const TensorInfo* const> in,
                             std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 3, 3));
  MOSS_RETURN_IF_ERROR(check_scatter_reduction(node));
  int64_t axis = 0;
  MOSS_RETURN_IF_ERROR(check_elements(node, *in[0], *in[1], axis));
  MOSS_RETURN_IF_ERROR(require_same_dtype(node, *in[0], *in[2], "updates"));
  if (in[2]->shape != in[1]->shape) {
    return invalid_argument("{}: updates shape {} differs from indices shape {}", node.label(),
                            shape_to_string(in[2]->shape), shape_to_string(in[1]->shape));
  }
  if (node.attr_string("reduction", "none") != "none") MOSS_RETURN_IF_ERROR(require_numeric(node, *in[0], "data"));
  return set_out(out, in[0]->dtype, in[0]->shape);
}

// dst = combine(dst, src) for the scatter reduction, typed.
template <typename T>
void combine(const std::string& red, T* dst, const T* src) {
  if (red == "none") {
    *dst = *src;
  } else if constexpr (!std::is_same_v<T, bool>) {
    using C = compute_t<T>;
    const C a = static_cast<C>(*dst), b = static_cast<C>(*src);
    if (red == "add") *dst = T(C(a + b));
    else if (red == "mul") *dst = T(C(a * b));
    else if (red == "max") *dst = T(std::max(a, b));
    else *dst = T(std::min(a, b));
  }
}

Status run_ScatterElements(const Node& node, std::span<const View> in, std::span<const View> out) {
  const int64_t axis = *normalize_axis(node, node.attr_int("axis", 0), static_cast<int64_t>(in[0].shape.size()));
  const auto ds = dense_strides(in[0].shape);
  const std::string red = node.attr_string("reduction", "none");
  if (out[0].data != in[0].data) std::memcpy(out[0].data, in[0].data, static_cast<size_t>(in[0].numel) * dtype_size(in[0].dtype));
  return dispatch_all(node, in[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    T* y = out[0].as<T>();
    const T* u = in[2].as<T>();
    return for_each_index(in[1].shape, [&](int64_t i, const std::vector<int64_t>& idx) -> Status {
      MOSS_ASSIGN_OR_RETURN(int64_t j, read_index(node, in[1], i, in[0].shape[static_cast<size_t>(axis)]));
      int64_t dst = 0;
      for (size_t d = 0; d < idx.size(); ++d) {
        if (static_cast<int64_t>(d) != axis && idx[d] >= in[0].shape[d]) {
          return invalid_argument("{}: indices exceed data along dimension {}", node.label(), d);
        }
        dst += (static_cast<int64_t>(d) == axis ? j : idx[d]) * ds[d];
      }
      combine<T>(red, y + dst, u + i);
      return Status::Ok();
    });
  });
}

// ---- GatherND / ScatterND ---------------------------------------------------------------------

struct NdSpec {
  int64_t batch = 1;   // product of the batch dims
  int64_t tuples = 1;  // index tuples per batch
  int64_t k = 0;       // tuple length
  int64_t slice = 1;   // elements per gathered slice
};

Result<NdSpec> nd_spec(const Node& node, std::span<const int64_t> data, std::span<const int64_t> idx,
                       int64_t b) {
  const int64_t r = static_cast<int64_t>(data.size()), q = static_cast<int64_t>(idx.size());
  if (q < 1 || r < 1 || b < 0 || b >= std::min(r, q)) {
    return invalid_argument("{}: batch_dims {} is invalid for data rank {} and indices rank {}", node.label(), b, r, q);
  }
  NdSpec s;
  s.k = idx[static_cast<size_t>(q - 1)];
  if (s.k < 1 || s.k > r - b) {
    return invalid_argument("{}: index tuples of length {} do not fit data rank {}", node.label(), s.k, r);
  }
  for (int64_t i = 0; i < b; ++i) {
    if (data[static_cast<size_t>(i)] != idx[static_cast<size_t>(i)]) {
      return invalid_argument("{}: batch dimensions of data and indices differ", node.label());
    }
    s.batch *= data[static_cast<size_t>(i)];
  }
  for (int64_t i = b; i < q - 1; ++i) s.tuples *= idx[static_cast<size_t>(i)];
  for (int64_t i = b + s.k; i < r; ++i) s.slice *= data[static_cast<size_t>(i)];
  return s;
}

Status infer_GatherND(const Node& node, std::span<const TensorInfo* const> in,
                      std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 2, 2));
  MOSS_RETURN_IF_ERROR(require_dtype(node, *in[1], {DType::kInt64}, "indices"));
  const int64_t b = node.attr_int("batch_dims", 0);
  MOSS_ASSIGN_OR_RETURN(NdSpec s, nd_spec(node, in[0]->shape, in[1]->shape, b));
  std::vector<int64_t> shape(in[1]->shape.begin(), in[1]->shape.end() - 1);
  shape.insert(shape.end(), in[0]->shape.begin() + b + s.k, in[0]->shape.end());
  return set_out(out, in[0]->dtype, std::move(shape));
}

// Offset (in elements) of the slice an index tuple selects within one batch of data.
Result<int64_t> tuple_offset(const Node& node, const View& idx, int64_t t, const NdSpec& s,
                             std::span<const int64_t> data, int64_t b, std::span<const int64_t> ds) {
  int64_t off = 0;
  for (int64_t j = 0; j < s.k; ++j) {
    const int64_t dim = data[static_cast<size_t>(b + j)];
    MOSS_ASSIGN_OR_RETURN(int64_t v, read_index(node, idx, t * s.k + j, dim));
    off += v * ds[static_cast<size_t>(b + j)];
  }
  return off;
}

Status run_GatherND(const Node& node, std::span<const View> in, std::span<const View> out) {
  const int64_t b = node.attr_int("batch_dims", 0);
  MOSS_ASSIGN_OR_RETURN(NdSpec s, nd_spec(node, in[0].shape, in[1].shape, b));
  const auto ds = dense_strides(in[0].shape);
  const int64_t batch_stride = b > 0 ? ds[static_cast<size_t>(b - 1)] : 0;
  const size_t es = dtype_size(in[0].dtype);
  for (int64_t bi = 0; bi < s.batch; ++bi) {
    for (int64_t t = 0; t < s.tuples; ++t) {
      MOSS_ASSIGN_OR_RETURN(int64_t off, tuple_offset(node, in[1], bi * s.tuples + t, s, in[0].shape, b, ds));
      std::memcpy(out[0].data + ((bi * s.tuples + t) * s.slice) * es,
                  in[0].data + (bi * batch_stride + off) * es, static_cast<size_t>(s.slice) * es);
    }
  }
  return Status::Ok();
}

Status infer_ScatterND(const Node& node, std::span<const TensorInfo* const> in,
                       std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 3, 3));
  MOSS_RETURN_IF_ERROR(check_scatter_reduction(node));
  MOSS_RETURN_IF_ERROR(require_dtype(node, *in[1], {DType::kInt64}, "indices"));
  MOSS_RETURN_IF_ERROR(require_same_dtype(node, *in[0], *in[2], "updates"));
  MOSS_ASSIGN_OR_RETURN(NdSpec s, nd_spec(node, in[0]->shape, in[1]->shape, 0));
  std::vector<int64_t> ushape(in[1]->shape.begin(), in[1]->shape.end() - 1);
  ushape.insert(ushape.end(), in[0]->shape.begin() + s.k, in[0]->shape.end());
  if (ushape != in[2]->shape) {
    return invalid_argument("{}: updates shape {} should be {}", node.label(),
                            shape_to_string(in[2]->shape), shape_to_string(ushape));
  }
  if (node.attr_string("reduction", "none") != "none") MOSS_RETURN_IF_ERROR(require_numeric(node, *in[0], "data"));
  return set_out(out, in[0]->dtype, in[0]->shape);
}

Status run_ScatterND(const Node& node, std::span<const View> in, std::span<const View> out) {
  MOSS_ASSIGN_OR_RETURN(NdSpec s, nd_spec(node, in[0].shape, in[1].shape, 0));
  const auto ds = dense_strides(in[0].shape);
  const std::string red = node.attr_string("reduction", "none");
  if (out[0].data != in[0].data) std::memcpy(out[0].data, in[0].data, static_cast<size_t>(in[0].numel) * dtype_size(in[0].dtype));
  return dispatch_all(node, in[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    T* y = out[0].as<T>();
    const T* u = in[2].as<T>();
    for (int64_t t = 0; t < s.tuples; ++t) {
      MOSS_ASSIGN_OR_RETURN(int64_t off, tuple_offset(node, in[1], t, s, in[0].shape, 0, ds));
      for (int64_t e = 0; e < s.slice; ++e) combine<T>(red, y + off + e, u + t * s.slice + e);
    }
    return Status::Ok();
  });
}

}  // namespace

std::vector<OpKernel> gather_scatter_kernels() {
  return {
      {"GatherElements", infer_GatherElements, run_GatherElements},
      {"ScatterElements", infer_ScatterElements, run_ScatterElements},
      {"Scatter", infer_ScatterElements, run_ScatterElements},
      {"GatherND", infer_GatherND, run_GatherND},
      {"ScatterND", infer_ScatterND, run_ScatterND},
  };
}

}  // namespace moss::engine::ref
