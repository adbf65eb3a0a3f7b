// Element-wise unary operators: math functions and activations (float types, 16-bit floats
// computed in float), Abs/Neg/Sign/Relu/Shrink (every numeric type), Not, BitwiseNot, IsNaN, IsInf.
#include "engine/kernels/ref/fast_math.h"
#include "engine/kernels/ref/ref_kernels.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>

namespace moss::engine::ref {
namespace {

Status infer_unary(const Node& node, std::span<const TensorInfo* const> in,
                   std::vector<TensorInfo>& out, DType out_dtype) {
  out.resize(1);
  out[0].dtype = out_dtype;
  out[0].shape = in[0]->shape;
  (void)node;
  return Status::Ok();
}

Status infer_float_unary(const Node& node, std::span<const TensorInfo* const> in,
                         std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 1, 1));
  MOSS_RETURN_IF_ERROR(require_float(node, *in[0], "input"));
  return infer_unary(node, in, out, in[0]->dtype);
}

Status infer_numeric_unary(const Node& node, std::span<const TensorInfo* const> in,
                           std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 1, 1));
  MOSS_RETURN_IF_ERROR(require_numeric(node, *in[0], "input"));
  return infer_unary(node, in, out, in[0]->dtype);
}

Status infer_signed_unary(const Node& node, std::span<const TensorInfo* const> in,
                          std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 1, 1));
  if (!is_signed_dtype(in[0]->dtype)) {
    return unimplemented("{}: input has unsupported element type {}", node.label(),
                         dtype_name(in[0]->dtype));
  }
  return infer_unary(node, in, out, in[0]->dtype);
}

Status infer_Not(const Node& node, std::span<const TensorInfo* const> in,
                 std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 1, 1));
  MOSS_RETURN_IF_ERROR(require_dtype(node, *in[0], {DType::kBool}, "input"));
  return infer_unary(node, in, out, DType::kBool);
}

Status infer_BitwiseNot(const Node& node, std::span<const TensorInfo* const> in,
                        std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 1, 1));
  if (!is_integer_dtype(in[0]->dtype)) {
    return unimplemented("{}: input must be an integer type, got {}", node.label(),
                         dtype_name(in[0]->dtype));
  }
  return infer_unary(node, in, out, in[0]->dtype);
}

Status infer_float_predicate(const Node& node, std::span<const TensorInfo* const> in,
                             std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 1, 1));
  MOSS_RETURN_IF_ERROR(require_float(node, *in[0], "input"));
  return infer_unary(node, in, out, DType::kBool);
}

Status infer_Gelu(const Node& node, std::span<const TensorInfo* const> in,
                  std::vector<TensorInfo>& out) {
  const std::string a = node.attr_string("approximate", "none");
  if (a != "none" && a != "tanh") {
    return invalid_argument("{}: approximate must be 'none' or 'tanh', got '{}'", node.label(), a);
  }
  return infer_float_unary(node, in, out);
}

// y = f(x) over a float type; f receives and returns the compute type (float or double).
template <typename F>
Status map_float(const Node& node, std::span<const View> in, std::span<const View> out, F f) {
  return dispatch_float(node, in[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    const T* x = in[0].as<T>();
    T* y = out[0].as<T>();
    for (int64_t i = 0; i < out[0].numel; ++i) y[i] = T(f(static_cast<C>(x[i])));
    return Status::Ok();
  });
}

template <typename F>
Status map_numeric(const Node& node, std::span<const View> in, std::span<const View> out, F f) {
  return dispatch_numeric(node, in[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    const T* x = in[0].as<T>();
    T* y = out[0].as<T>();
    for (int64_t i = 0; i < out[0].numel; ++i) y[i] = T(f(static_cast<C>(x[i])));
    return Status::Ok();
  });
}

// float (and 16-bit floats, computed in float) takes the fast form; double stays exact.
template <typename C, typename Fast, typename Exact>
C fast_or_exact(C x, Fast fast, Exact exact) {
  if constexpr (std::is_same_v<C, float>) {
    return fast(x);
  } else {
    return exact(x);
  }
}

template <typename C>
C softplus(C x) {
  return x > C(0) ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
}

#define MOSS_FLOAT_UNARY(Name, expr)                                                       \
  Status run_##Name(const Node& node, std::span<const View> in, std::span<const View> out) { \
    return map_float(node, in, out, [](auto x) {                                          \
      using C = decltype(x);                                                              \
      (void)sizeof(C);                                                                    \
      return C(expr);                                                                     \
    });                                                                                   \
  }
