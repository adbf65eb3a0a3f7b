// GroupNorm (group_norm.h): one pass for the mean, one for the variance around it, one that
// writes x * a + b (a, b per channel from the statistics, gamma and beta) and the SiLU, where the
// unfused export makes six passes (InstanceNormalization's three, Mul, Add, Sigmoid, Mul). NCHW
// groups are contiguous and run 16 lanes wide on AVX-512 hosts; NHWC and other hosts run the
// scalar loops (double statistics, the reference kernels' fast_sigmoid).
#include "engine/kernels/group_norm.h"

#include "engine/kernels/avx512_math.h"
#include "engine/kernels/ref/fast_math.h"

#include <cmath>

namespace moss::engine {
namespace {

Status infer_GroupNorm(const Node& node, std::span<const TensorInfo* const> in,
                       std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 3, 3));
  for (size_t i = 0; i < 3; ++i) {
    MOSS_RETURN_IF_ERROR(require_dtype(node, *in[i], {DType::kFloat32}, i == 0 ? "X" : "gamma/beta"));
  }
  const auto& x = in[0]->shape;
  const bool nhwc = node.attr_int("channels_last", 1) != 0;
  const int64_t groups = node.attr_int("groups", 0), activation = node.attr_int("activation", 0);
  if (x.size() < 2) return invalid_argument("{}: X must have rank 2 or more", node.label());
  const int64_t C = nhwc ? x.back() : x[1];
  if (groups < 1 || C % groups != 0) {
    return invalid_argument("{}: groups {} must divide the {} channels", node.label(), groups, C);
  }
  if (activation != 0 && activation != 1) {
    return invalid_argument("{}: activation {} (0 none, 1 SiLU)", node.label(), activation);
  }
  if (!(node.attr_float("epsilon", 1e-5f) >= 0.f)) {
    return invalid_argument("{}: epsilon must be >= 0", node.label());
  }
  for (size_t i = 1; i < 3; ++i) {
    const auto& s = in[i]->shape;
    bool per_channel = s.size() == 1 && s[0] == C;
    if (!nhwc && s.size() + 1 == x.size() && !s.empty() && s[0] == C) {
      per_channel = true;
      for (size_t d = 1; d < s.size(); ++d) per_channel &= s[d] == 1;
    }
    if (!per_channel) {
      return invalid_argument("{}: gamma and beta must have shape [{}] (or [{}, 1, ...] of rank {})",
                              node.label(), C, C, x.size() - 1);
    }
  }
  out.resize(1);
  out[0].dtype = DType::kFloat32;
  out[0].shape = x;
  return Status::Ok();
}

// mean and 1/sqrt(var + eps) of n contiguous floats.
MOSS_AVX512F void stats_avx512(const float* x, int64_t n, float eps, float& mean, float& inv) {
  __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    s0 = _mm512_add_ps(s0, _mm512_loadu_ps(x + i));
    s1 = _mm512_add_ps(s1, _mm512_loadu_ps(x + i + 16));
    s2 = _mm512_add_ps(s2, _mm512_loadu_ps(x + i + 32));
    s3 = _mm512_add_ps(s3, _mm512_loadu_ps(x + i + 48));
  }
  for (; i < n; i += 16) s0 = _mm512_add_ps(s0, _mm512_maskz_loadu_ps(avx512::lanes(n - i), x + i));
  const float m = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3))) /
                  static_cast<float>(n);
  const __m512 vm = _mm512_set1_ps(m);
  s0 = s1 = s2 = s3 = _mm512_setzero_ps();
  for (i = 0; i + 64 <= n; i += 64) {
    const __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(x + i), vm);
    const __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(x + i + 16), vm);
    const __m512 d2 = _mm512_sub_ps(_mm512_loadu_ps(x + i + 32), vm);
    const __m512 d3 = _mm512_sub_ps(_mm512_loadu_ps(x + i + 48), vm);
    s0 = _mm512_fmadd_ps(d0, d0, s0);
    s1 = _mm512_fmadd_ps(d1, d1, s1);
    s2 = _mm512_fmadd_ps(d2, d2, s2);
    s3 = _mm512_fmadd_ps(d3, d3, s3);
  }
  for (; i < n; i += 16) {
    const __mmask16 k = avx512::lanes(n - i);
    const __m512 d = _mm512_maskz_sub_ps(k, _mm512_maskz_loadu_ps(k, x + i), vm);
    s0 = _mm512_fmadd_ps(d, d, s0);
  }
  const float var = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3))) /
                    static_cast<float>(n);
  mean = m;
  inv = 1.f / std::sqrt(var + eps);
}

