// com.microsoft DynamicQuantizeMatMul: Y = dequantize(DynamicQuantizeLinear(A)) x dequantize(B)
// [+ bias], computed as ONNX Runtime's quantize_dynamic chain spells it out
//   (A_q, a_scale, a_zp) = DynamicQuantizeLinear(A)          uint8, per request
//   Y = float(sum_k (A_q - a_zp) * (B - b_zp[n])) * (a_scale * b_scale[n]) [+ bias[n]]
// (MatMulInteger -> Cast -> Mul(a_scale * b_scale) -> Add bias; quant/qdq_rewrite.cc turns that
// chain into this operator). A float [..., K] (batch dims fold into M), B 8-bit constant or not
// [K, N], b_scale and b_zero_point scalars or [N], bias float [N].
//
// The fast path is a plan step of the oneDNN bridge: A quantized into the scratch by the
// vectorized loop, then oneDNN's u8 x s8 matmul with B packed once as int8 (B - b_zp must fit),
// a run-time source zero point, b_scale as the (constant) output scales, then post-ops: a binary
// Mul by a_scale (a 1x1 tensor read per request: oneDNN 2.6 runs run-time output scales on its
// slower gemm/reference matmuls only), the bias as a binary Add and whatever the planner fused
// after it (GELU, a residual Add as a sum post-op). acc * b_scale * a_scale rounds differently
// from the chain's acc * (a_scale * b_scale), by an ulp or so.
#include <cstring>
#include <optional>

#include "engine/kernels/onednn/onednn_common.h"
#include "engine/quant/int8_elementwise.h"
#include "engine/quant/quant_kernels.h"

namespace moss::engine {
namespace {

using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

int32_t int8_at(DType d, const uint8_t* p, int64_t i) {
  return d == DType::kUInt8 ? p[i] : reinterpret_cast<const int8_t*>(p)[i];
}

Status infer_DynamicQuantizeMatMul(const Node& node, std::span<const TensorInfo* const> in,
                                   std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 3, 5));
  if (!in[0] || !in[1] || !in[2]) {
    return invalid_argument("{}: A, B and b_scale are required", node.label());
  }
  MOSS_RETURN_IF_ERROR(require_dtype(node, *in[0], {DType::kFloat32}, "A"));
  MOSS_RETURN_IF_ERROR(require_dtype(node, *in[1], {DType::kUInt8, DType::kInt8}, "B"));
  MOSS_RETURN_IF_ERROR(require_dtype(node, *in[2], {DType::kFloat32}, "b_scale"));
  if (in[0]->shape.empty() || in[1]->shape.size() != 2) {
    return unimplemented("{}: A must have rank >= 1 and B rank 2", node.label());
  }
  const int64_t k = in[1]->shape[0], n = in[1]->shape[1];
  if (in[0]->shape.back() != k) {
    return invalid_argument("{}: inner dimensions differ: {} and {}", node.label(),
                            shape_to_string(in[0]->shape), shape_to_string(in[1]->shape));
  }
  if (in[2]->numel() != 1 && in[2]->numel() != n) {
    return invalid_argument("{}: b_scale has {} elements, not 1 or {}", node.label(),
                            in[2]->numel(), n);
  }
  if (in.size() > 3 && in[3]) {
    MOSS_RETURN_IF_ERROR(require_same_dtype(node, *in[1], *in[3], "b_zero_point"));
    if (in[3]->numel() != in[2]->numel()) {
      return invalid_argument("{}: b_zero_point and b_scale differ in size", node.label());
    }
  }
  if (in.size() > 4 && in[4]) {
    MOSS_RETURN_IF_ERROR(require_dtype(node, *in[4], {DType::kFloat32}, "bias"));
    if (in[4]->numel() != n) {
      return invalid_argument("{}: bias has {} elements, not {}", node.label(), in[4]->numel(), n);
    }
  }
  out.resize(1);
  out[0].dtype = DType::kFloat32;
  out[0].shape = in[0]->shape;
  out[0].shape.back() = n;
  return Status::Ok();
}

