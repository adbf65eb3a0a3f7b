// Normalizations beyond BatchNormalization/LayerNormalization: InstanceNormalization,
// GroupNormalization (opset 18 per-group and opset 21 per-channel scale/bias),
// MeanVarianceNormalization, LpNormalization, LRN; and GlobalMaxPool. Statistics in double; float
// types (16-bit floats computed in float).
#include "engine/kernels/ref/ref_kernels.h"
#include "engine/kernels/ref/ref_util.h"

#include <algorithm>
#include <cmath>

namespace moss::engine::ref {
namespace {

// Normalizes `groups` contiguous runs of `len` elements to zero mean / unit variance, then
// applies y = v * scale[ch] + bias[ch] where ch = channel of the element (run of `per_ch`
// elements; `channels` channels per sample).
// Sum of f(x[i]) in double with four independent accumulators: a single running sum is one
// dependent add per element (a U-Net's GroupNorm spent most of its time here).
template <typename T, typename F>
double sum_runs(const T* x, int64_t len, F f) {
  double acc[4] = {0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 4 <= len; i += 4) {
    for (int k = 0; k < 4; ++k) acc[k] += f(x[i + k]);
  }
  for (; i < len; ++i) acc[0] += f(x[i]);
  return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

template <typename T>
void normalize_runs(const T* x, T* y, int64_t groups, int64_t len, double eps, const T* scale,
                    const T* bias, int64_t per_ch, int64_t channels) {
  using C = compute_t<T>;
  auto val = [](T v) { return static_cast<double>(static_cast<C>(v)); };
  for (int64_t g = 0; g < groups; ++g) {
    const T* xs = x + g * len;
    T* ys = y + g * len;
    double mean = len ? sum_runs(xs, len, val) / static_cast<double>(len) : 0;
    double var = len ? sum_runs(xs, len, [&](T v) { return (val(v) - mean) * (val(v) - mean); }) /
                           static_cast<double>(len)
                     : 0;
    const double inv = 1.0 / std::sqrt(var + eps);
    // One channel's stretch at a time: y = x * a + b with a, b fixed per channel (no division
    // per element).
    for (int64_t i = 0; i < len;) {
      const int64_t pos = g * len + i;
      const int64_t ch = (pos / per_ch) % channels;
      const int64_t end = std::min(len, i + (per_ch - pos % per_ch));
      const double a = inv * val(scale[ch]);
      const double b = val(bias[ch]) - mean * a;
      for (; i < end; ++i) ys[i] = T(static_cast<C>(val(xs[i]) * a + b));
    }
  }
}

Status infer_InstanceNormalization(const Node& node, std::span<const TensorInfo* const> in,
                                   std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 3, 3));
  MOSS_RETURN_IF_ERROR(require_float(node, *in[0], "input"));
  const auto& s = in[0]->shape;
  if (s.size() < 3) return invalid_argument("{}: input must be [N, C, D1, ...]", node.label());
  for (int i = 1; i < 3; ++i) {
    MOSS_RETURN_IF_ERROR(require_same_dtype(node, *in[0], *in[i], i == 1 ? "scale" : "B"));
    if (in[i]->shape.size() != 1 || in[i]->shape[0] != s[1]) {
      return invalid_argument("{}: scale and B must have shape [C] = [{}]", node.label(), s[1]);
    }
  }
  return set_out(out, in[0]->dtype, s);
}

Status run_InstanceNormalization(const Node& node, std::span<const View> in, std::span<const View> out) {
  const int64_t N = in[0].shape[0], C = in[0].shape[1];
  const int64_t S = N * C == 0 ? 0 : in[0].numel / (N * C);
  const double eps = node.attr_float("epsilon", 1e-5f);
  return dispatch_float(node, in[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    normalize_runs<T>(in[0].as<T>(), out[0].as<T>(), N * C, S, eps, in[1].as<T>(), in[2].as<T>(), S, C);
    return Status::Ok();
  });
}

Status infer_GroupNormalization(const Node& node, std::span<const TensorInfo* const> in,
                                std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 3, 3));
  MOSS_RETURN_IF_ERROR(require_float(node, *in[0], "X"));
  const auto& s = in[0]->shape;
  const int64_t G = node.attr_int("num_groups", 0);
  if (s.size() < 2) return invalid_argument("{}: X must be [N, C, ...]", node.label());
  if (G < 1 || s[1] % G != 0) {
    return invalid_argument("{}: num_groups {} must divide the {} channels", node.label(), G, s[1]);
  }
  for (int i = 1; i < 3; ++i) {
    MOSS_RETURN_IF_ERROR(require_same_dtype(node, *in[0], *in[i], i == 1 ? "scale" : "bias"));
    // Opset 18 defined scale/bias per group; opset 21 per channel.
    const int64_t want = node.opset < 21 ? G : s[1];
    if (in[i]->shape.size() != 1 || in[i]->shape[0] != want) {
      return invalid_argument("{}: scale and bias must have shape [{}]", node.label(), want);
    }
  }
  return set_out(out, in[0]->dtype, s);
}

