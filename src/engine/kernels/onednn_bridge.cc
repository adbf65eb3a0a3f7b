#include "engine/kernels/onednn_bridge.h"

#include "engine/kernels/onednn/onednn_ops.h"
#include "engine/kernels/ref/window.h"

#include <cstdlib>

namespace moss::engine {
namespace {

using namespace onednn;

class ConvKernel final : public PreparedKernel {
 public:
  explicit ConvKernel(std::unique_ptr<const OnednnConv> k) : k_(std::move(k)) {}
  size_t scratch_bytes() const override { return k_->scratchpad_bytes(); }
  size_t weights_bytes() const override { return k_->weights_bytes(); }
  Status run(std::span<const View> in, std::span<const View> out, RunScratch& s) const override {
    if (!s.dnnl) return internal_error("Conv: no oneDNN scratch in this context");
    return k_->execute(in[0].as<float>(), out[0].as<float>(), nullptr, *s.dnnl);
  }

 private:
  std::unique_ptr<const OnednnConv> k_;
};

std::unique_ptr<const PreparedKernel> prepare_conv(const Node& node,
                                                   std::span<const TensorInfo* const> in,
                                                   const std::vector<TensorInfo>&, int threads) {
  if (in.size() < 2 || !in[1]->value || (in.size() > 2 && in[2] && !in[2]->value)) return nullptr;
  const auto& x = in[0]->shape;
  const auto& w = in[1]->shape;
  std::vector<int64_t> kernel(w.begin() + 2, w.end());
  auto win = ref::window_geometry(node, std::span<const int64_t>(x).subspan(2), kernel, false, true);
  if (!win.ok()) return nullptr;
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
  p.options.threads = threads;
  auto k = OnednnConv::create(p, in[1]->value->data<float>(),
                              p.has_bias ? in[2]->value->data<float>() : nullptr);
  if (!k.ok()) return nullptr;
  return std::make_unique<ConvKernel>(std::move(k).value());
}

class MatmulKernel final : public PreparedKernel {
 public:
  MatmulKernel(std::unique_ptr<const OnednnMatmul> k, bool b_const) : k_(std::move(k)), b_const_(b_const) {}
  size_t scratch_bytes() const override { return k_->scratchpad_bytes(); }
  size_t weights_bytes() const override { return k_->weights_bytes(); }
  Status run(std::span<const View> in, std::span<const View> out, RunScratch& s) const override {
    if (!s.dnnl) return internal_error("MatMul: no oneDNN scratch in this context");
    return k_->execute(in[0].as<float>(), b_const_ ? nullptr : in[1].as<float>(),
                       out[0].as<float>(), nullptr, *s.dnnl);
  }

 private:
  std::unique_ptr<const OnednnMatmul> k_;
  bool b_const_;
};

std::unique_ptr<const PreparedKernel> prepare_matmul(const Node& node,
                                                     std::span<const TensorInfo* const> in,
                                                     const std::vector<TensorInfo>& out, int threads) {
  if (in.size() < 2 || in[0]->shape.size() < 2 || in[1]->shape.size() < 2) return nullptr;
  MatmulParams p;
  p.a_dims = in[0]->shape;
  p.b_dims = in[1]->shape;
  p.options.threads = threads;
  const float* bias = nullptr;
  if (node.op_type == "Gemm") {
    p.trans_a = node.attr_int("transA", 0) != 0;
    p.trans_b = node.attr_int("transB", 0) != 0;
    p.alpha = node.attr_float("alpha", 1.0f);
    p.beta = node.attr_float("beta", 1.0f);
    if (in.size() > 2 && in[2]) {
      if (!in[2]->value) return nullptr;
      p.bias_dims = in[2]->shape;
      bias = in[2]->value->data<float>();
    }
    if (p.alpha != 1.0f && !in[1]->value) return nullptr;
  }
  auto k = OnednnMatmul::create(p, in[1]->value ? in[1]->value->data<float>() : nullptr, bias);
  if (!k.ok()) return nullptr;
  // Only accept when oneDNN's output shape is exactly the inferred one.
  if ((*k)->dst_dims() != out[0].shape) return nullptr;
  return std::make_unique<MatmulKernel>(std::move(k).value(), in[1]->value != nullptr);
}

}  // namespace

bool onednn_disabled() {
  const char* v = std::getenv("MOSS_ENGINE_REFERENCE_ONLY");
  return v && v[0] == '1';
}

PrepareFn onednn_prepare_for(const std::string& op) {
  if (op == "Conv") return prepare_conv;
  if (op == "MatMul" || op == "Gemm") return prepare_matmul;
  return nullptr;
}

}  // namespace moss::engine
