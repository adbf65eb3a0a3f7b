// com.microsoft DynamicQuantizeMatMul: Y = dequantize(DynamicQuantizeLinear(A)) x dequantize(B)
// [+ bias], computed as ONNX Runtime's quantize_dynamic chain spells it out
//   (A_q, a_scale, a_zp) = DynamicQuantizeLinear(A)          uint8, per request
//   Y = float(sum_k (A_q - a_zp) * (B - b_zp[n])) * (a_scale * b_scale[n]) [+ bias[n]]
// (MatMulInteger -> Cast -> Mul(a_scale * b_scale) -> Add bias; quant/qdq_rewrite.cc turns that
// chain into this operator). A float [..., K] (batch dims fold into M), B 8-bit constant or not
// [K, N], b_scale and b_zero_point scalars or [N], bias float [N].
//
// com.microsoft MatMulIntegerToFloat is the same product from an A quantized already (what ORT
// fuses MatMulInteger -> Cast -> Mul into): inputs A (8-bit), B, a_scale, b_scale[, a_zero_point,
// b_zero_point, bias]; a_scale and a_zero_point per tensor (they may be computed per request).
//
// The fast path is a plan step of the oneDNN bridge: A quantized into the scratch by the
// vectorized loop (DynamicQuantizeMatMul), then oneDNN's 8-bit x s8 matmul with B packed once as
// int8 (B - b_zp must fit), a run-time source zero point, b_scale as the (constant) output
// scales, then post-ops: a binary Mul by a_scale (a 1x1 tensor read per request: oneDNN 2.6 runs
// run-time output scales on its slower gemm/reference matmuls only), the bias as a binary Add
// and whatever the planner fused after it (GELU, a residual Add as a sum post-op).
// acc * b_scale * a_scale rounds differently from the chain's acc * (a_scale * b_scale), by an
// ulp or so.
#include <cstring>
#include <optional>

#include "engine/kernels/onednn/onednn_common.h"
#include "engine/quant/int8_elementwise.h"
#include "engine/quant/int8_weights.h"
#include "engine/quant/quant_kernels.h"

namespace moss::engine {
namespace {

using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

// Where each operand is among a node's inputs (-1: not an input of this operator).
struct IntegerMatmulInputs {
  int a_scale, a_zero_point, b_scale, b_zero_point, bias;
  bool quantizes_a;  // A is float, quantized per request (DynamicQuantizeMatMul)
};
constexpr IntegerMatmulInputs kDynamicQuantizeMatMul{-1, -1, 2, 3, 4, true};
constexpr IntegerMatmulInputs kMatMulIntegerToFloat{2, 4, 3, 5, 6, false};

const IntegerMatmulInputs& inputs_of(const Node& node) {
  return node.op_type == "MatMulIntegerToFloat" ? kMatMulIntegerToFloat : kDynamicQuantizeMatMul;
}

bool has(std::span<const TensorInfo* const> in, int i) {
  return i >= 0 && static_cast<size_t>(i) < in.size() && in[i];
}

// Checks B, b_scale, b_zero_point and bias against A's inner dimension; sets out.
Status infer_integer_matmul(const Node& node, std::span<const TensorInfo* const> in,
                            const IntegerMatmulInputs& at, std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_dtype(node, *in[1], {DType::kUInt8, DType::kInt8}, "B"));
  if (in[0]->shape.empty() || in[1]->shape.size() != 2) {
    return unimplemented("{}: A must have rank >= 1 and B rank 2", node.label());
  }
  const int64_t k = in[1]->shape[0], n = in[1]->shape[1];
  if (in[0]->shape.back() != k) {
    return invalid_argument("{}: inner dimensions differ: {} and {}", node.label(),
                            shape_to_string(in[0]->shape), shape_to_string(in[1]->shape));
  }
  MOSS_RETURN_IF_ERROR(check_int8_b_scale(node, *in[1], *in[at.b_scale],
                                          has(in, at.b_zero_point) ? in[at.b_zero_point] : nullptr,
                                          n));
  if (has(in, at.bias)) {
    MOSS_RETURN_IF_ERROR(require_dtype(node, *in[at.bias], {DType::kFloat32}, "bias"));
    if (in[at.bias]->numel() != n) {
      return invalid_argument("{}: bias has {} elements, not {}", node.label(),
                              in[at.bias]->numel(), n);
    }
  }
  out.resize(1);
  out[0].dtype = DType::kFloat32;
  out[0].shape = in[0]->shape;
  out[0].shape.back() = n;
  return Status::Ok();
}

Status infer_DynamicQuantizeMatMul(const Node& node, std::span<const TensorInfo* const> in,
                                   std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 3, 5));
  if (!in[0] || !in[1] || !in[2]) {
    return invalid_argument("{}: A, B and b_scale are required", node.label());
  }
  MOSS_RETURN_IF_ERROR(require_dtype(node, *in[0], {DType::kFloat32}, "A"));
  return infer_integer_matmul(node, in, kDynamicQuantizeMatMul, out);
}

