// Operators that generate or rearrange by position: Trilu, EyeLike, Range, OneHot, CumSum, Tile,
// DepthToSpace, SpaceToDepth, ReverseSequence, TopK, Size.
#include "engine/kernels/ref/ref_kernels.h"
#include "engine/kernels/ref/ref_util.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

namespace moss::engine::ref {
namespace {

int64_t scalar_int(const View& v) {
  return v.dtype == DType::kInt64 ? v.as<int64_t>()[0] : v.as<int32_t>()[0];
}

// ---- Trilu ----------------------------------------------------------------------------------

Status infer_Trilu(const Node& node, std::span<const TensorInfo* const> in,
                   std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 1, 2));
  if (in[0]->shape.size() < 2) return invalid_argument("{}: input rank must be >= 2", node.label());
  if (in.size() > 1 && in[1]) {
    MOSS_RETURN_IF_ERROR(require_dtype(node, *in[1], {DType::kInt64}, "k"));
    if (in[1]->numel() != 1) return invalid_argument("{}: k must be a scalar", node.label());
  }
  return set_out(out, in[0]->dtype, in[0]->shape);
}

Status run_Trilu(const Node& node, std::span<const View> in, std::span<const View> out) {
  const bool upper = node.attr_int("upper", 1) != 0;
  const int64_t k = in.size() > 1 && in[1].data ? in[1].as<int64_t>()[0] : 0;
  const size_t r = in[0].shape.size();
  const int64_t R = in[0].shape[r - 2], C = in[0].shape[r - 1];
  const size_t es = dtype_size(in[0].dtype);
  const int64_t mats = R * C == 0 ? 0 : in[0].numel / (R * C);
  std::memset(out[0].data, 0, static_cast<size_t>(out[0].numel) * es);
  for (int64_t m = 0; m < mats; ++m) {
    for (int64_t i = 0; i < R; ++i) {
      // Kept columns: j >= i + k (upper) or j <= i + k (lower).
      const int64_t lo = upper ? std::clamp<int64_t>(i + k, 0, C) : 0;
      const int64_t hi = upper ? C : std::clamp<int64_t>(i + k + 1, 0, C);
      const int64_t off = (m * R + i) * C + lo;
      if (hi > lo) std::memcpy(out[0].data + off * es, in[0].data + off * es, static_cast<size_t>(hi - lo) * es);
    }
  }
  return Status::Ok();
}

// ---- EyeLike --------------------------------------------------------------------------------

Status infer_EyeLike(const Node& node, std::span<const TensorInfo* const> in,
                     std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 1, 1));
  if (in[0]->shape.size() != 2) return invalid_argument("{}: input must be 2-D", node.label());
  DType dt = in[0]->dtype;
  if (node.attr("dtype")) {
    MOSS_ASSIGN_OR_RETURN(dt, dtype_from_onnx_number(node, node.attr_int("dtype", 1)));
  }
  return set_out(out, dt, in[0]->shape);
}

Status run_EyeLike(const Node& node, std::span<const View> in, std::span<const View> out) {
  const int64_t R = in[0].shape[0], C = in[0].shape[1], k = node.attr_int("k", 0);
  return dispatch_all(node, out[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    T* y = out[0].as<T>();
    for (int64_t i = 0; i < R * C; ++i) y[i] = T(0);
    for (int64_t i = 0; i < R; ++i) {
      if (i + k >= 0 && i + k < C) y[i * C + i + k] = T(1);
    }
    return Status::Ok();
  });
}

// ---- Range ----------------------------------------------------------------------------------

