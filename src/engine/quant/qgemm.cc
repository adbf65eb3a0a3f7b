// com.microsoft QGemm (ONNX Runtime's quantized Gemm; what quant/qdq_rewrite.cc turns a QDQ Gemm
// into, e.g. a classifier's last layer):
//   Y = saturate(round((alpha * sum_k (A - a_zp)(B - b_zp[n]) + C[n]) * a_scale*b_scale[n]/y_scale)
//                + y_zp)
// with A [M, K] (transA = 0), B constant [K, N] or [N, K] (transB), per-tensor or per-column B
// scale and zero point, C int32 [N] or absent (in accumulator units, scale a_scale*b_scale). Only
// the requantized form (y_scale given) is supported. The reference kernel accumulates in int32;
// the fast one is oneDNN's int8 matmul with B packed once as int8 (B - b_zp must fit int8).
#include <algorithm>
#include <cmath>
#include <limits>

#include "engine/kernels/onednn/onednn_common.h"
#include "engine/quant/int8_weights.h"
#include "engine/quant/quant_kernels.h"

namespace moss::engine {
namespace {

using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

struct Geometry {
  int64_t m = 0, k = 0, n = 0;
};

// B's element (k, n) whatever transB says.
int64_t b_index(bool trans_b, const Geometry& g, int64_t k, int64_t n) {
  return trans_b ? n * g.k + k : k * g.n + n;
}

Status infer_QGemm(const Node& node, std::span<const TensorInfo* const> in,
                   std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 6, 9));
  if (!in[0] || !in[1] || !in[3] || !in[4]) {
    return invalid_argument("{}: A, B and their scales are required", node.label());
  }
  if (in.size() < 8 || !in[7]) {
    return unimplemented("{}: QGemm without y_scale (float output) is not supported",
                         node.label());
  }
  MOSS_RETURN_IF_ERROR(require_dtype(node, *in[0], {DType::kUInt8, DType::kInt8}, "A"));
  MOSS_RETURN_IF_ERROR(require_dtype(node, *in[3], {DType::kUInt8, DType::kInt8}, "B"));
  if (node.attr_int("transA", 0) != 0) {
    return unimplemented("{}: transA is not supported", node.label());
  }
  if (in[0]->shape.size() != 2 || in[3]->shape.size() != 2) {
    return invalid_argument("{}: A and B must be 2-D", node.label());
  }
  const bool tb = node.attr_int("transB", 0) != 0;
  const Geometry g{in[0]->shape[0], in[0]->shape[1], tb ? in[3]->shape[0] : in[3]->shape[1]};
  if ((tb ? in[3]->shape[1] : in[3]->shape[0]) != g.k) {
    return invalid_argument("{}: inner dimensions differ", node.label());
  }
  for (size_t i : {1, 7}) {
    MOSS_RETURN_IF_ERROR(require_dtype(node, *in[i], {DType::kFloat32}, "scale"));
    if (in[i]->numel() != 1) return invalid_argument("{}: input {} must be a scalar", node.label(), i);
  }
  MOSS_RETURN_IF_ERROR(check_int8_b_scale(node, *in[3], *in[4], in[5], g.n));
  if (in[2]) MOSS_RETURN_IF_ERROR(require_same_dtype(node, *in[0], *in[2], "a_zero_point"));
  if (in[2] && in[2]->numel() != 1) return invalid_argument("{}: a_zero_point must be a scalar", node.label());
  if (in.size() > 6 && in[6]) {
    MOSS_RETURN_IF_ERROR(require_dtype(node, *in[6], {DType::kInt32}, "C"));
    if (in[6]->numel() != g.n) return unimplemented("{}: C must have N elements", node.label());
  }
  DType y = DType::kUInt8;
  if (in.size() > 8 && in[8]) {
    MOSS_RETURN_IF_ERROR(require_dtype(node, *in[8], {DType::kUInt8, DType::kInt8}, "y_zero_point"));
    if (in[8]->numel() != 1) return invalid_argument("{}: y_zero_point must be a scalar", node.label());
    y = in[8]->dtype;
  }
  out.resize(1);
  out[0].dtype = y;
  out[0].shape = {g.m, g.n};
  return Status::Ok();
}