Status infer_MatMulIntegerToFloat(const Node& node, std::span<const TensorInfo* const> in,
                                  std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 4, 7));
  if (!in[0] || !in[1] || !in[2] || !in[3]) {
    return invalid_argument("{}: A, B, a_scale and b_scale are required", node.label());
  }
  MOSS_RETURN_IF_ERROR(require_dtype(node, *in[0], {DType::kUInt8, DType::kInt8}, "A"));
  MOSS_RETURN_IF_ERROR(require_dtype(node, *in[2], {DType::kFloat32}, "a_scale"));
  if (in[2]->numel() != 1) {
    return unimplemented("{}: a_scale of {} elements (only a per-tensor scale)", node.label(),
                         in[2]->numel());
  }
  if (has(in, 4)) {
    MOSS_RETURN_IF_ERROR(require_same_dtype(node, *in[0], *in[4], "a_zero_point"));
    if (in[4]->numel() != 1) {
      return unimplemented("{}: a_zero_point of {} elements (only a per-tensor zero point)",
                           node.label(), in[4]->numel());
    }
  }
  return infer_integer_matmul(node, in, kMatMulIntegerToFloat, out);
}

// Y = float(sum_k (A_q - a_zp) * (B - b_zp[n])) * (a_scale * b_scale[n]) [+ bias[n]], int32
// accumulation: the reference of both operators (the chain's operations in its order).
void integer_matmul_to_float(const uint8_t* a, DType a_type, int32_t a_zp, float a_scale,
                             std::span<const View> in, const IntegerMatmulInputs& at, float* y) {
  const int64_t k = in[1].shape[0], n = in[1].shape[1], m = in[0].numel / std::max<int64_t>(k, 1);
  auto present = [&](int i) { return i >= 0 && static_cast<size_t>(i) < in.size() && in[i].data; };
  const View& bs = in[at.b_scale];
  for (int64_t c = 0; c < n; ++c) {
    const int64_t s = bs.numel == 1 ? 0 : c;
    const int32_t bz = present(at.b_zero_point)
                           ? int8_at(in[at.b_zero_point].dtype, in[at.b_zero_point].data, s)
                           : 0;
    const float scale = a_scale * bs.as<float>()[s];
    for (int64_t r = 0; r < m; ++r) {
      int32_t acc = 0;
      for (int64_t i = 0; i < k; ++i) {
        acc += (int8_at(a_type, a, r * k + i) - a_zp) *
               (int8_at(in[1].dtype, in[1].data, i * n + c) - bz);
      }
      float v = static_cast<float>(acc) * scale;
      if (present(at.bias)) v += in[at.bias].as<float>()[c];
      y[r * n + c] = v;
    }
  }
}

Status run_DynamicQuantizeMatMul(const Node&, std::span<const View> in,
                                 std::span<const View> out) {
  std::vector<uint8_t> aq(static_cast<size_t>(in[0].numel));
  const DynamicQuantization q = dynamic_quantize_u8(in[0].as<float>(), aq.data(), in[0].numel);
  integer_matmul_to_float(aq.data(), DType::kUInt8, q.zero_point, q.scale, in,
                          kDynamicQuantizeMatMul, out[0].as<float>());
  return Status::Ok();
}

