// Reference quantization operators: QuantizeLinear and DequantizeLinear (per-tensor and per-axis,
// int8/uint8/int16/uint16/int32 as the spec allows per opset), DynamicQuantizeLinear, and the
// integer matrix products MatMulInteger and QLinearMatMul (batched, numpy batch broadcasting).
// Rounding is half to even, as ONNX specifies.
#include "engine/kernels/ref/ref_kernels.h"
#include "engine/kernels/ref/ref_util.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace moss::engine::ref {
namespace {

bool is_quantized_type(DType d) {
  return d == DType::kInt8 || d == DType::kUInt8 || d == DType::kInt16 || d == DType::kUInt16;
}

// Per-tensor (scale has one element) or per-axis (1-D scale of dim[axis] elements). Returns the
// axis split so that element (o, i, j) uses scale[i] (or scale[0]).
Result<AxisSplit> quant_split(const Node& node, std::span<const int64_t> x, const TensorInfo& scale,
                              const TensorInfo* zp) {
  if (node.attr_int("block_size", 0) != 0) {
    return unimplemented("{}: blocked quantization (block_size) is not supported", node.label());
  }
  if (zp && zp->shape != scale.shape) {
    return invalid_argument("{}: zero point shape {} differs from scale shape {}", node.label(),
                            shape_to_string(zp->shape), shape_to_string(scale.shape));
  }
  if (scale.numel() == 1 && scale.shape.size() <= 1) return AxisSplit{1, 1, numel_of(x)};
  const int64_t r = static_cast<int64_t>(x.size());
  MOSS_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(node, node.attr_int("axis", 1), std::max<int64_t>(r, 1)));
  if (scale.shape.size() != 1 || r == 0 || scale.shape[0] != x[static_cast<size_t>(axis)]) {
    return invalid_argument("{}: scale shape {} is neither a scalar nor [dim of axis {}]",
                            node.label(), shape_to_string(scale.shape), axis);
  }
  return split_at(x, axis);
}

Status infer_QuantizeLinear(const Node& node, std::span<const TensorInfo* const> in,
                            std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 2, 3));
  const TensorInfo* zp = in.size() > 2 ? in[2] : nullptr;
  if (in[0]->dtype != DType::kInt32) MOSS_RETURN_IF_ERROR(require_float(node, *in[0], "x"));
  MOSS_RETURN_IF_ERROR(require_float(node, *in[1], "y_scale"));
  DType out_dt = DType::kUInt8;
  if (zp) {
    if (!is_quantized_type(zp->dtype)) {
      return unimplemented("{}: output type {} is not supported", node.label(), dtype_name(zp->dtype));
    }
    out_dt = zp->dtype;
  }
  MOSS_RETURN_IF_ERROR(quant_split(node, in[0]->shape, *in[1], zp).status());
  return set_out(out, out_dt, in[0]->shape);
}

// saturate(round_half_even(v) + zp): rounding before adding the zero point matters at halves
// (-127.5 + 153 rounds to 25, not 26).
template <typename Q>
Q saturate_round(double v, double zp = 0) {
  v = std::nearbyint(v) + zp;
  v = std::clamp(v, static_cast<double>(std::numeric_limits<Q>::lowest()),
                 static_cast<double>(std::numeric_limits<Q>::max()));
  return static_cast<Q>(v);
}

// Reads element i of a float-type or integer tensor as double.
double read_double(const Node& node, const View& v, int64_t i) {
  double d = 0;
  (void)dispatch_numeric(node, v.dtype, [&](auto tag) {
    using T = decltype(tag);
    d = static_cast<double>(static_cast<compute_t<T>>(v.as<T>()[i]));
    return Status::Ok();
  });
  return d;
}