float scalar_f(const View& v, int64_t i = 0) { return v.as<float>()[v.numel == 1 ? 0 : i]; }

Status run_QGemm(const Node& node, std::span<const View> in, std::span<const View> out) {
  const bool tb = node.attr_int("transB", 0) != 0;
  const Geometry g{in[0].shape[0], in[0].shape[1], out[0].shape[1]};
  const float alpha = node.attr_float("alpha", 1.0f);
  auto present = [&](size_t i) { return i < in.size() && in[i].data != nullptr; };
  const int32_t azp = present(2) ? int8_at(in[2].dtype, in[2].data, 0) : 0;
  const int32_t yzp = present(8) ? int8_at(in[8].dtype, in[8].data, 0) : 0;
  const DType yt = out[0].dtype;
  const double lo = yt == DType::kUInt8 ? 0 : -128, hi = yt == DType::kUInt8 ? 255 : 127;
  for (int64_t n = 0; n < g.n; ++n) {
    const int32_t bzp = present(5) ? int8_at(in[5].dtype, in[5].data, in[5].numel == 1 ? 0 : n) : 0;
    const double scale = static_cast<double>(scalar_f(in[1])) * scalar_f(in[4], n) / scalar_f(in[7]);
    const double c = present(6) ? in[6].as<int32_t>()[n] : 0;
    for (int64_t m = 0; m < g.m; ++m) {
      int64_t acc = 0;
      for (int64_t k = 0; k < g.k; ++k) {
        acc += static_cast<int64_t>(int8_at(in[0].dtype, in[0].data, m * g.k + k) - azp) *
               (int8_at(in[3].dtype, in[3].data, b_index(tb, g, k, n)) - bzp);
      }
      const double v = std::clamp(std::nearbyint((alpha * static_cast<double>(acc) + c) * scale) + yzp, lo, hi);
      if (yt == DType::kUInt8) out[0].as<uint8_t>()[m * g.n + n] = static_cast<uint8_t>(v);
      else out[0].as<int8_t>()[m * g.n + n] = static_cast<int8_t>(v);
    }
  }
  return Status::Ok();
}

class QGemmKernel final : public PreparedKernel {
 public:
  dnnl::matmul prim;
  dnnl::memory::desc scratchpad_md, a_md, y_md;
  dnnl::memory b, bias, a_zp, y_zp;
  int threads = 1;

  size_t scratch_bytes() const override { return scratchpad_md.get_size(); }
  size_t weights_bytes() const override {
    return b.get_desc().get_size() + (bias ? bias.get_desc().get_size() : 0);
  }
  uint32_t packed_inputs() const override { return 0b111111110u; }  // all but A
  std::string_view kind() const override { return kInt8Kind; }
  Status run(std::span<const View> in, std::span<const View> out, RunScratch& s) const override {
    if (!s.dnnl) return internal_error("QGemm: no oneDNN scratch in this context");
    return onednn::dnnl_guard("QGemm", [&]() -> Status {
      std::unordered_map<int, dnnl::memory> args;
      args.reserve(6);
      args.emplace(DNNL_ARG_SRC, onednn::wrap(a_md, in[0].data));
      args.emplace(DNNL_ARG_WEIGHTS, b);
      if (bias) args.emplace(DNNL_ARG_BIAS, bias);
      args.emplace(DNNL_ARG_DST, onednn::wrap(y_md, out[0].data));
      if (a_zp) args.emplace(DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_SRC, a_zp);
      if (y_zp) args.emplace(DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_DST, y_zp);
      return onednn::run_primitive(prim, scratchpad_md, args, *s.dnnl, threads, "QGemm");
    });
  }
};

dnnl::memory s32_value(int32_t v) {
  dnnl::memory m({{1}, dt::s32, tag::x}, onednn::cpu_engine());
  *static_cast<int32_t*>(m.get_data_handle()) = v;
  return m;
}

