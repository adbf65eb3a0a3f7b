// Element-wise binary and variadic operators with numpy broadcasting: arithmetic (every numeric
// type; 16-bit floats computed in float), Pow with mixed types, Mod, comparisons, logical and
// bitwise operators, BitShift, Max/Min/Sum/Mean, PRelu.
#include "engine/kernels/ref/broadcast.h"
#include "engine/kernels/ref/ref_kernels.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace moss::engine::ref {
namespace {

// Before opset 7 broadcasting was opt-in: with broadcast=1, B's dims align with A's from `axis`
// (default: the trailing dims). Returns B's shape in numpy terms (unchanged otherwise).
Result<std::vector<int64_t>> b_shape(const Node& node, std::span<const int64_t> a,
                                     std::span<const int64_t> b) {
  std::vector<int64_t> s(b.begin(), b.end());
  if (node.opset >= 7) {
    if (node.attr("broadcast") || node.attr("axis")) {
      return invalid_argument("{}: 'broadcast'/'axis' attributes are not valid from opset 7", node.label());
    }
    return s;
  }
  if (node.attr_int("broadcast", 0) == 0) return s;
  const int64_t ra = static_cast<int64_t>(a.size()), rb = static_cast<int64_t>(b.size());
  const int64_t axis = node.attr("axis") ? node.attr_int("axis", 0) : ra - rb;
  if (axis < 0 || axis + rb > ra) {
    return invalid_argument("{}: axis {} does not place B {} within A {}", node.label(), axis,
                            shape_to_string(b), shape_to_string(a));
  }
  s.insert(s.begin(), static_cast<size_t>(axis), 1);
  s.resize(static_cast<size_t>(ra), 1);
  return s;
}

// in[1] viewed with b_shape() (storage holds the shape the view points to).
View b_view(const Node& node, std::span<const View> in, std::vector<int64_t>& storage) {
  // Usually B is read as it is: no copy of its shape (a loop body's Add allocates nothing).
  if (node.opset >= 7 || node.attr_int("broadcast", 0) == 0) return in[1];
  auto s = b_shape(node, in[0].shape, in[1].shape);
  storage = s.ok() ? *s : std::vector<int64_t>(in[1].shape.begin(), in[1].shape.end());
  return View{in[1].dtype, storage, in[1].data, in[1].numel};
}

Status infer_binary(const Node& node, std::span<const TensorInfo* const> in,
                    std::vector<TensorInfo>& out, DType out_dtype) {
  MOSS_RETURN_IF_ERROR(require_same_dtype(node, *in[0], *in[1], "input B"));
  MOSS_ASSIGN_OR_RETURN(auto b, b_shape(node, in[0]->shape, in[1]->shape));
  out.resize(1);
  out[0].dtype = out_dtype;
  MOSS_ASSIGN_OR_RETURN(out[0].shape, broadcast_shapes(node, in[0]->shape, b));
  return Status::Ok();
}

Status infer_arith(const Node& node, std::span<const TensorInfo* const> in,
                   std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 2, 2));
  MOSS_RETURN_IF_ERROR(require_numeric(node, *in[0], "input A"));
  return infer_binary(node, in, out, in[0]->dtype);
}

Status infer_compare(const Node& node, std::span<const TensorInfo* const> in,
                     std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 2, 2));
  if (node.op_type != "Equal") MOSS_RETURN_IF_ERROR(require_numeric(node, *in[0], "input A"));
  return infer_binary(node, in, out, DType::kBool);
}

Status infer_logical(const Node& node, std::span<const TensorInfo* const> in,
                     std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 2, 2));
  MOSS_RETURN_IF_ERROR(require_dtype(node, *in[0], {DType::kBool}, "input A"));
  return infer_binary(node, in, out, DType::kBool);
}

Status infer_bitwise(const Node& node, std::span<const TensorInfo* const> in,
                     std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 2, 2));
  if (!is_integer_dtype(in[0]->dtype)) {
    return unimplemented("{}: input A must be an integer type, got {}", node.label(),
                         dtype_name(in[0]->dtype));
  }
  if (node.op_type == "BitShift") {
    if (in[0]->dtype != DType::kUInt8 && in[0]->dtype != DType::kUInt16 &&
        in[0]->dtype != DType::kUInt32 && in[0]->dtype != DType::kUInt64) {
      return unimplemented("{}: input must be an unsigned integer type, got {}", node.label(),
                           dtype_name(in[0]->dtype));
    }
    const std::string d = node.attr_string("direction", "");
    if (d != "LEFT" && d != "RIGHT") {
      return invalid_argument("{}: direction must be 'LEFT' or 'RIGHT', got '{}'", node.label(), d);
    }
  }
  return infer_binary(node, in, out, in[0]->dtype);
}

