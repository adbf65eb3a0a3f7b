// Cast and CastLike between every element type. Float -> integer follows C++ conversion within
// range and saturates outside it (C++ leaves it undefined; ONNX leaves it implementation-defined);
// NaN -> integer is 0. 16-bit floats round to nearest even. `saturate` (opset 19) only concerns
// the float8 types, which are not supported.
#include "engine/kernels/ref/ref_kernels.h"

#include <cmath>
#include <limits>

namespace moss::engine::ref {
namespace {

Status infer_cast_to(const Node& node, const TensorInfo& x, DType to,
                     std::vector<TensorInfo>& out) {
  (void)node;
  out.resize(1);
  out[0].dtype = to;
  out[0].shape = x.shape;
  return Status::Ok();
}

Status infer_Cast(const Node& node, std::span<const TensorInfo* const> in,
                  std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 1, 1));
  if (!node.attr("to")) return invalid_argument("{}: attribute 'to' is required", node.label());
  MOSS_ASSIGN_OR_RETURN(DType to, dtype_from_onnx_number(node, node.attr_int("to", 0)));
  return infer_cast_to(node, *in[0], to, out);
}

Status infer_CastLike(const Node& node, std::span<const TensorInfo* const> in,
                      std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 2, 2));
  return infer_cast_to(node, *in[0], in[1]->dtype, out);
}

template <typename To, typename From>
To cast_value(From v) {
  using CF = compute_t<From>;
  const CF c = static_cast<CF>(v);
  if constexpr (std::is_same_v<To, bool>) {
    return c != CF(0);
  } else if constexpr (std::is_integral_v<To> && !std::is_integral_v<CF>) {
    if (std::isnan(c)) return To(0);
    if (c >= static_cast<CF>(std::numeric_limits<To>::max())) return std::numeric_limits<To>::max();
    if (c <= static_cast<CF>(std::numeric_limits<To>::lowest())) return std::numeric_limits<To>::lowest();
    return static_cast<To>(c);
  } else if constexpr (std::is_same_v<To, Float16> || std::is_same_v<To, BFloat16>) {
    return To(static_cast<float>(c));
  } else {
    return static_cast<To>(c);
  }
}

Status run_Cast(const Node& node, std::span<const View> in, std::span<const View> out) {
  return dispatch_all(node, in[0].dtype, [&](auto from_tag) {
    using From = decltype(from_tag);
    return dispatch_all(node, out[0].dtype, [&](auto to_tag) {
      using To = decltype(to_tag);
      const From* x = in[0].as<From>();
      To* y = out[0].as<To>();
      for (int64_t i = 0; i < out[0].numel; ++i) y[i] = cast_value<To>(x[i]);
      return Status::Ok();
    });
  });
}

}  // namespace

std::vector<OpKernel> cast_kernels() {
  return {
      {"Cast", infer_Cast, run_Cast},
      {"CastLike", infer_CastLike, run_Cast},
  };
}

}  // namespace moss::engine::ref
