// OnednnAttention: softmax(scale * Q x K + mask) x V as three oneDNN primitives run back to back
// on one scores buffer in the scratchpad (the unfused graph writes, reads and rewrites it in five
// steps: MatMul, Div, Add or Where, Softmax, MatMul).
#include <algorithm>
#include <string_view>
#include <vector>

#include "engine/kernels/onednn/onednn_common.h"

namespace moss::engine::onednn {

struct OnednnAttention::Impl {
  dnnl::matmul scores, context;
  dnnl::softmax_forward softmax;
  dnnl::memory::desc q_md, k_md, v_md, s_md, mask_md, dst_md;
  dnnl::memory::desc scores_pad, softmax_pad, context_pad;  // each primitive's scratchpad
  dnnl::memory mask_packed;  // empty for a run-time mask or none
  bool has_mask = false;
  int mask_arg = 0;       // DNNL_ARG_ATTR_MULTIPLE_POST_OP(i) | DNNL_ARG_SRC_1
  size_t scores_bytes = 0;  // 64-byte aligned size of the scores at the scratchpad's start
  Dims dst_dims;
  int threads = 1;
};

namespace {

constexpr size_t align64(size_t n) { return (n + 63) / 64 * 64; }

Status build(const AttentionParams& p, const float* mask_const, OnednnAttention::Impl& impl) {
  MOSS_RETURN_IF_ERROR(check_dims(p.q_dims, "Attention Q"));
  MOSS_RETURN_IF_ERROR(check_dims(p.k_dims, "Attention K"));
  MOSS_RETURN_IF_ERROR(check_dims(p.v_dims, "Attention V"));
  if (!p.options.post_ops.empty()) return unimplemented("Attention: post-ops are not fused");
  const size_t rank = p.q_dims.size();
  if (rank < 2 || p.k_dims.size() != rank || p.v_dims.size() != rank) {
    return invalid_argument("Attention: Q, K and V need the same rank >= 2");
  }
  for (size_t i = 0; i + 2 < rank; ++i) {
    if (p.k_dims[i] != p.q_dims[i] || p.v_dims[i] != p.q_dims[i]) {
      return unimplemented("Attention: batch dims of Q, K and V differ");
    }
  }
  const int64_t m = p.q_dims[rank - 2], d = p.q_dims[rank - 1], n = p.k_dims[rank - 1];
  if (p.k_dims[rank - 2] != d || p.v_dims[rank - 2] != n) {
    return invalid_argument("Attention: inner dims differ");
  }
  Dims s_dims(p.q_dims.begin(), p.q_dims.end() - 2);
  s_dims.insert(s_dims.end(), {m, n});
  impl.dst_dims.assign(p.q_dims.begin(), p.q_dims.end() - 2);
  impl.dst_dims.insert(impl.dst_dims.end(), {m, p.v_dims[rank - 1]});
  MOSS_RETURN_IF_ERROR(check_dims(s_dims, "Attention scores"));
  impl.q_md = plain_md(p.q_dims);
  impl.k_md = plain_md(p.k_dims);
  impl.v_md = plain_md(p.v_dims);
  impl.s_md = plain_md(s_dims);
  impl.dst_md = plain_md(impl.dst_dims);

  Dims aligned;  // the mask's dims right-aligned to the scores'
  if (!p.mask_dims.empty()) {
    MOSS_RETURN_IF_ERROR(check_dims(p.mask_dims, "Attention mask"));
    if (p.mask_dims.size() > rank) return invalid_argument("Attention: mask rank above scores'");
    aligned.assign(rank - p.mask_dims.size(), 1);
    aligned.insert(aligned.end(), p.mask_dims.begin(), p.mask_dims.end());
    for (size_t i = 0; i < rank; ++i) {
      if (aligned[i] != 1 && aligned[i] != s_dims[i]) {
        return invalid_argument("Attention: mask does not broadcast to the scores");
      }
    }
    impl.has_mask = true;
  }
  impl.threads = resolve_threads(p.options.threads);
  ThreadScope scope(impl.threads);
  auto scores_pd = [&](const Dims& mask_dims) {
    dnnl::post_ops ops;
    if (p.scale != 1.f) ops.append_eltwise(1.f, dnnl::algorithm::eltwise_linear, p.scale, 0.f);
    if (impl.has_mask) {
      impl.mask_md = plain_md(mask_dims);
      impl.mask_arg = DNNL_ARG_ATTR_MULTIPLE_POST_OP(ops.len()) | DNNL_ARG_SRC_1;
      ops.append_binary(dnnl::algorithm::binary_add, impl.mask_md);
    }
    return dnnl::matmul::primitive_desc(dnnl::matmul::desc(impl.q_md, impl.k_md, impl.s_md),
                                        make_attr(ops), cpu_engine());
  };
  // oneDNN's fast matmul takes a mask broadcast along all but the last dim, or none at all; for
  // other broadcasts (Swin's [1, heads, M, N] bias over [windows, heads, M, N]) it falls back to
  // its reference loop, ~1000x slower. A constant mask is then expanded to the scores' shape once;
  // a run-time one is declined (the nodes run unfused).
  auto is_reference = [](const auto& pd) {
    return std::string_view(pd.impl_info_str()).starts_with("ref");
  };
  auto spd = scores_pd(aligned);
  std::vector<float> expanded;
  if (impl.has_mask && is_reference(spd) && mask_const) {
    expanded.resize(static_cast<size_t>(numel(s_dims)));
    Dims at(rank, 0);  // index into the scores
    for (float& out : expanded) {
      int64_t src = 0;
      for (size_t i = 0; i < rank; ++i) src = src * aligned[i] + (aligned[i] == 1 ? 0 : at[i]);
      out = mask_const[src];
      for (size_t i = rank; i-- > 0 && ++at[i] == s_dims[i];) at[i] = 0;
    }
    mask_const = expanded.data();
    spd = scores_pd(s_dims);
  }
  if (is_reference(spd)) return unimplemented("Attention: no fast matmul for this mask");
  impl.scores = dnnl::matmul(spd);
  impl.scores_pad = spd.scratchpad_desc();
  dnnl::primitive_attr plain_attr = make_attr(dnnl::post_ops());
  dnnl::softmax_forward::primitive_desc xpd(
      dnnl::softmax_forward::desc(dnnl::prop_kind::forward_inference, impl.s_md,
                                  static_cast<int>(rank - 1)),
      plain_attr, cpu_engine());
  impl.softmax = dnnl::softmax_forward(xpd);
  impl.softmax_pad = xpd.scratchpad_desc();
  dnnl::matmul::primitive_desc cpd(dnnl::matmul::desc(impl.s_md, impl.v_md, impl.dst_md),
                                   plain_attr, cpu_engine());
  impl.context = dnnl::matmul(cpd);
  impl.context_pad = cpd.scratchpad_desc();
  impl.scores_bytes = align64(impl.s_md.get_size());
  if (impl.has_mask && mask_const) impl.mask_packed = pack(impl.mask_md, mask_const, impl.mask_md);
  return Status::Ok();
}

}  // namespace

OnednnAttention::OnednnAttention(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
OnednnAttention::~OnednnAttention() = default;

Result<std::unique_ptr<const OnednnAttention>> OnednnAttention::create(const AttentionParams& p,
                                                                       const float* mask_const) {
  return dnnl_guard("Attention", [&]() -> Result<std::unique_ptr<const OnednnAttention>> {
    auto impl = std::make_unique<Impl>();
    MOSS_RETURN_IF_ERROR(build(p, mask_const, *impl));
    return std::unique_ptr<const OnednnAttention>(new OnednnAttention(std::move(impl)));
  });
}

const Dims& OnednnAttention::dst_dims() const { return impl_->dst_dims; }

size_t OnednnAttention::scratchpad_bytes() const {
  return impl_->scores_bytes + std::max({impl_->scores_pad.get_size(),
                                         impl_->softmax_pad.get_size(),
                                         impl_->context_pad.get_size()});
}

size_t OnednnAttention::weights_bytes() const {
  return impl_->mask_packed ? impl_->mask_packed.get_desc().get_size() : 0;
}

Status OnednnAttention::execute(const float* q, const float* k, const float* v, const float* mask,
                                float* dst, OnednnScratch& scratch) const {
  const Impl& im = *impl_;
  if (!q || !k || !v || !dst || (im.has_mask && !im.mask_packed && !mask)) {
    return invalid_argument("Attention: null buffer");
  }
  return dnnl_guard("Attention", [&]() -> Status {
    // Reserve once, before taking pointers into the buffer: the scores live at its start and
    // each primitive's scratchpad after them.
    scratch.reserve(scratchpad_bytes());
    OnednnScratch::Impl& s = scratch.impl();
    auto* base = static_cast<uint8_t*>(s.buffer);
    dnnl::memory scores = wrap(im.s_md, base);
    ThreadScope threads(im.threads);
    auto run = [&](const dnnl::primitive& prim, const dnnl::memory::desc& pad,
                   std::unordered_map<int, dnnl::memory> args) {
      if (pad.get_size() > 0) args.emplace(DNNL_ARG_SCRATCHPAD, wrap(pad, base + im.scores_bytes));
      prim.execute(s.stream, args);
    };
    std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, wrap(im.q_md, q)},
                                               {DNNL_ARG_WEIGHTS, wrap(im.k_md, k)},
                                               {DNNL_ARG_DST, scores}};
    if (im.has_mask) args.emplace(im.mask_arg, im.mask_packed ? im.mask_packed : wrap(im.mask_md, mask));
    run(im.scores, im.scores_pad, std::move(args));
    run(im.softmax, im.softmax_pad, {{DNNL_ARG_SRC, scores}, {DNNL_ARG_DST, scores}});
    run(im.context, im.context_pad,
        {{DNNL_ARG_SRC, scores}, {DNNL_ARG_WEIGHTS, wrap(im.v_md, v)},
         {DNNL_ARG_DST, wrap(im.dst_md, dst)}});
    s.stream.wait();
    return Status::Ok();
  });
}

}  // namespace moss::engine::onednn
