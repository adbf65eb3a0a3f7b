#include "engine/kernels/onednn_bridge.h"

#include <cmath>
#include <cstdlib>
#include <limits>

#include "engine/kernels/ref/window.h"
#include "engine/quant/quant_kernels.h"

namespace moss::engine {
namespace {

using namespace onednn;

Status need_scratch(const RunScratch& s, const char* op) {
  if (!s.dnnl) return internal_error("{}: no oneDNN scratch in this context", op);
  return Status::Ok();
}

class ConvKernel final : public PreparedKernel {
 public:
  ConvKernel(std::unique_ptr<const OnednnConv> k, bool residual, uint32_t packed)
      : k_(std::move(k)), residual_(residual), packed_(packed) {}
  uint32_t packed_inputs() const override { return packed_; }
  size_t scratch_bytes() const override { return k_->scratchpad_bytes(); }
  size_t weights_bytes() const override { return k_->weights_bytes(); }
  std::string_view kind() const override { return k_->computes_bf16() ? "bf16" : ""; }
  Status run(std::span<const View> in, std::span<const View> out, RunScratch& s) const override {
    MOSS_RETURN_IF_ERROR(need_scratch(s, "Conv"));
    const float* residual = residual_ ? in.back().as<float>() : nullptr;
    return k_->execute(in[0].as<float>(), out[0].as<float>(), residual, *s.dnnl);
  }

 private:
  std::unique_ptr<const OnednnConv> k_;
  bool residual_;
  uint32_t packed_;
};

class MatmulKernel final : public PreparedKernel {
 public:
  MatmulKernel(std::unique_ptr<const OnednnMatmul> k, bool b_const, bool residual, uint32_t packed)
      : k_(std::move(k)), b_const_(b_const), residual_(residual), packed_(packed) {}
  uint32_t packed_inputs() const override { return packed_; }
  size_t scratch_bytes() const override { return k_->scratchpad_bytes(); }
  size_t weights_bytes() const override { return k_->weights_bytes(); }
  Status run(std::span<const View> in, std::span<const View> out, RunScratch& s) const override {
    MOSS_RETURN_IF_ERROR(need_scratch(s, "MatMul"));
    const float* residual = residual_ ? in.back().as<float>() : nullptr;
    return k_->execute(in[0].as<float>(), b_const_ ? nullptr : in[1].as<float>(),
                       out[0].as<float>(), residual, *s.dnnl);
  }

 private:
  std::unique_ptr<const OnednnMatmul> k_;
  bool b_const_, residual_;
  uint32_t packed_;
};

// Pool, Softmax, LayerNorm and Reorder: one input, one output.
template <typename K>
class UnaryKernel final : public PreparedKernel {
 public:
  UnaryKernel(std::unique_ptr<const K> k, const char* op) : k_(std::move(k)), op_(op) {}
  size_t scratch_bytes() const override {
    if constexpr (requires(const K& k) { k.scratchpad_bytes(); }) return k_->scratchpad_bytes();
    return 0;
  }
  size_t weights_bytes() const override { return 0; }
  Status run(std::span<const View> in, std::span<const View> out, RunScratch& s) const override {
    MOSS_RETURN_IF_ERROR(need_scratch(s, op_));
    return k_->execute(in[0].as<float>(), out[0].as<float>(), *s.dnnl);
  }

