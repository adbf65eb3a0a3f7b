// Naive reference loops (double accumulation) that the oneDNN kernels are compared against, plus
// random data and comparison helpers. Test-only; deliberately the most obvious code.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "engine/kernels/onednn/onednn_ops.h"

namespace moss::engine::onednn::testing {

inline int64_t count(const Dims& d) {
  int64_t n = 1;
  for (int64_t v : d) n *= v;
  return n;
}

inline std::vector<float> random_floats(int64_t n, uint32_t seed, float lo = -1.f, float hi = 1.f) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = dist(gen);
  return v;
}

inline void expect_close(const std::vector<float>& got, const std::vector<float>& want,
                         double tol = 1e-4) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_NEAR(got[i], want[i], tol * (1.0 + std::fabs(want[i]))) << "at index " << i;
  }
}

inline float apply_post(const std::vector<PostOp>& ops, float x, float residual) {
  for (const PostOp& op : ops) {
    switch (op.kind) {
      case PostOp::Kind::kRelu:
        x = std::max(x, 0.f);
        break;
      case PostOp::Kind::kLeakyRelu:
        x = x >= 0 ? x : op.alpha * x;
        break;
      case PostOp::Kind::kClip:
        x = std::min(std::max(x, op.alpha), op.beta);
        break;
      case PostOp::Kind::kSigmoid:
        x = 1.f / (1.f + std::exp(-x));
        break;
      case PostOp::Kind::kTanh:
        x = std::tanh(x);
        break;
      case PostOp::Kind::kHardSwish:
        x = x * std::max(0.f, std::min(1.f, x / 6.f + 0.5f));
        break;
      case PostOp::Kind::kHardSigmoid:
        x = std::max(0.f, std::min(1.f, op.alpha * x + op.beta));
        break;
      case PostOp::Kind::kGeluErf:
        x = 0.5f * x * (1.f + std::erf(x / std::sqrt(2.f)));
        break;
      case PostOp::Kind::kGeluTanh:
        x = 0.5f * x * (1.f + std::tanh(0.7978845608f * (x + 0.044715f * x * x * x)));
        break;
      case PostOp::Kind::kLinear:
        x = op.alpha * x + op.beta;
        break;
      case PostOp::Kind::kAddResidual:
        x += residual;
        break;
    }
  }
  return x;
}

// ONNX Conv on 1-D or 2-D spatial input (3-D input treated as H=1).
inline std::vector<float> ref_conv(const ConvParams& p, const Dims& out, const float* x,
                                   const float* w, const float* b, const float* residual) {
  const bool one_d = p.src_dims.size() == 3;
  const int64_t n_ = p.src_dims[0], c = p.src_dims[1];
  const int64_t ih = one_d ? 1 : p.src_dims[2], iw = p.src_dims.back();
  const int64_t m = p.weight_dims[0], cg = p.weight_dims[1];
  const int64_t kh = one_d ? 1 : p.weight_dims[2], kw = p.weight_dims.back();
  const int64_t oh = one_d ? 1 : out[2], ow = out.back();
  auto at = [&](const Dims& v, int64_t def, bool h) {
    if (v.empty()) return def;
    return one_d ? (h ? def : v[0]) : v[h ? 0 : 1];
  };
  const int64_t sh = at(p.strides, 1, true), sw = at(p.strides, 1, false);
  const int64_t dh = at(p.dilations, 1, true), dw = at(p.dilations, 1, false);
  const int64_t ph = at(p.pads_begin, 0, true), pw = at(p.pads_begin, 0, false);
  const int64_t mg = m / p.group;
  std::vector<float> y(static_cast<size_t>(n_ * m * oh * ow));
  for (int64_t n = 0; n < n_; ++n)
    for (int64_t o = 0; o < m; ++o)
      for (int64_t yh = 0; yh < oh; ++yh)
        for (int64_t yw = 0; yw < ow; ++yw) {
          double acc = b ? b[o] : 0.0;
          const int64_t g = o / mg;
          for (int64_t ci = 0; ci < cg; ++ci)
            for (int64_t a = 0; a < kh; ++a)
              for (int64_t e = 0; e < kw; ++e) {
                const int64_t hh = yh * sh - ph + a * dh, ww = yw * sw - pw + e * dw;
                if (hh < 0 || hh >= ih || ww < 0 || ww >= iw) continue;
                acc += double(x[((n * c + g * cg + ci) * ih + hh) * iw + ww]) *
                       w[((o * cg + ci) * kh + a) * kw + e];
              }
          const size_t idx = static_cast<size_t>(((n * m + o) * oh + yh) * ow + yw);
          y[idx] = apply_post(p.options.post_ops, float(acc), residual ? residual[idx] : 0.f);
        }
  return y;
}

