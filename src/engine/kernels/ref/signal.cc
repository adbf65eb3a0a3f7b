// Signal operators: HannWindow, HammingWindow, BlackmanWindow (periodic/symmetric, output_datatype),
// DFT (opset 17 axis attribute, opset 20 axis input; dft_length, inverse, onesided) and STFT
// (frame_step, window, frame_length, onesided). Naive O(n^2) transforms in double: a reference,
// exact rather than fast.
#include "engine/kernels/ref/ref_kernels.h"
#include "engine/kernels/ref/ref_util.h"

#include <cmath>
#include <complex>
#include <numbers>

namespace moss::engine::ref {
namespace {

// ---- windows --------------------------------------------------------------------------------

Status infer_window(const Node& node, std::span<const TensorInfo* const> in,
                    std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 1, 1));
  MOSS_ASSIGN_OR_RETURN(int64_t n, const_int_scalar(node, in[0], "size"));
  if (n < 0) return invalid_argument("{}: size must be >= 0, got {}", node.label(), n);
  MOSS_ASSIGN_OR_RETURN(DType dt, dtype_from_onnx_number(node, node.attr_int("output_datatype", 1)));
  if (dt == DType::kBool) return invalid_argument("{}: output_datatype must be numeric", node.label());
  return set_out(out, dt, {n});
}

Status run_window(const Node& node, std::span<const View>, std::span<const View> out) {
  const int64_t n = out[0].numel;
  const double denom = static_cast<double>(node.attr_int("periodic", 1) != 0 ? n : n - 1);
  const double two_pi = 2 * std::numbers::pi;
  const std::string& op = node.op_type;
  return dispatch_numeric(node, out[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    T* y = out[0].as<T>();
    for (int64_t i = 0; i < n; ++i) {
      const double a = denom > 0 ? two_pi * static_cast<double>(i) / denom : 0.0;
      double v;
      if (op == "HannWindow") v = 0.5 - 0.5 * std::cos(a);
      else if (op == "HammingWindow") v = 25.0 / 46.0 - (21.0 / 46.0) * std::cos(a);
      else v = 0.42 - 0.5 * std::cos(a) + 0.08 * std::cos(2 * a);
      y[i] = T(static_cast<compute_t<T>>(v));
    }
    return Status::Ok();
  });
}

// ---- DFT ------------------------------------------------------------------------------------

// out[k] = sum_n x[n] * exp(-+2 pi i k n / len), n over the first min(len, in_len) samples.
void dft(const std::complex<double>* x, int64_t in_len, int64_t stride_in, int64_t len, int64_t bins,
         bool inverse, std::complex<double>* y) {
  const double sign = inverse ? 1.0 : -1.0;
  for (int64_t k = 0; k < bins; ++k) {
    std::complex<double> acc = 0;
    for (int64_t t = 0; t < std::min(len, in_len); ++t) {
      const double a = sign * 2 * std::numbers::pi * static_cast<double>((k * t) % len) / static_cast<double>(len);
      acc += x[t * stride_in] * std::complex<double>(std::cos(a), std::sin(a));
    }
    y[k] = inverse ? acc / static_cast<double>(len) : acc;
  }
}

struct DftSpec {
  int64_t axis = 1, len = 0, bins = 0;
  bool inverse = false;
};

Result<DftSpec> dft_spec(const Node& node, std::span<const int64_t> x, const TensorInfo* length,
                         const TensorInfo* axis_in) {
  const int64_t r = static_cast<int64_t>(x.size());
  if (r < 2 || (x.back() != 1 && x.back() != 2)) {
    return invalid_argument("{}: input must be [..., 1 or 2] (real or complex)", node.label());
  }
  DftSpec s;
  int64_t axis = node.attr_int("axis", 1);
  if (node.opset >= 20) {
    axis = -2;
    if (axis_in) {
      MOSS_ASSIGN_OR_RETURN(axis, const_int_scalar(node, axis_in, "axis"));
    }
  }
  MOSS_ASSIGN_OR_RETURN(s.axis, normalize_axis(node, axis, r - 1));
  s.len = x[static_cast<size_t>(s.axis)];
  if (length) {
    MOSS_ASSIGN_OR_RETURN(s.len, const_int_scalar(node, length, "dft_length"));
  }
  if (s.len < 1) return invalid_argument("{}: dft_length must be >= 1", node.label());
  s.inverse = node.attr_int("inverse", 0) != 0;
  const bool onesided = node.attr_int("onesided", 0) != 0;
  if (onesided && s.inverse) return invalid_argument("{}: onesided inverse DFT is not defined", node.label());
  s.bins = onesided ? s.len / 2 + 1 : s.len;
  return s;
}