Status infer_Range(const Node& node, std::span<const TensorInfo* const> in,
                   std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 3, 3));
  MOSS_RETURN_IF_ERROR(require_dtype(node, *in[0], {DType::kFloat32, DType::kFloat64, DType::kInt16,
                                                    DType::kInt32, DType::kInt64}, "start"));
  for (int i = 1; i < 3; ++i) MOSS_RETURN_IF_ERROR(require_same_dtype(node, *in[0], *in[i], "limit/delta"));
  for (int i = 0; i < 3; ++i) {
    if (!in[i]->value) return unimplemented("{}: start, limit and delta must be known at plan time", node.label());
    if (in[i]->numel() != 1) return invalid_argument("{}: start, limit and delta must be scalars", node.label());
  }
  int64_t n = 0;
  MOSS_RETURN_IF_ERROR(dispatch_numeric(node, in[0]->dtype, [&](auto tag) {
    using T = decltype(tag);
    const double s = static_cast<double>(in[0]->value->data<T>()[0]);
    const double l = static_cast<double>(in[1]->value->data<T>()[0]);
    const double d = static_cast<double>(in[2]->value->data<T>()[0]);
    if (d == 0) return invalid_argument("{}: delta is 0", node.label());
    n = std::max<int64_t>(0, static_cast<int64_t>(std::ceil((l - s) / d)));
    return Status::Ok();
  }));
  return set_out(out, in[0]->dtype, {n});
}

Status run_Range(const Node& node, std::span<const View> in, std::span<const View> out) {
  return dispatch_numeric(node, in[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    const C s = static_cast<C>(in[0].as<T>()[0]), d = static_cast<C>(in[2].as<T>()[0]);
    T* y = out[0].as<T>();
    for (int64_t i = 0; i < out[0].numel; ++i) y[i] = T(C(s + static_cast<C>(i) * d));
    return Status::Ok();
  });
}

// ---- OneHot ---------------------------------------------------------------------------------

Status infer_OneHot(const Node& node, std::span<const TensorInfo* const> in,
                    std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 3, 3));
  MOSS_RETURN_IF_ERROR(require_numeric(node, *in[0], "indices"));
  if (!in[1]->value || in[1]->numel() != 1) {
    return unimplemented("{}: depth must be a scalar known at plan time", node.label());
  }
  if (in[2]->numel() != 2) return invalid_argument("{}: values must have 2 elements", node.label());
  int64_t depth = 0;
  MOSS_RETURN_IF_ERROR(dispatch_numeric(node, in[1]->dtype, [&](auto tag) {
    using T = decltype(tag);
    depth = static_cast<int64_t>(static_cast<double>(in[1]->value->data<T>()[0]));
    return Status::Ok();
  }));
  if (depth < 1) return invalid_argument("{}: depth must be >= 1, got {}", node.label(), depth);
  const int64_t r = static_cast<int64_t>(in[0]->shape.size());
  MOSS_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(node, node.attr_int("axis", -1), r + 1));
  std::vector<int64_t> shape = in[0]->shape;
  shape.insert(shape.begin() + axis, depth);
  return set_out(out, in[2]->dtype, std::move(shape));
}

Status run_OneHot(const Node& node, std::span<const View> in, std::span<const View> out) {
  const int64_t r = static_cast<int64_t>(in[0].shape.size());
  int64_t axis = node.attr_int("axis", -1);
  if (axis < 0) axis += r + 1;
  const AxisSplit s = split_at(out[0].shape, axis);
  const size_t es = dtype_size(out[0].dtype);
  const uint8_t* off_v = in[2].data;
  const uint8_t* on_v = in[2].data + es;
  return dispatch_numeric(node, in[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* idx = in[0].as<T>();
    for (int64_t o = 0; o < s.outer; ++o) {
      for (int64_t j = 0; j < s.inner; ++j) {
        int64_t v = static_cast<int64_t>(static_cast<double>(idx[o * s.inner + j]));
        if (v < 0) v += s.n;
        for (int64_t i = 0; i < s.n; ++i) {
          std::memcpy(out[0].data + ((o * s.n + i) * s.inner + j) * es, i == v ? on_v : off_v, es);
        }
      }
    }
    return Status::Ok();
  });
}

// ---- CumSum ---------------------------------------------------------------------------------

Status infer_CumSum(const Node& node, std::span<const TensorInfo* const> in,
                    std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 2, 2));
  MOSS_RETURN_IF_ERROR(require_numeric(node, *in[0], "x"));
  MOSS_RETURN_IF_ERROR(require_dtype(node, *in[1], {DType::kInt32, DType::kInt64}, "axis"));
  if (in[1]->numel() != 1) return invalid_argument("{}: axis must be a scalar", node.label());
  return set_out(out, in[0]->dtype, in[0]->shape);
}