Status run_MatMulIntegerToFloat(const Node&, std::span<const View> in,
                                std::span<const View> out) {
  const int32_t a_zp = in.size() > 4 && in[4].data ? int8_at(in[4].dtype, in[4].data, 0) : 0;
  integer_matmul_to_float(in[0].data, in[0].dtype, a_zp, in[2].as<float>()[0], in,
                          kMatMulIntegerToFloat, out[0].as<float>());
  return Status::Ok();
}

class IntegerMatmulToFloatKernel final : public PreparedKernel {
 public:
  dnnl::matmul prim;
  dnnl::memory::desc scratchpad_md, a_md, dst_md, scalar_md;
  dnnl::memory b, bias;
  IntegerMatmulInputs at = kDynamicQuantizeMatMul;
  const char* op = "DynamicQuantizeMatMul";
  int64_t a_numel = 0;
  size_t a_offset = 0, total = 0;
  bool has_residual = false;
  int threads = 1;

  size_t scratch_bytes() const override { return total; }
  size_t weights_bytes() const override {
    return b.get_desc().get_size() + (bias ? bias.get_desc().get_size() : 0);
  }
  uint32_t packed_inputs() const override {
    // B, b_scale, b_zero_point and bias; A, a_scale and a_zero_point are read per request.
    uint32_t mask = 1u << 1;
    for (int i : {at.b_scale, at.b_zero_point, at.bias}) mask |= 1u << i;
    return mask;
  }
  std::string_view kind() const override { return kInt8Kind; }

  Status run(std::span<const View> in, std::span<const View> out, RunScratch& s) const override {
    if (!s.dnnl) return internal_error("{}: no oneDNN scratch in this context", op);
    onednn::OnednnScratch& scratch = *s.dnnl;
    if (scratch.capacity() < total) scratch.reserve(total);
    char* base = static_cast<char*>(scratch.impl().buffer);
    const void* a = in[0].data;
    float a_scale = 0;
    int32_t zp = 0;
    if (at.quantizes_a) {
      auto* aq = reinterpret_cast<uint8_t*>(base + a_offset);
      const DynamicQuantization q = dynamic_quantize_u8(in[0].as<float>(), aq, a_numel);
      a = aq;
      a_scale = q.scale;
      zp = q.zero_point;
    } else {
      a_scale = in[at.a_scale].as<float>()[0];
      if (static_cast<size_t>(at.a_zero_point) < in.size() && in[at.a_zero_point].data) {
        zp = int8_at(in[at.a_zero_point].dtype, in[at.a_zero_point].data, 0);
      }
    }
    if (has_residual && in.back().data != out[0].data) {
      std::memcpy(out[0].data, in.back().data, dst_md.get_size());
    }
    return onednn::dnnl_guard(op, [&]() -> Status {
      std::unordered_map<int, dnnl::memory> args;
      args.reserve(8);
      args.emplace(DNNL_ARG_SRC, onednn::wrap(a_md, a));
      args.emplace(DNNL_ARG_WEIGHTS, b);
      args.emplace(DNNL_ARG_DST, onednn::wrap(dst_md, out[0].data));
      args.emplace(DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_SRC,
                   onednn::wrap(dnnl::memory::desc({1}, dt::s32, tag::x), &zp));
      args.emplace(DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1,
                   onednn::wrap(scalar_md, &a_scale));
      if (bias) args.emplace(DNNL_ARG_ATTR_MULTIPLE_POST_OP(1) | DNNL_ARG_SRC_1, bias);
      // The scratchpad sits at the start of the scratch (run_primitive passes it from there).
      return onednn::run_primitive(prim, scratchpad_md, args, scratch, threads, op);
    });
  }
};

}  // namespace

