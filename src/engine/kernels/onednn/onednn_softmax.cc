// OnednnSoftmax: ONNX Softmax / LogSoftmax (opset 13 axis semantics) on oneDNN's softmax
// primitives.
#include "engine/kernels/onednn/onednn_common.h"

namespace moss::engine::onednn {

struct OnednnSoftmax::Impl {
  dnnl::primitive prim;
  dnnl::memory::desc md, scratchpad_md;
  int threads = 1;
  std::string impl_name;
};

namespace {

template <typename Prim>
void build_softmax(const dnnl::memory::desc& md, int axis, OnednnSoftmax::Impl& impl) {
  typename Prim::desc desc(dnnl::prop_kind::forward_inference, md, axis);
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  typename Prim::primitive_desc pd(desc, attr, cpu_engine());
  impl.prim = Prim(pd);
  impl.scratchpad_md = pd.scratchpad_desc();
  impl.impl_name = pd.impl_info_str();
}

}  // namespace

OnednnSoftmax::OnednnSoftmax(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
OnednnSoftmax::~OnednnSoftmax() = default;

Result<std::unique_ptr<const OnednnSoftmax>> OnednnSoftmax::create(const SoftmaxParams& p) {
  MOSS_RETURN_IF_ERROR(check_dims(p.dims, "Softmax input"));
  const int64_t rank = static_cast<int64_t>(p.dims.size());
  const int64_t axis = p.axis < 0 ? p.axis + rank : p.axis;
  if (axis < 0 || axis >= rank) return invalid_argument("Softmax: axis {} out of range", p.axis);
  if (!p.options.post_ops.empty()) return unimplemented("Softmax: post-ops are not fused");
  return dnnl_guard("Softmax", [&]() -> Result<std::unique_ptr<const OnednnSoftmax>> {
    auto impl = std::make_unique<Impl>();
    impl->md = plain_md(p.dims);
    impl->threads = resolve_threads(p.options.threads);
    ThreadScope scope(impl->threads);
    if (p.log) {
      build_softmax<dnnl::logsoftmax_forward>(impl->md, static_cast<int>(axis), *impl);
    } else {
      build_softmax<dnnl::softmax_forward>(impl->md, static_cast<int>(axis), *impl);
    }
    return std::unique_ptr<const OnednnSoftmax>(new OnednnSoftmax(std::move(impl)));
  });
}

size_t OnednnSoftmax::scratchpad_bytes() const { return impl_->scratchpad_md.get_size(); }
std::string OnednnSoftmax::implementation() const { return impl_->impl_name; }

Status OnednnSoftmax::execute(const float* src, float* dst, OnednnScratch& scratch) const {
  if (src == nullptr || dst == nullptr) return invalid_argument("Softmax: null buffer");
  std::unordered_map<int, dnnl::memory> args;
  args.reserve(3);
  args.emplace(DNNL_ARG_SRC, wrap(impl_->md, src));
  args.emplace(DNNL_ARG_DST, wrap(impl_->md, dst));
  return run_primitive(impl_->prim, impl_->scratchpad_md, args, scratch, impl_->threads, "Softmax");
}

}  // namespace moss::engine::onednn
