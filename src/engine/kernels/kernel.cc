#include "engine/kernels/kernel.h"

#include "common/tensor_proto.h"

#include <algorithm>

namespace moss::engine {

Status require_inputs(const Node& node, std::span<const TensorInfo* const> in, size_t min,
                      size_t max) {
  size_t present = 0;
  for (size_t i = 0; i < in.size(); ++i) present = in[i] ? i + 1 : present;
  if (in.size() > max) {
    return invalid_argument("{}: takes at most {} inputs, got {}", node.label(), max, in.size());
  }
  for (size_t i = 0; i < min; ++i) {
    if (i >= in.size() || !in[i]) {
      return invalid_argument("{}: required input {} is missing", node.label(), i);
    }
  }
  (void)present;
  return Status::Ok();
}

Status require_dtype(const Node& node, const TensorInfo& t, std::initializer_list<DType> allowed,
                     const char* what) {
  for (DType d : allowed) {
    if (t.dtype == d) return Status::Ok();
  }
  return unimplemented("{}: {} has unsupported element type {}", node.label(), what,
                       dtype_name(t.dtype));
}

bool is_float_dtype(DType d) {
  return d == DType::kFloat32 || d == DType::kFloat64 || d == DType::kFloat16 ||
         d == DType::kBFloat16;
}

bool is_integer_dtype(DType d) { return !is_float_dtype(d) && d != DType::kBool; }

bool is_signed_dtype(DType d) {
  return is_float_dtype(d) || d == DType::kInt8 || d == DType::kInt16 || d == DType::kInt32 ||
         d == DType::kInt64;
}

Status require_float(const Node& node, const TensorInfo& t, const char* what) {
  if (is_float_dtype(t.dtype)) return Status::Ok();
  return unimplemented("{}: {} has unsupported element type {} (a float type is required)",
                       node.label(), what, dtype_name(t.dtype));
}

Status require_numeric(const Node& node, const TensorInfo& t, const char* what) {
  if (t.dtype != DType::kBool) return Status::Ok();
  return unimplemented("{}: {} has unsupported element type bool", node.label(), what);
}

Status require_same_dtype(const Node& node, const TensorInfo& a, const TensorInfo& b,
                          const char* what) {
  if (a.dtype == b.dtype) return Status::Ok();
  return invalid_argument("{}: {} has type {}, expected {}", node.label(), what,
                          dtype_name(b.dtype), dtype_name(a.dtype));
}

Result<DType> dtype_from_onnx_number(const Node& node, int64_t t) {
  if (auto d = dtype_from_onnx(t)) return *d;
  return unimplemented("{}: element type {} (ONNX type {}) is not supported", node.label(), onnx_type_name(t), t);
}

Result<int64_t> normalize_axis(const Node& node, int64_t axis, int64_t rank) {
  if (axis < -rank || axis >= rank) {
    return invalid_argument("{}: axis {} is out of range for rank {}", node.label(), axis, rank);
  }
  return axis < 0 ? axis + rank : axis;
}

Result<std::vector<int64_t>> const_ints(const Node& node, const TensorInfo* t, const char* what) {
  if (!t) return std::vector<int64_t>{};
  if (!t->value) {
    return unimplemented("{}: input '{}' must be a constant (or computable from input shapes)",
                         node.label(), what);
  }
  const Tensor& v = *t->value;
  std::vector<int64_t> out(static_cast<size_t>(v.numel()));
  if (v.dtype() == DType::kInt64) {
    std::copy_n(v.data<int64_t>(), out.size(), out.begin());
  } else if (v.dtype() == DType::kInt32) {
    std::copy_n(v.data<int32_t>(), out.size(), out.begin());
  } else {
    return invalid_argument("{}: input '{}' must be int64 or int32, got {}", node.label(), what,
                            dtype_name(v.dtype()));
  }
  return out;
}

Result<int64_t> const_int_scalar(const Node& node, const TensorInfo* t, const char* what) {
  MOSS_ASSIGN_OR_RETURN(auto v, const_ints(node, t, what));
  if (v.size() != 1) return invalid_argument("{}: '{}' must be a scalar", node.label(), what);
  return v[0];
}

Result<std::vector<float>> const_floats(const Node& node, const TensorInfo* t, const char* what) {
  if (!t) return std::vector<float>{};
  if (!t->value) {
    return unimplemented("{}: input '{}' must be a constant", node.label(), what);
  }
  if (t->value->dtype() != DType::kFloat32) {
    return invalid_argument("{}: input '{}' must be float32", node.label(), what);
  }
  const float* p = t->value->data<float>();
  return std::vector<float>(p, p + t->value->numel());
}

Result<TensorInfo> info_with_value(const View& v) {
  TensorInfo t;
  t.dtype = v.dtype;
  t.shape.assign(v.shape.begin(), v.shape.end());
  MOSS_ASSIGN_OR_RETURN(Tensor c, Tensor::from_bytes(v.dtype, t.shape,
                                                     {v.data, static_cast<size_t>(v.numel) * dtype_size(v.dtype)}));
  t.value = std::make_shared<const Tensor>(std::move(c));
  return t;
}

Result<std::vector<int64_t>> broadcast_shapes(const Node& node, std::span<const int64_t> a,
                                              std::span<const int64_t> b) {
  size_t r = std::max(a.size(), b.size());
  std::vector<int64_t> out(r);
  for (size_t i = 0; i < r; ++i) {
    int64_t da = i < r - a.size() ? 1 : a[i - (r - a.size())];
    int64_t db = i < r - b.size() ? 1 : b[i - (r - b.size())];
    if (da != db && da != 1 && db != 1) {
      return invalid_argument("{}: shapes {} and {} do not broadcast", node.label(),
                              shape_to_string(a), shape_to_string(b));
    }
    out[i] = da == 1 ? db : da;
  }
  return out;
}

std::vector<int64_t> broadcast_strides(std::span<const int64_t> in, std::span<const int64_t> out) {
  std::vector<int64_t> strides(out.size(), 0);
  int64_t s = 1;
  for (size_t k = 0; k < in.size(); ++k) {
    size_t i = in.size() - 1 - k;
    size_t o = out.size() - 1 - k;
    strides[o] = in[i] == 1 ? 0 : s;
    s *= in[i];
  }
  return strides;
}

int64_t numel_of(std::span<const int64_t> shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

}  // namespace moss::engine