Status run_QuantizeLinear(const Node& node, std::span<const View> in, std::span<const View> out) {
  const bool has_zp = in.size() > 2 && in[2].data;
  TensorInfo scale{in[1].dtype, {in[1].shape.begin(), in[1].shape.end()}, nullptr};
  TensorInfo zpi{has_zp ? in[2].dtype : DType::kUInt8, scale.shape, nullptr};
  MOSS_ASSIGN_OR_RETURN(AxisSplit s, quant_split(node, in[0].shape, scale, has_zp ? &zpi : nullptr));
  return dispatch_integer(node, out[0].dtype, [&](auto tag) {
    using Q = decltype(tag);
    Q* y = out[0].as<Q>();
    for (int64_t c = 0; c < s.n; ++c) {
      const double sc = read_double(node, in[1], c);
      const double zp = has_zp ? read_double(node, in[2], c) : 0.0;
      for (int64_t o = 0; o < s.outer; ++o) {
        for (int64_t j = 0; j < s.inner; ++j) {
          const int64_t p = (o * s.n + c) * s.inner + j;
          // Divide in float like ONNX Runtime, then round half to even.
          const double q = in[0].dtype == DType::kFloat64
                               ? read_double(node, in[0], p) / sc
                               : static_cast<double>(static_cast<float>(read_double(node, in[0], p)) / static_cast<float>(sc));
          y[p] = saturate_round<Q>(q, zp);
        }
      }
    }
    return Status::Ok();
  });
}

Status infer_DequantizeLinear(const Node& node, std::span<const TensorInfo* const> in,
                              std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 2, 3));
  const TensorInfo* zp = in.size() > 2 ? in[2] : nullptr;
  if (!is_quantized_type(in[0]->dtype) && in[0]->dtype != DType::kInt32) {
    return unimplemented("{}: x has unsupported element type {}", node.label(), dtype_name(in[0]->dtype));
  }
  if (zp) MOSS_RETURN_IF_ERROR(require_same_dtype(node, *in[0], *zp, "x_zero_point"));
  MOSS_RETURN_IF_ERROR(require_float(node, *in[1], "x_scale"));
  MOSS_RETURN_IF_ERROR(quant_split(node, in[0]->shape, *in[1], zp).status());
  return set_out(out, in[1]->dtype, in[0]->shape);
}

Status run_DequantizeLinear(const Node& node, std::span<const View> in, std::span<const View> out) {
  const bool has_zp = in.size() > 2 && in[2].data;
  TensorInfo scale{in[1].dtype, {in[1].shape.begin(), in[1].shape.end()}, nullptr};
  TensorInfo zpi{in[0].dtype, scale.shape, nullptr};
  MOSS_ASSIGN_OR_RETURN(AxisSplit s, quant_split(node, in[0].shape, scale, has_zp ? &zpi : nullptr));
  return dispatch_float(node, out[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    T* y = out[0].as<T>();
    for (int64_t c = 0; c < s.n; ++c) {
      const C sc = static_cast<C>(read_double(node, in[1], c));
      const double zp = has_zp ? read_double(node, in[2], c) : 0.0;
      for (int64_t o = 0; o < s.outer; ++o) {
        for (int64_t j = 0; j < s.inner; ++j) {
          const int64_t p = (o * s.n + c) * s.inner + j;
          y[p] = T(static_cast<C>(read_double(node, in[0], p) - zp) * sc);
        }
      }
    }
    return Status::Ok();
  });
}

// ---- DynamicQuantizeLinear ------------------------------------------------------------------

Status infer_DynamicQuantizeLinear(const Node& node, std::span<const TensorInfo* const> in,
                                   std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 1, 1));
  MOSS_RETURN_IF_ERROR(require_dtype(node, *in[0], {DType::kFloat32}, "x"));
  out.resize(3);
  out[0] = TensorInfo{DType::kUInt8, in[0]->shape, nullptr};
  out[1] = TensorInfo{DType::kFloat32, {}, nullptr};
  out[2] = TensorInfo{DType::kUInt8, {}, nullptr};
  return Status::Ok();
}

Status run_DynamicQuantizeLinear(const Node&, std::span<const View> in, std::span<const View> out) {
  const float* x = in[0].as<float>();
  float mn = 0, mx = 0;  // the range always includes 0
  for (int64_t i = 0; i < in[0].numel; ++i) {
    mn = std::min(mn, x[i]);
    mx = std::max(mx, x[i]);
  }
  const float scale = (mx - mn) / 255.0f;
  const uint8_t zp = scale == 0 ? 0 : saturate_round<uint8_t>(0.0 - static_cast<double>(mn / scale));
  uint8_t* y = out[0].as<uint8_t>();
  for (int64_t i = 0; i < in[0].numel; ++i) {
    y[i] = scale == 0 ? zp : saturate_round<uint8_t>(static_cast<double>(x[i] / scale), zp);
  }
  if (out.size() > 1 && out[1].data) out[1].as<float>()[0] = scale;
  if (out.size() > 2 && out[2].data) out[2].as<uint8_t>()[0] = zp;
  return Status::Ok();
}