// Reference: the chain's operations in its order, int32 accumulation.
Status run_DynamicQuantizeMatMul(const Node&, std::span<const View> in,
                                 std::span<const View> out) {
  const int64_t k = in[1].shape[0], n = in[1].shape[1], m = in[0].numel / std::max<int64_t>(k, 1);
  std::vector<uint8_t> aq(static_cast<size_t>(in[0].numel));
  const DynamicQuantization q = dynamic_quantize_u8(in[0].as<float>(), aq.data(), in[0].numel);
  auto present = [&](size_t i) { return i < in.size() && in[i].data != nullptr; };
  const float* bs = in[2].as<float>();
  float* y = out[0].as<float>();
  for (int64_t c = 0; c < n; ++c) {
    const int64_t s = in[2].numel == 1 ? 0 : c;
    const int32_t bz = present(3) ? int8_at(in[3].dtype, in[3].data, s) : 0;
    const float scale = q.scale * bs[s];
    for (int64_t r = 0; r < m; ++r) {
      int32_t acc = 0;
      for (int64_t i = 0; i < k; ++i) {
        acc += (static_cast<int32_t>(aq[static_cast<size_t>(r * k + i)]) - q.zero_point) *
               (int8_at(in[1].dtype, in[1].data, i * n + c) - bz);
      }
      float v = static_cast<float>(acc) * scale;
      if (present(4)) v += in[4].as<float>()[c];
      y[r * n + c] = v;
    }
  }
  return Status::Ok();
}

class DynamicQuantizeMatmulKernel final : public PreparedKernel {
 public:
  dnnl::matmul prim;
  dnnl::memory::desc scratchpad_md, a_md, dst_md, scalar_md;
  dnnl::memory b, bias;
  int64_t a_numel = 0;
  size_t a_offset = 0, total = 0;
  bool has_residual = false;
  int threads = 1;

  size_t scratch_bytes() const override { return total; }
  size_t weights_bytes() const override {
    return b.get_desc().get_size() + (bias ? bias.get_desc().get_size() : 0);
  }
  uint32_t packed_inputs() const override { return 0b11110u; }  // all but A
  std::string_view kind() const override { return kInt8Kind; }

  Status run(std::span<const View> in, std::span<const View> out, RunScratch& s) const override {
    if (!s.dnnl) return internal_error("DynamicQuantizeMatMul: no oneDNN scratch in this context");
    onednn::OnednnScratch& scratch = *s.dnnl;
    if (scratch.capacity() < total) scratch.reserve(total);
    char* base = static_cast<char*>(scratch.impl().buffer);
    auto* aq = reinterpret_cast<uint8_t*>(base + a_offset);
    const DynamicQuantization q = dynamic_quantize_u8(in[0].as<float>(), aq, a_numel);
    float a_scale = q.scale;
    int32_t zp = q.zero_point;
    if (has_residual && in.back().data != out[0].data) {
      std::memcpy(out[0].data, in.back().data, dst_md.get_size());
    }
    return onednn::dnnl_guard("DynamicQuantizeMatMul", [&]() -> Status {
      std::unordered_map<int, dnnl::memory> args;
      args.reserve(8);
      args.emplace(DNNL_ARG_SRC, onednn::wrap(a_md, aq));
      args.emplace(DNNL_ARG_WEIGHTS, b);
      args.emplace(DNNL_ARG_DST, onednn::wrap(dst_md, out[0].data));
      args.emplace(DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_SRC,
                   onednn::wrap(dnnl::memory::desc({1}, dt::s32, tag::x), &zp));
      args.emplace(DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1,
                   onednn::wrap(scalar_md, &a_scale));
      if (bias) args.emplace(DNNL_ARG_ATTR_MULTIPLE_POST_OP(1) | DNNL_ARG_SRC_1, bias);
      // The scratchpad sits at the start of the scratch (run_primitive passes it from there).
      return onednn::run_primitive(prim, scratchpad_md, args, scratch, threads,
                                   "DynamicQuantizeMatMul");
    });
  }
};

}  // namespace