MOSS_FLOAT_UNARY(Exp, std::exp(x))
MOSS_FLOAT_UNARY(Log, std::log(x))
MOSS_FLOAT_UNARY(Sqrt, std::sqrt(x))
MOSS_FLOAT_UNARY(Erf, std::erf(x))
MOSS_FLOAT_UNARY(Tanh, fast_or_exact(x, fast_tanh, [](auto v) { return std::tanh(v); }))
MOSS_FLOAT_UNARY(Sin, std::sin(x))
MOSS_FLOAT_UNARY(Cos, std::cos(x))
MOSS_FLOAT_UNARY(Tan, std::tan(x))
MOSS_FLOAT_UNARY(Asin, std::asin(x))
MOSS_FLOAT_UNARY(Acos, std::acos(x))
MOSS_FLOAT_UNARY(Atan, std::atan(x))
MOSS_FLOAT_UNARY(Sinh, std::sinh(x))
MOSS_FLOAT_UNARY(Cosh, std::cosh(x))
MOSS_FLOAT_UNARY(Asinh, std::asinh(x))
MOSS_FLOAT_UNARY(Acosh, std::acosh(x))
MOSS_FLOAT_UNARY(Atanh, std::atanh(x))
MOSS_FLOAT_UNARY(Reciprocal, C(1) / x)
MOSS_FLOAT_UNARY(Ceil, std::ceil(x))
MOSS_FLOAT_UNARY(Floor, std::floor(x))
MOSS_FLOAT_UNARY(Round, std::nearbyint(x))  // halves to even (default rounding mode)
MOSS_FLOAT_UNARY(Sigmoid, fast_or_exact(x, fast_sigmoid, [](auto v) {
                   return v >= 0 ? 1 / (1 + std::exp(-v)) : std::exp(v) / (1 + std::exp(v));
                 }))
MOSS_FLOAT_UNARY(Softplus, softplus(x))
MOSS_FLOAT_UNARY(Softsign, x / (C(1) + std::fabs(x)))
MOSS_FLOAT_UNARY(Mish, x * std::tanh(softplus(x)))
MOSS_FLOAT_UNARY(HardSwish, x * std::max(C(0), std::min(C(1), x / C(6) + C(0.5))))
#undef MOSS_FLOAT_UNARY

Status run_Relu(const Node& node, std::span<const View> in, std::span<const View> out) {
  return map_numeric(node, in, out, [](auto x) { return x > decltype(x)(0) ? x : decltype(x)(0); });
}

Status run_Abs(const Node& node, std::span<const View> in, std::span<const View> out) {
  return map_numeric(node, in, out, [](auto x) {
    using C = decltype(x);
    if constexpr (std::is_unsigned_v<C>) return x;
    else return x < C(0) ? C(-x) : x;
  });
}

Status run_Neg(const Node& node, std::span<const View> in, std::span<const View> out) {
  return map_numeric(node, in, out, [](auto x) { return decltype(x)(-x); });
}

Status run_Sign(const Node& node, std::span<const View> in, std::span<const View> out) {
  return map_numeric(node, in, out, [](auto x) {
    using C = decltype(x);
    return x > C(0) ? C(1) : (x < C(0) ? C(-1) : C(0));
  });
}

Status run_LeakyRelu(const Node& node, std::span<const View> in, std::span<const View> out) {
  const float a = node.attr_float("alpha", 0.01f);
  return map_float(node, in, out, [a](auto x) { return x >= 0 ? x : decltype(x)(a) * x; });
}

Status run_HardSigmoid(const Node& node, std::span<const View> in, std::span<const View> out) {
  const float a = node.attr_float("alpha", 0.2f);
  const float b = node.attr_float("beta", 0.5f);
  return map_float(node, in, out, [a, b](auto x) {
    using C = decltype(x);
    return std::max(C(0), std::min(C(1), C(a) * x + C(b)));
  });
}

Status run_Elu(const Node& node, std::span<const View> in, std::span<const View> out) {
  const float a = node.attr_float("alpha", 1.0f);
  return map_float(node, in, out, [a](auto x) {
    using C = decltype(x);
    return x < C(0) ? C(a) * (std::exp(x) - C(1)) : x;
  });
}

Status run_Selu(const Node& node, std::span<const View> in, std::span<const View> out) {
  const float a = node.attr_float("alpha", 1.67326319217681884765625f);
  const float g = node.attr_float("gamma", 1.05070102214813232421875f);
  return map_float(node, in, out, [a, g](auto x) {
    using C = decltype(x);
    return x > C(0) ? C(g) * x : C(g) * (C(a) * std::exp(x) - C(a));
  });
}

Status run_Celu(const Node& node, std::span<const View> in, std::span<const View> out) {
  const float a = node.attr_float("alpha", 1.0f);
  return map_float(node, in, out, [a](auto x) {
    using C = decltype(x);
    return std::max(C(0), x) + std::min(C(0), C(a) * (std::exp(x / C(a)) - C(1)));
  });
}

Status run_ThresholdedRelu(const Node& node, std::span<const View> in, std::span<const View> out) {
  const float a = node.attr_float("alpha", 1.0f);
  return map_float(node, in, out, [a](auto x) { return x > decltype(x)(a) ? x : decltype(x)(0); });
}