 private:
  std::unique_ptr<const K> k_;
  const char* op_;
};

// Threads for a memory-bound step (Softmax, LayerNorm, Transpose, Reorder, pools) over `elements`
// floats: below 64K elements (tens of microseconds on one core) a second OpenMP thread costs more
// to wake and join than it saves, and under OMP_WAIT_POLICY=passive on a busy host the join waits
// for a time slice (a 9 us LayerNorm took ~1 ms at 2 threads in gpt4's profile).
int memory_bound_threads(int64_t elements, int threads) {
  constexpr int64_t kSmall = int64_t{1} << 16;
  return elements < kSmall ? 1 : threads;
}

bool all_float(std::span<const TensorInfo* const> in) {
  for (const TensorInfo* t : in) {
    if (t && t->dtype != DType::kFloat32) return false;
  }
  return true;
}

WeightStorage weight_storage(const HalfPlan& half) {
  return half.weights == DType::kFloat16    ? WeightStorage::kF16
         : half.weights == DType::kBFloat16 ? WeightStorage::kBF16
                                            : WeightStorage::kF32;
}

LayoutChoice choice_for(const Layout& l) {
  return l.is_empty() ? LayoutChoice::plain() : LayoutChoice::exactly(l);
}

OnednnStep prepare_conv(const OnednnStepRequest& r) {
  const Node& node = *r.node;
  const auto in = r.in;
  if (in.size() < 2 || !in[1]->value || (in.size() > 2 && in[2] && !in[2]->value)) return {};
  const auto& x = in[0]->shape;
  const auto& w = in[1]->shape;
  if (x.size() < 3 || w.size() != x.size()) return {};
  std::vector<int64_t> kernel(w.begin() + 2, w.end());
  auto win =
      ref::window_geometry(node, std::span<const int64_t>(x).subspan(2), kernel, false, true);
  if (!win.ok()) return {};
  ConvParams p;
  p.src_dims = x;
  p.weight_dims = w;
  for (int i = 3 - win->nd; i < 3; ++i) {
    p.strides.push_back(win->stride[i]);
    p.pads_begin.push_back(win->pad_b[i]);
    p.pads_end.push_back(win->pad_e[i]);
    p.dilations.push_back(win->dil[i]);
  }
  p.group = node.attr_int("group", 1);
  p.has_bias = in.size() > 2 && in[2];
  p.options.threads = r.threads;
  p.options.post_ops = r.post_ops;
  p.options.weights = weight_storage(r.half);
  p.options.bf16 = r.half.compute == HalfCompute::kBFloat16;
  p.src = choice_for(r.src_layout);
  p.dst = r.dst_blocked_ok ? LayoutChoice::any() : LayoutChoice::plain();
  if (r.residual) {
    // A blocked residual fixes the output layout; a plain one is reordered inside the kernel.
    p.residual_layout = r.residual_layout;
    if (r.residual_layout.is_empty()) p.dst = LayoutChoice::plain();
  }
  const float* weights = in[1]->value->data<float>();
  const float* bias = p.has_bias ? in[2]->value->data<float>() : nullptr;
  std::vector<float> folded_w, folded_b;
  if (!r.batch_norm.empty()) {
    // y = (conv(x) + b - mean) * scale / sqrt(var + eps) + B, per output channel m.
    if (r.batch_norm.size() != 4) return {};
    const int64_t m_count = w[0];
    const int64_t per = in[1]->numel() / m_count;
    const float* scale = r.batch_norm[0]->value->data<float>();
    const float* beta = r.batch_norm[1]->value->data<float>();
    const float* mean = r.batch_norm[2]->value->data<float>();
    const float* var = r.batch_norm[3]->value->data<float>();
    folded_w.assign(weights, weights + in[1]->numel());
    folded_b.assign(static_cast<size_t>(m_count), 0.0f);
    for (int64_t m = 0; m < m_count; ++m) {
      const float s = scale[m] / std::sqrt(var[m] + r.batch_norm_epsilon);
      for (int64_t i = 0; i < per; ++i) folded_w[m * per + i] *= s;
      folded_b[m] = ((bias ? bias[m] : 0.0f) - mean[m]) * s + beta[m];
    }
    weights = folded_w.data();
    bias = folded_b.data();
    p.has_bias = true;
  }
  auto k = OnednnConv::create(p, weights, bias);
  if (!k.ok() || (*k)->dst_dims() != (*r.out)[0].shape) return {};
  OnednnStep step;
  if (!(*k)->dst_layout().is_plain()) step.dst_layout = (*k)->dst_layout();
  step.kernel = std::make_shared<ConvKernel>(std::move(k).value(), r.residual != nullptr,
                                             p.has_bias ? 0b110u : 0b010u);
  return step;
}

// ConvTranspose with explicit pads (auto_pad and output_shape stay on the reference kernel). The
// output shape was inferred by the reference kernel's infer; the oneDNN kernel must agree with it.
OnednnStep prepare_conv_transpose(const OnednnStepRequest& r) {
  const Node& node = *r.node;
  const auto in = r.in;
  if (in.size() < 2 || !in[1]->value || (in.size() > 2 && in[2] && !in[2]->value)) return {};
  if (!r.post_ops.empty() || !r.batch_norm.empty() || r.residual) return {};
  if (node.attr_string("auto_pad", "NOTSET") != "NOTSET" || node.attr("output_shape")) return {};
  const auto& x = in[0]->shape;
  const auto& w = in[1]->shape;
  if (x.size() < 3 || x.size() > 5 || w.size() != x.size()) return {};
  const size_t sp = x.size() - 2;
  auto ints = [&](const char* name, size_t n, int64_t fill) {
    return node.attr(name) ? node.attr_ints(name) : std::vector<int64_t>(n, fill);
  };
  ConvParams p;
  p.transposed = true;
  p.src_dims = x;
  p.weight_dims = w;
  p.strides = ints("strides", sp, 1);
  p.dilations = ints("dilations", sp, 1);
  const auto pads = ints("pads", 2 * sp, 0);
  const auto out_pad = ints("output_padding", sp, 0);
  if (pads.size() != 2 * sp || out_pad.size() != sp) return {};
  for (size_t i = 0; i < sp; ++i) {
    p.pads_begin.push_back(pads[i]);
    p.pads_end.push_back(pads[sp + i] - out_pad[i]);
    if (p.pads_end.back() < 0) return {};
  }
  if (node.attr("kernel_shape") && node.attr_ints("kernel_shape") != std::vector<int64_t>(w.begin() + 2, w.end())) {
    return {};
  }
  p.group = node.attr_int("group", 1);
  p.has_bias = in.size() > 2 && in[2];
  p.options.threads = r.threads;
  p.options.weights = weight_storage(r.half);
  p.src = choice_for(r.src_layout);
  p.dst = r.dst_blocked_ok ? LayoutChoice::any() : LayoutChoice::plain();
  auto k = OnednnConv::create(p, in[1]->value->data<float>(),
                              p.has_bias ? in[2]->value->data<float>() : nullptr);
  if (!k.ok() || (*k)->dst_dims() != (*r.out)[0].shape) return {};
  OnednnStep step;
  if (!(*k)->dst_layout().is_plain()) step.dst_layout = (*k)->dst_layout();
  step.kernel = std::make_shared<ConvKernel>(std::move(k).value(), false, p.has_bias ? 0b110u : 0b010u);
  return step;
}

OnednnStep prepare_matmul(const OnednnStepRequest& r) {
  const Node& node = *r.node;
  const auto in = r.in;
  if (in.size() < 2 || in[0]->shape.size() < 2 || in[1]->shape.size() < 2) return {};
  if (!r.src_layout.is_empty() || !r.residual_layout.is_empty()) return {};
  MatmulParams p;
  p.a_dims = in[0]->shape;
  p.b_dims = in[1]->shape;
  p.options.threads = r.threads;
  p.options.post_ops = r.post_ops;
  if (in[1]->value) p.options.weights = weight_storage(r.half);
  const float* bias = nullptr;
  if (node.op_type == "Gemm") {
    p.trans_a = node.attr_int("transA", 0) != 0;
    p.trans_b = node.attr_int("transB", 0) != 0;
    p.alpha = node.attr_float("alpha", 1.0f);
    p.beta = node.attr_float("beta", 1.0f);
    if (in.size() > 2 && in[2]) {
      if (!in[2]->value || r.bias) return {};
      p.bias_dims = in[2]->shape;
      bias = in[2]->value->data<float>();
    }
    if (p.alpha != 1.0f && !in[1]->value) return {};
  }
  if (r.bias) {
    if (!r.bias->value) return {};
    p.bias_dims = r.bias->shape;
    bias = r.bias->value->data<float>();
  }
  auto k = OnednnMatmul::create(p, in[1]->value ? in[1]->value->data<float>() : nullptr, bias);
  // Only accept when oneDNN's output shape is exactly the inferred one.
  if (!k.ok() || (*k)->dst_dims() != (*r.out)[0].shape) return {};
  // Packed: constant B, and Gemm's C (a constant bias when present).
  const uint32_t packed = (in[1]->value ? 0b010u : 0u) |
                          (node.op_type == "Gemm" && in.size() > 2 && in[2] ? 0b100u : 0u);
  return {std::make_shared<MatmulKernel>(std::move(k).value(), in[1]->value != nullptr,
                                         r.residual != nullptr, packed),
          Layout()};
}

OnednnStep prepare_pool(const OnednnStepRequest& r) {
  const Node& node = *r.node;
  if (r.in.size() != 1 || node.outputs.size() != 1 || !r.post_ops.empty()) return {};
  const auto& x = r.in[0]->shape;
  if (x.size() < 3) return {};
  PoolParams p;
  p.kind = node.op_type.find("Max") != std::string::npos ? PoolParams::Kind::kMax
                                                         : PoolParams::Kind::kAverage;
  p.src_dims = x;
  if (r.in[0]->dtype != DType::kFloat32) {
    p.element = r.in[0]->dtype == DType::kUInt8 ? ElementType::kU8 : ElementType::kS8;
  }
  if (node.op_type == "MaxPool" || node.op_type == "AveragePool") {
    if (node.op_type == "MaxPool" && node.attr_int("storage_order", 0) != 0) return {};
    auto kernel = node.attr_ints("kernel_shape");
    if (kernel.empty()) return {};
    const bool dil_ok = node.op_type == "MaxPool" ? node.opset >= 10 : node.opset >= 19;
    auto win = ref::window_geometry(node, std::span<const int64_t>(x).subspan(2), kernel,
                                    node.opset >= 10, dil_ok);
    if (!win.ok()) return {};
    for (int i = 3 - win->nd; i < 3; ++i) {
      p.kernel.push_back(win->k[i]);
      p.strides.push_back(win->stride[i]);
      p.pads_begin.push_back(win->pad_b[i]);
      p.pads_end.push_back(win->pad_e[i]);
      p.dilations.push_back(win->dil[i]);
    }
    // window_geometry already folded ceil_mode into pads_end/out; pass it so oneDNN agrees.
    p.ceil_mode = node.attr_int("ceil_mode", 0) != 0;
    p.count_include_pad = node.attr_int("count_include_pad", 0) != 0;
  }
  p.options.threads = memory_bound_threads(numel_of(x), r.threads);
  p.src = choice_for(r.src_layout);
  p.dst = r.dst_blocked_ok ? LayoutChoice::any() : LayoutChoice::plain();
  auto k = OnednnPool::create(p);
  if (!k.ok() || (*k)->dst_dims() != (*r.out)[0].shape) return {};
  OnednnStep step;
  if (!(*k)->dst_layout().is_plain()) step.dst_layout = (*k)->dst_layout();
  step.kernel = std::make_shared<UnaryKernel<OnednnPool>>(std::move(k).value(), "Pool");
  return step;
}

OnednnStep prepare_softmax(const OnednnStepRequest& r) {
  const Node& node = *r.node;
  if (r.in.size() != 1 || !r.post_ops.empty() || !r.src_layout.is_empty()) return {};
  const auto& x = r.in[0]->shape;
  if (x.empty()) return {};
  SoftmaxParams p;
  int64_t axis = node.attr_int("axis", node.opset < 13 ? 1 : -1);
  if (axis < 0) axis += static_cast<int64_t>(x.size());
  if (axis < 0 || axis >= static_cast<int64_t>(x.size())) return {};
  if (node.opset < 13) {
    int64_t outer = 1, inner = 1;
    for (int64_t i = 0; i < static_cast<int64_t>(x.size()); ++i) (i < axis ? outer : inner) *= x[i];
    p.dims = {outer, inner};
    p.axis = 1;
  } else {
    p.dims = x;
    p.axis = axis;
  }
  p.options.threads = memory_bound_threads(numel_of(x), r.threads);
  auto k = OnednnSoftmax::create(p);
  if (!k.ok()) return {};
  return {std::make_shared<UnaryKernel<OnednnSoftmax>>(std::move(k).value(), "Softmax"), Layout()};
}

class LayerNormKernel final : public PreparedKernel {
 public:
  LayerNormKernel(std::unique_ptr<const OnednnLayerNorm> k, size_t bytes)
      : k_(std::move(k)), bytes_(bytes) {}
  uint32_t packed_inputs() const override { return 0b110u; }  // scale, bias
  size_t scratch_bytes() const override { return k_->scratchpad_bytes(); }
  size_t weights_bytes() const override { return bytes_; }
  Status run(std::span<const View> in, std::span<const View> out, RunScratch& s) const override {
    MOSS_RETURN_IF_ERROR(need_scratch(s, "LayerNormalization"));
    return k_->execute(in[0].as<float>(), out[0].as<float>(), *s.dnnl);
  }