OnednnStep prepare_dynamic_quantize_matmul_step(const OnednnStepRequest& r) {
  const auto in = r.in;
  if (in.size() < 3 || !in[0] || !in[1] || !in[2] || in[0]->value) return {};
  if (!r.src_layout.is_empty() || !r.residual_layout.is_empty() || !r.batch_norm.empty() ||
      r.bias) {
    return {};
  }
  for (size_t i = 1; i < in.size(); ++i) {
    if (in[i] && !in[i]->value) return {};  // constant B, scales, zero points and bias
  }
  const Tensor& B = *in[1]->value;
  if (B.rank() != 2 || in[0]->shape.empty()) return {};
  const int64_t k = B.shape()[0], n = B.shape()[1];
  if (in[0]->shape.back() != k || k == 0) return {};
  const int64_t m = in[0]->numel() / k;
  const Tensor& bs = *in[2]->value;
  const Tensor* bzp = in.size() > 3 && in[3] ? in[3]->value.get() : nullptr;
  std::vector<int8_t> bq(static_cast<size_t>(k * n));
  for (int64_t i = 0; i < k; ++i) {
    for (int64_t c = 0; c < n; ++c) {
      const int32_t z = bzp ? int8_at(bzp->dtype(), bzp->raw(), bzp->numel() == 1 ? 0 : c) : 0;
      const int32_t v = int8_at(B.dtype(), B.raw(), i * n + c) - z;
      if (v < -128 || v > 127) return {};
      bq[static_cast<size_t>(i * n + c)] = static_cast<int8_t>(v);
    }
  }
  auto kern = std::make_shared<DynamicQuantizeMatmulKernel>();
  const std::vector<float> b_scales(bs.data<float>(), bs.data<float>() + bs.numel());
  kern->a_numel = in[0]->numel();
  const bool ok = onednn::dnnl_guard("DynamicQuantizeMatMul", [&]() -> Status {
    kern->a_md = dnnl::memory::desc({m, k}, dt::u8, tag::ab);
    kern->dst_md = dnnl::memory::desc({m, n}, dt::f32, tag::ab);
    kern->scalar_md = dnnl::memory::desc({1, 1}, dt::f32, tag::ab);
    const dnnl::memory::desc b_user({k, n}, dt::s8, tag::ab), b_any({k, n}, dt::s8, tag::any);
    dnnl::post_ops ops;
    ops.append_binary(dnnl::algorithm::binary_mul, kern->scalar_md);
    // The bias is added after the scales (oneDNN 2.x adds a matmul bias before them).
    const dnnl::memory::desc bias_md({1, n}, dt::f32, tag::ab);
    const bool has_bias = in.size() > 4 && in[4];
    if (has_bias) ops.append_binary(dnnl::algorithm::binary_add, bias_md);
    MOSS_RETURN_IF_ERROR(onednn::build_post_ops(r.post_ops, true, ops, &kern->has_residual));
    if (kern->has_residual != (r.residual != nullptr)) {
      return unimplemented("DynamicQuantizeMatMul: residual");
    }
    dnnl::primitive_attr attr = onednn::make_attr(ops);
    attr.set_output_scales(b_scales.size() == 1 ? 0 : 1 << 1, b_scales);
    attr.set_zero_points(DNNL_ARG_SRC, 0, {DNNL_RUNTIME_S32_VAL});
    kern->threads = onednn::resolve_threads(r.threads);
    onednn::ThreadScope scope(kern->threads);
    dnnl::matmul::desc desc(kern->a_md, b_any, kern->dst_md);
    dnnl::matmul::primitive_desc pd(desc, attr, onednn::cpu_engine());
    kern->prim = dnnl::matmul(pd);
    kern->scratchpad_md = pd.scratchpad_desc();
    kern->b = onednn::pack(b_user, bq.data(), pd.weights_desc());
    if (has_bias) kern->bias = onednn::pack(bias_md, in[4]->value->raw(), bias_md);
    auto align = [](size_t v) { return (v + 63) / 64 * 64; };
    kern->a_offset = align(kern->scratchpad_md.get_size());
    kern->total = kern->a_offset + align(static_cast<size_t>(kern->a_numel));
    return Status::Ok();
  }).ok();
  if (!ok) return {};
  OnednnStep step;
  step.kernel = std::move(kern);
  return step;
}

std::vector<OpKernel> quant_matmul_contrib_kernels() {
  return {{"DynamicQuantizeMatMul", infer_DynamicQuantizeMatMul, run_DynamicQuantizeMatMul}};
}

}  // namespace moss::engine