Status run_CumSum(const Node& node, std::span<const View> in, std::span<const View> out) {
  MOSS_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(node, scalar_int(in[1]), static_cast<int64_t>(in[0].shape.size())));
  const AxisSplit s = split_at(in[0].shape, axis);
  const bool exclusive = node.attr_int("exclusive", 0) != 0;
  const bool reverse = node.attr_int("reverse", 0) != 0;
  return dispatch_numeric(node, in[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    const T* x = in[0].as<T>();
    T* y = out[0].as<T>();
    for (int64_t o = 0; o < s.outer; ++o) {
      for (int64_t j = 0; j < s.inner; ++j) {
        C acc = C(0);
        for (int64_t t = 0; t < s.n; ++t) {
          const int64_t i = reverse ? s.n - 1 - t : t;
          const int64_t p = (o * s.n + i) * s.inner + j;
          const C v = static_cast<C>(x[p]);
          if (exclusive) {
            y[p] = T(acc);
            acc = C(acc + v);
          } else {
            acc = C(acc + v);
            y[p] = T(acc);
          }
        }
      }
    }
    return Status::Ok();
  });
}

// ---- Tile -----------------------------------------------------------------------------------

Status infer_Tile(const Node& node, std::span<const TensorInfo* const> in,
                  std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 2, 2));
  MOSS_ASSIGN_OR_RETURN(auto reps, const_ints(node, in[1], "repeats"));
  if (reps.size() != in[0]->shape.size()) {
    return invalid_argument("{}: repeats has {} values for rank {}", node.label(), reps.size(), in[0]->shape.size());
  }
  std::vector<int64_t> shape = in[0]->shape;
  for (size_t i = 0; i < reps.size(); ++i) {
    if (reps[i] < 0) return invalid_argument("{}: negative repeat", node.label());
    shape[i] *= reps[i];
  }
  return set_out(out, in[0]->dtype, std::move(shape));
}

// Copies element-by-element from the input position each output index maps to (modulo / mapped).
template <typename Map>
void gather_positions(const View& in, const View& out, Map map) {
  const auto is = dense_strides(in.shape);
  const size_t es = dtype_size(in.dtype);
  const size_t r = out.shape.size();
  std::vector<int64_t> idx(r, 0);
  for (int64_t o = 0; o < out.numel; ++o) {
    int64_t src = 0;
    for (size_t d = 0; d < r; ++d) src += map(d, idx) * is[d];
    std::memcpy(out.data + o * es, in.data + src * es, es);
    for (size_t d = r; d-- > 0;) {
      if (++idx[d] < out.shape[d]) break;
      idx[d] = 0;
    }
  }
}

Status run_Tile(const Node&, std::span<const View> in, std::span<const View> out) {
  gather_positions(in[0], out[0], [&](size_t d, const std::vector<int64_t>& idx) { return idx[d] % in[0].shape[d]; });
  return Status::Ok();
}

// ---- DepthToSpace / SpaceToDepth -------------------------------------------------------------

Status infer_space_depth(const Node& node, std::span<const TensorInfo* const> in,
                         std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 1, 1));
  const auto& s = in[0]->shape;
  const int64_t b = node.attr_int("blocksize", 0);
  if (s.size() != 4) return invalid_argument("{}: input must be 4-D", node.label());
  if (b < 1) return invalid_argument("{}: blocksize must be >= 1", node.label());
  const std::string mode = node.attr_string("mode", "DCR");
  if (mode != "DCR" && mode != "CRD") return invalid_argument("{}: mode must be DCR or CRD", node.label());
  if (node.op_type == "DepthToSpace") {
    if (s[1] % (b * b) != 0) return invalid_argument("{}: channels not divisible by blocksize^2", node.label());
    return set_out(out, in[0]->dtype, {s[0], s[1] / (b * b), s[2] * b, s[3] * b});
  }
  if (s[2] % b != 0 || s[3] % b != 0) return invalid_argument("{}: H and W must be divisible by blocksize", node.label());
  return set_out(out, in[0]->dtype, {s[0], s[1] * b * b, s[2] / b, s[3] / b});
}

