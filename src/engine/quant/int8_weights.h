// The 8-bit B operand of the int8 matmuls (QGemm, DynamicQuantizeMatMul, MatMulInteger): reading
// an element, checking B's scale and zero point, and packing B - b_zp once as int8 for oneDNN.
// One copy, so a fix to the checks or the packing reaches every operator.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "engine/kernels/kernel.h"

namespace moss::engine {

// Element i of an 8-bit buffer of dtype uint8 or int8, widened.
inline int32_t int8_at(DType d, const uint8_t* p, int64_t i) {
  return d == DType::kUInt8 ? p[i] : reinterpret_cast<const int8_t*>(p)[i];
}

// B's per-tensor or per-column (N) scale: float32 with 1 or n elements; its zero point, when
// given, of B's dtype and the scale's size.
Status check_int8_b_scale(const Node& node, const TensorInfo& b, const TensorInfo& b_scale,
                          const TensorInfo* b_zero_point, int64_t n);

// B - b_zp[n] as int8 [K, N] (B stored [K, N], or [N, K] with trans_b); nullopt when a value does
// not fit int8 (the reference kernel runs then). `b_zero_point` has 1 or n elements, or is null.
std::optional<std::vector<int8_t>> pack_int8_b(const Tensor& b, const Tensor* b_zero_point,
                                               int64_t k, int64_t n, bool trans_b = false);

}  // namespace moss::engine
