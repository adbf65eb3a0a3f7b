// QuantizeLinear (float32 -> 8-bit) and DequantizeLinear (8-bit -> float32) with a constant
// per-tensor scale and zero point, and DynamicQuantizeLinear: the edges of an int8 graph (the model input, the logits) and
// the QDQ chains the rewriter leaves in float. Vectorized loops (int8_elementwise.h) instead of
// the reference kernels' per-element type dispatch; the same results (half to even, x / scale).
#include <algorithm>
#include <cmath>

#include "engine/quant/int8_elementwise.h"
#include "engine/quant/quant_kernels.h"

namespace moss::engine {
namespace {

class QuantizeKernel final : public PreparedKernel {
 public:
  QuantizeKernel(bool quantize, DType q, float scale, int32_t zp)
      : quantize_(quantize), q_(q), scale_(scale), zp_(zp) {}
  size_t scratch_bytes() const override { return 0; }
  size_t weights_bytes() const override { return 0; }
  uint32_t packed_inputs() const override { return 0b110u; }
  Status run(std::span<const View> in, std::span<const View> out, RunScratch&) const override {
    const int64_t n = out[0].numel;
    if (quantize_) {
      if (q_ == DType::kUInt8) quantize_f32(in[0].as<float>(), out[0].as<uint8_t>(), n, scale_, zp_);
      else quantize_f32(in[0].as<float>(), out[0].as<int8_t>(), n, scale_, zp_);
    } else {
      if (q_ == DType::kUInt8) dequantize_f32(in[0].as<uint8_t>(), out[0].as<float>(), n, scale_, zp_);
      else dequantize_f32(in[0].as<int8_t>(), out[0].as<float>(), n, scale_, zp_);
    }
    return Status::Ok();
  }

 private:
  bool quantize_;
  DType q_;
  float scale_;
  int32_t zp_;
};

// DynamicQuantizeLinear: the range pass and the quantization pass vectorized; the scale and zero
// point computed exactly as the reference kernel does.
class DynamicQuantizeKernel final : public PreparedKernel {
 public:
  size_t scratch_bytes() const override { return 0; }
  size_t weights_bytes() const override { return 0; }
  std::string_view kind() const override { return kInt8Kind; }
  Status run(std::span<const View> in, std::span<const View> out, RunScratch&) const override {
    const DynamicQuantization q =
        dynamic_quantize_u8(in[0].as<float>(), out[0].as<uint8_t>(), in[0].numel);
    if (out.size() > 1 && out[1].data) out[1].as<float>()[0] = q.scale;
    if (out.size() > 2 && out[2].data) out[2].as<uint8_t>()[0] = q.zero_point;
    return Status::Ok();
  }
};

}  // namespace

std::unique_ptr<const PreparedKernel> prepare_dynamic_quantize_linear(
    const Node&, std::span<const TensorInfo* const> in, const std::vector<TensorInfo>&, int) {
  if (in.size() != 1 || !in[0] || in[0]->dtype != DType::kFloat32) return nullptr;
  return std::make_unique<DynamicQuantizeKernel>();
}

std::unique_ptr<const PreparedKernel> prepare_quantize_linear(const Node& node,
                                                              std::span<const TensorInfo* const> in,
                                                              const std::vector<TensorInfo>& out,
                                                              int) {
  const bool quantize = node.op_type == "QuantizeLinear";
  if (in.size() < 2 || !in[0] || !in[1] || !in[1]->value || out.empty()) return nullptr;
  if (node.attr_int("block_size", 0) != 0) return nullptr;
  const TensorInfo* zp = in.size() > 2 ? in[2] : nullptr;
  if (zp && !zp->value) return nullptr;
  const Tensor& s = *in[1]->value;
  if (s.dtype() != DType::kFloat32 || s.numel() != 1 || s.rank() > 1) return nullptr;
  const DType q = quantize ? out[0].dtype : in[0]->dtype;
  const DType f = quantize ? in[0]->dtype : out[0].dtype;
  if ((q != DType::kUInt8 && q != DType::kInt8) || f != DType::kFloat32) return nullptr;
  if (zp && (zp->value->dtype() != q || zp->value->numel() != 1)) return nullptr;
  const float scale = s.data<float>()[0];
  if (!(scale > 0) && quantize) return nullptr;  // the reference kernel reports what it does
  int32_t z = 0;
  if (zp) z = q == DType::kUInt8 ? zp->value->data<uint8_t>()[0] : zp->value->data<int8_t>()[0];
  return std::make_unique<QuantizeKernel>(quantize, q, scale, z);
}

}  // namespace moss::engine
