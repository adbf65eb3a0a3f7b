// Conv, MaxPool, AveragePool, GlobalAveragePool: direct loops over 3-D-padded windows. The inner
// loop runs along the output width over the valid range only, so it has no bounds checks.
#include "engine/kernels/ref/ref_kernels.h"
#include "engine/kernels/ref/window.h"

#include <algorithm>
#include <cstring>
#include <limits>

namespace moss::engine::ref {
namespace {

// First and one-past-last output index o with 0 <= o*s - p + kk*d < in.
void valid_range(int64_t out, int64_t in, int64_t s, int64_t p, int64_t off, int64_t& lo, int64_t& hi) {
  // o*s >= p - off  and  o*s < in + p - off
  int64_t a = p - off;
  lo = a <= 0 ? 0 : (a + s - 1) / s;
  int64_t b = in + p - off;
  hi = b <= 0 ? 0 : (b + s - 1) / s;
  lo = std::min(lo, out);
  hi = std::clamp(hi, lo, out);
}

Result<Window> conv_window(const Node& node, std::span<const int64_t> x, std::span<const int64_t> w) {
  std::vector<int64_t> kernel = node.attr_ints("kernel_shape");
  if (kernel.empty()) kernel.assign(w.begin() + 2, w.end());
  for (size_t i = 0; i < kernel.size() && i + 2 < w.size(); ++i) {
    if (kernel[i] != w[i + 2]) return invalid_argument("{}: kernel_shape does not match W", node.label());
  }
  return window_geometry(node, x.subspan(2), kernel, false, true);
}

Status infer_Conv(const Node& node, std::span<const TensorInfo* const> in,
                  std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 2, 3));
  for (const TensorInfo* t : in) {
    if (t) MOSS_RETURN_IF_ERROR(require_dtype(node, *t, {DType::kFloat32}, "input"));
  }
  const auto& x = in[0]->shape;
  const auto& w = in[1]->shape;
  if (x.size() < 3 || w.size() != x.size()) return invalid_argument("{}: X {} and W {} ranks do not fit", node.label(), shape_to_string(x), shape_to_string(w));
  const int64_t group = node.attr_int("group", 1);
  if (group < 1 || x[1] % group != 0 || w[0] % group != 0 || w[1] * group != x[1]) {
    return invalid_argument("{}: channels {} / group {} do not match W {}", node.label(), x[1], group, shape_to_string(w));
  }
  if (in.size() > 2 && in[2] && (in[2]->shape.size() != 1 || in[2]->shape[0] != w[0])) {
    return invalid_argument("{}: bias must be [{}]", node.label(), w[0]);
  }
  MOSS_ASSIGN_OR_RETURN(Window win, conv_window(node, x, w));
  std::vector<int64_t> shape{x[0], w[0]};
  for (int i = 3 - win.nd; i < 3; ++i) shape.push_back(win.out[i]);
  out.resize(1);
  out[0].dtype = DType::kFloat32;
  out[0].shape = std::move(shape);
  return Status::Ok();
}