Status run_space_depth(const Node& node, std::span<const View> in, std::span<const View> out) {
  const int64_t b = node.attr_int("blocksize", 0);
  const bool crd = node.attr_string("mode", "DCR") == "CRD";
  const bool d2s = node.op_type == "DepthToSpace";
  // Map every output index (n, c, h, w) to its input position; the view is 4-D both ways.
  const int64_t C_out = out[0].shape[1];
  const int64_t C_in = in[0].shape[1];
  gather_positions(in[0], out[0], [&](size_t d, const std::vector<int64_t>& idx) -> int64_t {
    const int64_t n = idx[0], c = idx[1], h = idx[2], w = idx[3];
    if (d2s) {
      const int64_t bh = h % b, bw = w % b;
      if (d == 0) return n;
      if (d == 1) return crd ? c * b * b + bh * b + bw : (bh * b + bw) * C_out + c;
      return d == 2 ? h / b : w / b;
    }
    const int64_t blk = crd ? c % (b * b) : c / C_in;
    const int64_t ch = crd ? c / (b * b) : c % C_in;
    if (d == 0) return n;
    if (d == 1) return ch;
    return d == 2 ? h * b + blk / b : w * b + blk % b;
  });
  return Status::Ok();
}

// ---- ReverseSequence ------------------------------------------------------------------------

Status infer_ReverseSequence(const Node& node, std::span<const TensorInfo* const> in,
                             std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 2, 2));
  MOSS_RETURN_IF_ERROR(require_dtype(node, *in[1], {DType::kInt64}, "sequence_lens"));
  const int64_t ta = node.attr_int("time_axis", 0), ba = node.attr_int("batch_axis", 1);
  if (in[0]->shape.size() < 2 || !((ta == 0 && ba == 1) || (ta == 1 && ba == 0))) {
    return invalid_argument("{}: time_axis/batch_axis must be 0/1 or 1/0 of a rank >= 2 input", node.label());
  }
  if (in[1]->shape.size() != 1 || in[1]->shape[0] != in[0]->shape[static_cast<size_t>(ba)]) {
    return invalid_argument("{}: sequence_lens must have the batch size", node.label());
  }
  return set_out(out, in[0]->dtype, in[0]->shape);
}

Status run_ReverseSequence(const Node& node, std::span<const View> in, std::span<const View> out) {
  const size_t ta = static_cast<size_t>(node.attr_int("time_axis", 0));
  const size_t ba = static_cast<size_t>(node.attr_int("batch_axis", 1));
  const int64_t* lens = in[1].as<int64_t>();
  for (int64_t b = 0; b < in[0].shape[ba]; ++b) {
    if (lens[b] < 0 || lens[b] > in[0].shape[ta]) {
      return invalid_argument("{}: sequence length {} is out of range", node.label(), lens[b]);
    }
  }
  gather_positions(in[0], out[0], [&](size_t d, const std::vector<int64_t>& idx) {
    const int64_t t = idx[ta], len = lens[idx[ba]];
    return d == ta && t < len ? len - 1 - t : idx[d];
  });
  return Status::Ok();
}

// ---- Size ----------------------------------------------------------------------------------

Status infer_Size(const Node& node, std::span<const TensorInfo* const> in,
                  std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 1, 1));
  return set_out(out, DType::kInt64, {});
}

Status run_Size(const Node&, std::span<const View> in, std::span<const View> out) {
  out[0].as<int64_t>()[0] = numel_of(in[0].shape);
  return Status::Ok();
}

}  // namespace

std::vector<OpKernel> index_kernels() {
  return {
      {"Trilu", infer_Trilu, run_Trilu},
      {"EyeLike", infer_EyeLike, run_EyeLike},
      {"Range", infer_Range, run_Range, false, 0b111},
      {"OneHot", infer_OneHot, run_OneHot, false, 0b10},
      {"CumSum", infer_CumSum, run_CumSum},
      {"Tile", infer_Tile, run_Tile, false, 0b10},
      {"DepthToSpace", infer_space_depth, run_space_depth},
      {"SpaceToDepth", infer_space_depth, run_space_depth},
      {"ReverseSequence", infer_ReverseSequence, run_ReverseSequence},
      {"Size", infer_Size, run_Size, true},
  };
}

}  // namespace moss::engine::ref
