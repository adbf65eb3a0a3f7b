// Reductions (ReduceSum/Mean/Max/Min/Prod/L1/L2/LogSum/LogSumExp/SumSquare): axes as an attribute
// (ReduceSum < 13, the others < 18) or an input, keepdims, noop_with_empty_axes, empty sets (the
// identity of the reduction). Accumulates in double (long double for integers, exact for 64-bit),
// so long reductions stay accurate. ArgMax/ArgMin with keepdims and select_last_index.
#include "engine/kernels/ref/broadcast.h"
#include "engine/kernels/ref/ref_kernels.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace moss::engine::ref {
namespace {

enum class Kind { kSum, kMean, kMax, kMin, kProd, kL1, kL2, kLogSum, kLogSumExp, kSumSquare };

Kind kind_of(const std::string& op) {
  if (op == "ReduceMean") return Kind::kMean;
  if (op == "ReduceMax") return Kind::kMax;
  if (op == "ReduceMin") return Kind::kMin;
  if (op == "ReduceProd") return Kind::kProd;
  if (op == "ReduceL1") return Kind::kL1;
  if (op == "ReduceL2") return Kind::kL2;
  if (op == "ReduceLogSum") return Kind::kLogSum;
  if (op == "ReduceLogSumExp") return Kind::kLogSumExp;
  if (op == "ReduceSumSquare") return Kind::kSumSquare;
  return Kind::kSum;
}

int axes_input_opset(const Node& node) { return node.op_type == "ReduceSum" ? 13 : 18; }

// Which input dims are reduced; noop means identity.
Result<std::vector<bool>> reduced_dims(const Node& node, std::span<const int64_t> shape,
                                       const TensorInfo* axes_in, bool& noop) {
  std::vector<int64_t> axes;
  if (node.opset < axes_input_opset(node)) {
    axes = node.attr_ints("axes");
  } else {
    if (node.attr("axes")) {
      return invalid_argument("{}: 'axes' is an input from opset {}, not an attribute",
                              node.label(), axes_input_opset(node));
    }
    MOSS_ASSIGN_OR_RETURN(axes, const_ints(node, axes_in, "axes"));
  }
  const int64_t r = static_cast<int64_t>(shape.size());
  noop = axes.empty() && node.attr_int("noop_with_empty_axes", 0) != 0;
  std::vector<bool> red(shape.size(), axes.empty() && !noop);
  for (int64_t a : axes) {
    MOSS_ASSIGN_OR_RETURN(int64_t ax, normalize_axis(node, a, std::max<int64_t>(r, 1)));
    if (ax < r) red[static_cast<size_t>(ax)] = true;
  }
  return red;
}

Status infer_reduce(const Node& node, std::span<const TensorInfo* const> in,
                    std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 1, node.opset < axes_input_opset(node) ? 1 : 2));
  MOSS_RETURN_IF_ERROR(require_numeric(node, *in[0], "data"));
  bool noop = false;
  MOSS_ASSIGN_OR_RETURN(auto red, reduced_dims(node, in[0]->shape, in.size() > 1 ? in[1] : nullptr, noop));
  const Kind k = kind_of(node.op_type);
  for (size_t i = 0; i < red.size(); ++i) {
    if (red[i] && in[0]->shape[i] == 0 && is_integer_dtype(in[0]->dtype) &&
        (k == Kind::kLogSum || k == Kind::kLogSumExp || k == Kind::kMean)) {
      return invalid_argument("{}: empty reduction has no integer result", node.label());
    }
  }
  const bool keep = node.attr_int("keepdims", 1) != 0;
  out.resize(1);
  out[0].dtype = in[0]->dtype;
  for (size_t i = 0; i < red.size(); ++i) {
    if (!red[i]) out[0].shape.push_back(in[0]->shape[i]);
    else if (keep) out[0].shape.push_back(1);
  }
  return Status::Ok();
}

template <typename A>
A reduce_init(Kind k) {
  switch (k) {
    case Kind::kMax: return -std::numeric_limits<A>::infinity();
    case Kind::kMin: return std::numeric_limits<A>::infinity();
    case Kind::kProd: return A(1);
    default: return A(0);
  }
}

template <typename A>
A reduce_step(Kind k, A acc, A x) {
  switch (k) {
    case Kind::kMax: return std::isnan(x) || x > acc ? x : acc;
    case Kind::kMin: return std::isnan(x) || x < acc ? x : acc;
    case Kind::kProd: return acc * x;
    case Kind::kL1: return acc + std::fabs(x);
    case Kind::kL2: case Kind::kSumSquare: return acc + x * x;
    case Kind::kLogSumExp: return acc + std::exp(x);
    default: return acc + x;
  }
}

