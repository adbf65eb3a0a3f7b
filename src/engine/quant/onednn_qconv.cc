// QLinearConv on oneDNN's int8 convolution (u8 or s8 activations, s8 weights, VNNI on AVX-512):
//   y = saturate(round(x_scale*w_scale[m]/y_scale * (sum (x - x_zp) * (w - w_zp[m]) + B[m])) + y_zp)
// oneDNN 2.x applies the bias before the output scales, so B (int32, in accumulator units) is
// passed as f32 unchanged and the output scale per channel is x_scale*w_scale[m]/y_scale. Weight
// zero points are folded into the weights (w - w_zp[m] must fit int8, else the reference kernel
// runs). Activations are plain NCHW outside the kernel and reordered into oneDNN's choice inside.
//
// A fused com.microsoft QLinearAdd (the residual of a quantized ResNet block, planner/fusion.h)
// becomes post-ops that repeat what the two steps compute, so the result is the same:
//   c = clip(round(acc * x_scale*w_scale[m]/c_scale), qmin - c_zp, qmax - c_zp)   (the conv's
//       quantized output minus its zero point: the zero point folded into the clip bounds, since
//       two eltwise_linear post-ops are mis-computed by Debian's oneDNN 2.6)
//   y = saturate(round(c * c_scale/y_scale + (r - r_zp) * r_scale/y_scale) + y_zp)
// with oneDNN's sum post-op (scale, zero point) reading the residual r from dst.
//
// A nonzero source zero point (a network's stem reading the quantized image) would make oneDNN
// 2.6 take its older jit_int8 convolution instead of brgemm, which takes no source zero point
// except for 1x1 convolutions. So it is not passed: sum (x - x_zp) * w = sum x * w - x_zp * sum w,
// the second term folded into the bias (per output channel), and a padding, which must read as
// x_zp (the quantized zero), is written into the source copy the kernel makes anyway (filled
// with x_zp, x reordered into its interior) while the convolution itself has none. The integers
// are the reference kernel's.
#include <climits>
#include <cstring>
#include <optional>

#include "engine/kernels/onednn/onednn_common.h"
#include "engine/kernels/ref/window.h"
#include "engine/quant/quant_kernels.h"

namespace moss::engine {
namespace {

using namespace onednn;
using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

dt dnnl_type(DType d) { return d == DType::kUInt8 ? dt::u8 : dt::s8; }

int32_t int_of(const Tensor& t, int64_t i) {
  const int64_t k = t.numel() == 1 ? 0 : i;
  return t.dtype() == DType::kUInt8 ? t.data<uint8_t>()[k] : t.data<int8_t>()[k];
}

dnnl::memory s32_scalar(int32_t v) {
  dnnl::memory m({{1}, dt::s32, tag::x}, cpu_engine());
  *static_cast<int32_t*>(m.get_data_handle()) = v;
  return m;
}

class QConvKernel final : public PreparedKernel {
 public:
  dnnl::convolution_forward prim;
  dnnl::memory::desc scratchpad_md, user_src, user_dst, conv_src, conv_dst;
  // pad_src: x is copied into the interior (src_interior) of a conv_src buffer filled with
  // pad_value (the source zero point), the convolution having no padding of its own.
  dnnl::memory::desc src_interior;
  bool pad_src = false;
  uint8_t pad_value = 0;
  dnnl::memory weights, bias, src_zp, dst_zp;
  dnnl::reorder src_in, dst_out, residual_in;
  bool reorder_src = false, reorder_dst = false;
  bool residual = false;  // the step's last input is added by the sum post-op
  size_t src_offset = 0, dst_offset = 0, total = 0;
  int threads = 1;

  size_t scratch_bytes() const override { return total; }
  size_t weights_bytes() const override {
    return weights.get_desc().get_size() + (bias ? bias.get_desc().get_size() : 0);
  }
  uint32_t packed_inputs() const override { return 0b111111110u; }  // all but x
  std::string_view kind() const override { return kInt8Kind; }