Status infer_Mod(const Node& node, std::span<const TensorInfo* const> in,
                 std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 2, 2));
  MOSS_RETURN_IF_ERROR(require_numeric(node, *in[0], "input A"));
  const int64_t fmod = node.attr_int("fmod", 0);
  if (fmod != 0 && fmod != 1) return invalid_argument("{}: fmod must be 0 or 1", node.label());
  if (is_float_dtype(in[0]->dtype) && fmod != 1) {
    return invalid_argument("{}: fmod must be 1 for floating-point inputs", node.label());
  }
  return infer_binary(node, in, out, in[0]->dtype);
}

// out = op(a, b) over the compute type of a numeric T.
template <typename Op>
Status run_numeric(const Node& node, std::span<const View> in, std::span<const View> out, Op op) {
  std::vector<int64_t> bs;
  const View rhs = b_view(node, in, bs);
  return dispatch_numeric(node, in[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    binary_broadcast<T, T, T>(in[0], rhs, out[0],
                              [op](T a, T b) { return T(op(static_cast<C>(a), static_cast<C>(b))); });
    return Status::Ok();
  });
}

Status run_Add(const Node& n, std::span<const View> in, std::span<const View> out) {
  return run_numeric(n, in, out, [](auto a, auto b) { return decltype(a)(a + b); });
}
Status run_Sub(const Node& n, std::span<const View> in, std::span<const View> out) {
  return run_numeric(n, in, out, [](auto a, auto b) { return decltype(a)(a - b); });
}
Status run_Mul(const Node& n, std::span<const View> in, std::span<const View> out) {
  return run_numeric(n, in, out, [](auto a, auto b) { return decltype(a)(a * b); });
}
Status run_Div(const Node& n, std::span<const View> in, std::span<const View> out) {
  return run_numeric(n, in, out, [](auto a, auto b) {
    using T = decltype(a);
    if constexpr (std::is_integral_v<T>) {
      // Integer division by zero is undefined in C++; define it as 0 rather than trap.
      if (b == T(0)) return T(0);
      if constexpr (std::is_signed_v<T>) {
        if (b == T(-1)) return T(T(0) - a == a ? a : T(0) - a);  // INT_MIN / -1 wraps, no trap
      }
    }
    return T(a / b);
  });
}

Status run_Mod(const Node& n, std::span<const View> in, std::span<const View> out) {
  const bool fmod = n.attr_int("fmod", 0) != 0;
  return run_numeric(n, in, out, [fmod](auto a, auto b) {
    using T = decltype(a);
    if constexpr (std::is_integral_v<T>) {
      if (b == T(0)) return T(0);
      if constexpr (std::is_signed_v<T>) {
        if (b == T(-1)) return T(0);
        T r = T(a % b);
        if (!fmod && r != 0 && ((r < 0) != (b < 0))) r = T(r + b);  // sign of the divisor
        return r;
      } else {
        return T(a % b);
      }
    } else {
      (void)fmod;
      return T(std::fmod(a, b));
    }
  });
}

Status infer_Pow(const Node& node, std::span<const TensorInfo* const> in,
                 std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 2, 2));
  MOSS_RETURN_IF_ERROR(require_numeric(node, *in[0], "base"));
  MOSS_RETURN_IF_ERROR(require_numeric(node, *in[1], "exponent"));
  MOSS_ASSIGN_OR_RETURN(auto b, b_shape(node, in[0]->shape, in[1]->shape));
  out.resize(1);
  out[0].dtype = in[0]->dtype;
  MOSS_ASSIGN_OR_RETURN(out[0].shape, broadcast_shapes(node, in[0]->shape, b));
  return Status::Ok();
}

Status run_Pow(const Node& node, std::span<const View> in, std::span<const View> out) {
  std::vector<int64_t> bs;
  const View rhs = b_view(node, in, bs);
  return dispatch_numeric(node, in[0].dtype, [&](auto base_tag) {
    using TB = decltype(base_tag);
    return dispatch_numeric(node, in[1].dtype, [&](auto exp_tag) {
      using TE = decltype(exp_tag);
      binary_broadcast<TB, TE, TB>(in[0], rhs, out[0], [](TB a, TE b) {
        if constexpr (std::is_same_v<TB, float> && std::is_same_v<TE, float>) {
          return b == 2.0f ? a * a : std::pow(a, b);
        } else if constexpr (std::is_integral_v<TB>) {
          return static_cast<TB>(
              static_cast<int64_t>(std::pow(static_cast<double>(a), static_cast<double>(b))));
        } else {
          return TB(static_cast<compute_t<TB>>(
              std::pow(static_cast<double>(a), static_cast<double>(b))));
        }
      });
      return Status::Ok();
    });
  });
}