Status run_Conv(const Node& node, std::span<const View> in, std::span<const View> out) {
  const auto x = in[0].shape;
  const auto w = in[1].shape;
  MOSS_ASSIGN_OR_RETURN(Window g, conv_window(node, x, w));
  const int64_t N = x[0], C = x[1], M = w[0], group = node.attr_int("group", 1);
  const int64_t Cg = C / group, Mg = M / group;
  const int64_t in_sp = g.in[0] * g.in[1] * g.in[2];
  const int64_t out_sp = g.out[0] * g.out[1] * g.out[2];
  const int64_t ksz = g.k[0] * g.k[1] * g.k[2];
  const float* X = in[0].as<float>();
  const float* W = in[1].as<float>();
  const float* B = in.size() > 2 && in[2].data ? in[2].as<float>() : nullptr;
  float* Y = out[0].as<float>();
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t m = 0; m < M; ++m) {
      float* y = Y + (n * M + m) * out_sp;
      std::fill(y, y + out_sp, B ? B[m] : 0.0f);
      const int64_t gi = m / Mg;
      for (int64_t c = 0; c < Cg; ++c) {
        const float* xc = X + (n * C + gi * Cg + c) * in_sp;
        const float* wc = W + (m * Cg + c) * ksz;
        for (int64_t kd = 0; kd < g.k[0]; ++kd) {
          int64_t d_lo, d_hi;
          valid_range(g.out[0], g.in[0], g.stride[0], g.pad_b[0], kd * g.dil[0], d_lo, d_hi);
          for (int64_t kh = 0; kh < g.k[1]; ++kh) {
            int64_t h_lo, h_hi;
            valid_range(g.out[1], g.in[1], g.stride[1], g.pad_b[1], kh * g.dil[1], h_lo, h_hi);
            for (int64_t kw = 0; kw < g.k[2]; ++kw) {
              int64_t w_lo, w_hi;
              valid_range(g.out[2], g.in[2], g.stride[2], g.pad_b[2], kw * g.dil[2], w_lo, w_hi);
              const float wv = wc[(kd * g.k[1] + kh) * g.k[2] + kw];
              const int64_t sw = g.stride[2];
              for (int64_t od = d_lo; od < d_hi; ++od) {
                const int64_t id = od * g.stride[0] - g.pad_b[0] + kd * g.dil[0];
                for (int64_t oh = h_lo; oh < h_hi; ++oh) {
                  const int64_t ih = oh * g.stride[1] - g.pad_b[1] + kh * g.dil[1];
                  const float* xr = xc + (id * g.in[1] + ih) * g.in[2] - g.pad_b[2] + kw * g.dil[2];
                  float* yr = y + (od * g.out[1] + oh) * g.out[2];
                  if (sw == 1) {
                    for (int64_t ow = w_lo; ow < w_hi; ++ow) yr[ow] += wv * xr[ow];
                  } else {
                    for (int64_t ow = w_lo; ow < w_hi; ++ow) yr[ow] += wv * xr[ow * sw];
                  }
                }
              }
            }
          }
        }
      }
    }
  }
  return Status::Ok();
}

// ---- pools ----------------------------------------------------------------------------------

Result<Window> pool_window(const Node& node, std::span<const int64_t> x) {
  auto kernel = node.attr_ints("kernel_shape");
  if (kernel.empty()) return invalid_argument("{}: kernel_shape is required", node.label());
  if (x.size() < 3) return invalid_argument("{}: input rank {} < 3", node.label(), x.size());
  const bool dil_ok = node.op_type == "MaxPool" ? node.opset >= 10 : node.opset >= 19;
  return window_geometry(node, x.subspan(2), kernel, node.opset >= 10, dil_ok);
}

Status infer_pool(const Node& node, std::span<const TensorInfo* const> in,
                  std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 1, 1));
  // MaxPool-12 adds int8/uint8; the float types everywhere.
  if (node.op_type == "MaxPool" && node.opset >= 12 &&
      (in[0]->dtype == DType::kInt8 || in[0]->dtype == DType::kUInt8)) {
  } else {
    MOSS_RETURN_IF_ERROR(require_float(node, *in[0], "X"));
  }
  const auto& x = in[0]->shape;
  MOSS_ASSIGN_OR_RETURN(Window g, pool_window(node, x));
  if (node.op_type == "MaxPool") {
    const int64_t so = node.attr_int("storage_order", 0);
    if (so != 0 && so != 1) return invalid_argument("{}: storage_order must be 0 or 1", node.label());
  }
  std::vector<int64_t> shape{x[0], x[1]};
  for (int i = 3 - g.nd; i < 3; ++i) shape.push_back(g.out[i]);
  out.resize(node.outputs.size() > 1 && node.op_type == "MaxPool" ? 2 : 1);
  out[0].dtype = in[0]->dtype;
  out[0].shape = shape;
  if (out.size() > 1) {
    out[1].dtype = DType::kInt64;
    out[1].shape = shape;
  }
  return Status::Ok();
}