Status run_GroupNormalization(const Node& node, std::span<const View> in, std::span<const View> out) {
  const int64_t N = in[0].shape[0], C = in[0].shape[1];
  const int64_t G = node.attr_int("num_groups", 1);
  const int64_t S = N * C == 0 ? 0 : in[0].numel / (N * C);
  const double eps = node.attr_float("epsilon", 1e-5f);
  const bool per_group = node.opset < 21;
  return dispatch_float(node, in[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    normalize_runs<T>(in[0].as<T>(), out[0].as<T>(), N * G, (C / G) * S, eps, in[1].as<T>(),
                      in[2].as<T>(), per_group ? (C / G) * S : S, per_group ? G : C);
    return Status::Ok();
  });
}

// ---- MeanVarianceNormalization ---------------------------------------------------------------

Status infer_MeanVarianceNormalization(const Node& node, std::span<const TensorInfo* const> in,
                                       std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 1, 1));
  MOSS_RETURN_IF_ERROR(require_float(node, *in[0], "X"));
  const int64_t r = static_cast<int64_t>(in[0]->shape.size());
  auto axes = node.attr("axes") ? node.attr_ints("axes") : std::vector<int64_t>{0, 2, 3};
  for (int64_t a : axes) MOSS_RETURN_IF_ERROR(normalize_axis(node, a, r).status());
  return set_out(out, in[0]->dtype, in[0]->shape);
}

Status run_MeanVarianceNormalization(const Node& node, std::span<const View> in, std::span<const View> out) {
  const auto s = in[0].shape;
  const int64_t r = static_cast<int64_t>(s.size());
  auto axes = node.attr("axes") ? node.attr_ints("axes") : std::vector<int64_t>{0, 2, 3};
  std::vector<bool> red(s.size(), false);
  for (int64_t a : axes) red[static_cast<size_t>(a < 0 ? a + r : a)] = true;
  // Statistics per kept-dims index: key = position with reduced coordinates zeroed.
  const auto st = dense_strides(s);
  std::vector<double> sum(static_cast<size_t>(in[0].numel), 0.0), sq(sum.size(), 0.0);
  std::vector<int64_t> key(static_cast<size_t>(in[0].numel));
  int64_t count = 1;
  for (size_t d = 0; d < s.size(); ++d) count *= red[d] ? s[d] : 1;
  return dispatch_float(node, in[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    const T* x = in[0].as<T>();
    T* y = out[0].as<T>();
    std::vector<int64_t> idx(s.size(), 0);
    for (int64_t i = 0; i < in[0].numel; ++i) {
      int64_t k = 0;
      for (size_t d = 0; d < s.size(); ++d) k += red[d] ? 0 : idx[d] * st[d];
      key[i] = k;
      const double v = static_cast<double>(static_cast<C>(x[i]));
      sum[k] += v;
      sq[k] += v * v;
      for (size_t d = s.size(); d-- > 0;) {
        if (++idx[d] < s[d]) break;
        idx[d] = 0;
      }
    }
    for (int64_t i = 0; i < in[0].numel; ++i) {
      const double mean = sum[key[i]] / static_cast<double>(count);
      const double var = sq[key[i]] / static_cast<double>(count) - mean * mean;
      const double v = static_cast<double>(static_cast<C>(x[i]));
      y[i] = T(static_cast<C>((v - mean) / (std::sqrt(std::max(var, 0.0)) + 1e-9)));
    }
    return Status::Ok();
  });
}

// ---- LpNormalization --------------------------------------------------------------------------

Status infer_LpNormalization(const Node& node, std::span<const TensorInfo* const> in,
                             std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 1, 1));
  MOSS_RETURN_IF_ERROR(require_float(node, *in[0], "input"));
  const int64_t p = node.attr_int("p", 2);
  if (p != 1 && p != 2) return invalid_argument("{}: p must be 1 or 2, got {}", node.label(), p);
  const int64_t r = static_cast<int64_t>(in[0]->shape.size());
  MOSS_RETURN_IF_ERROR(normalize_axis(node, node.attr_int("axis", -1), std::max<int64_t>(r, 1)).status());
  return set_out(out, in[0]->dtype, in[0]->shape);
}