template <typename Op>
Status run_compare(const Node& node, std::span<const View> in, std::span<const View> out, Op op) {
  std::vector<int64_t> bs;
  const View rhs = b_view(node, in, bs);
  return dispatch_all(node, in[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    binary_broadcast<T, T, bool>(in[0], rhs, out[0], [op](T x, T y) {
      return op(static_cast<C>(x), static_cast<C>(y));
    });
    return Status::Ok();
  });
}

Status run_Equal(const Node& n, std::span<const View> in, std::span<const View> out) {
  return run_compare(n, in, out, [](auto a, auto b) { return a == b; });
}
Status run_Less(const Node& n, std::span<const View> in, std::span<const View> out) {
  return run_compare(n, in, out, [](auto a, auto b) { return a < b; });
}
Status run_LessOrEqual(const Node& n, std::span<const View> in, std::span<const View> out) {
  return run_compare(n, in, out, [](auto a, auto b) { return a <= b; });
}
Status run_Greater(const Node& n, std::span<const View> in, std::span<const View> out) {
  return run_compare(n, in, out, [](auto a, auto b) { return a > b; });
}
Status run_GreaterOrEqual(const Node& n, std::span<const View> in, std::span<const View> out) {
  return run_compare(n, in, out, [](auto a, auto b) { return a >= b; });
}

Status run_And(const Node& node, std::span<const View> in, std::span<const View> out) {
  std::vector<int64_t> bs;
  binary_broadcast<bool, bool, bool>(in[0], b_view(node, in, bs), out[0], [](bool a, bool b) { return a && b; });
  return Status::Ok();
}
Status run_Or(const Node& node, std::span<const View> in, std::span<const View> out) {
  std::vector<int64_t> bs;
  binary_broadcast<bool, bool, bool>(in[0], b_view(node, in, bs), out[0], [](bool a, bool b) { return a || b; });
  return Status::Ok();
}
Status run_Xor(const Node& node, std::span<const View> in, std::span<const View> out) {
  std::vector<int64_t> bs;
  binary_broadcast<bool, bool, bool>(in[0], b_view(node, in, bs), out[0], [](bool a, bool b) { return a != b; });
  return Status::Ok();
}

template <typename Op>
Status run_integer(const Node& node, std::span<const View> in, std::span<const View> out, Op op) {
  return dispatch_integer(node, in[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    binary_broadcast<T, T, T>(in[0], in[1], out[0], [op](T a, T b) { return T(op(a, b)); });
    return Status::Ok();
  });
}

Status run_BitwiseAnd(const Node& n, std::span<const View> in, std::span<const View> out) {
  return run_integer(n, in, out, [](auto a, auto b) { return a & b; });
}
Status run_BitwiseOr(const Node& n, std::span<const View> in, std::span<const View> out) {
  return run_integer(n, in, out, [](auto a, auto b) { return a | b; });
}
Status run_BitwiseXor(const Node& n, std::span<const View> in, std::span<const View> out) {
  return run_integer(n, in, out, [](auto a, auto b) { return a ^ b; });
}
Status run_BitShift(const Node& n, std::span<const View> in, std::span<const View> out) {
  const bool left = n.attr_string("direction", "") == "LEFT";
  return run_integer(n, in, out, [left](auto a, auto b) {
    using T = decltype(a);
    using U = std::make_unsigned_t<decltype(a + b)>;
    const U bits = sizeof(T) * 8;
    if (static_cast<U>(b) >= bits) return T(0);  // C++ leaves over-wide shifts undefined
    return left ? T(a << b) : T(a >> b);
  });
}

// ---- variadic Max, Min, Sum, Mean -----------------------------------------------------------

Status infer_variadic(const Node& node, std::span<const TensorInfo* const> in,
                      std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 1, 1u << 20));
  if (node.op_type == "Sum" || node.op_type == "Mean") {
    MOSS_RETURN_IF_ERROR(require_float(node, *in[0], "input 0"));
  } else {
    MOSS_RETURN_IF_ERROR(require_numeric(node, *in[0], "input 0"));
  }
  std::vector<int64_t> shape = in[0]->shape;
  for (size_t i = 1; i < in.size(); ++i) {
    if (!in[i]) return invalid_argument("{}: input {} is missing", node.label(), i);
    MOSS_RETURN_IF_ERROR(require_same_dtype(node, *in[0], *in[i], "an input"));
    MOSS_ASSIGN_OR_RETURN(shape, broadcast_shapes(node, shape, in[i]->shape));
  }
  out.resize(1);
  out[0].dtype = in[0]->dtype;
  out[0].shape = std::move(shape);
  return Status::Ok();
}