template <bool kMax, typename T>
Status run_pool_typed(const Node& node, std::span<const View> in, std::span<const View> out) {
  using C = compute_t<T>;
  const auto x = in[0].shape;
  MOSS_ASSIGN_OR_RETURN(Window g, pool_window(node, x));
  const int64_t NC = x[0] * x[1];
  const int64_t in_sp = g.in[0] * g.in[1] * g.in[2];
  const int64_t out_sp = g.out[0] * g.out[1] * g.out[2];
  const bool include_pad = node.attr_int("count_include_pad", 0) != 0;
  const bool col_major = node.attr_int("storage_order", 0) != 0;
  const T* X = in[0].as<T>();
  T* Y = out[0].as<T>();
  int64_t* I = out.size() > 1 && out[1].data ? out[1].as<int64_t>() : nullptr;
  for (int64_t nc = 0; nc < NC; ++nc) {
    const T* xc = X + nc * in_sp;
    for (int64_t od = 0; od < g.out[0]; ++od)
      for (int64_t oh = 0; oh < g.out[1]; ++oh)
        for (int64_t ow = 0; ow < g.out[2]; ++ow) {
          const int64_t o[3] = {od, oh, ow};
          int64_t lo[3], hi[3], padded = 1;
          for (int d = 0; d < 3; ++d) {
            const int64_t start = o[d] * g.stride[d] - g.pad_b[d];
            int64_t n_all = 0, first = -1, last = -1;
            for (int64_t k = 0; k < g.k[d]; ++k) {
              const int64_t p = start + k * g.dil[d];
              if (p < g.in[d] + g.pad_e[d]) ++n_all;  // inside the padded extent
              if (p >= 0 && p < g.in[d]) {
                if (first < 0) first = k;
                last = k;
              }
            }
            padded *= n_all;
            lo[d] = first;
            hi[d] = last + 1;
          }
          C acc = kMax ? (std::numeric_limits<C>::has_infinity ? -std::numeric_limits<C>::infinity()
                                                               : std::numeric_limits<C>::lowest())
                       : C{0};
          int64_t count = 0, best = -1;
          if (lo[0] >= 0 && lo[1] >= 0 && lo[2] >= 0) {
            for (int64_t kd = lo[0]; kd < hi[0]; ++kd) {
              const int64_t id = od * g.stride[0] - g.pad_b[0] + kd * g.dil[0];
              for (int64_t kh = lo[1]; kh < hi[1]; ++kh) {
                const int64_t ih = oh * g.stride[1] - g.pad_b[1] + kh * g.dil[1];
                for (int64_t kw = lo[2]; kw < hi[2]; ++kw) {
                  const int64_t iw = ow * g.stride[2] - g.pad_b[2] + kw * g.dil[2];
                  const int64_t idx = (id * g.in[1] + ih) * g.in[2] + iw;
                  const C v = static_cast<C>(xc[idx]);
                  if constexpr (kMax) {
                    if (v > acc || best < 0) {
                      acc = v;
                      best = col_major ? (iw * g.in[1] + ih) * g.in[0] + id : idx;
                    }
                  } else {
                    acc += v;
                  }
                  ++count;
                }
              }
            }
          }
          const int64_t oi = nc * out_sp + (od * g.out[1] + oh) * g.out[2] + ow;
          if constexpr (kMax) {
            Y[oi] = T(acc);
            if (I) I[oi] = nc * in_sp + std::max<int64_t>(best, 0);
          } else {
            const int64_t div = include_pad ? padded : count;
            Y[oi] = T(div > 0 ? acc / static_cast<C>(div) : C{0});
          }
        }
  }
  return Status::Ok();
}

template <bool kMax>
Status run_pool(const Node& node, std::span<const View> in, std::span<const View> out) {
  return dispatch_numeric(node, in[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (kMax || !std::is_integral_v<T>) return run_pool_typed<kMax, T>(node, in, out);
    return Status::Ok();  // infer() admits integers for MaxPool only
  });
}

Status infer_GlobalAveragePool(const Node& node, std::span<const TensorInfo* const> in,
                               std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 1, 1));
  MOSS_RETURN_IF_ERROR(require_dtype(node, *in[0], {DType::kFloat32}, "X"));
  const auto& x = in[0]->shape;
  if (x.size() < 3) return invalid_argument("{}: input rank {} < 3", node.label(), x.size());
  out.resize(1);
  out[0].shape = x;
  for (size_t i = 2; i < x.size(); ++i) out[0].shape[i] = 1;
  return Status::Ok();
}

Status run_GlobalAveragePool(const Node&, std::span<const View> in, std::span<const View> out) {
  const int64_t NC = in[0].shape[0] * in[0].shape[1];
  const int64_t sp = NC ? in[0].numel / NC : 0;
  const float* x = in[0].as<float>();
  for (int64_t i = 0; i < NC; ++i) {
    float s = 0;
    for (int64_t j = 0; j < sp; ++j) s += x[i * sp + j];
    out[0].as<float>()[i] = sp ? s / static_cast<float>(sp) : 0.0f;
  }
  return Status::Ok();
}

}  // namespace

std::vector<OpKernel> conv_pool_kernels() {
  return {
      {"Conv", infer_Conv, run_Conv},
      {"MaxPool", infer_pool, run_pool<true>},
      {"AveragePool", infer_pool, run_pool<false>},
      {"GlobalAveragePool", infer_GlobalAveragePool, run_GlobalAveragePool},
  };
}

}  // namespace moss::engine::ref