std::unique_ptr<const PreparedKernel> prepare_qgemm(const Node& node,
                                                    std::span<const TensorInfo* const> in,
                                                    const std::vector<TensorInfo>& out,
                                                    int threads) {
  if (!onednn::cpu_has_vnni()) return nullptr;  // int16 partial sums would saturate (onednn_ops.h)
  if (in.size() < 8 || !in[0] || out.empty()) return nullptr;
  for (size_t i = 1; i < in.size(); ++i) {
    if (in[i] && !in[i]->value) return nullptr;  // constant B, scales, zero points and C
  }
  if (!in[1] || !in[3] || !in[4] || !in[7] || in[0]->shape.size() != 2) return nullptr;
  const bool tb = node.attr_int("transB", 0) != 0;
  const float alpha = node.attr_float("alpha", 1.0f);
  if (alpha != 1.0f) return nullptr;
  const Geometry g{in[0]->shape[0], in[0]->shape[1], out[0].shape[1]};
  const Tensor& B = *in[3]->value;
  const Tensor* bzp = in.size() > 5 && in[5] ? in[5]->value.get() : nullptr;
  const std::optional<std::vector<int8_t>> bq = pack_int8_b(B, bzp, g.k, g.n, tb);
  if (!bq) return nullptr;
  const float as = in[1]->value->data<float>()[0], ys = in[7]->value->data<float>()[0];
  const Tensor& bs = *in[4]->value;
  if (!(as > 0) || !(ys > 0)) return nullptr;
  std::vector<float> scales(static_cast<size_t>(bs.numel()));
  for (size_t i = 0; i < scales.size(); ++i) scales[i] = as * bs.data<float>()[i] / ys;
  std::vector<float> c;
  if (in.size() > 6 && in[6]) {
    const int32_t* p = in[6]->value->data<int32_t>();
    c.assign(p, p + g.n);
  }
  const int32_t azp = in[2] ? int8_at(in[2]->dtype, in[2]->value->raw(), 0) : 0;
  const int32_t yzp = in.size() > 8 && in[8] ? int8_at(in[8]->dtype, in[8]->value->raw(), 0) : 0;
  auto k = std::make_unique<QGemmKernel>();
  const bool ok = onednn::dnnl_guard("QGemm", [&]() -> Status {
    const dt at = in[0]->dtype == DType::kUInt8 ? dt::u8 : dt::s8;
    const dt yt = out[0].dtype == DType::kUInt8 ? dt::u8 : dt::s8;
    k->a_md = dnnl::memory::desc({g.m, g.k}, at, tag::ab);
    k->y_md = dnnl::memory::desc({g.m, g.n}, yt, tag::ab);
    const dnnl::memory::desc b_user({g.k, g.n}, dt::s8, tag::ab), b_any({g.k, g.n}, dt::s8, tag::any);
    // oneDNN 2.x int8: the bias is added to the accumulator before the output scales, so C
    // (int32, accumulator units) goes in as f32 unchanged.
    const dnnl::memory::desc bias_md =
        c.empty() ? dnnl::memory::desc() : dnnl::memory::desc({1, g.n}, dt::f32, tag::ab);
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    attr.set_output_scales(scales.size() == 1 ? 0 : 1 << 1, scales);
    if (azp != 0) attr.set_zero_points(DNNL_ARG_SRC, 0, {DNNL_RUNTIME_S32_VAL});
    if (yzp != 0) attr.set_zero_points(DNNL_ARG_DST, 0, {DNNL_RUNTIME_S32_VAL});
    k->threads = onednn::resolve_threads(threads);
    onednn::ThreadScope scope(k->threads);
    dnnl::matmul::desc desc(k->a_md, b_any, bias_md, k->y_md);
    dnnl::matmul::primitive_desc pd(desc, attr, onednn::cpu_engine());
    k->prim = dnnl::matmul(pd);
    k->scratchpad_md = pd.scratchpad_desc();
    k->b = onednn::pack(b_user, bq->data(), pd.weights_desc());
    if (!c.empty()) k->bias = onednn::pack(bias_md, c.data(), pd.bias_desc());
    if (azp != 0) k->a_zp = s32_value(azp);
    if (yzp != 0) k->y_zp = s32_value(yzp);
    return Status::Ok();
  }).ok();
  if (!ok) return nullptr;
  return k;
}

}  // namespace

std::vector<OpKernel> quant_gemm_contrib_kernels() {
  OpKernel k{"QGemm", infer_QGemm, run_QGemm};
  k.prepare = prepare_qgemm;
  return {k};
}

}  // namespace moss::engine
