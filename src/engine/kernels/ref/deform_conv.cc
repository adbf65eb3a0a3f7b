// DeformConv (opset 19, 2-D as ONNX Runtime): a convolution whose kernel taps sample X at
// positions moved by a learned offset (bilinear, zero outside the image), each sample optionally
// scaled by a mask, with groups and offset groups. offset is [N, offset_group * kH * kW * 2, oH, oW]
// holding (dy, dx) per tap; mask is [N, offset_group * kH * kW, oH, oW].
// Computed as ONNX Runtime does: a deformable im2col per image, then one product per group.
#include "engine/kernels/ref/ref_kernels.h"
#include "engine/kernels/ref/ref_util.h"
#include "engine/kernels/ref/window.h"

#include <cmath>

namespace moss::engine::ref {
namespace {

Result<Window> deform_window(const Node& node, std::span<const int64_t> x, std::span<const int64_t> w) {
  if (x.size() != 4 || w.size() != 4) {
    return unimplemented("{}: only 2-D DeformConv (X [N, C, H, W], W [M, C/group, kH, kW]) is supported, got X {} W {}",
                         node.label(), shape_to_string(x), shape_to_string(w));
  }
  std::vector<int64_t> kernel = node.attr_ints("kernel_shape");
  if (kernel.empty()) kernel.assign(w.begin() + 2, w.end());
  if (kernel.size() != 2 || kernel[0] != w[2] || kernel[1] != w[3]) {
    return invalid_argument("{}: kernel_shape does not match W {}", node.label(), shape_to_string(w));
  }
  if (node.attr("auto_pad")) return invalid_argument("{}: DeformConv has no auto_pad attribute", node.label());
  return window_geometry(node, x.subspan(2), kernel, false, true);
}

Status infer_DeformConv(const Node& node, std::span<const TensorInfo* const> in, std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 3, 5));
  MOSS_RETURN_IF_ERROR(require_float(node, *in[0], "X"));
  static const char* const kNames[] = {"X", "W", "offset", "B", "mask"};
  for (size_t i = 1; i < in.size(); ++i) {
    if (in[i]) MOSS_RETURN_IF_ERROR(require_same_dtype(node, *in[0], *in[i], kNames[i]));
  }
  const auto& x = in[0]->shape;
  const auto& w = in[1]->shape;
  MOSS_ASSIGN_OR_RETURN(Window win, deform_window(node, x, w));
  const int64_t group = node.attr_int("group", 1), og = node.attr_int("offset_group", 1);
  const int64_t C = x[1], M = w[0], K = w[2] * w[3], oH = win.out[1], oW = win.out[2];
  if (group < 1 || og < 1 || C % group != 0 || M % group != 0 || w[1] * group != C || C % og != 0) {
    return invalid_argument("{}: channels {} with group {} and offset_group {} do not match W {}", node.label(), C,
                            group, og, shape_to_string(w));
  }
  const std::vector<int64_t> want_offset{x[0], og * K * 2, oH, oW};
  if (in[2]->shape != want_offset) {
    return invalid_argument("{}: offset {} must be {}", node.label(), shape_to_string(in[2]->shape),
                            shape_to_string(want_offset));
  }
  if (in.size() > 3 && in[3] && in[3]->shape != std::vector<int64_t>{M}) {
    return invalid_argument("{}: B {} must be [{}]", node.label(), shape_to_string(in[3]->shape), M);
  }
  const std::vector<int64_t> want_mask{x[0], og * K, oH, oW};
  if (in.size() > 4 && in[4] && in[4]->shape != want_mask) {
    return invalid_argument("{}: mask {} must be {}", node.label(), shape_to_string(in[4]->shape),
                            shape_to_string(want_mask));
  }
  return set_out(out, in[0]->dtype, {x[0], M, oH, oW});
}

// X at (h, w), bilinear over the four neighbours, 0 outside; a position within one pixel of the
// border still blends with the inside neighbours (the deformable-convolution convention).
template <typename CT, typename T>
CT bilinear(const T* img, int64_t H, int64_t W, CT h, CT w) {
  if (h <= CT(-1) || h >= static_cast<CT>(H) || w <= CT(-1) || w >= static_cast<CT>(W)) return CT(0);
  const int64_t h0 = static_cast<int64_t>(std::floor(h)), w0 = static_cast<int64_t>(std::floor(w));
  const int64_t h1 = h0 + 1, w1 = w0 + 1;
  const CT lh = h - static_cast<CT>(h0), lw = w - static_cast<CT>(w0), hh = CT(1) - lh, hw = CT(1) - lw;
  auto at = [&](int64_t r, int64_t c) { return static_cast<CT>(img[r * W + c]); };
  const CT v1 = h0 >= 0 && w0 >= 0 ? at(h0, w0) : CT(0);
  const CT v2 = h0 >= 0 && w1 < W ? at(h0, w1) : CT(0);
  const CT v3 = h1 < H && w0 >= 0 ? at(h1, w0) : CT(0);
  const CT v4 = h1 < H && w1 < W ? at(h1, w1) : CT(0);
  return hh * hw * v1 + hh * lw * v2 + lh * hw * v3 + lh * lw * v4;
}

