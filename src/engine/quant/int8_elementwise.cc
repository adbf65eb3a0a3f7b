#include "engine/quant/int8_elementwise.h"

// GCC 12's AVX-512 intrinsics start from _mm512_undefined_*(), which -Wmaybe-uninitialized
// reports as a false positive when they are inlined into a target("avx512f") function.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

namespace moss::engine {
namespace {

bool has_avx512() {
  static const bool yes = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
  return yes;
}

template <typename T>
T saturate(float v) {  // v already rounded
  return static_cast<T>(std::clamp(v, static_cast<float>(std::numeric_limits<T>::lowest()),
                                   static_cast<float>(std::numeric_limits<T>::max())));
}

#define MOSS_AVX512 __attribute__((target("avx512f,avx512bw")))

template <typename T>
MOSS_AVX512 __m512 load16(const T* p) {
  const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  if constexpr (std::is_same_v<T, uint8_t>) return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(b));
  return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(b));
}

// Rounds half to even, saturates to T and stores 16 values.
template <typename T>
MOSS_AVX512 void store16(T* p, __m512 v) {
  __m512i i = _mm512_cvt_roundps_epi32(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  i = _mm512_max_epi32(i, _mm512_set1_epi32(std::numeric_limits<T>::lowest()));
  i = _mm512_min_epi32(i, _mm512_set1_epi32(std::numeric_limits<T>::max()));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm512_cvtepi32_epi8(i));
}

template <typename T>
MOSS_AVX512 int64_t add_avx512(const T* a, const T* b, T* y, int64_t n, float ka, float kb,
                               float k0) {
  const __m512 va = _mm512_set1_ps(ka), vb = _mm512_set1_ps(kb), v0 = _mm512_set1_ps(k0);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 s = _mm512_add_ps(_mm512_mul_ps(load16(a + i), va), _mm512_mul_ps(load16(b + i), vb));
    store16(y + i, _mm512_add_ps(s, v0));
  }
  return i;
}

template <typename T>
MOSS_AVX512 int64_t quantize_avx512(const float* x, T* y, int64_t n, float scale, int32_t zp) {
  const __m512 s = _mm512_set1_ps(scale), z = _mm512_set1_ps(static_cast<float>(zp));
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    // round(x / s) + zp: rounding first, then the (integer) zero point.
    const __m512 q = _mm512_roundscale_ps(_mm512_div_ps(_mm512_loadu_ps(x + i), s),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    store16(y + i, _mm512_add_ps(q, z));
  }
  return i;
}

template <typename T>
MOSS_AVX512 int64_t dequantize_avx512(const T* x, float* y, int64_t n, float scale, int32_t zp) {
  const __m512 s = _mm512_set1_ps(scale), z = _mm512_set1_ps(static_cast<float>(zp));
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_mul_ps(_mm512_sub_ps(load16(x + i), z), s));
  return i;
}

MOSS_AVX512 int64_t range_avx512(const float* x, int64_t n, float& mn, float& mx) {
  __m512 lo = _mm512_setzero_ps(), hi = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 v = _mm512_loadu_ps(x + i);
    lo = _mm512_min_ps(lo, v);
    hi = _mm512_max_ps(hi, v);
  }
  float l[16], h[16];
  _mm512_storeu_ps(l, lo);
  _mm512_storeu_ps(h, hi);
  for (int j = 0; j < 16; ++j) {
    mn = std::min(mn, l[j]);
    mx = std::max(mx, h[j]);
  }
  return i;
}

}  // namespace

void range_with_zero(const float* x, int64_t n, float& mn, float& mx) {
  mn = 0;
  mx = 0;
  int64_t i = has_avx512() ? range_avx512(x, n, mn, mx) : 0;
  for (; i < n; ++i) {
    mn = std::min(mn, x[i]);
    mx = std::max(mx, x[i]);
  }
}

DynamicQuantization dynamic_quantize_u8(const float* x, uint8_t* y, int64_t n) {
  float mn = 0, mx = 0;
  range_with_zero(x, n, mn, mx);
  DynamicQuantization q;
  q.scale = (mx - mn) / 255.0f;
  if (q.scale == 0) {
    std::fill_n(y, n, uint8_t{0});
    return q;
  }
  q.zero_point = static_cast<uint8_t>(
      std::clamp(std::nearbyint(-static_cast<double>(mn / q.scale)), 0.0, 255.0));
  quantize_f32(x, y, n, q.scale, q.zero_point);
  return q;
}

template <typename T>
void add_requantize(const T* a, const T* b, T* y, int64_t n, float ka, float kb, float k0) {
  int64_t i = has_avx512() ? add_avx512(a, b, y, n, ka, kb, k0) : 0;
  for (; i < n; ++i) {
    const float s = static_cast<float>(a[i]) * ka + static_cast<float>(b[i]) * kb;
    y[i] = saturate<T>(std::nearbyint(s + k0));
  }
}

template <typename T>
void quantize_f32(const float* x, T* y, int64_t n, float scale, int32_t zp) {
  int64_t i = has_avx512() ? quantize_avx512(x, y, n, scale, zp) : 0;
  for (; i < n; ++i) y[i] = saturate<T>(std::nearbyint(x[i] / scale) + static_cast<float>(zp));
}

template <typename T>
void dequantize_f32(const T* x, float* y, int64_t n, float scale, int32_t zp) {
  int64_t i = has_avx512() ? dequantize_avx512(x, y, n, scale, zp) : 0;
  for (; i < n; ++i) y[i] = (static_cast<float>(x[i]) - static_cast<float>(zp)) * scale;
}

template void add_requantize(const uint8_t*, const uint8_t*, uint8_t*, int64_t, float, float, float);
template void add_requantize(const int8_t*, const int8_t*, int8_t*, int64_t, float, float, float);
template void quantize_f32(const float*, uint8_t*, int64_t, float, int32_t);
template void quantize_f32(const float*, int8_t*, int64_t, float, int32_t);
template void dequantize_f32(const uint8_t*, float*, int64_t, float, int32_t);
template void dequantize_f32(const int8_t*, float*, int64_t, float, int32_t);

}  // namespace moss::engine
