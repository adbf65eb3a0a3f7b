// Small helpers shared by the reference kernels (one home, not one copy per file).
#pragma once

#include "engine/kernels/kernel.h"

#include <vector>

namespace moss::engine::ref {

inline Status set_out(std::vector<TensorInfo>& out, DType dt, std::vector<int64_t> shape) {
  out.resize(1);
  out[0].dtype = dt;
  out[0].shape = std::move(shape);
  return Status::Ok();
}

// Row-major element strides of a dense tensor.
inline std::vector<int64_t> dense_strides(std::span<const int64_t> shape) {
  std::vector<int64_t> s(shape.size(), 1);
  for (size_t i = shape.size(); i-- > 1;) s[i - 1] = s[i] * shape[i];
  return s;
}

// A tensor seen as [outer, n, inner] around one axis (axis already normalized).
struct AxisSplit {
  int64_t outer = 1, n = 1, inner = 1;
};
inline AxisSplit split_at(std::span<const int64_t> shape, int64_t axis) {
  AxisSplit s;
  for (int64_t i = 0; i < static_cast<int64_t>(shape.size()); ++i) {
    if (i < axis) s.outer *= shape[i];
    else if (i == axis) s.n = shape[i];
    else s.inner *= shape[i];
  }
  return s;
}

}  // namespace moss::engine::ref