Status run_variadic(const Node& node, std::span<const View> in, std::span<const View> out) {
  const int kind = node.op_type == "Max" ? 0 : node.op_type == "Min" ? 1 : 2;
  const bool mean = node.op_type == "Mean";
  return dispatch_numeric(node, in[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    auto f = [kind](T a, T b) {
      const C x = static_cast<C>(a), y = static_cast<C>(b);
      if (kind == 0) return T(std::isnan(static_cast<double>(x)) || x >= y ? x : y);
      if (kind == 1) return T(std::isnan(static_cast<double>(x)) || x <= y ? x : y);
      return T(x + y);
    };
    // Start from input 0 broadcast to the output, then fold each further input in place.
    const T* x0 = in[0].as<T>();
    T* y = out[0].as<T>();
    auto s0 = broadcast_strides(in[0].shape, out[0].shape);
    std::vector<int64_t> so(out[0].shape.size(), 0);
    for_each_row<1>(out[0].shape, {&s0}, [&](int64_t o, std::array<int64_t, 1> off, int64_t n,
                                            std::array<int64_t, 1> st) {
      for (int64_t i = 0; i < n; ++i) y[o + i] = x0[off[0] + i * st[0]];
    });
    for (size_t k = 1; k < in.size(); ++k) binary_broadcast<T, T, T>(out[0], in[k], out[0], f);
    if (mean) {
      const C inv = C(1) / static_cast<C>(in.size());
      for (int64_t i = 0; i < out[0].numel; ++i) y[i] = T(static_cast<C>(y[i]) * inv);
    }
    return Status::Ok();
  });
}

// ---- PRelu ----------------------------------------------------------------------------------

// Before opset 7 a 1-D slope of X's channel count applies per channel (dim 1), not numpy-style.
std::vector<int64_t> prelu_slope_shape(const Node& node, std::span<const int64_t> x,
                                       std::span<const int64_t> slope) {
  std::vector<int64_t> s(slope.begin(), slope.end());
  if (node.opset < 7 && s.size() == 1 && x.size() >= 2 && s[0] == x[1] && s[0] != 1) {
    s.resize(x.size() - 1, 1);
  }
  return s;
}

Status infer_PRelu(const Node& node, std::span<const TensorInfo* const> in,
                   std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 2, 2));
  MOSS_RETURN_IF_ERROR(require_numeric(node, *in[0], "X"));
  MOSS_RETURN_IF_ERROR(require_same_dtype(node, *in[0], *in[1], "slope"));
  MOSS_ASSIGN_OR_RETURN(auto shape, broadcast_shapes(node, in[0]->shape,
                                                     prelu_slope_shape(node, in[0]->shape, in[1]->shape)));
  if (shape != in[0]->shape) {
    return invalid_argument("{}: slope {} does not broadcast to X {}", node.label(),
                            shape_to_string(in[1]->shape), shape_to_string(in[0]->shape));
  }
  out.resize(1);
  out[0].dtype = in[0]->dtype;
  out[0].shape = in[0]->shape;
  return Status::Ok();
}

Status run_PRelu(const Node& n, std::span<const View> in, std::span<const View> out) {
  const auto slope_shape = prelu_slope_shape(n, in[0].shape, in[1].shape);
  const View ins[2] = {in[0], View{in[1].dtype, slope_shape, in[1].data, in[1].numel}};
  return run_numeric(n, ins, out, [](auto x, auto s) {
    using C = decltype(x);
    return x < C(0) ? C(x * s) : x;
  });
}

}  // namespace

std::vector<OpKernel> binary_kernels() {
  return {
      {"Add", infer_arith, run_Add},
      {"Sub", infer_arith, run_Sub},
      {"Mul", infer_arith, run_Mul},
      {"Div", infer_arith, run_Div},
      {"Mod", infer_Mod, run_Mod},
      {"Pow", infer_Pow, run_Pow},
      {"Equal", infer_compare, run_Equal},
      {"Less", infer_compare, run_Less},
      {"LessOrEqual", infer_compare, run_LessOrEqual},
      {"Greater", infer_compare, run_Greater},
      {"GreaterOrEqual", infer_compare, run_GreaterOrEqual},
      {"And", infer_logical, run_And},
      {"Or", infer_logical, run_Or},
      {"Xor", infer_logical, run_Xor},
      {"BitwiseAnd", infer_bitwise, run_BitwiseAnd},
      {"BitwiseOr", infer_bitwise, run_BitwiseOr},
      {"BitwiseXor", infer_bitwise, run_BitwiseXor},
      {"BitShift", infer_bitwise, run_BitShift},
      {"Max", infer_variadic, run_variadic},
      {"Min", infer_variadic, run_variadic},
      {"Sum", infer_variadic, run_variadic},
      {"Mean", infer_variadic, run_variadic},
      {"PRelu", infer_PRelu, run_PRelu},
  };
}

}  // namespace moss::engine::ref
