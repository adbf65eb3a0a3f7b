// Element-wise operators: unary math, binary arithmetic with broadcasting, Where, Clip, Cast.
#include "engine/kernels/ref/broadcast.h"
#include "engine/kernels/ref/ref_kernels.h"

#include <cmath>
#include <cstring>
#include <limits>

namespace moss::engine::ref {
namespace {

// ---- unary ----------------------------------------------------------------------------------

Status infer_same(const Node& node, std::span<const TensorInfo* const> in,
                  std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 1, 1));
  out.resize(1);
  out[0].dtype = in[0]->dtype;
  out[0].shape = in[0]->shape;
  return Status::Ok();
}

Status infer_float_unary(const Node& node, std::span<const TensorInfo* const> in,
                         std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 1, 1));
  MOSS_RETURN_IF_ERROR(require_dtype(node, *in[0], {DType::kFloat32}, "input"));
  return infer_same(node, in, out);
}

Status infer_numeric_unary(const Node& node, std::span<const TensorInfo* const> in,
                           std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 1, 1));
  MOSS_RETURN_IF_ERROR(
      require_dtype(node, *in[0], {DType::kFloat32, DType::kInt64, DType::kInt32}, "input"));
  return infer_same(node, in, out);
}

template <typename F>
Status map_float(std::span<const View> in, std::span<const View> out, F f) {
  const float* x = in[0].as<float>();
  float* y = out[0].as<float>();
  for (int64_t i = 0; i < out[0].numel; ++i) y[i] = f(x[i]);
  return Status::Ok();
}

#define MOSS_FLOAT_UNARY(Name, expr)                                                   \
  Status run_##Name(const Node&, std::span<const View> in, std::span<const View> out) { \
    return map_float(in, out, [](float x) { return expr; });                         \
  }
MOSS_FLOAT_UNARY(Exp, std::exp(x))
MOSS_FLOAT_UNARY(Log, std::log(x))
MOSS_FLOAT_UNARY(Sqrt, std::sqrt(x))
MOSS_FLOAT_UNARY(Erf, std::erf(x))
MOSS_FLOAT_UNARY(Tanh, std::tanh(x))
MOSS_FLOAT_UNARY(Relu, x > 0.0f ? x : 0.0f)
MOSS_FLOAT_UNARY(Sigmoid, x >= 0 ? 1.0f / (1.0f + std::exp(-x)) : std::exp(x) / (1.0f + std::exp(x)))
MOSS_FLOAT_UNARY(HardSwish, x * std::max(0.0f, std::min(1.0f, x / 6.0f + 0.5f)))
#undef MOSS_FLOAT_UNARY

Status run_LeakyRelu(const Node& node, std::span<const View> in, std::span<const View> out) {
  const float a = node.attr_float("alpha", 0.01f);
  return map_float(in, out, [a](float x) { return x >= 0 ? x : a * x; });
}

Status run_HardSigmoid(const Node& node, std::span<const View> in, std::span<const View> out) {
  const float a = node.attr_float("alpha", 0.2f);
  const float b = node.attr_float("beta", 0.5f);
  return map_float(in, out, [a, b](float x) { return std::max(0.0f, std::min(1.0f, a * x + b)); });
}

template <typename F>
Status map_numeric(const Node& node, std::span<const View> in, std::span<const View> out, F f) {
  return dispatch_numeric(node, in[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* x = in[0].as<T>();
    T* y = out[0].as<T>();
    for (int64_t i = 0; i < out[0].numel; ++i) y[i] = f(x[i]);
    return Status::Ok();
  });
}

Status run_Abs(const Node& node, std::span<const View> in, std::span<const View> out) {
  return map_numeric(node, in, out, [](auto x) { return x < 0 ? decltype(x)(-x) : x; });
}
Status run_Neg(const Node& node, std::span<const View> in, std::span<const View> out) {
  return map_numeric(node, in, out, [](auto x) { return decltype(x)(-x); });
}