Status run_DeformConv(const Node& node, std::span<const View> in, std::span<const View> out) {
  MOSS_ASSIGN_OR_RETURN(Window g, deform_window(node, in[0].shape, in[1].shape));
  const int64_t N = in[0].shape[0], C = in[0].shape[1], H = in[0].shape[2], W = in[0].shape[3];
  const int64_t M = in[1].shape[0], kH = in[1].shape[2], kW = in[1].shape[3], K = kH * kW;
  const int64_t group = node.attr_int("group", 1), og = node.attr_int("offset_group", 1);
  const int64_t oH = g.out[1], oW = g.out[2], P = oH * oW;
  const int64_t Cg = C / group, Mg = M / group, Kd = Cg * K, c_per_og = C / og;
  const bool has_bias = in.size() > 3 && in[3].data, has_mask = in.size() > 4 && in[4].data;
  return dispatch_float(node, in[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    using CT = compute_t<T>;
    const T* X = in[0].as<T>();
    const T* Wt = in[1].as<T>();
    const T* off = in[2].as<T>();
    const T* B = has_bias ? in[3].as<T>() : nullptr;
    const T* mask = has_mask ? in[4].as<T>() : nullptr;
    T* Y = out[0].as<T>();
    std::vector<CT> col(static_cast<size_t>(C * K * P));  // [C * kH * kW, oH * oW]
    std::vector<CT> acc(static_cast<size_t>(P));
    for (int64_t n = 0; n < N; ++n) {
      const T* off_n = off + n * og * 2 * K * P;
      const T* mask_n = has_mask ? mask + n * og * K * P : nullptr;
      for (int64_t c = 0; c < C; ++c) {
        const int64_t o = c / c_per_og;
        const T* img = X + (n * C + c) * H * W;
        for (int64_t i = 0; i < kH; ++i) {
          for (int64_t j = 0; j < kW; ++j) {
            const int64_t k = i * kW + j;
            const T* dy = off_n + (o * 2 * K + 2 * k) * P;
            const T* dx = dy + P;
            const T* mk = has_mask ? mask_n + (o * K + k) * P : nullptr;
            CT* row = col.data() + (c * K + k) * P;
            for (int64_t oh = 0; oh < oH; ++oh) {
              for (int64_t ow = 0; ow < oW; ++ow) {
                const int64_t p = oh * oW + ow;
                const CT m = has_mask ? static_cast<CT>(mk[p]) : CT(1);
                if (m == CT(0)) {
                  row[p] = CT(0);
                  continue;
                }
                const CT h = static_cast<CT>(oh * g.stride[1] - g.pad_b[1] + i * g.dil[1]) + static_cast<CT>(dy[p]);
                const CT w = static_cast<CT>(ow * g.stride[2] - g.pad_b[2] + j * g.dil[2]) + static_cast<CT>(dx[p]);
                row[p] = bilinear<CT>(img, H, W, h, w) * m;
              }
            }
          }
        }
      }
      for (int64_t m = 0; m < M; ++m) {
        const int64_t gi = m / Mg;
        const T* wm = Wt + m * Kd;
        const CT* cg = col.data() + gi * Kd * P;
        std::fill(acc.begin(), acc.end(), CT(0));
        for (int64_t kd = 0; kd < Kd; ++kd) {
          const CT wv = static_cast<CT>(wm[kd]);
          const CT* r = cg + kd * P;
          for (int64_t p = 0; p < P; ++p) acc[static_cast<size_t>(p)] += wv * r[p];
        }
        const CT b = has_bias ? static_cast<CT>(B[m]) : CT(0);
        T* y = Y + (n * M + m) * P;
        for (int64_t p = 0; p < P; ++p) y[p] = static_cast<T>(acc[static_cast<size_t>(p)] + b);
      }
    }
    return Status::Ok();
  });
}

}  // namespace

std::vector<OpKernel> deform_conv_kernels() { return {{"DeformConv", infer_DeformConv, run_DeformConv}}; }

}  // namespace moss::engine::ref
