// com.microsoft QLinearAdd (ONNX Runtime's QOperator form of DequantizeLinear x2 -> Add ->
// QuantizeLinear, and what quant/qdq_rewrite.cc turns that chain into):
//   C = saturate(round((A_scale*(A - A_zp) + B_scale*(B - B_zp)) / C_scale) + C_zp)
// computed as A*ka + B*kb + k0 in float (ka = A_scale/C_scale, kb = B_scale/C_scale, k0 = C_zp -
// ka*A_zp - kb*B_zp), the same loop on both paths. The reference kernel broadcasts (numpy rules);
// the int8 plan step adds two tensors of one shape in whatever layout they share (oneDNN's NHWC
// between int8 convolutions: element-wise, the layout does not matter), without reorders.
#include <algorithm>
#include <cstring>

#include "engine/kernels/onednn/onednn_common.h"
#include "engine/quant/int8_elementwise.h"
#include "engine/quant/quant_kernels.h"

namespace moss::engine {
namespace {

struct AddCoefficients {
  float ka = 0, kb = 0, k0 = 0;
};

float scalar_float(const uint8_t* data) {
  float v;
  std::memcpy(&v, data, sizeof v);
  return v;
}
int32_t scalar_int(DType d, const uint8_t* data) {
  if (!data) return 0;
  return d == DType::kUInt8 ? *data : *reinterpret_cast<const int8_t*>(data);
}

AddCoefficients coefficients(float as, int32_t az, float bs, int32_t bz, float cs, int32_t cz) {
  AddCoefficients c;
  c.ka = as / cs;
  c.kb = bs / cs;
  c.k0 = static_cast<float>(cz) - c.ka * static_cast<float>(az) - c.kb * static_cast<float>(bz);
  return c;
}

Status infer_QLinearAdd(const Node& node, std::span<const TensorInfo* const> in,
                        std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 7, 8));
  if (!in[0] || !in[1] || !in[3] || !in[4] || !in[6]) {
    return invalid_argument("{}: A, B and the three scales are required", node.label());
  }
  MOSS_RETURN_IF_ERROR(require_dtype(node, *in[0], {DType::kUInt8, DType::kInt8}, "A"));
  MOSS_RETURN_IF_ERROR(require_same_dtype(node, *in[0], *in[3], "B"));
  for (size_t i : {1, 4, 6}) {
    MOSS_RETURN_IF_ERROR(require_dtype(node, *in[i], {DType::kFloat32}, "scale"));
    if (in[i]->numel() != 1) {
      return invalid_argument("{}: input {} must be a scalar scale", node.label(), i);
    }
  }
  for (size_t i : {2, 5, 7}) {
    if (i >= in.size() || !in[i]) continue;
    MOSS_RETURN_IF_ERROR(require_same_dtype(node, *in[0], *in[i], "zero point"));
    if (in[i]->numel() != 1) {
      return invalid_argument("{}: input {} must be a scalar zero point", node.label(), i);
    }
  }
  MOSS_ASSIGN_OR_RETURN(auto shape, broadcast_shapes(node, in[0]->shape, in[3]->shape));
  out.resize(1);
  out[0].dtype = in[0]->dtype;
  out[0].shape = std::move(shape);
  return Status::Ok();
}

AddCoefficients coefficients_of(std::span<const View> in) {
  auto zp = [&](size_t i) { return i < in.size() ? scalar_int(in[i].dtype, in[i].data) : 0; };
  return coefficients(scalar_float(in[1].data), zp(2), scalar_float(in[4].data), zp(5),
                      scalar_float(in[6].data), zp(7));
}

// Reference: numpy broadcasting, one output row (innermost dim) at a time.
Status run_QLinearAdd(const Node&, std::span<const View> in, std::span<const View> out) {
  const AddCoefficients c = coefficients_of(in);
  const auto shape = out[0].shape;
  const auto sa = broadcast_strides(in[0].shape, shape), sb = broadcast_strides(in[3].shape, shape);
  const int64_t rank = static_cast<int64_t>(shape.size());
  const int64_t inner = rank ? shape[rank - 1] : 1, rows = out[0].numel / std::max<int64_t>(inner, 1);
  auto loop = [&](auto tag) {
    using T = decltype(tag);
    const T* a = in[0].as<T>();
    const T* b = in[3].as<T>();
    T* y = out[0].as<T>();
    std::vector<T> ra(static_cast<size_t>(inner)), rb(static_cast<size_t>(inner));
    for (int64_t r = 0; r < rows; ++r) {
      int64_t oa = 0, ob = 0, rest = r;
      for (int64_t d = rank - 2; d >= 0; --d) {
        const int64_t i = rest % shape[d];
        rest /= shape[d];
        oa += i * sa[d];
        ob += i * sb[d];
      }
      for (int64_t j = 0; j < inner; ++j) {
        ra[j] = a[oa + j * (rank ? sa[rank - 1] : 0)];
        rb[j] = b[ob + j * (rank ? sb[rank - 1] : 0)];
      }
      add_requantize(ra.data(), rb.data(), y + r * inner, inner, c.ka, c.kb, c.k0);
    }
  };
  if (out[0].numel == 0) return Status::Ok();
  if (in[0].dtype == DType::kUInt8) loop(uint8_t{});
  else loop(int8_t{});
  return Status::Ok();
}