Status run_Identity(const Node&, std::span<const View> in, std::span<const View> out) {
  if (out[0].numel > 0) std::memcpy(out[0].data, in[0].data, out[0].numel * dtype_size(in[0].dtype));
  return Status::Ok();
}

// ---- binary ---------------------------------------------------------------------------------

Status check_legacy_broadcast(const Node& node) {
  if (node.attr("broadcast") || node.attr("axis")) {
    return unimplemented("{}: legacy 'broadcast'/'axis' attributes (opset < 7) are not supported",
                         node.label());
  }
  return Status::Ok();
}

Status infer_arith(const Node& node, std::span<const TensorInfo* const> in,
                   std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 2, 2));
  MOSS_RETURN_IF_ERROR(check_legacy_broadcast(node));
  MOSS_RETURN_IF_ERROR(
      require_dtype(node, *in[0], {DType::kFloat32, DType::kInt64, DType::kInt32}, "input A"));
  if (in[1]->dtype != in[0]->dtype) {
    return invalid_argument("{}: inputs have different types {} and {}", node.label(),
                            dtype_name(in[0]->dtype), dtype_name(in[1]->dtype));
  }
  out.resize(1);
  out[0].dtype = in[0]->dtype;
  MOSS_ASSIGN_OR_RETURN(out[0].shape, broadcast_shapes(node, in[0]->shape, in[1]->shape));
  return Status::Ok();
}

template <typename Op>
Status run_arith(const Node& node, std::span<const View> in, std::span<const View> out, Op op) {
  return dispatch_numeric(node, in[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    binary_broadcast<T, T, T>(in[0], in[1], out[0], [op](T a, T b) { return op(a, b); });
    return Status::Ok();
  });
}

Status run_Add(const Node& n, std::span<const View> in, std::span<const View> out) {
  return run_arith(n, in, out, [](auto a, auto b) { return decltype(a)(a + b); });
}
Status run_Sub(const Node& n, std::span<const View> in, std::span<const View> out) {
  return run_arith(n, in, out, [](auto a, auto b) { return decltype(a)(a - b); });
}
Status run_Mul(const Node& n, std::span<const View> in, std::span<const View> out) {
  return run_arith(n, in, out, [](auto a, auto b) { return decltype(a)(a * b); });
}
Status run_Div(const Node& n, std::span<const View> in, std::span<const View> out) {
  return run_arith(n, in, out, [](auto a, auto b) {
    using T = decltype(a);
    if constexpr (std::is_integral_v<T>) {
      // Integer division by zero is undefined in C++; define it as 0 rather than trap.
      if (b == 0) return T(0);
      if (b == -1) return T(T(0) - a == a ? a : T(0) - a);  // INT_MIN / -1 wraps, no trap
    }
    return T(a / b);
  });
}

Status infer_Pow(const Node& node, std::span<const TensorInfo* const> in,
                 std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 2, 2));
  MOSS_RETURN_IF_ERROR(check_legacy_broadcast(node));
  MOSS_RETURN_IF_ERROR(
      require_dtype(node, *in[0], {DType::kFloat32, DType::kInt64, DType::kInt32}, "base"));
  MOSS_RETURN_IF_ERROR(
      require_dtype(node, *in[1], {DType::kFloat32, DType::kInt64, DType::kInt32}, "exponent"));
  out.resize(1);
  out[0].dtype = in[0]->dtype;
  MOSS_ASSIGN_OR_RETURN(out[0].shape, broadcast_shapes(node, in[0]->shape, in[1]->shape));
  return Status::Ok();
}

Status run_Pow(const Node& node, std::span<const View> in, std::span<const View> out) {
  return dispatch_numeric(node, in[0].dtype, [&](auto base_tag) {
    using TB = decltype(base_tag);
    return dispatch_numeric(node, in[1].dtype, [&](auto exp_tag) {
      using TE = decltype(exp_tag);
      binary_broadcast<TB, TE, TB>(in[0], in[1], out[0], [](TB a, TE b) {
        if constexpr (std::is_same_v<TB, float>) {
          if constexpr (std::is_same_v<TE, float>) {
            return b == 2.0f ? a * a : std::pow(a, b);
          } else {
            return static_cast<float>(std::pow(static_cast<double>(a), static_cast<double>(b)));
          }
        } else {
          return static_cast<TB>(std::pow(static_cast<double>(a), static_cast<double>(b)));
        }
      });
      return Status::Ok();
    });
  });
}

