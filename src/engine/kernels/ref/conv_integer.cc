// ConvInteger and QLinearConv (reference): int8/uint8 convolution accumulating in int32, with
// scalar zero points for X and per-tensor or per-output-channel ones for W; QLinearConv adds the
// int32 bias and requantizes (round half to even, saturate). Same window geometry as Conv.
#include "engine/kernels/ref/ref_kernels.h"
#include "engine/kernels/ref/ref_util.h"
#include "engine/kernels/ref/window.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace moss::engine::ref {
namespace {

bool is_8bit(DType d) { return d == DType::kInt8 || d == DType::kUInt8; }

// Input positions of the operands: ConvInteger (x, w, x_zp, w_zp); QLinearConv (x, x_scale,
// x_zp, w, w_scale, w_zp, y_scale, y_zp, B).
struct Slots {
  size_t x, w, xzp, wzp;
};
Slots slots_of(const Node& node) {
  return node.op_type == "QLinearConv" ? Slots{0, 3, 2, 5} : Slots{0, 1, 2, 3};
}

Status infer_int_conv(const Node& node, std::span<const TensorInfo* const> in,
                      std::vector<TensorInfo>& out) {
  const bool q = node.op_type == "QLinearConv";
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, q ? 8 : 2, q ? 9 : 4));
  const Slots s = slots_of(node);
  const TensorInfo& X = *in[s.x];
  const TensorInfo& W = *in[s.w];
  if (!is_8bit(X.dtype) || !is_8bit(W.dtype)) {
    return unimplemented("{}: X and W must be int8 or uint8", node.label());
  }
  const auto& x = X.shape;
  const auto& w = W.shape;
  if (x.size() < 3 || x.size() > 5 || w.size() != x.size()) {
    return invalid_argument("{}: X {} and W {} ranks do not fit", node.label(), shape_to_string(x), shape_to_string(w));
  }
  const int64_t group = node.attr_int("group", 1);
  if (group < 1 || x[1] % group != 0 || w[0] % group != 0 || w[1] * group != x[1]) {
    return invalid_argument("{}: channels {} / group {} do not match W {}", node.label(), x[1], group, shape_to_string(w));
  }
  if (in.size() > s.xzp && in[s.xzp]) {
    MOSS_RETURN_IF_ERROR(require_same_dtype(node, X, *in[s.xzp], "x_zero_point"));
    if (in[s.xzp]->numel() != 1) return unimplemented("{}: x_zero_point must be a scalar", node.label());
  }
  if (in.size() > s.wzp && in[s.wzp]) {
    MOSS_RETURN_IF_ERROR(require_same_dtype(node, W, *in[s.wzp], "w_zero_point"));
    if (in[s.wzp]->numel() != 1 && in[s.wzp]->numel() != w[0]) {
      return invalid_argument("{}: w_zero_point must be a scalar or [M]", node.label());
    }
  }
  DType out_dt = DType::kInt32;
  if (q) {
    for (size_t i : {1, 6}) {
      MOSS_RETURN_IF_ERROR(require_dtype(node, *in[i], {DType::kFloat32}, "scale"));
      if (in[i]->numel() != 1) return invalid_argument("{}: x_scale and y_scale must be scalars", node.label());
    }
    MOSS_RETURN_IF_ERROR(require_dtype(node, *in[4], {DType::kFloat32}, "w_scale"));
    if (in[4]->numel() != 1 && in[4]->numel() != w[0]) return invalid_argument("{}: w_scale must be a scalar or [M]", node.label());
    if (!is_8bit(in[7]->dtype) || in[7]->numel() != 1) return invalid_argument("{}: y_zero_point must be an 8-bit scalar", node.label());
    if (in.size() > 8 && in[8]) {
      MOSS_RETURN_IF_ERROR(require_dtype(node, *in[8], {DType::kInt32}, "B"));
      if (in[8]->shape.size() != 1 || in[8]->shape[0] != w[0]) return invalid_argument("{}: B must be [{}]", node.label(), w[0]);
    }
    out_dt = in[7]->dtype;
  }
  std::vector<int64_t> kernel = node.attr_ints("kernel_shape");
  if (kernel.empty()) kernel.assign(w.begin() + 2, w.end());
  if (!std::equal(kernel.begin(), kernel.end(), w.begin() + 2, w.end())) {
    return invalid_argument("{}: kernel_shape does not match W", node.label());
  }
  MOSS_ASSIGN_OR_RETURN(Window win, window_geometry(node, std::span(x).subspan(2), kernel, false, true));
  std::vector<int64_t> shape{x[0], w[0]};
  for (int i = 3 - win.nd; i < 3; ++i) shape.push_back(win.out[i]);
  return set_out(out, out_dt, std::move(shape));
}