Status infer_DFT(const Node& node, std::span<const TensorInfo* const> in,
                 std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 1, node.opset >= 20 ? 3 : 2));
  MOSS_RETURN_IF_ERROR(require_float(node, *in[0], "input"));
  MOSS_ASSIGN_OR_RETURN(DftSpec s, dft_spec(node, in[0]->shape, in.size() > 1 ? in[1] : nullptr,
                                            in.size() > 2 ? in[2] : nullptr));
  std::vector<int64_t> shape = in[0]->shape;
  shape[static_cast<size_t>(s.axis)] = s.bins;
  shape.back() = 2;
  return set_out(out, in[0]->dtype, std::move(shape));
}

Result<TensorInfo> optional_info(std::span<const View> in, size_t i) {
  if (i >= in.size() || !in[i].data) return TensorInfo{};
  return info_with_value(in[i]);
}

Status run_DFT(const Node& node, std::span<const View> in, std::span<const View> out) {
  MOSS_ASSIGN_OR_RETURN(TensorInfo len_i, optional_info(in, 1));
  MOSS_ASSIGN_OR_RETURN(TensorInfo axis_i, optional_info(in, 2));
  MOSS_ASSIGN_OR_RETURN(DftSpec s, dft_spec(node, in[0].shape, len_i.value ? &len_i : nullptr,
                                            axis_i.value ? &axis_i : nullptr));
  const int64_t comps = in[0].shape.back();
  const AxisSplit sp = split_at(in[0].shape.first(in[0].shape.size() - 1), s.axis);
  return dispatch_float(node, in[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    const T* x = in[0].as<T>();
    T* y = out[0].as<T>();
    std::vector<std::complex<double>> xs(static_cast<size_t>(sp.n)), ys(static_cast<size_t>(s.bins));
    for (int64_t o = 0; o < sp.outer; ++o) {
      for (int64_t j = 0; j < sp.inner; ++j) {
        for (int64_t t = 0; t < sp.n; ++t) {
          const T* p = x + ((o * sp.n + t) * sp.inner + j) * comps;
          xs[t] = {static_cast<double>(static_cast<C>(p[0])), comps == 2 ? static_cast<double>(static_cast<C>(p[1])) : 0.0};
        }
        dft(xs.data(), sp.n, 1, s.len, s.bins, s.inverse, ys.data());
        for (int64_t k = 0; k < s.bins; ++k) {
          T* q = y + ((o * s.bins + k) * sp.inner + j) * 2;
          q[0] = T(static_cast<C>(ys[k].real()));
          q[1] = T(static_cast<C>(ys[k].imag()));
        }
      }
    }
    return Status::Ok();
  });
}

// ---- STFT -----------------------------------------------------------------------------------

struct StftSpec {
  int64_t step = 0, frame = 0, frames = 0, bins = 0;
};