Status infer_Equal(const Node& node, std::span<const TensorInfo* const> in,
                   std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 2, 2));
  MOSS_RETURN_IF_ERROR(check_legacy_broadcast(node));
  MOSS_RETURN_IF_ERROR(require_dtype(
      node, *in[0], {DType::kFloat32, DType::kInt64, DType::kInt32, DType::kBool}, "input A"));
  if (in[1]->dtype != in[0]->dtype) {
    return invalid_argument("{}: inputs have different types", node.label());
  }
  out.resize(1);
  out[0].dtype = DType::kBool;
  MOSS_ASSIGN_OR_RETURN(out[0].shape, broadcast_shapes(node, in[0]->shape, in[1]->shape));
  return Status::Ok();
}

Status run_Equal(const Node& node, std::span<const View> in, std::span<const View> out) {
  return dispatch_all(node, in[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    binary_broadcast<T, T, bool>(in[0], in[1], out[0], [](T a, T b) { return a == b; });
    return Status::Ok();
  });
}

// ---- Where ----------------------------------------------------------------------------------

Status infer_Where(const Node& node, std::span<const TensorInfo* const> in,
                   std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 3, 3));
  MOSS_RETURN_IF_ERROR(require_dtype(node, *in[0], {DType::kBool}, "condition"));
  MOSS_RETURN_IF_ERROR(require_dtype(
      node, *in[1], {DType::kFloat32, DType::kInt64, DType::kInt32, DType::kBool}, "X"));
  if (in[2]->dtype != in[1]->dtype) {
    return invalid_argument("{}: X and Y have different types", node.label());
  }
  out.resize(1);
  out[0].dtype = in[1]->dtype;
  MOSS_ASSIGN_OR_RETURN(auto s, broadcast_shapes(node, in[0]->shape, in[1]->shape));
  MOSS_ASSIGN_OR_RETURN(out[0].shape, broadcast_shapes(node, s, in[2]->shape));
  return Status::Ok();
}

Status run_Where(const Node& node, std::span<const View> in, std::span<const View> out) {
  return dispatch_all(node, in[1].dtype, [&](auto tag) {
    using T = decltype(tag);
    auto sc = broadcast_strides(in[0].shape, out[0].shape);
    auto sx = broadcast_strides(in[1].shape, out[0].shape);
    auto sy = broadcast_strides(in[2].shape, out[0].shape);
    const bool* c = in[0].as<bool>();
    const T* x = in[1].as<T>();
    const T* y = in[2].as<T>();
    T* z = out[0].as<T>();
    for_each_row<3>(out[0].shape, {&sc, &sx, &sy},
                    [&](int64_t o, std::array<int64_t, 3> off, int64_t n,
                        std::array<int64_t, 3> st) {
                      for (int64_t i = 0; i < n; ++i) {
                        z[o + i] = c[off[0] + i * st[0]] ? x[off[1] + i * st[1]]
                                                         : y[off[2] + i * st[2]];
                      }
                    });
    return Status::Ok();
  });
}

// ---- Clip -----------------------------------------------------------------------------------

Status infer_Clip(const Node& node, std::span<const TensorInfo* const> in,
                  std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 1, node.opset < 11 ? 1 : 3));
  MOSS_RETURN_IF_ERROR(
      require_dtype(node, *in[0], {DType::kFloat32, DType::kInt64, DType::kInt32}, "input"));
  for (size_t i = 1; i < in.size(); ++i) {
    if (in[i] && (in[i]->dtype != in[0]->dtype || in[i]->numel() != 1)) {
      return invalid_argument("{}: min/max must be scalars of the input type", node.label());
    }
  }
  out.resize(1);
  out[0].dtype = in[0]->dtype;
  out[0].shape = in[0]->shape;
  return Status::Ok();
}