class QAddKernel final : public PreparedKernel {
 public:
  AddCoefficients c;
  int64_t n = 0;
  bool is_unsigned = true;
  // B in another layout than A (an int8 pooling's choice beside a convolution's): reordered into
  // A's layout in the scratch first.
  bool reorder_b = false;
  dnnl::memory::desc b_md, a_md;
  dnnl::reorder b_to_a;
  int threads = 1;

  size_t scratch_bytes() const override { return reorder_b ? a_md.get_size() : 0; }
  size_t weights_bytes() const override { return 0; }
  uint32_t packed_inputs() const override { return 0b11110110u; }  // scales and zero points
  std::string_view kind() const override { return kInt8Kind; }
  Status run(std::span<const View> in, std::span<const View> out, RunScratch& s) const override {
    const void* b = in[3].data;
    if (reorder_b) {
      if (!s.dnnl) return internal_error("QLinearAdd: no oneDNN scratch in this context");
      onednn::OnednnScratch& scratch = *s.dnnl;
      if (scratch.capacity() < a_md.get_size()) scratch.reserve(a_md.get_size());
      void* tmp = scratch.impl().buffer;
      MOSS_RETURN_IF_ERROR(onednn::dnnl_guard("QLinearAdd", [&]() -> Status {
        onednn::ThreadScope scope(threads);
        dnnl::memory from = onednn::wrap(b_md, b), to = onednn::wrap(a_md, tmp);
        b_to_a.execute(scratch.impl().stream, from, to);
        scratch.impl().stream.wait();
        return Status::Ok();
      }));
      b = tmp;
    }
    if (is_unsigned) {
      add_requantize(in[0].as<uint8_t>(), static_cast<const uint8_t*>(b), out[0].as<uint8_t>(), n,
                     c.ka, c.kb, c.k0);
    } else {
      add_requantize(in[0].as<int8_t>(), static_cast<const int8_t*>(b), out[0].as<int8_t>(), n,
                     c.ka, c.kb, c.k0);
    }
    return Status::Ok();
  }
};

}  // namespace

OnednnStep prepare_qlinear_add_step(const OnednnStepRequest& r) {
  const auto in = r.in;
  if (in.size() < 7 || !in[0] || !in[3] || in[0]->value || in[3]->value) return {};
  if (in[0]->shape != in[3]->shape || (*r.out)[0].shape != in[0]->shape) return {};
  for (size_t i = 1; i < in.size(); ++i) {
    if (i != 3 && in[i] && !in[i]->value) return {};  // scales and zero points constant
  }
  const onednn::Layout none;
  const onednn::Layout& la = r.in_layouts.size() > 0 ? r.in_layouts[0] : none;
  const onednn::Layout& lb = r.in_layouts.size() > 3 ? r.in_layouts[3] : none;
  if (!la.is_empty() && !r.dst_blocked_ok) return {};  // readers need plain: reorder first
  auto zp = [&](size_t i) {
    return i < in.size() && in[i] ? scalar_int(in[i]->dtype, in[i]->value->raw()) : 0;
  };
  auto sc = [&](size_t i) { return in[i]->value->data<float>()[0]; };
  const AddCoefficients c = coefficients(sc(1), zp(2), sc(4), zp(5), sc(6), zp(7));
  // A blocked layout's padding (if any) is added too: harmless, never read as data.
  const int64_t n = la.is_empty() ? in[0]->numel() : static_cast<int64_t>(la.bytes());
  auto k = std::make_shared<QAddKernel>();
  k->c = c;
  k->n = n;
  k->is_unsigned = in[0]->dtype == DType::kUInt8;
  if (!(la == lb)) {
    const bool built = onednn::dnnl_guard("QLinearAdd", [&]() -> Status {
      auto plain = [&](const onednn::Layout& other) {
        return other.is_empty() ? dnnl::memory::desc() : other.plain_same_type().impl().md;
      };
      k->a_md = la.is_empty() ? plain(lb) : la.impl().md;
      k->b_md = lb.is_empty() ? plain(la) : lb.impl().md;
      k->threads = onednn::resolve_threads(r.threads);
      onednn::ThreadScope scope(k->threads);
      k->b_to_a = onednn::layout_reorder(k->b_md, k->a_md);
      return Status::Ok();
    }).ok();
    if (!built) return {};
    k->reorder_b = true;
  }
  OnednnStep step;
  step.kernel = std::move(k);
  step.dst_layout = la;
  return step;
}

std::vector<OpKernel> quant_contrib_kernels() {
  std::vector<OpKernel> k{{"QLinearAdd", infer_QLinearAdd, run_QLinearAdd}};
  for (const OpKernel& g : quant_gemm_contrib_kernels()) k.push_back(g);
  for (const OpKernel& m : quant_matmul_contrib_kernels()) k.push_back(m);
  return k;
}

}  // namespace moss::engine