Status run_LpNormalization(const Node& node, std::span<const View> in, std::span<const View> out) {
  const int64_t r = static_cast<int64_t>(in[0].shape.size());
  const int64_t axis = *normalize_axis(node, node.attr_int("axis", -1), r);
  const AxisSplit s = split_at(in[0].shape, axis);
  const bool l1 = node.attr_int("p", 2) == 1;
  return dispatch_float(node, in[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    const T* x = in[0].as<T>();
    T* y = out[0].as<T>();
    for (int64_t o = 0; o < s.outer; ++o) {
      for (int64_t j = 0; j < s.inner; ++j) {
        const int64_t base = o * s.n * s.inner + j;
        double norm = 0;
        for (int64_t i = 0; i < s.n; ++i) {
          const double v = static_cast<double>(static_cast<C>(x[base + i * s.inner]));
          norm += l1 ? std::fabs(v) : v * v;
        }
        if (!l1) norm = std::sqrt(norm);
        for (int64_t i = 0; i < s.n; ++i) {
          const double v = static_cast<double>(static_cast<C>(x[base + i * s.inner]));
          y[base + i * s.inner] = T(static_cast<C>(norm == 0 ? 0.0 : v / norm));
        }
      }
    }
    return Status::Ok();
  });
}

// ---- LRN ------------------------------------------------------------------------------------

Status infer_LRN(const Node& node, std::span<const TensorInfo* const> in,
                 std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 1, 1));
  MOSS_RETURN_IF_ERROR(require_float(node, *in[0], "X"));
  if (in[0]->shape.size() < 2) return invalid_argument("{}: X must be [N, C, ...]", node.label());
  if (node.attr_int("size", 0) < 1) return invalid_argument("{}: attribute 'size' must be >= 1", node.label());
  return set_out(out, in[0]->dtype, in[0]->shape);
}

Status run_LRN(const Node& node, std::span<const View> in, std::span<const View> out) {
  const int64_t size = node.attr_int("size", 1);
  const double alpha = node.attr_float("alpha", 1e-4f), beta = node.attr_float("beta", 0.75f);
  const double bias = node.attr_float("bias", 1.0f);
  const AxisSplit s = split_at(in[0].shape, 1);
  const int64_t before = (size - 1) / 2, after = size - 1 - before;
  return dispatch_float(node, in[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    const T* x = in[0].as<T>();
    T* y = out[0].as<T>();
    for (int64_t o = 0; o < s.outer; ++o) {
      for (int64_t c = 0; c < s.n; ++c) {
        for (int64_t j = 0; j < s.inner; ++j) {
          double sq = 0;
          for (int64_t k = std::max<int64_t>(0, c - before); k <= std::min(s.n - 1, c + after); ++k) {
            const double v = static_cast<double>(static_cast<C>(x[(o * s.n + k) * s.inner + j]));
            sq += v * v;
          }
          const int64_t p = (o * s.n + c) * s.inner + j;
          const double v = static_cast<double>(static_cast<C>(x[p]));
          y[p] = T(static_cast<C>(v / std::pow(bias + alpha / static_cast<double>(size) * sq, beta)));
        }
      }
    }
    return Status::Ok();
  });
}

// ---- GlobalMaxPool --------------------------------------------------------------------------

Status infer_GlobalMaxPool(const Node& node, std::span<const TensorInfo* const> in,
                           std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 1, 1));
  MOSS_RETURN_IF_ERROR(require_float(node, *in[0], "X"));
  if (in[0]->shape.size() < 3) return invalid_argument("{}: X must be [N, C, D1, ...]", node.label());
  std::vector<int64_t> shape = in[0]->shape;
  for (size_t i = 2; i < shape.size(); ++i) {
    if (shape[i] == 0) return invalid_argument("{}: empty spatial dimension", node.label());
    shape[i] = 1;
  }
  return set_out(out, in[0]->dtype, std::move(shape));
}

Status run_GlobalMaxPool(const Node& node, std::span<const View> in, std::span<const View> out) {
  const int64_t rows = out[0].numel;
  const int64_t S = rows == 0 ? 0 : in[0].numel / rows;
  return dispatch_float(node, in[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    const T* x = in[0].as<T>();
    T* y = out[0].as<T>();
    for (int64_t r = 0; r < rows; ++r) {
      C m = static_cast<C>(x[r * S]);
      for (int64_t i = 1; i < S; ++i) m = std::max(m, static_cast<C>(x[r * S + i]));
      y[r] = T(m);
    }
    return Status::Ok();
  });
}

}  // namespace

std::vector<OpKernel> normalization_kernels() {
  return {
      {"InstanceNormalization", infer_InstanceNormalization, run_InstanceNormalization},
      {"GroupNormalization", infer_GroupNormalization, run_GroupNormalization},
      {"MeanVarianceNormalization", infer_MeanVarianceNormalization, run_MeanVarianceNormalization},
      {"LpNormalization", infer_LpNormalization, run_LpNormalization},
      {"LRN", infer_LRN, run_LRN},
      {"GlobalMaxPool", infer_GlobalMaxPool, run_GlobalMaxPool},
  };
}

}  // namespace moss::engine::ref