OnednnStep prepare_dynamic_quantize_matmul_step(const OnednnStepRequest& r) {
  if (!onednn::cpu_has_vnni()) return {};  // int16 partial sums would saturate (onednn_ops.h)
  const auto in = r.in;
  const IntegerMatmulInputs& at = inputs_of(*r.node);
  if (in.size() < 3 || !in[0] || !in[1] || !has(in, at.b_scale) || in[0]->value) return {};
  if (!r.src_layout.is_empty() || !r.residual_layout.is_empty() || !r.batch_norm.empty() ||
      r.bias) {
    return {};
  }
  for (int i : {1, at.b_scale, at.b_zero_point, at.bias}) {
    if (has(in, i) && !in[i]->value) return {};  // constant B, its scales and zero points, bias
  }
  const Tensor& B = *in[1]->value;
  if (B.rank() != 2 || in[0]->shape.empty()) return {};
  const int64_t k = B.shape()[0], n = B.shape()[1];
  if (in[0]->shape.back() != k || k == 0) return {};
  const int64_t m = in[0]->numel() / k;
  const Tensor& bs = *in[at.b_scale]->value;
  const Tensor* bzp = has(in, at.b_zero_point) ? in[at.b_zero_point]->value.get() : nullptr;
  auto packed_b = pack_int8_b(B, bzp, k, n);
  if (!packed_b) return {};  // B minus its zero point leaves the int8 range
  const std::vector<int8_t>& bq = *packed_b;
  auto kern = std::make_shared<IntegerMatmulToFloatKernel>();
  kern->at = at;
  kern->op = at.quantizes_a ? "DynamicQuantizeMatMul" : "MatMulIntegerToFloat";
  const std::vector<float> b_scales(bs.data<float>(), bs.data<float>() + bs.numel());
  kern->a_numel = in[0]->numel();
  const bool ok = onednn::dnnl_guard(kern->op, [&]() -> Status {
    const dt a_type = in[0]->dtype == DType::kInt8 ? dt::s8 : dt::u8;  // float A: quantized to u8
    kern->a_md = dnnl::memory::desc({m, k}, a_type, tag::ab);
    kern->dst_md = dnnl::memory::desc({m, n}, dt::f32, tag::ab);
    kern->scalar_md = dnnl::memory::desc({1, 1}, dt::f32, tag::ab);
    const dnnl::memory::desc b_user({k, n}, dt::s8, tag::ab), b_any({k, n}, dt::s8, tag::any);
    dnnl::post_ops ops;
    ops.append_binary(dnnl::algorithm::binary_mul, kern->scalar_md);
    // The bias is added after the scales (oneDNN 2.x adds a matmul bias before them).
    const dnnl::memory::desc bias_md({1, n}, dt::f32, tag::ab);
    const bool has_bias = has(in, at.bias);
    if (has_bias) ops.append_binary(dnnl::algorithm::binary_add, bias_md);
    MOSS_RETURN_IF_ERROR(onednn::build_post_ops(r.post_ops, true, ops, &kern->has_residual));
    if (kern->has_residual != (r.residual != nullptr)) {
      return unimplemented("{}: residual", kern->op);
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
    if (has_bias) kern->bias = onednn::pack(bias_md, in[at.bias]->value->raw(), bias_md);
    auto align = [](size_t v) { return (v + 63) / 64 * 64; };
    kern->a_offset = align(kern->scratchpad_md.get_size());
    kern->total = kern->a_offset + (at.quantizes_a ? align(static_cast<size_t>(kern->a_numel)) : 0);
    return Status::Ok();
  }).ok();
  if (!ok) return {};
  OnednnStep step;
  step.kernel = std::move(kern);
  return step;
}

std::vector<OpKernel> quant_matmul_contrib_kernels() {
  return {{"DynamicQuantizeMatMul", infer_DynamicQuantizeMatMul, run_DynamicQuantizeMatMul},
          {"MatMulIntegerToFloat", infer_MatMulIntegerToFloat, run_MatMulIntegerToFloat}};
}

}  // namespace moss::engine