// ---- MatMulInteger / QLinearMatMul ----------------------------------------------------------

// numpy matmul shape rules; a 1-D operand is promoted (and the added dim dropped afterwards).
Result<std::vector<int64_t>> matmul_shape(const Node& node, std::span<const int64_t> a,
                                          std::span<const int64_t> b) {
  if (a.empty() || b.empty()) return invalid_argument("{}: operands must have rank >= 1", node.label());
  std::vector<int64_t> A(a.begin(), a.end()), B(b.begin(), b.end());
  if (A.size() == 1) A.insert(A.begin(), 1);
  if (B.size() == 1) B.push_back(1);
  if (A.back() != B[B.size() - 2]) {
    return invalid_argument("{}: inner dimensions differ: {} and {}", node.label(), shape_to_string(a), shape_to_string(b));
  }
  MOSS_ASSIGN_OR_RETURN(auto batch, broadcast_shapes(node, std::span(A).first(A.size() - 2), std::span(B).first(B.size() - 2)));
  if (a.size() > 1) batch.push_back(A[A.size() - 2]);
  if (b.size() > 1) batch.push_back(B.back());
  return batch;
}

// y[m, n] = sum_k (a[m, k] - za) * (b[k, n] - zb) in int32, per batch (broadcast).
template <typename TA, typename TB, typename F>
void int_matmul(const View& a, const View& b, int32_t za, int32_t zb, std::span<const int64_t> out_shape, F emit) {
  std::vector<int64_t> A(a.shape.begin(), a.shape.end()), B(b.shape.begin(), b.shape.end());
  if (A.size() == 1) A.insert(A.begin(), 1);
  if (B.size() == 1) B.push_back(1);
  const int64_t M = A[A.size() - 2], K = A.back(), N = B.back();
  std::vector<int64_t> bs(out_shape.begin(), out_shape.end());
  const size_t nb = std::max(A.size(), B.size()) - 2;
  bs.resize(nb);
  std::vector<int64_t> ab(A.begin(), A.end() - 2), bb(B.begin(), B.end() - 2);
  const auto sa = broadcast_strides(ab, bs), sb = broadcast_strides(bb, bs);
  const int64_t batches = numel_of(bs);
  std::vector<int64_t> idx(nb, 0);
  const TA* pa = a.as<TA>();
  const TB* pb = b.as<TB>();
  for (int64_t t = 0; t < batches; ++t) {
    int64_t oa = 0, ob = 0;
    for (size_t d = 0; d < nb; ++d) {
      oa += idx[d] * sa[d];
      ob += idx[d] * sb[d];
    }
    for (int64_t m = 0; m < M; ++m) {
      for (int64_t n = 0; n < N; ++n) {
        int32_t acc = 0;
        for (int64_t k = 0; k < K; ++k) {
          acc += (static_cast<int32_t>(pa[oa * M * K + m * K + k]) - za) *
                 (static_cast<int32_t>(pb[ob * K * N + k * N + n]) - zb);
        }
        emit((t * M + m) * N + n, acc);
      }
    }
    for (size_t d = nb; d-- > 0;) {
      if (++idx[d] < bs[d]) break;
      idx[d] = 0;
    }
  }
}

Status require_8bit(const Node& node, const TensorInfo& t, const char* what) {
  return require_dtype(node, t, {DType::kInt8, DType::kUInt8}, what);
}

Status require_scalar(const Node& node, const TensorInfo* t, const char* what) {
  if (t && t->numel() != 1) {
    return unimplemented("{}: {} must be a scalar (per-row/column zero points are not supported)", node.label(), what);
  }
  return Status::Ok();
}

Status infer_MatMulInteger(const Node& node, std::span<const TensorInfo* const> in,
                           std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 2, 4));
  MOSS_RETURN_IF_ERROR(require_8bit(node, *in[0], "A"));
  MOSS_RETURN_IF_ERROR(require_8bit(node, *in[1], "B"));
  for (size_t i = 2; i < in.size(); ++i) {
    if (!in[i]) continue;
    MOSS_RETURN_IF_ERROR(require_same_dtype(node, *in[i - 2], *in[i], "zero point"));
    MOSS_RETURN_IF_ERROR(require_scalar(node, in[i], "zero point"));
  }
  MOSS_ASSIGN_OR_RETURN(auto shape, matmul_shape(node, in[0]->shape, in[1]->shape));
  return set_out(out, DType::kInt32, std::move(shape));
}

