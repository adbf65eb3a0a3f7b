// ConvTranspose (reference, N-D): strides, dilations, group, pads or auto_pad, output_padding and
// output_shape. Padding from output_shape/auto_pad follows ONNX Runtime (head = total / 2 for
// SAME_UPPER and NOTSET, (total + 1) / 2 for SAME_LOWER). Float types, accumulation in float
// (double for float64).
#include "engine/kernels/ref/ref_kernels.h"
#include "engine/kernels/ref/ref_util.h"

#include <algorithm>

namespace moss::engine::ref {
namespace {

struct Geometry {
  std::vector<int64_t> kernel, strides, dilations, head, out;
  int64_t group = 1;
};

Result<Geometry> geometry(const Node& node, std::span<const int64_t> x, std::span<const int64_t> w) {
  const size_t sp = x.size() - 2;
  Geometry g;
  g.group = node.attr_int("group", 1);
  g.kernel = node.attr("kernel_shape") ? node.attr_ints("kernel_shape")
                                       : std::vector<int64_t>(w.begin() + 2, w.end());
  g.strides = node.attr("strides") ? node.attr_ints("strides") : std::vector<int64_t>(sp, 1);
  g.dilations = node.attr("dilations") ? node.attr_ints("dilations") : std::vector<int64_t>(sp, 1);
  auto out_pad = node.attr("output_padding") ? node.attr_ints("output_padding") : std::vector<int64_t>(sp, 0);
  auto pads = node.attr("pads") ? node.attr_ints("pads") : std::vector<int64_t>(2 * sp, 0);
  auto out_shape = node.attr_ints("output_shape");
  const std::string auto_pad = node.attr_string("auto_pad", "NOTSET");
  if (g.kernel.size() != sp || g.strides.size() != sp || g.dilations.size() != sp ||
      out_pad.size() != sp || pads.size() != 2 * sp) {
    return invalid_argument("{}: kernel_shape/strides/dilations/pads/output_padding do not match {} spatial dims",
                            node.label(), sp);
  }
  if (auto_pad != "NOTSET" && auto_pad != "SAME_UPPER" && auto_pad != "SAME_LOWER" && auto_pad != "VALID") {
    return invalid_argument("{}: auto_pad '{}' is not valid", node.label(), auto_pad);
  }
  if (!out_shape.empty() && out_shape.size() != sp && out_shape.size() != sp + 2) {
    return invalid_argument("{}: output_shape must have {} values", node.label(), sp);
  }
  if (out_shape.size() == sp + 2) out_shape.erase(out_shape.begin(), out_shape.begin() + 2);
  for (size_t i = 0; i < sp; ++i) {
    if (g.kernel[i] < 1 || g.strides[i] < 1 || g.dilations[i] < 1 || g.kernel[i] != w[i + 2]) {
      return invalid_argument("{}: invalid kernel/stride/dilation in dimension {}", node.label(), i);
    }
    const int64_t span = (g.kernel[i] - 1) * g.dilations[i] + 1;
    const int64_t full = g.strides[i] * (x[i + 2] - 1) + out_pad[i] + span;
    if (!out_shape.empty() || auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      const int64_t o = out_shape.empty() ? x[i + 2] * g.strides[i] : out_shape[i];
      const int64_t total = full - o;
      g.head.push_back(auto_pad == "SAME_LOWER" ? (total + 1) / 2 : total / 2);
      g.out.push_back(o);
    } else if (auto_pad == "VALID") {
      g.head.push_back(0);
      g.out.push_back(full);
    } else {
      g.head.push_back(pads[i]);
      g.out.push_back(full - pads[i] - pads[i + sp]);
    }
    if (g.out.back() < 0) return invalid_argument("{}: negative output size", node.label());
  }
  return g;
}

Status infer_ConvTranspose(const Node& node, std::span<const TensorInfo* const> in,
                           std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 2, 3));
  MOSS_RETURN_IF_ERROR(require_float(node, *in[0], "X"));
  MOSS_RETURN_IF_ERROR(require_same_dtype(node, *in[0], *in[1], "W"));
  const auto& x = in[0]->shape;
  const auto& w = in[1]->shape;
  if (x.size() < 3 || w.size() != x.size()) {
    return invalid_argument("{}: X and W must have the same rank >= 3", node.label());
  }
  MOSS_ASSIGN_OR_RETURN(Geometry g, geometry(node, x, w));
  if (g.group < 1 || x[1] % g.group != 0 || w[0] != x[1]) {
    return invalid_argument("{}: W's first dimension must equal X's channels, divisible by group", node.label());
  }
  const int64_t M = w[1] * g.group;
  if (in.size() > 2 && in[2]) {
    MOSS_RETURN_IF_ERROR(require_same_dtype(node, *in[0], *in[2], "B"));
    if (in[2]->shape.size() != 1 || in[2]->shape[0] != M) {
      return invalid_argument("{}: B must have shape [{}]", node.label(), M);
    }
  }
  std::vector<int64_t> shape = {x[0], M};
  shape.insert(shape.end(), g.out.begin(), g.out.end());
  return set_out(out, in[0]->dtype, std::move(shape));
}

