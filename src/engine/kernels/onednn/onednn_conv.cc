// OnednnConv: ONNX Conv (1-3 spatial dims, grouped, depthwise) on oneDNN's convolution primitive,
// with bias and post-ops fused and the weights reordered once into the format oneDNN chose.
#include <cstring>

#include "engine/kernels/onednn/onednn_common.h"

namespace moss::engine::onednn {

struct OnednnConv::Impl {
  dnnl::convolution_forward prim;
  dnnl::memory::desc scratchpad_md;
  dnnl::memory weights;
  dnnl::memory bias;  // empty without bias
  Layout src_layout;
  Layout dst_layout;
  Dims dst_dims;
  bool has_residual = false;
  int threads = 1;
  double flops = 0;
  std::string impl_name;
};

namespace {

// Fills defaults and checks the geometry; computes the output dims.
Status check_conv(ConvParams& p, Dims& dst_dims) {
  MOSS_RETURN_IF_ERROR(check_dims(p.src_dims, "Conv input"));
  MOSS_RETURN_IF_ERROR(check_dims(p.weight_dims, "Conv weights"));
  const size_t rank = p.src_dims.size();
  if (rank < 3 || rank > 5) return unimplemented("Conv: input rank {} (need 3..5)", rank);
  if (p.weight_dims.size() != rank) {
    return invalid_argument("Conv: weight rank {} != input rank {}", p.weight_dims.size(), rank);
  }
  const size_t sp = rank - 2;
  if (p.strides.empty()) p.strides.assign(sp, 1);
  if (p.dilations.empty()) p.dilations.assign(sp, 1);
  if (p.pads_begin.empty()) p.pads_begin.assign(sp, 0);
  if (p.pads_end.empty()) p.pads_end.assign(sp, 0);
  if (p.strides.size() != sp || p.dilations.size() != sp || p.pads_begin.size() != sp ||
      p.pads_end.size() != sp) {
    return invalid_argument("Conv: strides/dilations/pads need {} values", sp);
  }
  const int64_t g = p.group, c = p.src_dims[1], m = p.weight_dims[0];
  if (g <= 0 || m % g != 0 || c != p.weight_dims[1] * g) {
    return invalid_argument("Conv: group {} does not fit input channels {} and weights {}x{}", g,
                            c, m, p.weight_dims[1]);
  }
  dst_dims = {p.src_dims[0], m};
  for (size_t i = 0; i < sp; ++i) {
    const int64_t s = p.strides[i], d = p.dilations[i], pb = p.pads_begin[i], pe = p.pads_end[i];
    if (s <= 0 || d <= 0 || pb < 0 || pe < 0 || s > 1 << 16 || d > 1 << 16 || pb > 1 << 20 ||
        pe > 1 << 20) {
      return invalid_argument("Conv: bad stride {}, dilation {} or pads {},{}", s, d, pb, pe);
    }
    const int64_t span = (p.weight_dims[i + 2] - 1) * d + 1;
    const int64_t padded = p.src_dims[i + 2] + pb + pe;
    if (padded < span) return invalid_argument("Conv: kernel larger than padded input");
    dst_dims.push_back((padded - span) / s + 1);
  }
  return Status::Ok();
}

Result<dnnl::memory::desc> conv_dst_md(const ConvParams& p, const Dims& dst_dims, bool residual) {
  if (residual && !p.residual_layout.is_empty()) {
    if (p.residual_layout.dims() != dst_dims) {
      return invalid_argument("Conv: residual dims {} != output dims {}",
                              fmt::join(p.residual_layout.dims(), "x"), fmt::join(dst_dims, "x"));
    }
    return p.residual_layout.impl().md;
  }
  if (residual && p.dst.kind == LayoutChoice::Kind::kAny) {
    // The residual arrives in a layout fixed elsewhere; without it being named, only plain is safe.
    return plain_md(dst_dims);
  }
  return choose_md(p.dst, dst_dims, "Conv output");
}

Result<std::unique_ptr<OnednnConv::Impl>> build_conv(ConvParams p, const float* weights,
                                                      const float* bias) {
  auto impl = std::make_unique<OnednnConv::Impl>();
  MOSS_RETURN_IF_ERROR(check_conv(p, impl->dst_dims));
  if (weights == nullptr || (p.has_bias && bias == nullptr)) {
    return invalid_argument("Conv: weights or bias data missing");
  }
  dnnl::post_ops ops;
  MOSS_RETURN_IF_ERROR(build_post_ops(p.options.post_ops, true, ops, &impl->has_residual));
  MOSS_ASSIGN_OR_RETURN(dnnl::memory::desc src_md, choose_md(p.src, p.src_dims, "Conv input"));
  MOSS_ASSIGN_OR_RETURN(dnnl::memory::desc dst_md,
                        conv_dst_md(p, impl->dst_dims, impl->has_residual));

  // oneDNN wants grouped weights as [G, M/G, C/G, k...]; the bytes are the same as ONNX's.
  Dims wdims = p.weight_dims;
  if (p.group > 1) {
    wdims[0] /= p.group;
    wdims.insert(wdims.begin(), p.group);
  }
  const dnnl::memory::desc user_w = plain_md(wdims);
  const dnnl::memory::desc any_w(to_dnnl(wdims), dnnl::memory::data_type::f32,
                                 dnnl::memory::format_tag::any);
  const dnnl::memory::desc bias_md =
      p.has_bias ? plain_md({p.weight_dims[0]}) : dnnl::memory::desc();
  dnnl::memory::dims dil;
  for (int64_t d : p.dilations) dil.push_back(d - 1);  // oneDNN counts skipped elements

  impl->threads = resolve_threads(p.options.threads);
  ThreadScope scope(impl->threads);
  dnnl::convolution_forward::desc desc(
      dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, src_md, any_w,
      bias_md, dst_md, to_dnnl(p.strides), dil, to_dnnl(p.pads_begin), to_dnnl(p.pads_end));
  dnnl::convolution_forward::primitive_desc pd(desc, make_attr(ops), cpu_engine());
  impl->prim = dnnl::convolution_forward(pd);
  impl->scratchpad_md = pd.scratchpad_desc();
  impl->weights = pack(user_w, weights, pd.weights_desc());
  if (p.has_bias) impl->bias = pack(bias_md, bias, pd.bias_desc());
  impl->src_layout = layout_from_md(pd.src_desc());
  impl->dst_layout = layout_from_md(pd.dst_desc());
  impl->impl_name = pd.impl_info_str();
  // MACs = out elements * (C/G * kernel volume).
  impl->flops = 2.0 * static_cast<double>(numel(impl->dst_dims)) *
                static_cast<double>(numel(p.weight_dims) / p.weight_dims[0]);
  return impl;
}

}  // namespace

OnednnConv::OnednnConv(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
OnednnConv::~OnednnConv() = default;

Result<std::unique_ptr<const OnednnConv>> OnednnConv::create(const ConvParams& params,
                                                             const float* weights,
                                                             const float* bias) {
  return dnnl_guard("Conv", [&]() -> Result<std::unique_ptr<const OnednnConv>> {
    MOSS_ASSIGN_OR_RETURN(auto impl, build_conv(params, weights, bias));
    return std::unique_ptr<const OnednnConv>(new OnednnConv(std::move(impl)));
  });
}

const Layout& OnednnConv::src_layout() const { return impl_->src_layout; }
const Layout& OnednnConv::dst_layout() const { return impl_->dst_layout; }
const Dims& OnednnConv::dst_dims() const { return impl_->dst_dims; }
size_t OnednnConv::scratchpad_bytes() const { return impl_->scratchpad_md.get_size(); }
size_t OnednnConv::weights_bytes() const {
  size_t n = impl_->weights.get_desc().get_size();
  if (impl_->bias) n += impl_->bias.get_desc().get_size();
  return n;
}
std::string OnednnConv::implementation() const { return impl_->impl_name; }
double OnednnConv::flops() const { return impl_->flops; }

Status OnednnConv::execute(const float* src, float* dst, const float* residual,
                           OnednnScratch& scratch) const {
  if (src == nullptr || dst == nullptr) return invalid_argument("Conv: null buffer");
  if (impl_->has_residual) {
    if (residual == nullptr) return invalid_argument("Conv: residual input missing");
    // The sum post-op accumulates into dst, so dst must start as the residual.
    if (residual != dst) std::memcpy(dst, residual, impl_->dst_layout.bytes());
  }
  std::unordered_map<int, dnnl::memory> args;
  args.reserve(6);
  args.emplace(DNNL_ARG_SRC, wrap(impl_->src_layout.impl().md, src));
  args.emplace(DNNL_ARG_WEIGHTS, impl_->weights);
  if (impl_->bias) args.emplace(DNNL_ARG_BIAS, impl_->bias);
  args.emplace(DNNL_ARG_DST, wrap(impl_->dst_layout.impl().md, dst));
  return run_primitive(impl_->prim, impl_->scratchpad_md, args, scratch, impl_->threads, "Conv");
}

}  // namespace moss::engine::onednn