int32_t zero_point(const Node& node, std::span<const View> in, size_t i) {
  return i < in.size() && in[i].data ? static_cast<int32_t>(read_double(node, in[i], 0)) : 0;
}

template <typename F>
Status dispatch_8bit_pair(const Node& node, DType a, DType b, F f) {
  auto one = [&](DType d, auto g) {
    return d == DType::kInt8 ? g(int8_t{}) : g(uint8_t{});
  };
  (void)node;
  return one(a, [&](auto ta) { return one(b, [&](auto tb) { return f(ta, tb); }); });
}

Status run_MatMulInteger(const Node& node, std::span<const View> in, std::span<const View> out) {
  const int32_t za = zero_point(node, in, 2), zb = zero_point(node, in, 3);
  int32_t* y = out[0].as<int32_t>();
  return dispatch_8bit_pair(node, in[0].dtype, in[1].dtype, [&](auto ta, auto tb) {
    int_matmul<decltype(ta), decltype(tb)>(in[0], in[1], za, zb, out[0].shape,
                                           [&](int64_t i, int32_t v) { y[i] = v; });
    return Status::Ok();
  });
}

Status infer_QLinearMatMul(const Node& node, std::span<const TensorInfo* const> in,
                           std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 8, 8));
  MOSS_RETURN_IF_ERROR(require_8bit(node, *in[0], "a"));
  MOSS_RETURN_IF_ERROR(require_8bit(node, *in[3], "b"));
  MOSS_RETURN_IF_ERROR(require_8bit(node, *in[7], "y_zero_point"));
  MOSS_RETURN_IF_ERROR(require_same_dtype(node, *in[0], *in[2], "a_zero_point"));
  MOSS_RETURN_IF_ERROR(require_same_dtype(node, *in[3], *in[5], "b_zero_point"));
  for (size_t i : {1, 4, 6}) {
    MOSS_RETURN_IF_ERROR(require_float(node, *in[i], "scale"));
    MOSS_RETURN_IF_ERROR(require_scalar(node, in[i], "scale"));
  }
  for (size_t i : {2, 5, 7}) MOSS_RETURN_IF_ERROR(require_scalar(node, in[i], "zero point"));
  MOSS_ASSIGN_OR_RETURN(auto shape, matmul_shape(node, in[0]->shape, in[3]->shape));
  return set_out(out, in[7]->dtype, std::move(shape));
}

Status run_QLinearMatMul(const Node& node, std::span<const View> in, std::span<const View> out) {
  const int32_t za = zero_point(node, in, 2), zb = zero_point(node, in, 5);
  const double zy = read_double(node, in[7], 0);
  const float mult = static_cast<float>(read_double(node, in[1], 0) * read_double(node, in[4], 0) /
                                        read_double(node, in[6], 0));
  return dispatch_8bit_pair(node, in[0].dtype, in[3].dtype, [&](auto ta, auto tb) {
    auto run = [&](auto ty) {
      using Q = decltype(ty);
      Q* y = out[0].as<Q>();
      int_matmul<decltype(ta), decltype(tb)>(in[0], in[3], za, zb, out[0].shape, [&](int64_t i, int32_t v) {
        y[i] = saturate_round<Q>(static_cast<double>(static_cast<float>(v) * mult), zy);
      });
      return Status::Ok();
    };
    return out[0].dtype == DType::kInt8 ? run(int8_t{}) : run(uint8_t{});
  });
}

}  // namespace

std::vector<OpKernel> quantize_kernels() {
  return {
      {"QuantizeLinear", infer_QuantizeLinear, run_QuantizeLinear},
      {"DequantizeLinear", infer_DequantizeLinear, run_DequantizeLinear},
      {"DynamicQuantizeLinear", infer_DynamicQuantizeLinear, run_DynamicQuantizeLinear},
      {"MatMulInteger", infer_MatMulInteger, run_MatMulInteger},
      {"QLinearMatMul", infer_QLinearMatMul, run_QLinearMatMul},
  };
}

}  // namespace moss::engine::ref