Status run_Gelu(const Node& node, std::span<const View> in, std::span<const View> out) {
  if (node.attr_string("approximate", "none") == "tanh") {
    return map_float(node, in, out, [](auto x) {
      using C = decltype(x);
      const C k = C(0.7978845608028654);  // sqrt(2 / pi)
      return C(0.5) * x * (C(1) + std::tanh(k * (x + C(0.044715) * x * x * x)));
    });
  }
  return map_float(node, in, out, [](auto x) {
    using C = decltype(x);
    return C(0.5) * x * (C(1) + std::erf(x * C(0.7071067811865476)));
  });
}

Status run_Shrink(const Node& node, std::span<const View> in, std::span<const View> out) {
  const double bias = node.attr_float("bias", 0.0f);
  const double lambd = node.attr_float("lambd", 0.5f);
  return map_numeric(node, in, out, [bias, lambd](auto x) {
    using C = decltype(x);
    const double v = static_cast<double>(x);
    return v < -lambd ? C(v + bias) : (v > lambd ? C(v - bias) : C(0));
  });
}

Status run_Not(const Node&, std::span<const View> in, std::span<const View> out) {
  const bool* x = in[0].as<bool>();
  bool* y = out[0].as<bool>();
  for (int64_t i = 0; i < out[0].numel; ++i) y[i] = !x[i];
  return Status::Ok();
}

Status run_BitwiseNot(const Node& node, std::span<const View> in, std::span<const View> out) {
  return dispatch_integer(node, in[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* x = in[0].as<T>();
    T* y = out[0].as<T>();
    for (int64_t i = 0; i < out[0].numel; ++i) y[i] = T(~x[i]);
    return Status::Ok();
  });
}

template <typename P>
Status map_predicate(const Node& node, std::span<const View> in, std::span<const View> out, P p) {
  return dispatch_float(node, in[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    const T* x = in[0].as<T>();
    bool* y = out[0].as<bool>();
    for (int64_t i = 0; i < out[0].numel; ++i) y[i] = p(static_cast<C>(x[i]));
    return Status::Ok();
  });
}

Status run_IsNaN(const Node& node, std::span<const View> in, std::span<const View> out) {
  return map_predicate(node, in, out, [](auto x) { return std::isnan(x); });
}

Status run_IsInf(const Node& node, std::span<const View> in, std::span<const View> out) {
  const bool neg = node.attr_int("detect_negative", 1) != 0;
  const bool pos = node.attr_int("detect_positive", 1) != 0;
  return map_predicate(node, in, out, [neg, pos](auto x) {
    return std::isinf(x) && ((x > 0 && pos) || (x < 0 && neg));
  });
}

}  // namespace

std::vector<OpKernel> unary_kernels() {
  return {
      {"Abs", infer_numeric_unary, run_Abs},
      {"Neg", infer_signed_unary, run_Neg},
      {"Sign", infer_numeric_unary, run_Sign},
      {"Relu", infer_signed_unary, run_Relu},
      {"Shrink", infer_numeric_unary, run_Shrink},
      {"Exp", infer_float_unary, run_Exp},
      {"Log", infer_float_unary, run_Log},
      {"Sqrt", infer_float_unary, run_Sqrt},
      {"Erf", infer_float_unary, run_Erf},
      {"Tanh", infer_float_unary, run_Tanh},
      {"Sin", infer_float_unary, run_Sin},
      {"Cos", infer_float_unary, run_Cos},
      {"Tan", infer_float_unary, run_Tan},
      {"Asin", infer_float_unary, run_Asin},
      {"Acos", infer_float_unary, run_Acos},
      {"Atan", infer_float_unary, run_Atan},
      {"Sinh", infer_float_unary, run_Sinh},
      {"Cosh", infer_float_unary, run_Cosh},
      {"Asinh", infer_float_unary, run_Asinh},
      {"Acosh", infer_float_unary, run_Acosh},
      {"Atanh", infer_float_unary, run_Atanh},
      {"Reciprocal", infer_float_unary, run_Reciprocal},
      {"Ceil", infer_float_unary, run_Ceil},
      {"Floor", infer_float_unary, run_Floor},
      {"Round", infer_float_unary, run_Round},
      {"Sigmoid", infer_float_unary, run_Sigmoid},
      {"Softplus", infer_float_unary, run_Softplus},
      {"Softsign", infer_float_unary, run_Softsign},
      {"Mish", infer_float_unary, run_Mish},
      {"HardSwish", infer_float_unary, run_HardSwish},
      {"HardSigmoid", infer_float_unary, run_HardSigmoid},
      {"LeakyRelu", infer_float_unary, run_LeakyRelu},
      {"Elu", infer_float_unary, run_Elu},
      {"Selu", infer_float_unary, run_Selu},
      {"Celu", infer_float_unary, run_Celu},
      {"ThresholdedRelu", infer_float_unary, run_ThresholdedRelu},
      {"Gelu", infer_Gelu, run_Gelu},
      {"Not", infer_Not, run_Not},
      {"BitwiseNot", infer_BitwiseNot, run_BitwiseNot},
      {"IsNaN", infer_float_predicate, run_IsNaN},
      {"IsInf", infer_float_predicate, run_IsInf},
  };
}

}  // namespace moss::engine::ref