Result<StftSpec> stft_spec(const Node& node, std::span<const int64_t> x, const TensorInfo* step,
                           std::span<const int64_t> window, const TensorInfo* frame) {
  if (x.size() != 3 || (x[2] != 1 && x[2] != 2)) {
    return invalid_argument("{}: signal must be [batch, length, 1 or 2]", node.label());
  }
  StftSpec s;
  MOSS_ASSIGN_OR_RETURN(s.step, const_int_scalar(node, step, "frame_step"));
  if (frame) {
    MOSS_ASSIGN_OR_RETURN(s.frame, const_int_scalar(node, frame, "frame_length"));
  } else if (window.size() == 1) {
    s.frame = window[0];
  } else {
    return invalid_argument("{}: frame_length or a 1-D window is required", node.label());
  }
  if (window.size() == 1 && window[0] != s.frame) {
    return invalid_argument("{}: window length differs from frame_length", node.label());
  }
  if (s.step < 1 || s.frame < 1 || s.frame > x[1]) {
    return invalid_argument("{}: invalid frame_step {} or frame_length {}", node.label(), s.step, s.frame);
  }
  s.frames = (x[1] - s.frame) / s.step + 1;
  s.bins = node.attr_int("onesided", 1) != 0 ? s.frame / 2 + 1 : s.frame;
  return s;
}

Status infer_STFT(const Node& node, std::span<const TensorInfo* const> in,
                  std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 2, 4));
  MOSS_RETURN_IF_ERROR(require_float(node, *in[0], "signal"));
  const TensorInfo* w = in.size() > 2 ? in[2] : nullptr;
  if (w) MOSS_RETURN_IF_ERROR(require_same_dtype(node, *in[0], *w, "window"));
  MOSS_ASSIGN_OR_RETURN(StftSpec s, stft_spec(node, in[0]->shape, in[1],
                                              w ? std::span<const int64_t>(w->shape) : std::span<const int64_t>(),
                                              in.size() > 3 ? in[3] : nullptr));
  return set_out(out, in[0]->dtype, {in[0]->shape[0], s.frames, s.bins, 2});
}

Status run_STFT(const Node& node, std::span<const View> in, std::span<const View> out) {
  MOSS_ASSIGN_OR_RETURN(TensorInfo step_i, optional_info(in, 1));
  MOSS_ASSIGN_OR_RETURN(TensorInfo frame_i, optional_info(in, 3));
  const bool has_w = in.size() > 2 && in[2].data;
  MOSS_ASSIGN_OR_RETURN(StftSpec s, stft_spec(node, in[0].shape, &step_i,
                                              has_w ? in[2].shape : std::span<const int64_t>(),
                                              frame_i.value ? &frame_i : nullptr));
  const int64_t B = in[0].shape[0], L = in[0].shape[1], comps = in[0].shape[2];
  return dispatch_float(node, in[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    const T* x = in[0].as<T>();
    const T* w = has_w ? in[2].as<T>() : nullptr;
    T* y = out[0].as<T>();
    std::vector<std::complex<double>> xs(static_cast<size_t>(s.frame)), ys(static_cast<size_t>(s.bins));
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t f = 0; f < s.frames; ++f) {
        for (int64_t t = 0; t < s.frame; ++t) {
          const T* p = x + (b * L + f * s.step + t) * comps;
          const double wv = w ? static_cast<double>(static_cast<C>(w[t])) : 1.0;
          xs[t] = {wv * static_cast<double>(static_cast<C>(p[0])),
                   comps == 2 ? wv * static_cast<double>(static_cast<C>(p[1])) : 0.0};
        }
        dft(xs.data(), s.frame, 1, s.frame, s.bins, false, ys.data());
        for (int64_t k = 0; k < s.bins; ++k) {
          T* q = y + ((b * s.frames + f) * s.bins + k) * 2;
          q[0] = T(static_cast<C>(ys[k].real()));
          q[1] = T(static_cast<C>(ys[k].imag()));
        }
      }
    }
    return Status::Ok();
  });
}

}  // namespace

std::vector<OpKernel> signal_kernels() {
  return {
      {"HannWindow", infer_window, run_window, false, 0b1},
      {"HammingWindow", infer_window, run_window, false, 0b1},
      {"BlackmanWindow", infer_window, run_window, false, 0b1},
      {"DFT", infer_DFT, run_DFT, false, 0b110},
      {"STFT", infer_STFT, run_STFT, false, 0b1010},
  };
}

}  // namespace moss::engine::ref