template <typename A>
A reduce_final(Kind k, A acc, int64_t count) {
  switch (k) {
    case Kind::kMean: return count ? acc / static_cast<A>(count) : A(0);
    case Kind::kL2: return std::sqrt(acc);
    case Kind::kLogSum: case Kind::kLogSumExp: return std::log(acc);
    default: return acc;
  }
}

// ReduceMax / ReduceMin of float32 over one run of consecutive axes ([outer, red, inner]): the
// same answer as the general loop (max and min are exact in float; any NaN gives NaN) in a loop
// the compiler vectorizes (the general one took half of a text CNN's run). False: not this case.
bool reduce_extreme_f32(Kind kind, std::span<const int64_t> s, const std::vector<bool>& red,
                        const View& x, const View& y) {
  if ((kind != Kind::kMax && kind != Kind::kMin) || x.dtype != DType::kFloat32) return false;
  size_t a = 0;
  while (a < red.size() && !red[a]) ++a;
  size_t b = a;
  while (b < red.size() && red[b]) ++b;
  for (size_t i = b; i < red.size(); ++i) {
    if (red[i]) return false;  // two separate runs of reduced axes
  }
  int64_t outer = 1, n = 1, inner = 1;
  for (size_t i = 0; i < s.size(); ++i) (i < a ? outer : i < b ? n : inner) *= s[i];
  if (n == 0 || a == b) return false;
  const float* src = x.as<float>();
  float* dst = y.as<float>();
  const bool is_max = kind == Kind::kMax;
  std::vector<float> acc(static_cast<size_t>(inner));
  std::vector<uint8_t> nan(static_cast<size_t>(inner));
  if (inner == 1) {  // reduce rows: one accumulator, the general loop's order
    for (int64_t o = 0; o < outer; ++o) {
      const float* p = src + o * n;
      float m = p[0];
      bool has_nan = false;
      for (int64_t r = 0; r < n; ++r) {
        m = is_max ? (p[r] > m ? p[r] : m) : (p[r] < m ? p[r] : m);
        has_nan |= p[r] != p[r];
      }
      dst[o] = has_nan ? std::numeric_limits<float>::quiet_NaN() : m;
    }
    return true;
  }
  for (int64_t o = 0; o < outer; ++o) {
    const float* p = src + o * n * inner;
    std::copy_n(p, inner, acc.begin());
    for (int64_t j = 0; j < inner; ++j) nan[j] = std::isnan(p[j]);
    for (int64_t r = 1; r < n; ++r) {
      const float* q = p + r * inner;
      if (is_max) {
        for (int64_t j = 0; j < inner; ++j) acc[j] = q[j] > acc[j] ? q[j] : acc[j];
      } else {
        for (int64_t j = 0; j < inner; ++j) acc[j] = q[j] < acc[j] ? q[j] : acc[j];
      }
      for (int64_t j = 0; j < inner; ++j) nan[j] |= q[j] != q[j];
    }
    for (int64_t j = 0; j < inner; ++j) {
      dst[o * inner + j] = nan[j] ? std::numeric_limits<float>::quiet_NaN() : acc[j];
    }
  }
  return true;
}