// y = x * a + b over n floats, then y * sigmoid(y) when silu.
MOSS_AVX512F void affine_avx512(const float* x, float* y, int64_t n, float a, float b, bool silu) {
  const __m512 va = _mm512_set1_ps(a), vb = _mm512_set1_ps(b);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = avx512::lanes(n - i);
    __m512 v = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, x + i), va, vb);
    if (silu) v = _mm512_mul_ps(v, avx512::sigmoid16(v));
    _mm512_mask_storeu_ps(y + i, k, v);
  }
}

Status run_GroupNorm(const Node& node, std::span<const View> in, std::span<const View> out) {
  const auto x = in[0].shape;
  const bool nhwc = node.attr_int("channels_last", 1) != 0;
  const bool silu = node.attr_int("activation", 0) == 1;
  const float eps = node.attr_float("epsilon", 1e-5f);
  const int64_t N = x[0], C = nhwc ? x.back() : x[1], G = node.attr_int("groups", 1), Cg = C / G;
  const int64_t S = N * C == 0 ? 0 : in[0].numel / (N * C);
  const float *X = in[0].as<float>(), *gamma = in[1].as<float>(), *beta = in[2].as<float>();
  float* Y = out[0].as<float>();
  if (S == 0 || Cg == 0) return Status::Ok();
  const bool wide = !nhwc && avx512::host_has_avx512();
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t g = 0; g < G; ++g) {
      // Element (s, j) of the group: channel g*Cg + j at spatial position s.
      auto at = [&](int64_t s, int64_t j) {
        return nhwc ? (n * S + s) * C + g * Cg + j : ((n * C + g * Cg + j) * S + s);
      };
      float mean = 0, inv = 0;
      if (wide) {
        stats_avx512(X + at(0, 0), Cg * S, eps, mean, inv);
      } else {
        double sum = 0, sq = 0;
        for (int64_t j = 0; j < Cg; ++j) {
          for (int64_t s = 0; s < S; ++s) sum += X[at(s, j)];
        }
        const double m = sum / static_cast<double>(Cg * S);
        for (int64_t j = 0; j < Cg; ++j) {
          for (int64_t s = 0; s < S; ++s) sq += (X[at(s, j)] - m) * (X[at(s, j)] - m);
        }
        mean = static_cast<float>(m);
        inv = static_cast<float>(1.0 / std::sqrt(sq / static_cast<double>(Cg * S) + eps));
      }
      for (int64_t j = 0; j < Cg; ++j) {
        const int64_t c = g * Cg + j;
        const float a = inv * gamma[c], b = beta[c] - mean * a;
        if (wide) {
          affine_avx512(X + at(0, j), Y + at(0, j), S, a, b, silu);
          continue;
        }
        for (int64_t s = 0; s < S; ++s) {
          const float v = X[at(s, j)] * a + b;
          Y[at(s, j)] = silu ? v * ref::fast_sigmoid(v) : v;
        }
      }
    }
  }
  return Status::Ok();
}

}  // namespace

std::vector<OpKernel> group_norm_kernels() { return {{"GroupNorm", infer_GroupNorm, run_GroupNorm}}; }

}  // namespace moss::engine
