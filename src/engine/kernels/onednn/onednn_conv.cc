// OnednnConv: ONNX Conv (1-3 spatial dims, grouped, depthwise) on oneDNN's convolution primitive,
// and ConvTranspose on its deconvolution primitive, with bias and post-ops fused and the weights
// reordered once into the format oneDNN chose.
#include <cstring>
#include <optional>

#include "engine/kernels/onednn/onednn_common.h"

namespace moss::engine::onednn {

struct OnednnConv::Impl {
  dnnl::primitive prim;  // convolution_forward or deconvolution_forward
  dnnl::memory::desc scratchpad_md;  // the convolution's own scratchpad
  dnnl::memory weights;  // empty when held half (half_weights)
  HalfWeights half_weights;
  dnnl::memory bias;  // empty without bias
  Layout src_layout;  // what the caller passes (plain when asked for plain)
  Layout dst_layout;
  // When the caller asked for plain but oneDNN's fast implementations want a blocked layout, the
  // kernel reorders into and out of that layout in the scratch area (see layout_plan()).
  dnnl::memory::desc conv_src_md, conv_dst_md;
  dnnl::reorder src_in, dst_in, dst_out;  // user src -> conv src; user dst <-> conv dst
  bool reorder_src = false, reorder_dst = false;
  size_t tmp_src_offset = 0, tmp_dst_offset = 0, tmp_weights_offset = 0, total_scratch = 0;
  Dims dst_dims;
  bool has_residual = false;
  bool bf16 = false;
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
  const int64_t g = p.group, c = p.src_dims[1];
  const int64_t m = p.transposed ? p.weight_dims[1] * g : p.weight_dims[0];
  const bool fits = p.transposed ? g > 0 && c % g == 0 && c == p.weight_dims[0]
                                 : g > 0 && m % g == 0 && c == p.weight_dims[1] * g;
  if (!fits) {
    return invalid_argument("Conv: group {} does not fit input channels {} and weights {}x{}", g, c,
                            p.weight_dims[0], p.weight_dims[1]);
  }
  dst_dims = {p.src_dims[0], m};
  for (size_t i = 0; i < sp; ++i) {
    const int64_t s = p.strides[i], d = p.dilations[i], pb = p.pads_begin[i], pe = p.pads_end[i];
    if (s <= 0 || d <= 0 || pb < 0 || pe < 0 || s > 1 << 16 || d > 1 << 16 || pb > 1 << 20 ||
        pe > 1 << 20) {
      return invalid_argument("Conv: bad stride {}, dilation {} or pads {},{}", s, d, pb, pe);
    }
    const int64_t span = (p.weight_dims[i + 2] - 1) * d + 1;
    if (p.transposed) {
      const int64_t out = (p.src_dims[i + 2] - 1) * s + span - pb - pe;
      if (out <= 0) return invalid_argument("ConvTranspose: pads leave no output");
      dst_dims.push_back(out);
      continue;
    }
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

// Scratch area: [conv scratchpad | blocked copy of src | blocked dst | widened weights], each
// 64-byte aligned.
void plan_reorders(OnednnConv::Impl& impl, const dnnl::memory::desc& user_src,
                   const dnnl::memory::desc& user_dst) {
  auto align = [](size_t n) { return (n + 63) / 64 * 64; };
  impl.src_layout = layout_from_md(user_src);
  impl.dst_layout = layout_from_md(user_dst);
  size_t offset = align(impl.scratchpad_md.get_size());
  impl.reorder_src = user_src != impl.conv_src_md;
  if (impl.reorder_src) {
    impl.src_in = layout_reorder(user_src, impl.conv_src_md);
    impl.tmp_src_offset = offset;
    offset += align(impl.conv_src_md.get_size());
  }
  impl.reorder_dst = user_dst != impl.conv_dst_md;
  if (impl.reorder_dst) {
    impl.dst_out = layout_reorder(impl.conv_dst_md, user_dst);
    if (impl.has_residual) impl.dst_in = layout_reorder(user_dst, impl.conv_dst_md);
    impl.tmp_dst_offset = offset;
    offset += align(impl.conv_dst_md.get_size());
  }
  if (!impl.half_weights.empty()) {
    impl.tmp_weights_offset = offset;
    offset += align(impl.half_weights.widened_bytes());
  }
  impl.total_scratch = offset;
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
  // A plain request is served by letting oneDNN choose and reordering at the kernel's edges: its
  // plain-layout convolutions run 5-40x slower than the blocked ones (bench/engine).
  const bool plain_src = p.src.kind == LayoutChoice::Kind::kPlain;
  const bool plain_dst = p.dst.kind == LayoutChoice::Kind::kPlain &&
                         !(impl->has_residual && !p.residual_layout.is_empty());
  ConvParams q = p;
  if (plain_src) q.src = LayoutChoice::any();
  if (plain_dst) q.dst = LayoutChoice::any();
  if (plain_dst && impl->has_residual) q.residual_layout = Layout();
  MOSS_ASSIGN_OR_RETURN(dnnl::memory::desc src_md, choose_md(q.src, p.src_dims, "Conv input"));
  MOSS_ASSIGN_OR_RETURN(dnnl::memory::desc dst_md,
                        conv_dst_md(q, impl->dst_dims, impl->has_residual && !plain_dst));
  // bfloat16: the convolution reads a bf16 copy of the source in the layout it prefers (the
  // caller's float32 layout is reordered into it per run) and bf16 weights; it accumulates and
  // writes float32.
  impl->bf16 = p.options.bf16 && !p.transposed;
  const dnnl::memory::desc user_src_md = src_md;
  const auto wdt = impl->bf16 ? dnnl::memory::data_type::bf16 : dnnl::memory::data_type::f32;
  if (impl->bf16) {
    src_md = dnnl::memory::desc(to_dnnl(p.src_dims), wdt, dnnl::memory::format_tag::any);
  }

  // oneDNN wants grouped weights as [G, M/G, C/G, k...]; the bytes are the same as ONNX's.
  // ConvTranspose weights are ONNX [C, M/G, k...] = [G][C/G][M/G][k...] in memory: the same
  // logical dims with the two channel strides swapped.
  Dims wdims = p.weight_dims;
  dnnl::memory::desc user_w;
  if (p.transposed) {
    const int64_t cg = p.weight_dims[0] / p.group, mg = p.weight_dims[1];
    const int64_t k = numel(Dims(p.weight_dims.begin() + 2, p.weight_dims.end()));
    wdims = {p.group, mg, cg};
    wdims.insert(wdims.end(), p.weight_dims.begin() + 2, p.weight_dims.end());
    Dims strides = {cg * mg * k, k, mg * k};
    for (size_t i = 3; i < wdims.size(); ++i) {
      int64_t inner = 1;
      for (size_t j = i + 1; j < wdims.size(); ++j) inner *= wdims[j];
      strides.push_back(inner);
    }
    if (p.group == 1) {
      wdims.erase(wdims.begin());
      strides.erase(strides.begin());
    }
    user_w = dnnl::memory::desc(to_dnnl(wdims), dnnl::memory::data_type::f32, to_dnnl(strides));
  } else {
    if (p.group > 1) {
      wdims[0] /= p.group;
      wdims.insert(wdims.begin(), p.group);
    }
    user_w = plain_md(wdims);
  }
  const dnnl::memory::desc any_w(to_dnnl(wdims), wdt, dnnl::memory::format_tag::any);
  const dnnl::memory::desc bias_md =
      p.has_bias ? plain_md({impl->dst_dims[1]}) : dnnl::memory::desc();
  dnnl::memory::dims dil;
  for (int64_t d : p.dilations) dil.push_back(d - 1);  // oneDNN counts skipped elements

  impl->threads = resolve_threads(p.options.threads);
  ThreadScope scope(impl->threads);
  auto finish = [&](const auto& pd, dnnl::primitive prim) {
    impl->prim = std::move(prim);
    impl->scratchpad_md = pd.scratchpad_desc();
    impl->weights = pack(user_w, weights, pd.weights_desc());
    if (p.options.weights != WeightStorage::kF32 && !impl->bf16) {
      impl->half_weights = HalfWeights(impl->weights, p.options.weights);
      if (!impl->half_weights.empty()) impl->weights = dnnl::memory();
    }
    if (p.has_bias) impl->bias = pack(bias_md, bias, pd.bias_desc());
    impl->conv_src_md = pd.src_desc();
    impl->conv_dst_md = pd.dst_desc();
    dnnl::memory::desc user_src = plain_src ? plain_md(p.src_dims) : impl->conv_src_md;
    if (impl->bf16 && !plain_src) {
      // The float32 source: the layout asked for, or (any) the convolution's own in float32.
      user_src = p.src.kind == LayoutChoice::Kind::kExact ? user_src_md
                                                          : with_type(impl->conv_src_md,
                                                                      dnnl::memory::data_type::f32);
    }
    plan_reorders(*impl, user_src, plain_dst ? plain_md(impl->dst_dims) : impl->conv_dst_md);
    impl->impl_name = pd.impl_info_str();
  };
  if (p.transposed) {
    dnnl::deconvolution_forward::desc desc(
        dnnl::prop_kind::forward_inference, dnnl::algorithm::deconvolution_direct, src_md, any_w,
        bias_md, dst_md, to_dnnl(p.strides), dil, to_dnnl(p.pads_begin), to_dnnl(p.pads_end));
    dnnl::deconvolution_forward::primitive_desc pd(desc, make_attr(ops), cpu_engine());
    finish(pd, dnnl::deconvolution_forward(pd));
    // MACs = input elements * (M/G * kernel volume).
    impl->flops = 2.0 * static_cast<double>(numel(p.src_dims)) *
                  static_cast<double>(numel(p.weight_dims) / p.weight_dims[0]);
  } else {
    auto make_pd = [&](const dnnl::memory::desc& s, const dnnl::memory::desc& d) {
      dnnl::convolution_forward::desc desc(
          dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, s, any_w,
          bias_md, d, to_dnnl(p.strides), dil, to_dnnl(p.pads_begin), to_dnnl(p.pads_end));
      return dnnl::convolution_forward::primitive_desc(desc, make_attr(ops), cpu_engine());
    };
    // Between plain neighbours, channel blocks of 16 (nChw16c) convolve as fast as the
    // channels-last layout oneDNN would choose, and the reorders at the edges cost 3-4x less (a
    // U-Net's GroupNorm/SiLU neighbours keep every conv plain). Only where a JIT kernel takes it.
    std::optional<dnnl::convolution_forward::primitive_desc> pd;
    const auto block_tag = p.src_dims.size() == 3   ? dnnl::memory::format_tag::aBc16b
                           : p.src_dims.size() == 4 ? dnnl::memory::format_tag::aBcd16b
                                                    : dnnl::memory::format_tag::aBcde16b;
    if (!impl->bf16 && plain_src && plain_dst && p.group == 1 && p.src_dims[1] % 16 == 0 &&
        impl->dst_dims[1] % 16 == 0 && p.src_dims.size() <= 5) {
      auto blocked = [&](const Dims& dims) {
        return dnnl::memory::desc(to_dnnl(dims), dnnl::memory::data_type::f32, block_tag);
      };
      try {
        pd = make_pd(blocked(p.src_dims), blocked(impl->dst_dims));
        const std::string name = pd->impl_info_str();
        if (name.rfind("jit", 0) != 0 && name.rfind("brg", 0) != 0) pd.reset();
      } catch (const dnnl::error&) {
        pd.reset();
      }
    }
    if (!pd) pd = make_pd(src_md, dst_md);
    finish(*pd, dnnl::convolution_forward(*pd));
    // MACs = out elements * (C/G * kernel volume).
    impl->flops = 2.0 * static_cast<double>(numel(impl->dst_dims)) *
                  static_cast<double>(numel(p.weight_dims) / p.weight_dims[0]);
  }
  return impl;
}

}  // namespace

OnednnConv::OnednnConv(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
OnednnConv::~OnednnConv() = default;

Result<std::unique_ptr<const OnednnConv>> OnednnConv::create(const ConvParams& params,
                                                             const float* weights,
                                                             const float* bias) {
  auto made = dnnl_guard("Conv", [&]() -> Result<std::unique_ptr<const OnednnConv>> {
    MOSS_ASSIGN_OR_RETURN(auto impl, build_conv(params, weights, bias));
    return std::unique_ptr<const OnednnConv>(new OnednnConv(std::move(impl)));
  });
  if (made.ok() || !params.options.bf16) return made;
  // No bf16 convolution for this geometry: float32 (weights held as asked).
  ConvParams f32 = params;
  f32.options.bf16 = false;
  return create(f32, weights, bias);
}

const Layout& OnednnConv::src_layout() const { return impl_->src_layout; }
const Layout& OnednnConv::dst_layout() const { return impl_->dst_layout; }
const Dims& OnednnConv::dst_dims() const { return impl_->dst_dims; }
size_t OnednnConv::scratchpad_bytes() const { return impl_->total_scratch; }
size_t OnednnConv::weights_bytes() const {
  size_t n = impl_->weights ? impl_->weights.get_desc().get_size() : impl_->half_weights.bytes();
  if (impl_->bias) n += impl_->bias.get_desc().get_size();
  return n;
}
std::string OnednnConv::implementation() const { return impl_->impl_name; }
double OnednnConv::flops() const { return impl_->flops; }
bool OnednnConv::computes_bf16() const { return impl_->bf16; }

Status OnednnConv::execute(const float* src, float* dst, const float* residual,
                           OnednnScratch& scratch) const {
  if (src == nullptr || dst == nullptr) return invalid_argument("Conv: null buffer");
  if (impl_->has_residual && residual == nullptr) {
    return invalid_argument("Conv: residual input missing");
  }
  const Impl& k = *impl_;
  return dnnl_guard("Conv", [&]() -> Status {
    if (scratch.capacity() < k.total_scratch) scratch.reserve(k.total_scratch);
    char* base = static_cast<char*>(scratch.impl().buffer);
    dnnl::stream& stream = scratch.impl().stream;
    ThreadScope threads(k.threads);
    dnnl::memory user_src = wrap(k.src_layout.impl().md, src);
    dnnl::memory user_dst = wrap(k.dst_layout.impl().md, dst);
    dnnl::memory conv_src = user_src, conv_dst = user_dst;
    if (k.reorder_src) {
      conv_src = wrap(k.conv_src_md, base + k.tmp_src_offset);
      k.src_in.execute(stream, user_src, conv_src);
    }
    if (k.reorder_dst) conv_dst = wrap(k.conv_dst_md, base + k.tmp_dst_offset);
    if (k.has_residual) {
      // The sum post-op accumulates into dst, so dst must start as the residual.
      if (k.reorder_dst) {
        dnnl::memory user_res = wrap(k.dst_layout.impl().md, residual);
        k.dst_in.execute(stream, user_res, conv_dst);
      } else if (residual != dst) {
        std::memcpy(dst, residual, k.dst_layout.bytes());
      }
    }
    std::unordered_map<int, dnnl::memory> args;
    args.reserve(6);
    args.emplace(DNNL_ARG_SRC, conv_src);
    args.emplace(DNNL_ARG_WEIGHTS, weights_for_run(k.weights, k.half_weights, base,
                                                   k.tmp_weights_offset));
    if (k.bias) args.emplace(DNNL_ARG_BIAS, k.bias);
    args.emplace(DNNL_ARG_DST, conv_dst);
    if (k.scratchpad_md.get_size() > 0) {
      args.emplace(DNNL_ARG_SCRATCHPAD, wrap(k.scratchpad_md, base));
    }
    k.prim.execute(stream, args);
    if (k.reorder_dst) k.dst_out.execute(stream, conv_dst, user_dst);
    stream.wait();
    return Status::Ok();
  });
}

}  // namespace moss::engine::onednn