 private:
  std::unique_ptr<const OnednnLayerNorm> k_;
  size_t bytes_;
};

OnednnStep prepare_layernorm(const OnednnStepRequest& r) {
  const Node& node = *r.node;
  if (r.in.size() < 2 || !r.post_ops.empty() || !r.src_layout.is_empty()) return {};
  for (size_t i = 1; i < node.outputs.size(); ++i) {
    if (node.outputs[i] != kNoValue) return {};  // Mean / InvStdDev are not produced
  }
  const auto& x = r.in[0]->shape;
  int64_t axis = node.attr_int("axis", -1);
  if (axis < 0) axis += static_cast<int64_t>(x.size());
  if (axis < 0 || axis >= static_cast<int64_t>(x.size())) return {};
  int64_t inner = 1;
  for (size_t i = static_cast<size_t>(axis); i < x.size(); ++i) inner *= x[i];
  const TensorInfo* scale = r.in[1];
  const TensorInfo* bias = r.in.size() > 2 ? r.in[2] : nullptr;
  if (!scale || !scale->value || scale->numel() != inner) return {};
  if (bias && (!bias->value || bias->numel() != inner)) return {};
  LayerNormParams p;
  p.dims = x;
  p.axis = axis;
  p.epsilon = node.attr_float("epsilon", 1e-5f);
  p.has_bias = bias != nullptr;
  p.options.threads = memory_bound_threads(numel_of(x), r.threads);
  auto k = OnednnLayerNorm::create(p, scale->value->data<float>(),
                                   bias ? bias->value->data<float>() : nullptr);
  if (!k.ok()) return {};
  const size_t bytes = static_cast<size_t>(inner) * sizeof(float) * (bias ? 2 : 1);
  return {std::make_shared<LayerNormKernel>(std::move(k).value(), bytes), Layout()};
}

// Inference BatchNormalization; keeps the input's layout (a blocked input needs blocked readers).
OnednnStep prepare_batchnorm(const OnednnStepRequest& r) {
  const Node& node = *r.node;
  if (r.in.size() != 5 || !r.post_ops.empty() || node.attr_int("training_mode", 0) != 0) return {};
  if (node.opset < 9 && node.attr_int("spatial", 1) != 1) return {};
  for (size_t i = 1; i < node.outputs.size(); ++i) {
    if (node.outputs[i] != kNoValue) return {};
  }
  const auto& x = r.in[0]->shape;
  if (x.size() < 2 || x.size() > 5) return {};
  for (size_t i = 1; i < 5; ++i) {
    if (!r.in[i] || !r.in[i]->value || r.in[i]->numel() != x[1]) return {};
  }
  if (!r.src_layout.is_empty() && !r.dst_blocked_ok) return {};  // readers need plain: reorder
  BatchNormParams p;
  p.src_dims = x;
  p.epsilon = node.attr_float("epsilon", 1e-5f);
  p.src = choice_for(r.src_layout);
  p.options.threads = r.threads;
  auto k = OnednnBatchNorm::create(p, r.in[1]->value->data<float>(), r.in[2]->value->data<float>(),
                                   r.in[3]->value->data<float>(), r.in[4]->value->data<float>());
  if (!k.ok()) return {};
  OnednnStep step;
  if (!(*k)->dst_layout().is_plain()) step.dst_layout = (*k)->dst_layout();
  step.kernel = std::make_shared<UnaryKernel<OnednnBatchNorm>>(std::move(k).value(), "BatchNorm");
  return step;
}

// Transpose as a oneDNN reorder from a strided view of the input to a plain output.
OnednnStep prepare_transpose(const OnednnStepRequest& r) {
  const Node& node = *r.node;
  if (r.in.size() != 1 || !r.post_ops.empty() || !r.src_layout.is_empty()) return {};
  const auto& x = r.in[0]->shape;
  const auto& y = (*r.out)[0].shape;
  if (x.empty() || x.size() > 6 || y.size() != x.size()) return {};
  std::vector<int64_t> perm = node.attr_ints("perm");
  if (perm.empty()) {
    for (size_t i = x.size(); i-- > 0;) perm.push_back(static_cast<int64_t>(i));
  }
  if (perm.size() != x.size()) return {};
  std::vector<int64_t> dense(x.size(), 1), strides;
  for (size_t i = x.size(); i-- > 1;) dense[i - 1] = dense[i] * x[i];
  for (int64_t a : perm) {
    if (a < 0 || a >= static_cast<int64_t>(x.size())) return {};
    strides.push_back(dense[a]);
  }
  auto from = Layout::strided(y, strides);
  auto to = Layout::plain(y);
  if (!from.ok() || !to.ok()) return {};
  auto k = OnednnReorder::create(*from, *to, memory_bound_threads(numel_of(x), r.threads));
  if (!k.ok()) return {};
  return {std::make_shared<UnaryKernel<OnednnReorder>>(std::move(k).value(), "Transpose"),
          Layout()};
}

class AttentionKernel final : public PreparedKernel {
 public:
  AttentionKernel(std::unique_ptr<const OnednnAttention> k, bool runtime_mask, uint32_t packed)
      : k_(std::move(k)), runtime_mask_(runtime_mask), packed_(packed) {}
  uint32_t packed_inputs() const override { return packed_; }
  size_t scratch_bytes() const override { return k_->scratchpad_bytes(); }
  size_t weights_bytes() const override { return k_->weights_bytes(); }
  Status run(std::span<const View> in, std::span<const View> out, RunScratch& s) const override {
    MOSS_RETURN_IF_ERROR(need_scratch(s, "Attention"));
    const float* mask = runtime_mask_ ? in[3].as<float>() : nullptr;
    return k_->execute(in[0].as<float>(), in[1].as<float>(), in[2].as<float>(), mask,
                       out[0].as<float>(), *s.dnnl);
  }

