#include "engine/quant/int8_weights.h"

namespace moss::engine {

Status check_int8_b_scale(const Node& node, const TensorInfo& b, const TensorInfo& b_scale,
                          const TensorInfo* b_zero_point, int64_t n) {
  MOSS_RETURN_IF_ERROR(require_dtype(node, b_scale, {DType::kFloat32}, "b_scale"));
  if (b_scale.numel() != 1 && b_scale.numel() != n) {
    return invalid_argument("{}: b_scale has {} elements, not 1 or {}", node.label(),
                            b_scale.numel(), n);
  }
  if (b_zero_point) {
    MOSS_RETURN_IF_ERROR(require_same_dtype(node, b, *b_zero_point, "b_zero_point"));
    if (b_zero_point->numel() != b_scale.numel()) {
      return invalid_argument("{}: b_zero_point and b_scale differ in size", node.label());
    }
  }
  return Status::Ok();
}

std::optional<std::vector<int8_t>> pack_int8_b(const Tensor& b, const Tensor* b_zero_point,
                                               int64_t k, int64_t n, bool trans_b) {
  std::vector<int8_t> packed(static_cast<size_t>(k * n));
  for (int64_t r = 0; r < k; ++r) {
    for (int64_t c = 0; c < n; ++c) {
      const int32_t z = b_zero_point ? int8_at(b_zero_point->dtype(), b_zero_point->raw(),
                                               b_zero_point->numel() == 1 ? 0 : c)
                                     : 0;
      const int32_t v = int8_at(b.dtype(), b.raw(), trans_b ? c * k + r : r * n + c) - z;
      if (v < -128 || v > 127) return std::nullopt;
      packed[static_cast<size_t>(r * n + c)] = static_cast<int8_t>(v);
    }
  }
  return packed;
}

}  // namespace moss::engine
