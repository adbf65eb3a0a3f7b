// OnednnBatchNorm: ONNX BatchNormalization in inference mode (running statistics) on oneDNN's
// batch normalization primitive with global stats; Relu can be fused.
#include "engine/kernels/onednn/onednn_common.h"

namespace moss::engine::onednn {

struct OnednnBatchNorm::Impl {
  dnnl::batch_normalization_forward prim;
  dnnl::memory::desc scratchpad_md;
  dnnl::memory scale, shift, mean, var;
  Layout layout;
  int threads = 1;
  std::string impl_name;
};

namespace {

Status build_bn(const BatchNormParams& p, const float* scale, const float* bias, const float* mean,
                const float* var, OnednnBatchNorm::Impl& impl) {
  MOSS_RETURN_IF_ERROR(check_dims(p.src_dims, "BatchNormalization input"));
  if (p.src_dims.size() < 2 || p.src_dims.size() > 5) {
    return unimplemented("BatchNormalization: input rank {} (need 2..5)", p.src_dims.size());
  }
  if (!scale || !bias || !mean || !var) return invalid_argument("BatchNormalization: data missing");
  if (!(p.epsilon >= 0.f)) return invalid_argument("BatchNormalization: negative epsilon");
  auto flags = dnnl::normalization_flags::use_global_stats | dnnl::normalization_flags::use_scale |
               dnnl::normalization_flags::use_shift;
  for (const PostOp& op : p.options.post_ops) {
    if (op.kind != PostOp::Kind::kRelu || p.options.post_ops.size() != 1) {
      return unimplemented("BatchNormalization: only a single Relu post-op is fused");
    }
    flags = flags | dnnl::normalization_flags::fuse_norm_relu;
  }
  LayoutChoice src = p.src;
  if (src.kind == LayoutChoice::Kind::kAny) src = LayoutChoice::plain();  // needs a concrete md
  MOSS_ASSIGN_OR_RETURN(dnnl::memory::desc md, choose_md(src, p.src_dims, "BatchNormalization"));
  impl.threads = resolve_threads(p.options.threads);
  ThreadScope scope(impl.threads);
  dnnl::batch_normalization_forward::desc desc(dnnl::prop_kind::forward_inference, md, p.epsilon,
                                               flags);
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  dnnl::batch_normalization_forward::primitive_desc pd(desc, attr, cpu_engine());
  impl.prim = dnnl::batch_normalization_forward(pd);
  impl.scratchpad_md = pd.scratchpad_desc();
  const dnnl::memory::desc c_md = plain_md({p.src_dims[1]});
  impl.scale = pack(c_md, scale, c_md);
  impl.shift = pack(c_md, bias, c_md);
  impl.mean = pack(c_md, mean, c_md);
  impl.var = pack(c_md, var, c_md);
  impl.layout = layout_from_md(pd.src_desc());
  impl.impl_name = pd.impl_info_str();
  return Status::Ok();
}

}  // namespace

OnednnBatchNorm::OnednnBatchNorm(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
OnednnBatchNorm::~OnednnBatchNorm() = default;

Result<std::unique_ptr<const OnednnBatchNorm>> OnednnBatchNorm::create(
    const BatchNormParams& params, const float* scale, const float* bias, const float* mean,
    const float* var) {
  return dnnl_guard("BatchNormalization", [&]() -> Result<std::unique_ptr<const OnednnBatchNorm>> {
    auto impl = std::make_unique<Impl>();
    MOSS_RETURN_IF_ERROR(build_bn(params, scale, bias, mean, var, *impl));
    return std::unique_ptr<const OnednnBatchNorm>(new OnednnBatchNorm(std::move(impl)));
  });
}

const Layout& OnednnBatchNorm::src_layout() const { return impl_->layout; }
const Layout& OnednnBatchNorm::dst_layout() const { return impl_->layout; }
size_t OnednnBatchNorm::scratchpad_bytes() const { return impl_->scratchpad_md.get_size(); }
std::string OnednnBatchNorm::implementation() const { return impl_->impl_name; }

Status OnednnBatchNorm::execute(const float* src, float* dst, OnednnScratch& scratch) const {
  if (src == nullptr || dst == nullptr) return invalid_argument("BatchNormalization: null buffer");
  const dnnl::memory::desc& md = impl_->layout.impl().md;
  std::unordered_map<int, dnnl::memory> args;
  args.reserve(7);
  args.emplace(DNNL_ARG_SRC, wrap(md, src));
  args.emplace(DNNL_ARG_DST, wrap(md, dst));
  args.emplace(DNNL_ARG_SCALE, impl_->scale);
  args.emplace(DNNL_ARG_SHIFT, impl_->shift);
  args.emplace(DNNL_ARG_MEAN, impl_->mean);
  args.emplace(DNNL_ARG_VARIANCE, impl_->var);
  return run_primitive(impl_->prim, impl_->scratchpad_md, args, scratch, impl_->threads,
                       "BatchNormalization");
}

}  // namespace moss::engine::onednn
