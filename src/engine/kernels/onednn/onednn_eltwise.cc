// OnednnEltwise: one element-wise activation over a plain tensor on oneDNN's eltwise primitive
// (JIT-vectorized for the host; the reference kernels call libm per element, which made a
// U-Net's SiLU sigmoids a third of its run time).
#include "engine/kernels/onednn/onednn_common.h"

namespace moss::engine::onednn {

struct OnednnEltwise::Impl {
  dnnl::primitive prim;
  dnnl::memory::desc md, scratchpad_md;
  int threads = 1;
  std::string impl_name;
};

namespace {

// The single oneDNN algorithm for a post-op kind; kUnimplemented for the composite ones.
Status eltwise_algorithm(const PostOp& op, dnnl::algorithm* alg) {
  using K = PostOp::Kind;
  using A = dnnl::algorithm;
  switch (op.kind) {
    case K::kRelu:
    case K::kLeakyRelu: *alg = A::eltwise_relu; return Status::Ok();
    case K::kClip: *alg = A::eltwise_clip_v2; return Status::Ok();
    case K::kSigmoid: *alg = A::eltwise_logistic; return Status::Ok();
    case K::kTanh: *alg = A::eltwise_tanh; return Status::Ok();
    case K::kHardSwish: *alg = A::eltwise_hardswish; return Status::Ok();
    case K::kGeluErf: *alg = A::eltwise_gelu_erf; return Status::Ok();
    case K::kLinear: *alg = A::eltwise_linear; return Status::Ok();
    default: return unimplemented("eltwise: post-op kind {} has no single algorithm", static_cast<int>(op.kind));
  }
}

}  // namespace

OnednnEltwise::OnednnEltwise(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
OnednnEltwise::~OnednnEltwise() = default;

Result<std::unique_ptr<const OnednnEltwise>> OnednnEltwise::create(const EltwiseParams& p) {
  const Dims flat = {numel(p.dims)};  // rank 0 is one element
  MOSS_RETURN_IF_ERROR(check_dims(flat, "eltwise input"));
  dnnl::algorithm alg;
  MOSS_RETURN_IF_ERROR(eltwise_algorithm(p.op, &alg));
  if (p.op.kind == PostOp::Kind::kClip && !(p.op.alpha <= p.op.beta)) {
    return invalid_argument("eltwise: clip min > max");
  }
  return dnnl_guard("eltwise", [&]() -> Result<std::unique_ptr<const OnednnEltwise>> {
    auto impl = std::make_unique<Impl>();
    impl->md = plain_md(flat);
    impl->threads = resolve_threads(p.threads);
    ThreadScope scope(impl->threads);
    dnnl::eltwise_forward::desc desc(dnnl::prop_kind::forward_inference, alg, impl->md, p.op.alpha,
                                     p.op.beta);
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    dnnl::eltwise_forward::primitive_desc pd(desc, attr, cpu_engine());
    impl->prim = dnnl::eltwise_forward(pd);
    impl->scratchpad_md = pd.scratchpad_desc();
    impl->impl_name = pd.impl_info_str();
    return std::unique_ptr<const OnednnEltwise>(new OnednnEltwise(std::move(impl)));
  });
}

size_t OnednnEltwise::scratchpad_bytes() const { return impl_->scratchpad_md.get_size(); }
std::string OnednnEltwise::implementation() const { return impl_->impl_name; }

Status OnednnEltwise::execute(const float* src, float* dst, OnednnScratch& scratch) const {
  if (src == nullptr || dst == nullptr) return invalid_argument("eltwise: null buffer");
  std::unordered_map<int, dnnl::memory> args;
  args.reserve(3);
  args.emplace(DNNL_ARG_SRC, wrap(impl_->md, src));
  args.emplace(DNNL_ARG_DST, wrap(impl_->md, dst));
  return run_primitive(impl_->prim, impl_->scratchpad_md, args, scratch, impl_->threads, "eltwise");
}

}  // namespace moss::engine::onednn
