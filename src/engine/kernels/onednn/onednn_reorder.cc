// OnednnReorder: converts an activation between two layouts of the same dims (plain <-> blocked at
// the edges of a oneDNN chain).
#include "engine/kernels/onednn/onednn_common.h"

namespace moss::engine::onednn {

struct OnednnReorder::Impl {
  dnnl::reorder prim;
  dnnl::memory::desc scratchpad_md, from, to;
  int threads = 1;
};

OnednnReorder::OnednnReorder(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
OnednnReorder::~OnednnReorder() = default;

Result<std::unique_ptr<const OnednnReorder>> OnednnReorder::create(const Layout& from,
                                                                   const Layout& to, int threads) {
  if (from.is_empty() || to.is_empty() || from.dims() != to.dims()) {
    return invalid_argument("Reorder: layouts {} and {} differ in dims", from.to_string(),
                            to.to_string());
  }
  return dnnl_guard("Reorder", [&]() -> Result<std::unique_ptr<const OnednnReorder>> {
    auto impl = std::make_unique<Impl>();
    impl->from = from.impl().md;
    impl->to = to.impl().md;
    impl->threads = resolve_threads(threads);
    ThreadScope scope(impl->threads);
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    dnnl::reorder::primitive_desc pd(cpu_engine(), impl->from, cpu_engine(), impl->to, attr);
    impl->prim = dnnl::reorder(pd);
    impl->scratchpad_md = pd.scratchpad_desc();
    return std::unique_ptr<const OnednnReorder>(new OnednnReorder(std::move(impl)));
  });
}

Status OnednnReorder::execute(const float* src, float* dst, OnednnScratch& scratch) const {
  if (src == nullptr || dst == nullptr) return invalid_argument("Reorder: null buffer");
  std::unordered_map<int, dnnl::memory> args;
  args.reserve(3);
  args.emplace(DNNL_ARG_FROM, wrap(impl_->from, src));
  args.emplace(DNNL_ARG_TO, wrap(impl_->to, dst));
  return run_primitive(impl_->prim, impl_->scratchpad_md, args, scratch, impl_->threads, "Reorder");
}

}  // namespace moss::engine::onednn