Status run_reduce(const Node& node, std::span<const View> in, std::span<const View> out) {
  const auto s = in[0].shape;
  TensorInfo axes_info;
  const TensorInfo* axes_ptr = nullptr;
  if (in.size() > 1 && in[1].data) {
    MOSS_ASSIGN_OR_RETURN(axes_info, info_with_value(in[1]));
    axes_ptr = &axes_info;
  }
  bool noop = false;
  MOSS_ASSIGN_OR_RETURN(auto red, reduced_dims(node, s, axes_ptr, noop));
  const Kind kind = kind_of(node.op_type);
  if (!noop && reduce_extreme_f32(kind, s, red, in[0], out[0])) return Status::Ok();
  // Strides of the (keepdims) output seen from the input shape: 0 along reduced dims.
  std::vector<int64_t> kshape(s.begin(), s.end());
  int64_t count = 1;
  for (size_t i = 0; i < s.size(); ++i) {
    if (red[i]) {
      kshape[i] = 1;
      count *= s[i];
    }
  }
  auto ost = broadcast_strides(kshape, s);
  const int64_t n_out = out[0].numel;
  return dispatch_numeric(node, in[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    using A = std::conditional_t<std::is_integral_v<T>, long double, double>;
    std::vector<A> acc(static_cast<size_t>(n_out), reduce_init<A>(kind));
    const T* x = in[0].as<T>();
    std::vector<int64_t> ist(s.size(), 1);
    for (size_t i = s.size(); i-- > 1;) ist[i - 1] = ist[i] * s[i];
    for_each_row<2>(s, {&ost, &ist}, [&](int64_t, std::array<int64_t, 2> off, int64_t n, std::array<int64_t, 2> st) {
      for (int64_t i = 0; i < n; ++i) {
        A& a = acc[off[0] + i * st[0]];
        a = reduce_step<A>(kind, a, static_cast<A>(static_cast<C>(x[off[1] + i * st[1]])));
      }
    });
    T* y = out[0].as<T>();
    for (int64_t i = 0; i < n_out; ++i) {
      A v = reduce_final<A>(kind, acc[i], count);
      if constexpr (std::is_integral_v<T>) {
        // Empty Max/Min: the identity is the type's extreme, not an infinity.
        if (v == std::numeric_limits<A>::infinity()) v = static_cast<A>(std::numeric_limits<T>::max());
        if (v == -std::numeric_limits<A>::infinity()) v = static_cast<A>(std::numeric_limits<T>::lowest());
        y[i] = static_cast<T>(v);
      } else {
        y[i] = T(static_cast<C>(v));
      }
    }
    return Status::Ok();
  });
}

// ---- ArgMax / ArgMin ------------------------------------------------------------------------

Status infer_arg(const Node& node, std::span<const TensorInfo* const> in,
                 std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 1, 1));
  MOSS_RETURN_IF_ERROR(require_numeric(node, *in[0], "data"));
  const int64_t r = static_cast<int64_t>(in[0]->shape.size());
  MOSS_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(node, node.attr_int("axis", 0), std::max<int64_t>(r, 1)));
  if (r > 0 && in[0]->shape[static_cast<size_t>(axis)] == 0) {
    return invalid_argument("{}: cannot take the arg of an empty axis", node.label());
  }
  const bool keep = node.attr_int("keepdims", 1) != 0;
  out.resize(1);
  out[0].dtype = DType::kInt64;
  for (int64_t i = 0; i < r; ++i) {
    if (i != axis) out[0].shape.push_back(in[0]->shape[static_cast<size_t>(i)]);
    else if (keep) out[0].shape.push_back(1);
  }
  return Status::Ok();
}

Status run_arg(const Node& node, std::span<const View> in, std::span<const View> out) {
  const auto s = in[0].shape;
  const int64_t r = static_cast<int64_t>(s.size());
  int64_t axis = node.attr_int("axis", 0);
  if (axis < 0) axis += r;
  int64_t outer = 1, n = 1, inner = 1;
  for (int64_t i = 0; i < r; ++i) {
    if (i < axis) outer *= s[i];
    else if (i == axis) n = s[i];
    else inner *= s[i];
  }
  const bool is_max = node.op_type == "ArgMax";
  const bool last = node.attr_int("select_last_index", 0) != 0;
  return dispatch_numeric(node, in[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    const T* x = in[0].as<T>();
    int64_t* y = out[0].as<int64_t>();
    for (int64_t o = 0; o < outer; ++o) {
      for (int64_t j = 0; j < inner; ++j) {
        const T* p = x + o * n * inner + j;
        int64_t best = 0;
        C bv = static_cast<C>(p[0]);
        for (int64_t i = 1; i < n; ++i) {
          const C v = static_cast<C>(p[i * inner]);
          const bool better = is_max ? (last ? v >= bv : v > bv) : (last ? v <= bv : v < bv);
          if (better) {
            best = i;
            bv = v;
          }
        }
        y[o * inner + j] = best;
      }
    }
    return Status::Ok();
  });
}

}  // namespace

std::vector<OpKernel> reduce_kernels() {
  std::vector<OpKernel> k;
  for (const char* op : {"ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd",
                         "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp",
                         "ReduceSumSquare"}) {
    k.push_back({op, infer_reduce, run_reduce, false, 0b10});
  }
  k.push_back({"ArgMax", infer_arg, run_arg});
  k.push_back({"ArgMin", infer_arg, run_arg});
  return k;
}

}  // namespace moss::engine::ref