 private:
  std::unique_ptr<const OnednnAttention> k_;
  bool runtime_mask_;
  uint32_t packed_;
};

}  // namespace

OnednnStep prepare_attention_step(const OnednnStepRequest& r, const AttentionStepRequest& a) {
  if (!r.node || !r.out || r.out->empty() || r.in.size() != 2 || !r.in[0] || !r.in[1] || !a.v) {
    return {};
  }
  for (const TensorInfo* t : {r.in[0], r.in[1], a.v}) {
    if (t->dtype != DType::kFloat32 || t->value) return {};
  }
  if ((*r.out)[0].dtype != DType::kFloat32 || !r.post_ops.empty()) return {};
  AttentionParams p;
  p.q_dims = r.in[0]->shape;
  p.k_dims = r.in[1]->shape;
  p.v_dims = a.v->shape;
  p.scale = a.scale;
  p.options.threads = r.threads;
  const float* mask_const = nullptr;
  std::vector<float> additive;
  if (a.mask) {
    p.mask_dims = a.mask->shape;
    if (p.mask_dims.empty()) p.mask_dims = {1};
    if (a.mask_is_condition) {
      // -inf added where the condition masks, 0 elsewhere: Where's result for every finite or
      // -inf score (only a NaN or +inf score at a masked position would turn NaN instead).
      if (!a.mask->value || a.mask->dtype != DType::kBool) return {};
      const bool* c = a.mask->value->data<bool>();
      additive.resize(static_cast<size_t>(a.mask->numel()));
      for (size_t i = 0; i < additive.size(); ++i) {
        additive[i] = c[i] == a.masked_when ? -std::numeric_limits<float>::infinity() : 0.f;
      }
      mask_const = additive.data();
    } else {
      if (a.mask->dtype != DType::kFloat32) return {};
      if (a.mask->value) mask_const = a.mask->value->data<float>();
    }
  }
  auto k = OnednnAttention::create(p, mask_const);
  if (!k.ok() || (*k)->dst_dims() != (*r.out)[0].shape) return {};
  const bool runtime_mask = a.mask && !mask_const;
  return {std::make_shared<AttentionKernel>(std::move(k).value(), runtime_mask,
                                            mask_const ? 0b1000u : 0u),
          Layout()};
}

namespace {

// An activation that runs on its own (one not fused after a Conv or MatMul), float32.
OnednnStep prepare_eltwise(const OnednnStepRequest& r) {
  const Node& node = *r.node;
  if (r.in.size() != 1 || !r.in[0] || !r.post_ops.empty() || !r.src_layout.is_empty()) return {};
  if (r.in[0]->dtype != DType::kFloat32 || (*r.out)[0].dtype != DType::kFloat32) return {};
  EltwiseParams p;
  p.dims = r.in[0]->shape;
  p.threads = r.threads;
  const std::string& op = node.op_type;
  if (op == "Sigmoid") p.op = {PostOp::Kind::kSigmoid};
  else if (op == "Tanh") p.op = {PostOp::Kind::kTanh};
  else if (op == "HardSwish") p.op = {PostOp::Kind::kHardSwish};
  else return {};
  auto k = OnednnEltwise::create(p);
  if (!k.ok()) return {};
  return {std::make_shared<UnaryKernel<OnednnEltwise>>(std::move(k).value(), "eltwise"), Layout()};
}

// The plain OpKernel::prepare hook (no fusion, plain layouts).
template <OnednnStep (*F)(const OnednnStepRequest&)>
std::unique_ptr<const PreparedKernel> plain_prepare(const Node& node,
                                                    std::span<const TensorInfo* const> in,
                                                    const std::vector<TensorInfo>& out,
                                                    int threads) {
  OnednnStepRequest r;
  r.node = &node;
  r.in = in;
  r.out = &out;
  r.threads = threads;
  OnednnStep s = F(r);
  if (!s.kernel) return nullptr;
  // The step kernels are shared; hand out a unique wrapper around the shared one.
  class Shared final : public PreparedKernel {
   public:
    explicit Shared(std::shared_ptr<const PreparedKernel> k) : k_(std::move(k)) {}
    size_t scratch_bytes() const override { return k_->scratch_bytes(); }
    size_t weights_bytes() const override { return k_->weights_bytes(); }
    uint32_t packed_inputs() const override { return k_->packed_inputs(); }
    Status run(std::span<const View> i, std::span<const View> o, RunScratch& s) const override {
      return k_->run(i, o, s);
    }

   private:
    std::shared_ptr<const PreparedKernel> k_;
  };
  return std::make_unique<Shared>(std::move(s.kernel));
}

}  // namespace

bool onednn_disabled() {
  const char* v = std::getenv("MOSS_ENGINE_REFERENCE_ONLY");
  return v && v[0] == '1';
}

bool onednn_takes_blocked(const std::string& op) {
  return op == "Conv" || op == "MaxPool" || op == "AveragePool" || op == "GlobalAveragePool" ||
         op == "GlobalMaxPool" || op == "BatchNormalization" || quant_takes_blocked(op);
}

bool onednn_takes_blocked_input(const Node& node, size_t i) {
  if (!onednn_takes_blocked(node.op_type)) return false;
  return i == 0 || (node.op_type == "QLinearAdd" && i == 3);
}

bool onednn_serves(const std::string& op) {
  return onednn_takes_blocked(op) || op == "MatMul" || op == "Gemm" || op == "Softmax" ||
         op == "LayerNormalization" || op == "Transpose" || op == "ConvTranspose" ||
         quant_serves(op);
}

OnednnStep prepare_onednn_step(const OnednnStepRequest& r) {
  if (!r.node || !r.out || r.out->empty() || r.in.empty() || !r.in[0]) return {};
  if (quant_serves(r.node->op_type)) return prepare_quant_step(r);
  const DType x = r.in[0]->dtype;
  if (r.node->op_type == "MaxPool" && (x == DType::kUInt8 || x == DType::kInt8) &&
      (*r.out)[0].dtype == x) {
    return prepare_pool(r);  // int8: the maximum of quantized values (quant/qdq_rewrite.h)
  }
  if (!all_float(r.in)) return {};
  if ((*r.out)[0].dtype != DType::kFloat32) return {};
  const std::string& op = r.node->op_type;
  if (op == "Conv") return prepare_conv(r);
  if (op == "ConvTranspose") return prepare_conv_transpose(r);
  if (op == "MatMul" || op == "Gemm") return prepare_matmul(r);
  if (op == "MaxPool" || op == "AveragePool" || op == "GlobalAveragePool" ||
      op == "GlobalMaxPool") {
    return prepare_pool(r);
  }
  if (op == "Softmax") return prepare_softmax(r);
  if (op == "LayerNormalization") return prepare_layernorm(r);
  if (op == "Transpose") return prepare_transpose(r);
  if (op == "BatchNormalization") return prepare_batchnorm(r);
  return {};
}

std::shared_ptr<const PreparedKernel> onednn_reorder_step(const Layout& from, const Layout& to,
                                                          int threads) {
  auto k = OnednnReorder::create(from, to, memory_bound_threads(numel_of(from.dims()), threads));
  if (!k.ok()) return nullptr;
  return std::make_shared<UnaryKernel<OnednnReorder>>(std::move(k).value(), "Reorder");
}

PrepareFn onednn_prepare_for(const std::string& op) {
  if (op == "Conv") return plain_prepare<prepare_conv>;
  if (op == "MatMul" || op == "Gemm") return plain_prepare<prepare_matmul>;
  if (op == "Sigmoid" || op == "Tanh" || op == "HardSwish") {
    return plain_prepare<prepare_eltwise>;
  }
  return onednn_recurrent_prepare(op);
}

}  // namespace moss::engine