// Y[b, m, n] = sum_k A[b, m, k] * B[b, k, n] with batch broadcasting on already-aligned dims.
inline std::vector<float> ref_matmul(const Dims& a_dims, const Dims& b_dims, const Dims& out,
                                     const float* a, const float* b) {
  const size_t r = out.size();
  const int64_t m = out[r - 2], n = out[r - 1], k = a_dims[r - 1];
  const int64_t batch = count(out) / (m * n);
  std::vector<float> y(static_cast<size_t>(count(out)));
  for (int64_t bi = 0; bi < batch; ++bi) {
    // Decompose the batch index and map it into A and B (size-1 dims broadcast).
    int64_t rem = bi, a_off = 0, b_off = 0, a_stride = m * k, b_stride = k * n;
    for (size_t d = r - 2; d-- > 0;) {
      const int64_t idx = rem % out[d];
      rem /= out[d];
      a_off += (a_dims[d] == 1 ? 0 : idx) * a_stride;
      b_off += (b_dims[d] == 1 ? 0 : idx) * b_stride;
      a_stride *= a_dims[d];
      b_stride *= b_dims[d];
    }
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double acc = 0;
        for (int64_t q = 0; q < k; ++q) acc += double(a[a_off + i * k + q]) * b[b_off + q * n + j];
        y[static_cast<size_t>(bi * m * n + i * n + j)] = float(acc);
      }
  }
  return y;
}

// 2-D pooling reference following ONNX: max ignores padding; average divides by the window cells
// inside the input (exclude) or inside input+pads (include). Output dims given.
inline std::vector<float> ref_pool(const PoolParams& p, const Dims& out, const float* x) {
  const int64_t nc = p.src_dims[0] * p.src_dims[1], ih = p.src_dims[2], iw = p.src_dims[3];
  const int64_t oh = out[2], ow = out[3];
  const bool global = p.kernel.empty();
  const int64_t kh = global ? ih : p.kernel[0], kw = global ? iw : p.kernel[1];
  auto get = [&](const Dims& v, size_t i, int64_t def) { return v.empty() ? def : v[i]; };
  const int64_t sh = get(p.strides, 0, 1), sw = get(p.strides, 1, 1);
  const int64_t dh = get(p.dilations, 0, 1), dw = get(p.dilations, 1, 1);
  const int64_t ph = get(p.pads_begin, 0, 0), pw = get(p.pads_begin, 1, 0);
  const int64_t peh = get(p.pads_end, 0, 0), pew = get(p.pads_end, 1, 0);
  std::vector<float> y(static_cast<size_t>(nc * oh * ow));
  for (int64_t c = 0; c < nc; ++c)
    for (int64_t yh = 0; yh < oh; ++yh)
      for (int64_t yw = 0; yw < ow; ++yw) {
        double acc = 0;
        float mx = -std::numeric_limits<float>::infinity();
        int64_t cells = 0, padded_cells = 0;
        for (int64_t a = 0; a < kh; ++a)
          for (int64_t e = 0; e < kw; ++e) {
            const int64_t hh = yh * sh - ph + a * dh, ww = yw * sw - pw + e * dw;
            if (hh < ih + peh && ww < iw + pew) ++padded_cells;
            if (hh < 0 || hh >= ih || ww < 0 || ww >= iw) continue;
            const float v = x[(c * ih + hh) * iw + ww];
            acc += v;
            mx = std::max(mx, v);
            ++cells;
          }
        float r = mx;
        if (p.kind == PoolParams::Kind::kAverage) {
          r = float(acc / double(p.count_include_pad ? padded_cells : cells));
        }
        y[static_cast<size_t>((c * oh + yh) * ow + yw)] = r;
      }
  return y;
}

}  // namespace moss::engine::onednn::testing