  Status run(std::span<const View> in, std::span<const View> out, RunScratch& s) const override {
    if (!s.dnnl) return internal_error("QLinearConv: no oneDNN scratch in this context");
    return dnnl_guard("QLinearConv", [&]() -> Status {
      OnednnScratch& scratch = *s.dnnl;
      if (scratch.capacity() < total) scratch.reserve(total);
      char* base = static_cast<char*>(scratch.impl().buffer);
      dnnl::stream& stream = scratch.impl().stream;
      ThreadScope scope(threads);
      dnnl::memory src = wrap(user_src, in[0].data), dst = wrap(user_dst, out[0].data);
      dnnl::memory csrc = src, cdst = dst;
      if (pad_src) {
        csrc = wrap(conv_src, base + src_offset);
        std::memset(base + src_offset, pad_value, conv_src.get_size());
        dnnl::memory interior = wrap(src_interior, base + src_offset);
        src_in.execute(stream, src, interior);
      } else if (reorder_src) {
        csrc = wrap(conv_src, base + src_offset);
        src_in.execute(stream, src, csrc);
      }
      if (reorder_dst) cdst = wrap(conv_dst, base + dst_offset);
      if (residual) {
        // The sum post-op accumulates onto dst: start it from the residual (in place when the
        // planner gave dst the residual's buffer).
        const void* r = in.back().data;
        if (reorder_dst) {
          dnnl::memory rm = wrap(user_dst, r);
          residual_in.execute(stream, rm, cdst);
        } else if (r != out[0].data) {
          std::memcpy(out[0].data, r, user_dst.get_size());
        }
      }
      std::unordered_map<int, dnnl::memory> args;
      args.reserve(8);
      args.emplace(DNNL_ARG_SRC, csrc);
      args.emplace(DNNL_ARG_WEIGHTS, weights);
      if (bias) args.emplace(DNNL_ARG_BIAS, bias);
      args.emplace(DNNL_ARG_DST, cdst);
      if (src_zp) args.emplace(DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_SRC, src_zp);
      if (dst_zp) args.emplace(DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_DST, dst_zp);
      if (scratchpad_md.get_size() > 0) args.emplace(DNNL_ARG_SCRATCHPAD, wrap(scratchpad_md, base));
      prim.execute(stream, args);
      if (reorder_dst) dst_out.execute(stream, cdst, dst);
      stream.wait();
      return Status::Ok();
    });
  }
};

// The fused QLinearAdd's parameters as the sum post-op needs them.
struct ResidualSum {
  float c_scale = 1;     // the conv's own output scale (the Add's operand scale)
  int32_t c_zp = 0;
  float r_scale = 1;     // the residual's scale and zero point
  int32_t r_zp = 0;
  float y_scale = 1;     // the Add's output
  int32_t y_zp = 0;
  Layout layout;         // the residual's layout (empty = plain NCHW)
};

std::optional<ResidualSum> residual_sum(const OnednnStepRequest& r) {
  const Node& add = *r.quantized_add;
  const auto& in = r.quantized_add_in;
  const int conv_out = r.node->outputs[0];
  if (in.size() < 7 || add.inputs.size() != in.size()) return std::nullopt;
  const size_t c = add.inputs[0] == conv_out ? 0 : 3, res = 3 - c;
  for (size_t i : {size_t{1}, size_t{4}, size_t{6}}) {
    if (!in[i] || !in[i]->value || in[i]->dtype != DType::kFloat32 || in[i]->numel() != 1) {
      return std::nullopt;
    }
  }
  auto zp = [&](size_t i) -> int32_t {
    if (i >= in.size() || !in[i]) return 0;
    return in[i]->value && in[i]->numel() == 1 ? int_of(*in[i]->value, 0) : INT32_MIN;
  };
  ResidualSum s;
  s.c_scale = in[c + 1]->value->data<float>()[0];
  s.r_scale = in[res + 1]->value->data<float>()[0];
  s.y_scale = in[6]->value->data<float>()[0];
  s.c_zp = zp(c + 2);
  s.r_zp = zp(res + 2);
  s.y_zp = zp(7);
  if (s.c_zp == INT32_MIN || s.r_zp == INT32_MIN || s.y_zp == INT32_MIN) return std::nullopt;
  if (!(s.c_scale > 0) || !(s.r_scale > 0) || !(s.y_scale > 0)) return std::nullopt;
  s.layout = r.residual_layout;
  return s;
}

// src: the layout of x (empty = plain NCHW); dst_any: the output may take oneDNN's layout;
// sum: a fused QLinearAdd (the output is then the Add's: its type, scale and zero point).
std::unique_ptr<QConvKernel> build_qconv(const Node& node, std::span<const TensorInfo* const> in,
                                         const std::vector<TensorInfo>& out, int threads,
                                         const Layout& src, bool dst_any,
                                         const std::optional<ResidualSum>& sum = std::nullopt) {
  if (!cpu_has_vnni()) return nullptr;  // int16 partial sums would saturate (onednn_ops.h)
  if (in.size() < 8 || !in[0] || out.empty()) return nullptr;
  for (size_t i = 1; i < in.size(); ++i) {
    if (i < 8 && (!in[i] || !in[i]->value)) return nullptr;
    if (i == 8 && in[i] && !in[i]->value) return nullptr;
  }
  const TensorInfo& X = *in[0];
  const Tensor& W = *in[3]->value;
  const Tensor& ws = *in[4]->value;
  const Tensor& wzp = *in[5]->value;
  const auto& x = X.shape;
  const auto& w = W.shape();
  if (x.size() != 4 || w.size() != 4) return nullptr;  // 2-D convolutions
  const int64_t m = w[0], per = W.numel() / m, group = node.attr_int("group", 1);
  const float xs = in[1]->value->data<float>()[0], ys = in[6]->value->data<float>()[0];
  const int32_t xzp = int_of(*in[2]->value, 0);
  const int32_t yzp = sum ? sum->y_zp : int_of(*in[7]->value, 0);
  if (!(xs > 0) || !(ys > 0)) return nullptr;
  // Weights minus their zero point, as int8.
  std::vector<int8_t> wq(static_cast<size_t>(W.numel()));
  for (int64_t o = 0; o < m; ++o) {
    const int32_t z = int_of(wzp, o);
    for (int64_t i = 0; i < per; ++i) {
      const int32_t v = int_of(W, o * per + i) - z;
      if (v < -128 || v > 127) return nullptr;
      wq[static_cast<size_t>(o * per + i)] = static_cast<int8_t>(v);
    }
  }
  // With a fused Add the output scales stop at the conv's own quantized units.
  std::vector<float> scales(static_cast<size_t>(ws.numel() == 1 ? 1 : m));
  for (size_t o = 0; o < scales.size(); ++o) scales[o] = xs * ws.data<float>()[o] / ys;
  std::vector<int64_t> kernel(w.begin() + 2, w.end());
  auto win = ref::window_geometry(node, std::span<const int64_t>(x).subspan(2), kernel, false, true);
  if (!win.ok()) return nullptr;
  Dims strides, pads_b, pads_e, dil;
  bool padded = false, negative_pad = false;
  for (int i = 1; i < 3; ++i) {
    strides.push_back(win->stride[i]);
    pads_b.push_back(win->pad_b[i]);
    pads_e.push_back(win->pad_e[i]);
    dil.push_back(win->dil[i] - 1);
    padded = padded || win->pad_b[i] != 0 || win->pad_e[i] != 0;
    negative_pad = negative_pad || win->pad_b[i] < 0 || win->pad_e[i] < 0;
  }
  // The source zero point folded into the bias (and the padding), see the top of the file. oneDNN
  // converts the raw accumulator to float before adding the bias: it stays exact (< 2^24) for
  // up to 513 products of 8-bit values (the stem has 147); deeper sums keep oneDNN's zero point
  // (1x1 convolutions, where its brgemm kernel takes one anyway).
  const bool fold_xzp = xzp != 0 && !negative_pad && per * 255 * 128 < (int64_t{1} << 24);
  std::vector<float> bias;
  if ((in.size() > 8 && in[8]) || fold_xzp) {
    const int32_t* b = in.size() > 8 && in[8] ? in[8]->value->data<int32_t>() : nullptr;
    bias.resize(static_cast<size_t>(m));
    for (int64_t o = 0; o < m; ++o) {
      int64_t v = b ? b[o] : 0;
      if (fold_xzp) {
        int64_t wsum = 0;
        for (int64_t i = 0; i < per; ++i) wsum += wq[static_cast<size_t>(o * per + i)];
        v -= static_cast<int64_t>(xzp) * wsum;
      }
      bias[static_cast<size_t>(o)] = static_cast<float>(v);
    }
  }
  Dims conv_x = x;  // the source the convolution reads: x, or x with its padding written out
  if (fold_xzp && padded) {
    for (size_t i = 0; i < 2; ++i) {
      conv_x[2 + i] += pads_b[i] + pads_e[i];
      pads_b[i] = pads_e[i] = 0;
    }
  }
  const auto& y = out[0].shape;
  auto k = std::make_unique<QConvKernel>();
  auto built = dnnl_guard("QLinearConv", [&]() -> Status {
    Dims wdims = w;
    if (group > 1) {
      wdims[0] /= group;
      wdims.insert(wdims.begin(), group);
    }
    const dt sdt = dnnl_type(X.dtype), ddt = dnnl_type(out[0].dtype);
    k->user_src = src.is_empty() ? dnnl::memory::desc(to_dnnl(x), sdt, tag::nchw) : src.impl().md;
    if (k->user_src.data_type() != sdt) return unimplemented("QLinearConv: layout of another type");
    k->user_dst = dnnl::memory::desc(to_dnnl(y), ddt, tag::nchw);
    if (sum && !sum->layout.is_empty()) {
      // The residual is blocked: dst takes its layout (the sum reads it there).
      if (sum->layout.impl().md.data_type() != ddt) return unimplemented("QLinearConv: residual type");
      k->user_dst = sum->layout.impl().md;
    }
    // A blocked x is taken as it is when oneDNN's int8 convolution reads that layout (its own
    // choice, NHWC, from the previous int8 step); a plain one is reordered inside the kernel.
    const dnnl::memory::desc src_any(to_dnnl(conv_x), sdt, tag::any),
        dst_md = sum && !sum->layout.is_empty() ? k->user_dst
                                                : dnnl::memory::desc(to_dnnl(y), ddt, tag::any),
        w_any(to_dnnl(wdims), dt::s8, tag::any), w_user(to_dnnl(wdims), dt::s8,
                                                         group > 1 ? tag::goihw : tag::oihw);
    const dnnl::memory::desc b_md = bias.empty() ? dnnl::memory::desc()
                                                 : dnnl::memory::desc({m}, dt::f32, tag::x);
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    attr.set_output_scales(scales.size() == 1 ? 0 : 1 << 1, scales);
    // Zero points only where they are not zero: oneDNN's faster brgemm convolutions take no
    // source zero point, and torch's post-Relu activations (most 3x3 inputs) have zero.
    if (xzp != 0 && !fold_xzp) attr.set_zero_points(DNNL_ARG_SRC, 0, {DNNL_RUNTIME_S32_VAL});
    if (yzp != 0) attr.set_zero_points(DNNL_ARG_DST, 0, {DNNL_RUNTIME_S32_VAL});
    if (sum) {
      const float qmin = ddt == dt::u8 ? 0.f : -128.f, qmax = ddt == dt::u8 ? 255.f : 127.f;
      dnnl::post_ops ops;
      ops.append_eltwise(1.f, dnnl::algorithm::eltwise_round, 0.f, 0.f);
      ops.append_eltwise(1.f, dnnl::algorithm::eltwise_clip, qmin - static_cast<float>(sum->c_zp),
                         qmax - static_cast<float>(sum->c_zp));
      ops.append_eltwise(1.f, dnnl::algorithm::eltwise_linear, sum->c_scale / sum->y_scale, 0.f);
      ops.append_sum(sum->r_scale / sum->y_scale, sum->r_zp, ddt);
      attr.set_post_ops(ops);
      k->residual = true;
    }
    k->threads = resolve_threads(threads);
    ThreadScope scope(k->threads);
    dnnl::convolution_forward::desc desc(dnnl::prop_kind::forward_inference,
                                         dnnl::algorithm::convolution_direct, src_any, w_any, b_md,
                                         dst_md, to_dnnl(strides), to_dnnl(dil), to_dnnl(pads_b),
                                         to_dnnl(pads_e));
    dnnl::convolution_forward::primitive_desc pd(desc, attr, cpu_engine());
    k->prim = dnnl::convolution_forward(pd);
    k->scratchpad_md = pd.scratchpad_desc();
    k->weights = pack(w_user, wq.data(), pd.weights_desc());
    if (!bias.empty()) k->bias = pack(b_md, bias.data(), pd.bias_desc());
    if (xzp != 0 && !fold_xzp) k->src_zp = s32_scalar(xzp);
    if (yzp != 0) k->dst_zp = s32_scalar(yzp);
    k->conv_src = pd.src_desc();
    k->conv_dst = pd.dst_desc();
    if (dst_any && !sum) k->user_dst = k->conv_dst;
    auto align = [](size_t n) { return (n + 63) / 64 * 64; };
    size_t offset = align(k->scratchpad_md.get_size());
    k->pad_src = conv_x != x;
    k->reorder_src = k->pad_src || k->conv_src != k->user_src;
    if (k->pad_src) {
      k->pad_value = static_cast<uint8_t>(xzp);  // the byte of the int8 or uint8 zero point
      dnnl::memory::dims offsets(4, 0);
      offsets[2] = win->pad_b[1];
      offsets[3] = win->pad_b[2];
      k->src_interior = k->conv_src.submemory_desc(to_dnnl(x), offsets);
      k->src_in = layout_reorder(k->user_src, k->src_interior);
      k->src_offset = offset;
      offset += align(k->conv_src.get_size());
    } else if (k->reorder_src) {
      k->src_in = layout_reorder(k->user_src, k->conv_src);
      k->src_offset = offset;
      offset += align(k->conv_src.get_size());
    }
    k->reorder_dst = k->conv_dst != k->user_dst;
    if (k->reorder_dst) {
      k->dst_out = layout_reorder(k->conv_dst, k->user_dst);
      if (sum) k->residual_in = layout_reorder(k->user_dst, k->conv_dst);
      k->dst_offset = offset;
      offset += align(k->conv_dst.get_size());
    }
    k->total = offset;
    return Status::Ok();
  });
  if (!built.ok()) return nullptr;
  return k;
}

std::unique_ptr<const PreparedKernel> prepare_qconv_plain(const Node& node,
                                                          std::span<const TensorInfo* const> in,
                                                          const std::vector<TensorInfo>& out,
                                                          int threads) {
  return build_qconv(node, in, out, threads, Layout(), false);
}

}  // namespace

OnednnStep prepare_qlinear_conv_step(const OnednnStepRequest& r) {
  if (!r.batch_norm.empty()) return {};
  std::optional<ResidualSum> sum;
  if (r.quantized_add) {
    if (!r.residual || r.post_ops.size() != 1 ||
        r.post_ops[0].kind != PostOp::Kind::kAddResidual) {
      return {};
    }
    sum = residual_sum(r);
    if (!sum) return {};
  } else if (!r.post_ops.empty() || r.residual) {
    return {};
  }
  auto k = build_qconv(*r.node, r.in, *r.out, r.threads, r.src_layout, r.dst_blocked_ok, sum);
  if (!k) return {};
  OnednnStep step;
  if (r.dst_blocked_ok) {
    Layout l = layout_from_md(k->user_dst);
    if (!l.is_plain()) step.dst_layout = std::move(l);
  }
  step.kernel = std::move(k);
  return step;
}

std::unique_ptr<const PreparedKernel> prepare_quantize_linear(const Node& node,
                                                              std::span<const TensorInfo* const> in,
                                                              const std::vector<TensorInfo>& out,
                                                              int threads);
std::unique_ptr<const PreparedKernel> prepare_dynamic_quantize_linear(
    const Node& node, std::span<const TensorInfo* const> in, const std::vector<TensorInfo>& out,
    int threads);
std::unique_ptr<const PreparedKernel> prepare_qmatmul_integer(const Node& node,
                                                              std::span<const TensorInfo* const> in,
                                                              const std::vector<TensorInfo>& out,
                                                              int threads);

PrepareFn quant_prepare_for(const std::string& op) {
  if (op == "QLinearConv") return prepare_qconv_plain;
  if (op == "MatMulInteger") return prepare_qmatmul_integer;
  if (op == "QuantizeLinear" || op == "DequantizeLinear") return prepare_quantize_linear;
  if (op == "DynamicQuantizeLinear") return prepare_dynamic_quantize_linear;
  return nullptr;
}

bool quant_takes_blocked(const std::string& op) {
  return op == "QLinearConv" || op == "QLinearAdd";
}

bool quant_serves(const std::string& op) {
  return quant_takes_blocked(op) || op == "DynamicQuantizeMatMul" || op == "MatMulIntegerToFloat";
}

OnednnStep prepare_quant_step(const OnednnStepRequest& r) {
  if (r.node->op_type == "QLinearConv" && r.node->domain.empty()) return prepare_qlinear_conv_step(r);
  if (r.node->domain != "com.microsoft") return {};
  if (r.node->op_type == "QLinearAdd") return prepare_qlinear_add_step(r);
  if (r.node->op_type == "DynamicQuantizeMatMul" || r.node->op_type == "MatMulIntegerToFloat") {
    return prepare_dynamic_quantize_matmul_step(r);
  }
  return {};
}

}  // namespace moss::engine