Status run_Clip(const Node& node, std::span<const View> in, std::span<const View> out) {
  return dispatch_numeric(node, in[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    T lo = std::numeric_limits<T>::lowest();
    T hi = std::numeric_limits<T>::max();
    if (node.opset < 11) {
      if constexpr (std::is_same_v<T, float>) {
        lo = node.attr_float("min", lo);
        hi = node.attr_float("max", hi);
      }
    } else {
      if (in.size() > 1 && in[1].data) lo = in[1].as<T>()[0];
      if (in.size() > 2 && in[2].data) hi = in[2].as<T>()[0];
    }
    const T* x = in[0].as<T>();
    T* y = out[0].as<T>();
    for (int64_t i = 0; i < out[0].numel; ++i) y[i] = std::min(hi, std::max(lo, x[i]));
    return Status::Ok();
  });
}

// ---- Cast -----------------------------------------------------------------------------------

Result<DType> onnx_dtype(const Node& node, int64_t t) {
  switch (t) {
    case 1: return DType::kFloat32;
    case 6: return DType::kInt32;
    case 7: return DType::kInt64;
    case 9: return DType::kBool;
    default: return unimplemented("{}: cast to ONNX type {} is not supported", node.label(), t);
  }
}

Status infer_Cast(const Node& node, std::span<const TensorInfo* const> in,
                  std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 1, 1));
  MOSS_RETURN_IF_ERROR(require_dtype(
      node, *in[0], {DType::kFloat32, DType::kInt64, DType::kInt32, DType::kBool}, "input"));
  if (!node.attr("to")) return invalid_argument("{}: attribute 'to' is required", node.label());
  out.resize(1);
  MOSS_ASSIGN_OR_RETURN(out[0].dtype, onnx_dtype(node, node.attr_int("to", 0)));
  out[0].shape = in[0]->shape;
  return Status::Ok();
}

template <typename To, typename From>
To cast_value(From v) {
  if constexpr (std::is_same_v<To, bool>) {
    return v != From(0);
  } else if constexpr (std::is_integral_v<To> && std::is_floating_point_v<From>) {
    // Out-of-range and NaN float->int casts are undefined in C++; saturate instead.
    if (std::isnan(v)) return To(0);
    if (v >= static_cast<From>(std::numeric_limits<To>::max())) return std::numeric_limits<To>::max();
    if (v <= static_cast<From>(std::numeric_limits<To>::lowest())) return std::numeric_limits<To>::lowest();
    return static_cast<To>(v);
  } else {
    return static_cast<To>(v);
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

std::vector<OpKernel> elementwise_kernels() {
  return {
      {"Abs", infer_numeric_unary, run_Abs},
      {"Neg", infer_numeric_unary, run_Neg},
      {"Exp", infer_float_unary, run_Exp},
      {"Log", infer_float_unary, run_Log},
      {"Sqrt", infer_float_unary, run_Sqrt},
      {"Erf", infer_float_unary, run_Erf},
      {"Tanh", infer_float_unary, run_Tanh},
      {"Relu", infer_float_unary, run_Relu},
      {"Sigmoid", infer_float_unary, run_Sigmoid},
      {"HardSwish", infer_float_unary, run_HardSwish},
      {"LeakyRelu", infer_float_unary, run_LeakyRelu},
      {"HardSigmoid", infer_float_unary, run_HardSigmoid},
      {"Identity", infer_same, run_Identity},
      {"Add", infer_arith, run_Add},
      {"Sub", infer_arith, run_Sub},
      {"Mul", infer_arith, run_Mul},
      {"Div", infer_arith, run_Div},
      {"Pow", infer_Pow, run_Pow},
      {"Equal", infer_Equal, run_Equal},
      {"Where", infer_Where, run_Where},
      {"Clip", infer_Clip, run_Clip},
      {"Cast", infer_Cast, run_Cast},
  };
}

}  // namespace moss::engine::ref
