// OnednnLayerNorm: ONNX LayerNormalization (Y only) on oneDNN's layer normalization primitive. The
// input is viewed as [rows, normalized size]; oneDNN normalizes over the last dim.
#include <cstring>

#include "engine/kernels/onednn/onednn_common.h"

namespace moss::engine::onednn {

struct OnednnLayerNorm::Impl {
  dnnl::layer_normalization_forward prim;
  dnnl::memory::desc md, scratchpad_md, stat_md;
  dnnl::memory scale, shift;
  size_t stat_offset = 0, total_scratch = 0;  // mean and variance live after the scratchpad
  int threads = 1;
  std::string impl_name;
};

namespace {

Status build_layernorm(const LayerNormParams& p, const float* scale, const float* bias,
                       OnednnLayerNorm::Impl& impl) {
  MOSS_RETURN_IF_ERROR(check_dims(p.dims, "LayerNormalization input"));
  const int64_t rank = static_cast<int64_t>(p.dims.size());
  const int64_t axis = p.axis < 0 ? p.axis + rank : p.axis;
  if (axis < 0 || axis >= rank) {
    return invalid_argument("LayerNormalization: axis {} out of range", p.axis);
  }
  if (!p.options.post_ops.empty()) return unimplemented("LayerNormalization: post-ops not fused");
  if (scale == nullptr || (p.has_bias && bias == nullptr)) {
    return invalid_argument("LayerNormalization: scale or bias data missing");
  }
  if (!(p.epsilon >= 0.f)) return invalid_argument("LayerNormalization: negative epsilon");
  int64_t rows = 1, cols = 1;
  for (int64_t i = 0; i < rank; ++i) (i < axis ? rows : cols) *= p.dims[static_cast<size_t>(i)];
  impl.md = plain_md({rows, cols});
  const dnnl::memory::desc c_md = plain_md({cols});
  std::vector<float> zeros;
  if (!p.has_bias) {
    zeros.assign(static_cast<size_t>(cols), 0.f);
    bias = zeros.data();
  }
  auto flags = dnnl::normalization_flags::use_scale | dnnl::normalization_flags::use_shift;
  impl.threads = resolve_threads(p.options.threads);
  ThreadScope scope(impl.threads);
  dnnl::layer_normalization_forward::desc desc(dnnl::prop_kind::forward_inference, impl.md,
                                               p.epsilon, flags);
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  dnnl::layer_normalization_forward::primitive_desc pd(desc, attr, cpu_engine());
  impl.prim = dnnl::layer_normalization_forward(pd);
  impl.scratchpad_md = pd.scratchpad_desc();
  impl.stat_md = pd.mean_desc();
  impl.stat_offset = (impl.scratchpad_md.get_size() + 63) / 64 * 64;
  const size_t stat_bytes = (impl.stat_md.get_size() + 63) / 64 * 64;
  impl.total_scratch = impl.stat_offset + 2 * stat_bytes;
  impl.scale = pack(c_md, scale, c_md);
  impl.shift = pack(c_md, bias, c_md);
  impl.impl_name = pd.impl_info_str();
  return Status::Ok();
}

}  // namespace

OnednnLayerNorm::OnednnLayerNorm(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
OnednnLayerNorm::~OnednnLayerNorm() = default;

Result<std::unique_ptr<const OnednnLayerNorm>> OnednnLayerNorm::create(
    const LayerNormParams& params, const float* scale, const float* bias) {
  return dnnl_guard("LayerNormalization", [&]() -> Result<std::unique_ptr<const OnednnLayerNorm>> {
    auto impl = std::make_unique<Impl>();
    MOSS_RETURN_IF_ERROR(build_layernorm(params, scale, bias, *impl));
    return std::unique_ptr<const OnednnLayerNorm>(new OnednnLayerNorm(std::move(impl)));
  });
}

size_t OnednnLayerNorm::scratchpad_bytes() const { return impl_->total_scratch; }
std::string OnednnLayerNorm::implementation() const { return impl_->impl_name; }

Status OnednnLayerNorm::execute(const float* src, float* dst, OnednnScratch& scratch) const {
  if (src == nullptr || dst == nullptr) return invalid_argument("LayerNormalization: null buffer");
  const Impl& k = *impl_;
  return dnnl_guard("LayerNormalization", [&]() -> Status {
    if (scratch.capacity() < k.total_scratch) scratch.reserve(k.total_scratch);
    char* base = static_cast<char*>(scratch.impl().buffer);
    const size_t stat_bytes = (k.stat_md.get_size() + 63) / 64 * 64;
    std::unordered_map<int, dnnl::memory> args;
    args.reserve(8);
    args.emplace(DNNL_ARG_SRC, wrap(k.md, src));
    args.emplace(DNNL_ARG_DST, wrap(k.md, dst));
    args.emplace(DNNL_ARG_SCALE, k.scale);
    args.emplace(DNNL_ARG_SHIFT, k.shift);
    if (stat_bytes > 0) {
      args.emplace(DNNL_ARG_MEAN, wrap(k.stat_md, base + k.stat_offset));
      args.emplace(DNNL_ARG_VARIANCE, wrap(k.stat_md, base + k.stat_offset + stat_bytes));
    }
    if (k.scratchpad_md.get_size() > 0) {
      args.emplace(DNNL_ARG_SCRATCHPAD, wrap(k.scratchpad_md, base));
    }
    ThreadScope threads(k.threads);
    k.prim.execute(scratch.impl().stream, args);
    scratch.impl().stream.wait();
    return Status::Ok();
  });
}

}  // namespace moss::engine::onednn
