// OnednnMatmul: ONNX MatMul (numpy broadcasting) and Gemm on oneDNN's matmul primitive. A constant
// B is packed once; when B is 2-D and constant, A's batch dims fold into M so one large GEMM runs
// (the BERT projections: [1,128,256] x [256,256]).
#include <cstring>

#include "engine/kernels/onednn/onednn_common.h"

namespace moss::engine::onednn {

struct OnednnMatmul::Impl {
  dnnl::matmul prim;
  dnnl::memory::desc scratchpad_md;
  dnnl::memory::desc a_md, b_md, dst_md;
  dnnl::memory b_packed;  // empty when B is a run-time input or held half
  HalfWeights b_half;     // a constant B held in 16 bits, widened after the scratchpad per run
  dnnl::memory bias;      // empty without bias
  Dims dst_dims;
  bool has_residual = false;
  int threads = 1;
  double flops = 0;
  std::string impl_name;
};

namespace {

// Row-major dims with the last two swapped in meaning (a stored [K, M] read as [M, K]).
dnnl::memory::desc transposed_md(const Dims& stored) {
  const int64_t rows = stored[0], cols = stored[1];
  return dnnl::memory::desc({cols, rows}, dnnl::memory::data_type::f32, {1, cols});
}

struct Shapes {
  Dims a, b, dst;  // same rank, logical (after transposes), dst with broadcast batch dims
  int64_t m = 0, k = 0, n = 0;
};

Result<Shapes> matmul_shapes(const MatmulParams& p) {
  MOSS_RETURN_IF_ERROR(check_dims(p.a_dims, "MatMul A"));
  MOSS_RETURN_IF_ERROR(check_dims(p.b_dims, "MatMul B"));
  Shapes s;
  s.a = p.a_dims;
  s.b = p.b_dims;
  if ((p.trans_a || p.trans_b) && (s.a.size() != 2 || s.b.size() != 2)) {
    return invalid_argument("Gemm: transA/transB need 2-D operands");
  }
  if (p.trans_a) std::swap(s.a[0], s.a[1]);
  if (p.trans_b) std::swap(s.b[0], s.b[1]);
  if (s.a.size() == 1) s.a.insert(s.a.begin(), 1);  // numpy: [K] -> [1, K]
  if (s.b.size() == 1) s.b.push_back(1);            // numpy: [K] -> [K, 1]
  const size_t rank = std::max(s.a.size(), s.b.size());
  s.a.insert(s.a.begin(), rank - s.a.size(), 1);
  s.b.insert(s.b.begin(), rank - s.b.size(), 1);
  s.m = s.a[rank - 2];
  s.k = s.a[rank - 1];
  s.n = s.b[rank - 1];
  if (s.b[rank - 2] != s.k) {
    return invalid_argument("MatMul: inner dims differ ({} vs {})", s.k, s.b[rank - 2]);
  }
  for (size_t i = 0; i + 2 < rank; ++i) {
    if (s.a[i] != s.b[i] && s.a[i] != 1 && s.b[i] != 1) {
      return invalid_argument("MatMul: batch dims {} and {} do not broadcast", s.a[i], s.b[i]);
    }
    s.dst.push_back(std::max(s.a[i], s.b[i]));
  }
  s.dst.push_back(s.m);
  s.dst.push_back(s.n);
  MOSS_RETURN_IF_ERROR(check_dims(s.dst, "MatMul output"));
  return s;
}

// Bias dims right-aligned to `dst`, each 1 or equal.
Result<Dims> align_bias(const Dims& bias, const Dims& dst) {
  if (bias.size() > dst.size()) return invalid_argument("MatMul: bias rank above output rank");
  Dims out(dst.size() - bias.size(), 1);
  out.insert(out.end(), bias.begin(), bias.end());
  for (size_t i = 0; i < dst.size(); ++i) {
    if (out[i] != 1 && out[i] != dst[i]) {
      return invalid_argument("MatMul: bias dims {} do not broadcast to output {}",
                              fmt::join(bias, "x"), fmt::join(dst, "x"));
    }
  }
  return out;
}

Status build_matmul(const MatmulParams& p, const float* b_const, const float* bias,
                    OnednnMatmul::Impl& impl) {
  MOSS_ASSIGN_OR_RETURN(Shapes s, matmul_shapes(p));
  impl.dst_dims = s.dst;
  const bool const_b = b_const != nullptr;
  if (p.alpha != 1.f && !const_b) return unimplemented("Gemm: alpha != 1 with a run-time B");
  dnnl::post_ops ops;
  MOSS_RETURN_IF_ERROR(build_post_ops(p.options.post_ops, true, ops, &impl.has_residual));
  Dims bias_dims;
  if (!p.bias_dims.empty()) {
    if (bias == nullptr) return invalid_argument("MatMul: bias data missing");
    MOSS_RETURN_IF_ERROR(check_dims(p.bias_dims, "MatMul bias"));
    MOSS_ASSIGN_OR_RETURN(bias_dims, align_bias(p.bias_dims, s.dst));
  }
  const size_t rank = s.dst.size();
  // Fold A's batch into M when B is one constant matrix and the bias varies along N at most.
  bool b_batched = false, bias_rowwise = true;
  for (size_t i = 0; i + 2 < rank; ++i) b_batched |= s.b[i] != 1;
  for (size_t i = 0; i + 1 < bias_dims.size(); ++i) bias_rowwise &= bias_dims[i] == 1;
  const bool fold = const_b && !b_batched && rank > 2 && bias_rowwise;
  Dims a = s.a, b = s.b, dst = s.dst;
  if (fold) {
    a = {numel(s.a) / s.k, s.k};
    b = {s.k, s.n};
    dst = {a[0], s.n};
    if (!bias_dims.empty()) bias_dims = {1, bias_dims.back()};
  }
  impl.a_md = p.trans_a ? transposed_md(p.a_dims) : plain_md(a);
  const dnnl::memory::desc b_user = p.trans_b ? transposed_md(p.b_dims) : plain_md(b);
  impl.b_md = const_b ? dnnl::memory::desc(to_dnnl(b), dnnl::memory::data_type::f32,
                                           dnnl::memory::format_tag::any)
                      : b_user;
  impl.dst_md = plain_md(dst);
  const dnnl::memory::desc bias_md = bias_dims.empty() ? dnnl::memory::desc() : plain_md(bias_dims);

  impl.threads = resolve_threads(p.options.threads);
  ThreadScope scope(impl.threads);
  dnnl::matmul::desc desc(impl.a_md, impl.b_md, bias_md, impl.dst_md);
  dnnl::matmul::primitive_desc pd(desc, make_attr(ops), cpu_engine());
  impl.prim = dnnl::matmul(pd);
  impl.scratchpad_md = pd.scratchpad_desc();
  impl.b_md = pd.weights_desc();
  if (const_b) {
    const float* b_data = b_const;
    std::vector<float> scaled;
    if (p.alpha != 1.f) {  // Gemm alpha folds into the constant B
      scaled.assign(b_const, b_const + numel(p.b_dims));
      for (float& v : scaled) v *= p.alpha;
      b_data = scaled.data();
    }
    impl.b_packed = pack(b_user, b_data, impl.b_md);
    if (p.options.weights != WeightStorage::kF32) {
      impl.b_half = HalfWeights(impl.b_packed, p.options.weights);
      if (!impl.b_half.empty()) impl.b_packed = dnnl::memory();
    }
  }
  if (!bias_dims.empty()) {
    std::vector<float> scaled(bias, bias + numel(bias_dims));
    if (p.beta != 1.f)
      for (float& v : scaled) v *= p.beta;
    impl.bias = pack(bias_md, scaled.data(), pd.bias_desc());
  }
  impl.impl_name = pd.impl_info_str();
  impl.flops = 2.0 * static_cast<double>(numel(s.dst)) * static_cast<double>(s.k);
  return Status::Ok();
}

// A half B is widened after the primitive's scratchpad (run_primitive passes that from the start).
size_t b_half_offset(const OnednnMatmul::Impl& impl) {
  return (impl.scratchpad_md.get_size() + 63) / 64 * 64;
}

}  // namespace

OnednnMatmul::OnednnMatmul(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
OnednnMatmul::~OnednnMatmul() = default;

Result<std::unique_ptr<const OnednnMatmul>> OnednnMatmul::create(const MatmulParams& params,
                                                                 const float* b_const,
                                                                 const float* bias) {
  return dnnl_guard("MatMul", [&]() -> Result<std::unique_ptr<const OnednnMatmul>> {
    auto impl = std::make_unique<Impl>();
    MOSS_RETURN_IF_ERROR(build_matmul(params, b_const, bias, *impl));
    return std::unique_ptr<const OnednnMatmul>(new OnednnMatmul(std::move(impl)));
  });
}

const Dims& OnednnMatmul::dst_dims() const { return impl_->dst_dims; }
size_t OnednnMatmul::scratchpad_bytes() const {
  return b_half_offset(*impl_) + impl_->b_half.widened_bytes();
}
size_t OnednnMatmul::weights_bytes() const {
  size_t n = impl_->b_packed ? impl_->b_packed.get_desc().get_size() : impl_->b_half.bytes();
  if (impl_->bias) n += impl_->bias.get_desc().get_size();
  return n;
}
std::string OnednnMatmul::implementation() const { return impl_->impl_name; }
double OnednnMatmul::flops() const { return impl_->flops; }

Status OnednnMatmul::execute(const float* a, const float* b, float* dst, const float* residual,
                             OnednnScratch& scratch) const {
  const bool const_b = impl_->b_packed || !impl_->b_half.empty();
  if (a == nullptr || dst == nullptr || (!const_b && b == nullptr)) {
    return invalid_argument("MatMul: null buffer");
  }
  if (impl_->has_residual) {
    if (residual == nullptr) return invalid_argument("MatMul: residual input missing");
    if (residual != dst) std::memcpy(dst, residual, impl_->dst_md.get_size());
  }
  std::unordered_map<int, dnnl::memory> args;
  args.reserve(6);
  args.emplace(DNNL_ARG_SRC, wrap(impl_->a_md, a));
  if (!impl_->b_half.empty()) {
    const size_t need = scratchpad_bytes();
    if (scratch.capacity() < need) scratch.reserve(need);
    args.emplace(DNNL_ARG_WEIGHTS,
                 weights_for_run(impl_->b_packed, impl_->b_half,
                                 static_cast<char*>(scratch.impl().buffer), b_half_offset(*impl_)));
  } else {
    args.emplace(DNNL_ARG_WEIGHTS, impl_->b_packed ? impl_->b_packed : wrap(impl_->b_md, b));
  }
  if (impl_->bias) args.emplace(DNNL_ARG_BIAS, impl_->bias);
  args.emplace(DNNL_ARG_DST, wrap(impl_->dst_md, dst));
  return run_primitive(impl_->prim, impl_->scratchpad_md, args, scratch, impl_->threads, "MatMul");
}

}  // namespace moss::engine::onednn