int32_t int_at(const View& v, int64_t i) {
  return v.dtype == DType::kInt8 ? v.as<int8_t>()[i] : v.dtype == DType::kUInt8 ? v.as<uint8_t>()[i] : v.as<int32_t>()[i];
}

Status run_int_conv(const Node& node, std::span<const View> in, std::span<const View> out) {
  const bool q = node.op_type == "QLinearConv";
  const Slots s = slots_of(node);
  const View& X = in[s.x];
  const View& W = in[s.w];
  std::vector<int64_t> kernel(W.shape.begin() + 2, W.shape.end());
  MOSS_ASSIGN_OR_RETURN(Window win, window_geometry(node, X.shape.subspan(2), kernel, false, true));
  const int64_t N = X.shape[0], Cin = X.shape[1], M = W.shape[0], group = node.attr_int("group", 1);
  const int64_t cg = Cin / group, mg = M / group;
  const int64_t in_sp = win.in[0] * win.in[1] * win.in[2], k_sp = win.k[0] * win.k[1] * win.k[2];
  const int64_t out_sp = win.out[0] * win.out[1] * win.out[2];
  const bool has_xzp = in.size() > s.xzp && in[s.xzp].data;
  const bool has_wzp = in.size() > s.wzp && in[s.wzp].data;
  const int32_t xzp = has_xzp ? int_at(in[s.xzp], 0) : 0;
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t m = 0; m < M; ++m) {
      const int64_t g = m / mg;
      const int32_t wzp = has_wzp ? int_at(in[s.wzp], in[s.wzp].numel == 1 ? 0 : m) : 0;
      for (int64_t o = 0; o < out_sp; ++o) {
        const int64_t od = o / (win.out[1] * win.out[2]), oh = (o / win.out[2]) % win.out[1], ow = o % win.out[2];
        int32_t acc = 0;
        for (int64_t c = 0; c < cg; ++c) {
          const int64_t ci = g * cg + c;
          for (int64_t k = 0; k < k_sp; ++k) {
            const int64_t kd = k / (win.k[1] * win.k[2]), kh = (k / win.k[2]) % win.k[1], kw = k % win.k[2];
            const int64_t id = od * win.stride[0] - win.pad_b[0] + kd * win.dil[0];
            const int64_t ih = oh * win.stride[1] - win.pad_b[1] + kh * win.dil[1];
            const int64_t iw = ow * win.stride[2] - win.pad_b[2] + kw * win.dil[2];
            if (id < 0 || id >= win.in[0] || ih < 0 || ih >= win.in[1] || iw < 0 || iw >= win.in[2]) continue;
            const int32_t xv = int_at(X, (n * Cin + ci) * in_sp + (id * win.in[1] + ih) * win.in[2] + iw) - xzp;
            acc += xv * (int_at(W, (m * cg + c) * k_sp + k) - wzp);
          }
        }
        const int64_t p = (n * M + m) * out_sp + o;
        if (!q) {
          out[0].as<int32_t>()[p] = acc;
          continue;
        }
        if (in.size() > 8 && in[8].data) acc += in[8].as<int32_t>()[m];
        const float ws = in[4].as<float>()[in[4].numel == 1 ? 0 : m];
        const float scale = in[1].as<float>()[0] * ws / in[6].as<float>()[0];
        const double v = std::nearbyint(static_cast<double>(static_cast<float>(acc) * scale)) + int_at(in[7], 0);
        if (out[0].dtype == DType::kInt8) {
          out[0].as<int8_t>()[p] = static_cast<int8_t>(std::clamp(v, -128.0, 127.0));
        } else {
          out[0].as<uint8_t>()[p] = static_cast<uint8_t>(std::clamp(v, 0.0, 255.0));
        }
      }
    }
  }
  return Status::Ok();
}

}  // namespace

std::vector<OpKernel> conv_integer_kernels() {
  return {
      {"ConvInteger", infer_int_conv, run_int_conv},
      {"QLinearConv", infer_int_conv, run_int_conv},
  };
}

}  // namespace moss::engine::ref
