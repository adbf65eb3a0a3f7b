// Dropout: the identity in inference (is_test before opset 7, training_mode false, or ratio 0);
// in training mode each element is kept with probability 1 - ratio and scaled by 1/(1 - ratio).
//
// The keep mask is drawn as the ONNX reference (and so the ONNX test data) draws it: numpy's
// legacy generator, `np.random.seed(seed); np.random.uniform(0, 1, shape) >= ratio`, i.e. MT19937
// seeded with the 32-bit seed and one 53-bit double per element from two 32-bit outputs. ONNX
// Runtime draws its mask from a Philox generator instead, so no engine can match both; the spec's
// reference is the one a model's author can reproduce. A node without a seed draws a fresh one
// per run (OpKernel::random keeps it from being folded).
#include "engine/kernels/ref/ref_kernels.h"

#include <cmath>
#include <cstring>
#include <optional>
#include <random>

namespace moss::engine::ref {
namespace {

// numpy's random_sample(): (a >> 5) * 2^26 + (b >> 6), over 2^53.
double numpy_random_sample(std::mt19937& g) {
  const uint32_t a = static_cast<uint32_t>(g()) >> 5, b = static_cast<uint32_t>(g()) >> 6;
  return (a * 67108864.0 + b) / 9007199254740992.0;
}

// The ratio when the node drops at random, 0 when it is the identity. Inputs 1 and 2 are
// plan-bound values (OpKernel::value_inputs), so infer() and run() see their contents.
Result<double> training_ratio(const Node& node, const TensorInfo* ratio, const TensorInfo* mode) {
  if (node.opset < 7) {
    if (node.attr_int("is_test", 0) != 0) return 0.0;
    return static_cast<double>(node.attr_float("ratio", 0.5f));
  }
  if (node.opset < 12) return 0.0;  // opsets 7-10: always the identity at inference
  if (!mode) return 0.0;
  if (!mode->value || mode->value->dtype() != DType::kBool || mode->value->numel() != 1) {
    return invalid_argument("{}: training_mode must be one bool known when the plan is built",
                            node.label());
  }
  if (!mode->value->data<bool>()[0]) return 0.0;
  double r = 0.5;
  if (ratio) {
    if (!ratio->value || ratio->value->numel() != 1) {
      return invalid_argument("{}: ratio must be one value known when the plan is built",
                              node.label());
    }
    MOSS_RETURN_IF_ERROR(dispatch_float(node, ratio->value->dtype(), [&](auto tag) {
      using T = decltype(tag);
      r = static_cast<double>(static_cast<float>(ratio->value->data<T>()[0]));
      return Status::Ok();
    }));
  }
  // ratio 1 would scale by infinity; the spec's range is [0, 1).
  if (!(r >= 0.0 && r < 1.0)) return invalid_argument("{}: ratio {} is not in [0, 1)", node.label(), r);
  return r;
}

Status infer_Dropout(const Node& node, std::span<const TensorInfo* const> in,
                     std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 1, node.opset < 12 ? 1 : 3));
  MOSS_RETURN_IF_ERROR(require_float(node, *in[0], "data"));
  if (in.size() > 1 && in[1]) MOSS_RETURN_IF_ERROR(require_float(node, *in[1], "ratio"));
  MOSS_RETURN_IF_ERROR(training_ratio(node, in.size() > 1 ? in[1] : nullptr,
                                      in.size() > 2 ? in[2] : nullptr).status());
  out.resize(2);
  out[0].dtype = in[0]->dtype;
  out[0].shape = in[0]->shape;
  out[1].dtype = DType::kBool;
  out[1].shape = in[0]->shape;
  return Status::Ok();
}

Status run_Dropout(const Node& node, std::span<const View> in, std::span<const View> out) {
  std::optional<TensorInfo> ratio_info, mode_info;
  if (in.size() > 1 && in[1].present()) { MOSS_ASSIGN_OR_RETURN(ratio_info, info_with_value(in[1])); }
  if (in.size() > 2 && in[2].present()) { MOSS_ASSIGN_OR_RETURN(mode_info, info_with_value(in[2])); }
  MOSS_ASSIGN_OR_RETURN(double ratio, training_ratio(node, ratio_info ? &*ratio_info : nullptr,
                                                     mode_info ? &*mode_info : nullptr));
  bool* mask = out.size() > 1 ? out[1].as<bool>() : nullptr;
  if (ratio == 0.0) {
    const size_t bytes = static_cast<size_t>(in[0].numel) * dtype_size(in[0].dtype);
    if (bytes && out[0].data != in[0].data) std::memcpy(out[0].data, in[0].data, bytes);
    if (mask) std::memset(mask, 1, static_cast<size_t>(out[1].numel));
    return Status::Ok();
  }
  uint32_t seed = 0;
  if (node.attr("seed")) {
    seed = static_cast<uint32_t>(node.attr_int("seed", 0));
  } else {
    seed = std::random_device{}();
  }
  std::mt19937 g(seed);
  const double scale = 1.0 / (1.0 - ratio);
  return dispatch_float(node, in[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    const T* x = in[0].as<T>();
    T* y = out[0].as<T>();
    for (int64_t i = 0; i < in[0].numel; ++i) {
      const bool keep = numpy_random_sample(g) >= ratio;
      y[i] = keep ? T(static_cast<C>(x[i]) * static_cast<C>(scale)) : T(C(0));
      if (mask) mask[i] = keep;
    }
    return Status::Ok();
  });
}

}  // namespace

std::vector<OpKernel> dropout_kernels() {
  OpKernel k{"Dropout", infer_Dropout, run_Dropout, false, 0b110};
  k.random = true;  // unseeded training-mode nodes draw per run (seeded ones still fold)
  return {k};
}

}  // namespace moss::engine::ref
