// OnednnPool: ONNX MaxPool / AveragePool / GlobalAveragePool / GlobalMaxPool on oneDNN's
// pooling_v2 primitive (it has dilations). ceil_mode becomes extra end padding, which oneDNN's max
// pooling ignores and its exclude-padding average does not count.
#include "engine/kernels/onednn/onednn_common.h"

namespace moss::engine::onednn {

struct OnednnPool::Impl {
  dnnl::pooling_v2_forward prim;
  dnnl::memory::desc scratchpad_md;
  Layout src_layout, dst_layout;  // dst_layout is what the caller gets
  // A plain dst from a blocked src makes oneDNN fall back to a slow reference pooling (1 ms for
  // MobileNetV2's GlobalAveragePool); pool into the layout it prefers and reorder in scratch.
  dnnl::memory::desc pool_dst_md;
  dnnl::reorder dst_out;
  bool reorder_dst = false;
  size_t tmp_offset = 0, total_scratch = 0;
  Dims dst_dims;
  int threads = 1;
  std::string impl_name;
};

namespace {

// Fills defaults, computes the output dims (PyTorch/ONNX Runtime rule for ceil_mode: a window that
// would start in the end padding is dropped) and the end padding oneDNN needs for them.
Status pool_geometry(PoolParams& p, Dims& dst_dims, Dims& pads_end) {
  MOSS_RETURN_IF_ERROR(check_dims(p.src_dims, "Pool input"));
  const size_t rank = p.src_dims.size();
  if (rank < 3 || rank > 5) return unimplemented("Pool: input rank {} (need 3..5)", rank);
  const size_t sp = rank - 2;
  if (p.kernel.empty()) {  // global pooling
    p.kernel.assign(p.src_dims.begin() + 2, p.src_dims.end());
    p.strides.clear();
    p.pads_begin.clear();
    p.pads_end.clear();
    p.dilations.clear();
    p.ceil_mode = false;
  }
  if (p.strides.empty()) p.strides.assign(sp, 1);
  if (p.dilations.empty()) p.dilations.assign(sp, 1);
  if (p.pads_begin.empty()) p.pads_begin.assign(sp, 0);
  if (p.pads_end.empty()) p.pads_end.assign(sp, 0);
  if (p.kernel.size() != sp || p.strides.size() != sp || p.dilations.size() != sp ||
      p.pads_begin.size() != sp || p.pads_end.size() != sp) {
    return invalid_argument("Pool: kernel/strides/dilations/pads need {} values", sp);
  }
  dst_dims = {p.src_dims[0], p.src_dims[1]};
  pads_end.clear();
  for (size_t i = 0; i < sp; ++i) {
    const int64_t in = p.src_dims[i + 2], k = p.kernel[i], s = p.strides[i], d = p.dilations[i];
    const int64_t pb = p.pads_begin[i], pe = p.pads_end[i];
    if (k <= 0 || s <= 0 || d <= 0 || pb < 0 || pe < 0 || k > 1 << 20 || s > 1 << 16 ||
        d > 1 << 16 || pb > 1 << 20 || pe > 1 << 20) {
      return invalid_argument("Pool: bad kernel {}, stride {}, dilation {} or pads {},{}", k, s, d,
                              pb, pe);
    }
    if (pb >= (k - 1) * d + 1 || pe >= (k - 1) * d + 1) {
      return unimplemented("Pool: padding not smaller than the window");
    }
    const int64_t span = (k - 1) * d + 1, padded = in + pb + pe;
    if (padded < span) return invalid_argument("Pool: window larger than padded input");
    int64_t out = (padded - span) / s + 1;
    int64_t end = pe;
    if (p.ceil_mode) {
      out = (padded - span + s - 1) / s + 1;
      if ((out - 1) * s >= in + pb) --out;
      end = std::max(pe, (out - 1) * s + span - in - pb);
    }
    if (end > pe && p.kind == PoolParams::Kind::kAverage && p.count_include_pad) {
      return unimplemented("AveragePool: count_include_pad with a ceil_mode overhang");
    }
    dst_dims.push_back(out);
    pads_end.push_back(end);
  }
  return Status::Ok();
}

Status build_pool(PoolParams p, OnednnPool::Impl& impl) {
  Dims pads_end;
  MOSS_RETURN_IF_ERROR(pool_geometry(p, impl.dst_dims, pads_end));
  dnnl::post_ops ops;
  bool residual = false;
  MOSS_RETURN_IF_ERROR(build_post_ops(p.options.post_ops, false, ops, &residual));
  const dnnl::memory::data_type dt = dnnl_type(p.element);
  MOSS_ASSIGN_OR_RETURN(dnnl::memory::desc src_md,
                        choose_md(p.src, p.src_dims, "Pool input", dt));
  if (p.src.kind == LayoutChoice::Kind::kAny) src_md = plain_md(p.src_dims, dt);  // pooling needs it
  if (src_md.data_type() != dt) return unimplemented("Pool: input layout of another type");
  const bool plain_dst = p.dst.kind == LayoutChoice::Kind::kPlain;
  MOSS_ASSIGN_OR_RETURN(
      dnnl::memory::desc dst_md,
      choose_md(plain_dst ? LayoutChoice::any() : p.dst, impl.dst_dims, "Pool output", dt));
  dnnl::algorithm alg = dnnl::algorithm::pooling_max;
  if (p.kind == PoolParams::Kind::kAverage) {
    alg = p.count_include_pad ? dnnl::algorithm::pooling_avg_include_padding
                              : dnnl::algorithm::pooling_avg_exclude_padding;
  }
  dnnl::memory::dims dil;
  for (int64_t d : p.dilations) dil.push_back(d - 1);
  impl.threads = resolve_threads(p.options.threads);
  ThreadScope scope(impl.threads);
  dnnl::pooling_v2_forward::desc desc(dnnl::prop_kind::forward_inference, alg, src_md, dst_md,
                                      to_dnnl(p.strides), to_dnnl(p.kernel), dil,
                                      to_dnnl(p.pads_begin), to_dnnl(pads_end));
  dnnl::pooling_v2_forward::primitive_desc pd(desc, make_attr(ops), cpu_engine());
  impl.prim = dnnl::pooling_v2_forward(pd);
  impl.scratchpad_md = pd.scratchpad_desc();
  impl.src_layout = layout_from_md(pd.src_desc());
  impl.pool_dst_md = pd.dst_desc();
  const dnnl::memory::desc user_dst = plain_dst ? plain_md(impl.dst_dims, dt) : impl.pool_dst_md;
  impl.dst_layout = layout_from_md(user_dst);
  impl.tmp_offset = (impl.scratchpad_md.get_size() + 63) / 64 * 64;
  impl.total_scratch = impl.scratchpad_md.get_size();
  impl.reorder_dst = user_dst != impl.pool_dst_md;
  if (impl.reorder_dst) {
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    dnnl::reorder::primitive_desc rpd(cpu_engine(), impl.pool_dst_md, cpu_engine(), user_dst, attr);
    if (rpd.scratchpad_desc().get_size() != 0) return unimplemented("Pool: reorder needs scratch");
    impl.dst_out = dnnl::reorder(rpd);
    impl.total_scratch = impl.tmp_offset + impl.pool_dst_md.get_size();
  }
  impl.impl_name = pd.impl_info_str();
  return Status::Ok();
}

}  // namespace

OnednnPool::OnednnPool(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
OnednnPool::~OnednnPool() = default;

Result<std::unique_ptr<const OnednnPool>> OnednnPool::create(const PoolParams& params) {
  return dnnl_guard("Pool", [&]() -> Result<std::unique_ptr<const OnednnPool>> {
    auto impl = std::make_unique<Impl>();
    MOSS_RETURN_IF_ERROR(build_pool(params, *impl));
    return std::unique_ptr<const OnednnPool>(new OnednnPool(std::move(impl)));
  });
}

const Layout& OnednnPool::src_layout() const { return impl_->src_layout; }
const Layout& OnednnPool::dst_layout() const { return impl_->dst_layout; }
const Dims& OnednnPool::dst_dims() const { return impl_->dst_dims; }
size_t OnednnPool::scratchpad_bytes() const { return impl_->total_scratch; }
std::string OnednnPool::implementation() const { return impl_->impl_name; }

Status OnednnPool::execute(const float* src, float* dst, OnednnScratch& scratch) const {
  if (src == nullptr || dst == nullptr) return invalid_argument("Pool: null buffer");
  const Impl& k = *impl_;
  return dnnl_guard("Pool", [&]() -> Status {
    if (scratch.capacity() < k.total_scratch) scratch.reserve(k.total_scratch);
    char* base = static_cast<char*>(scratch.impl().buffer);
    dnnl::stream& stream = scratch.impl().stream;
    ThreadScope threads(k.threads);
    dnnl::memory user_dst = wrap(k.dst_layout.impl().md, dst);
    dnnl::memory pool_dst = k.reorder_dst ? wrap(k.pool_dst_md, base + k.tmp_offset) : user_dst;
    std::unordered_map<int, dnnl::memory> args;
    args.reserve(3);
    args.emplace(DNNL_ARG_SRC, wrap(k.src_layout.impl().md, src));
    args.emplace(DNNL_ARG_DST, pool_dst);
    if (k.scratchpad_md.get_size() > 0) {
      args.emplace(DNNL_ARG_SCRATCHPAD, wrap(k.scratchpad_md, base));
    }
    k.prim.execute(stream, args);
    if (k.reorder_dst) k.dst_out.execute(stream, pool_dst, user_dst);
    stream.wait();
    return Status::Ok();
  });
}

}  // namespace moss::engine::onednn
