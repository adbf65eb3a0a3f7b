// Element-wise int8 loops shared by the quantized operators' kernels (QLinearAdd, Quantize- and
// DequantizeLinear): one implementation per formula, AVX-512 where the CPU has it (checked once at
// run time; the build stays portable x86-64), scalar otherwise. Both paths round half to even (the
// CPU's default rounding mode, as ONNX specifies) and give identical results.
#pragma once

#include <cstdint>

namespace moss::engine {

// y[i] = saturate(round(a[i]*ka + b[i]*kb + k0)), the requantized sum of two 8-bit tensors.
// T is uint8_t or int8_t (a, b and y of one type).
template <typename T>
void add_requantize(const T* a, const T* b, T* y, int64_t n, float ka, float kb, float k0);

// y[i] = saturate(round(x[i] / scale) + zp) (x / scale in float, as ONNX Runtime divides).
template <typename T>
void quantize_f32(const float* x, T* y, int64_t n, float scale, int32_t zp);

// y[i] = (x[i] - zp) * scale.
template <typename T>
void dequantize_f32(const T* x, float* y, int64_t n, float scale, int32_t zp);

// mn = min(0, min x), mx = max(0, max x) (DynamicQuantizeLinear's range, which includes 0).
void range_with_zero(const float* x, int64_t n, float& mn, float& mx);

// DynamicQuantizeLinear of n floats into y: scale (max - min) / 255 over the range with zero,
// zero point saturate(round(-min / scale)); an all-zero x gives scale 0, zero point 0 and zeros.
// The same numbers as the reference kernel (kernels/ref/quantize.cc).
struct DynamicQuantization {
  float scale = 0;
  uint8_t zero_point = 0;
};
DynamicQuantization dynamic_quantize_u8(const float* x, uint8_t* y, int64_t n);

}  // namespace moss::engine