Status run_ConvTranspose(const Node& node, std::span<const View> in, std::span<const View> out) {
  MOSS_ASSIGN_OR_RETURN(Geometry g, geometry(node, in[0].shape, in[1].shape));
  const auto xs = in[0].shape;
  const size_t sp = xs.size() - 2;
  const int64_t N = xs[0], Cin = xs[1], Mg = in[1].shape[1], cg = Cin / g.group;
  const int64_t M = Mg * g.group;
  const int64_t in_sp = numel_of(xs.subspan(2)), out_sp = numel_of(g.out), k_sp = numel_of(g.kernel);
  return dispatch_float(node, in[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    const T* X = in[0].as<T>();
    const T* W = in[1].as<T>();
    std::vector<C> acc(static_cast<size_t>(N * M * out_sp), C(0));
    std::vector<int64_t> ip(sp), kp(sp);
    for (int64_t n = 0; n < N; ++n) {
      for (int64_t c = 0; c < Cin; ++c) {
        const int64_t grp = c / cg;
        for (int64_t i = 0; i < in_sp; ++i) {
          // Spatial coordinates of input position i.
          for (int64_t r = i, d = static_cast<int64_t>(sp) - 1; d >= 0; --d) {
            ip[d] = r % xs[2 + d];
            r /= xs[2 + d];
          }
          const C xv = static_cast<C>(X[(n * Cin + c) * in_sp + i]);
          for (int64_t k = 0; k < k_sp; ++k) {
            int64_t o = 0;
            bool inside = true;
            for (int64_t r = k, d = static_cast<int64_t>(sp) - 1; d >= 0; --d) {
              kp[d] = r % g.kernel[d];
              r /= g.kernel[d];
            }
            for (size_t d = 0; d < sp && inside; ++d) {
              const int64_t p = ip[d] * g.strides[d] - g.head[d] + kp[d] * g.dilations[d];
              inside = p >= 0 && p < g.out[d];
              o = o * g.out[d] + p;
            }
            if (!inside) continue;
            for (int64_t m = 0; m < Mg; ++m) {
              acc[((n * M + grp * Mg + m) * out_sp) + o] += xv * static_cast<C>(W[(c * Mg + m) * k_sp + k]);
            }
          }
        }
      }
    }
    T* Y = out[0].as<T>();
    const T* B = in.size() > 2 && in[2].data ? in[2].as<T>() : nullptr;
    for (int64_t n = 0; n < N; ++n) {
      for (int64_t m = 0; m < M; ++m) {
        const C b = B ? static_cast<C>(B[m]) : C(0);
        for (int64_t o = 0; o < out_sp; ++o) {
          const size_t p = static_cast<size_t>((n * M + m) * out_sp + o);
          Y[p] = T(C(acc[p] + b));
        }
      }
    }
    return Status::Ok();
  });
}

}  // namespace

std::vector<OpKernel> conv_transpose_kernels() {
  return {{"ConvTranspose", infer_ConvTranspose, run_ConvTranspose}};
}

}  // namespace moss::engine::ref
