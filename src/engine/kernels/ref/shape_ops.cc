// Data-movement operators: views that reshape (run = copy), Transpose, Concat, Split, Slice,
// Gather, Expand, Pad, and the shape-producing Shape, ConstantOfShape and Constant. They move
// bytes, so they work for every element type.
#include "engine/kernels/ref/broadcast.h"
#include "engine/kernels/ref/ref_kernels.h"
#include "engine/kernels/ref/ref_util.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <numeric>

namespace moss::engine::ref {
namespace {

Status run_copy(const Node&, std::span<const View> in, std::span<const View> out) {
  size_t bytes = static_cast<size_t>(out[0].numel) * dtype_size(out[0].dtype);
  if (bytes > 0 && in[0].data != out[0].data) std::memcpy(out[0].data, in[0].data, bytes);
  return Status::Ok();
}

// ---- Reshape / Flatten / Squeeze / Unsqueeze -------------------------------------------------

Status infer_Reshape(const Node& node, std::span<const TensorInfo* const> in,
                     std::vector<TensorInfo>& out) {
  if (node.opset < 5) return unimplemented("{}: opset < 5 (shape attribute) is not supported", node.label());
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 2, 2));
  MOSS_ASSIGN_OR_RETURN(auto shape, const_ints(node, in[1], "shape"));
  const bool allowzero = node.attr_int("allowzero", 0) != 0;
  const auto& src = in[0]->shape;
  int infer_at = -1;
  int64_t known = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == 0 && !allowzero) {
      if (i >= src.size()) return invalid_argument("{}: 0 at index {} beyond input rank", node.label(), i);
      shape[i] = src[i];
    }
    if (shape[i] == -1) {
      if (infer_at >= 0) return invalid_argument("{}: more than one -1 in shape", node.label());
      infer_at = static_cast<int>(i);
    } else if (shape[i] < 0) {
      return invalid_argument("{}: negative dimension {} in shape", node.label(), shape[i]);
    } else if (__builtin_mul_overflow(known, shape[i], &known)) {
      return invalid_argument("{}: shape {} is too large", node.label(), shape_to_string(shape));
    }
  }
  const int64_t total = in[0]->numel();
  if (infer_at >= 0) {
    if (known == 0 || total % known != 0) {
      return invalid_argument("{}: cannot reshape {} into {}", node.label(), shape_to_string(src),
                              shape_to_string(shape));
    }
    shape[infer_at] = total / known;
  } else if (known != total) {
    return invalid_argument("{}: cannot reshape {} into {}", node.label(), shape_to_string(src),
                            shape_to_string(shape));
  }
  return set_out(out, in[0]->dtype, std::move(shape));
}

Status infer_Flatten(const Node& node, std::span<const TensorInfo* const> in,
                     std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 1, 1));
  const auto& s = in[0]->shape;
  int64_t r = static_cast<int64_t>(s.size());
  int64_t axis = node.attr_int("axis", 1);
  if (axis < -r || axis > r) return invalid_argument("{}: axis {} out of range", node.label(), axis);
  if (axis < 0) axis += r;
  int64_t a = 1, b = 1;
  for (int64_t i = 0; i < r; ++i) (i < axis ? a : b) *= s[i];
  return set_out(out, in[0]->dtype, {a, b});
}

Result<std::vector<int64_t>> axes_of(const Node& node, std::span<const TensorInfo* const> in,
                                     int attr_until_opset) {
  if (node.opset < attr_until_opset) return node.attr_ints("axes");
  return const_ints(node, in.size() > 1 ? in[1] : nullptr, "axes");
}

Status infer_Squeeze(const Node& node, std::span<const TensorInfo* const> in,
                     std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 1, node.opset < 13 ? 1 : 2));
  MOSS_ASSIGN_OR_RETURN(auto axes, axes_of(node, in, 13));
  const auto& s = in[0]->shape;
  const int64_t r = static_cast<int64_t>(s.size());
  std::vector<bool> drop(s.size(), false);
  if (axes.empty()) {
    for (size_t i = 0; i < s.size(); ++i) drop[i] = s[i] == 1;
  }
  for (int64_t a : axes) {
    MOSS_ASSIGN_OR_RETURN(int64_t ax, normalize_axis(node, a, r));
    if (s[ax] != 1) return invalid_argument("{}: cannot squeeze dimension {} of size {}", node.label(), ax, s[ax]);
    drop[ax] = true;
  }
  std::vector<int64_t> shape;
  for (size_t i = 0; i < s.size(); ++i) {
    if (!drop[i]) shape.push_back(s[i]);
  }
  return set_out(out, in[0]->dtype, std::move(shape));
}

Status infer_Unsqueeze(const Node& node, std::span<const TensorInfo* const> in,
                       std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, node.opset < 13 ? 1 : 2, node.opset < 13 ? 1 : 2));
  MOSS_ASSIGN_OR_RETURN(auto axes, axes_of(node, in, 13));
  const auto& s = in[0]->shape;
  const int64_t r = static_cast<int64_t>(s.size() + axes.size());
  if (r > static_cast<int64_t>(kMaxTensorRank)) return invalid_argument("{}: rank too large", node.label());
  std::vector<bool> ins(r, false);
  for (int64_t a : axes) {
    MOSS_ASSIGN_OR_RETURN(int64_t ax, normalize_axis(node, a, r));
    if (ins[ax]) return invalid_argument("{}: axis {} repeated", node.label(), a);
    ins[ax] = true;
  }
  std::vector<int64_t> shape;
  size_t k = 0;
  for (int64_t i = 0; i < r; ++i) shape.push_back(ins[i] ? 1 : s[k++]);
  return set_out(out, in[0]->dtype, std::move(shape));
}

// ---- Transpose ------------------------------------------------------------------------------

Result<std::vector<int64_t>> perm_of(const Node& node, size_t rank) {
  auto perm = node.attr_ints("perm");
  if (perm.empty()) {
    perm.resize(rank);
    for (size_t i = 0; i < rank; ++i) perm[i] = static_cast<int64_t>(rank - 1 - i);
  }
  if (perm.size() != rank) return invalid_argument("{}: perm has {} entries for rank {}", node.label(), perm.size(), rank);
  std::vector<bool> seen(rank, false);
  for (int64_t p : perm) {
    if (p < 0 || p >= static_cast<int64_t>(rank) || seen[p]) {
      return invalid_argument("{}: perm is not a permutation", node.label());
    }
    seen[p] = true;
  }
  return perm;
}

Status infer_Transpose(const Node& node, std::span<const TensorInfo* const> in,
                       std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 1, 1));
  MOSS_ASSIGN_OR_RETURN(auto perm, perm_of(node, in[0]->shape.size()));
  std::vector<int64_t> shape;
  for (int64_t p : perm) shape.push_back(in[0]->shape[p]);
  return set_out(out, in[0]->dtype, std::move(shape));
}

template <typename T>
void gather_strided(const T* src, T* dst, std::span<const int64_t> out_shape,
                    const std::vector<int64_t>& in_strides) {
  std::vector<int64_t> out_strides(out_shape.size(), 1);
  for_each_row<1>(out_shape, {&in_strides},
                  [&](int64_t o, std::array<int64_t, 1> off, int64_t n, std::array<int64_t, 1> st) {
                    const T* s = src + off[0];
                    for (int64_t i = 0; i < n; ++i) dst[o + i] = s[i * st[0]];
                  });
}

// Copies src (strided view with in_strides over out_shape) into a dense dst.
void strided_copy(DType dt, const uint8_t* src, uint8_t* dst, std::span<const int64_t> out_shape,
                  const std::vector<int64_t>& in_strides) {
  switch (dtype_size(dt)) {
    case 1: gather_strided(src, dst, out_shape, in_strides); break;
    case 2: gather_strided(reinterpret_cast<const uint16_t*>(src), reinterpret_cast<uint16_t*>(dst), out_shape, in_strides); break;
    case 4: gather_strided(reinterpret_cast<const uint32_t*>(src), reinterpret_cast<uint32_t*>(dst), out_shape, in_strides); break;
    default: gather_strided(reinterpret_cast<const uint64_t*>(src), reinterpret_cast<uint64_t*>(dst), out_shape, in_strides); break;
  }
}

Status run_Transpose(const Node& node, std::span<const View> in, std::span<const View> out) {
  MOSS_ASSIGN_OR_RETURN(auto perm, perm_of(node, in[0].shape.size()));
  auto src_strides = dense_strides(in[0].shape);
  std::vector<int64_t> st(perm.size());
  for (size_t i = 0; i < perm.size(); ++i) st[i] = src_strides[perm[i]];
  strided_copy(in[0].dtype, in[0].data, out[0].data, out[0].shape, st);
  return Status::Ok();
}

// ---- Concat / Split -------------------------------------------------------------------------

Status infer_Concat(const Node& node, std::span<const TensorInfo* const> in,
                    std::vector<TensorInfo>& out) {
  if (in.empty() || !in[0]) return invalid_argument("{}: needs at least one input", node.label());
  const auto& s0 = in[0]->shape;
  if (!node.attr("axis")) {
    if (node.opset >= 4) return invalid_argument("{}: attribute 'axis' is required", node.label());
  }
  MOSS_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(node, node.attr_int("axis", 1), static_cast<int64_t>(s0.size())));
  std::vector<int64_t> shape = s0;
  shape[axis] = 0;
  for (const TensorInfo* t : in) {
    if (!t) return invalid_argument("{}: empty input name", node.label());
    if (t->dtype != in[0]->dtype || t->shape.size() != s0.size()) {
      return invalid_argument("{}: inputs differ in type or rank", node.label());
    }
    for (size_t d = 0; d < s0.size(); ++d) {
      if (static_cast<int64_t>(d) != axis && t->shape[d] != s0[d]) {
        return invalid_argument("{}: input shapes {} and {} differ off the axis", node.label(),
                                shape_to_string(s0), shape_to_string(t->shape));
      }
    }
    shape[axis] += t->shape[axis];
  }
  return set_out(out, in[0]->dtype, std::move(shape));
}

Status run_Concat(const Node& node, std::span<const View> in, std::span<const View> out) {
  const int64_t r = static_cast<int64_t>(out[0].shape.size());
  int64_t axis = node.attr_int("axis", 1);
  if (axis < 0) axis += r;
  const size_t es = dtype_size(out[0].dtype);
  int64_t outer = 1;
  for (int64_t i = 0; i < axis; ++i) outer *= out[0].shape[i];
  const int64_t out_row = out[0].numel / std::max<int64_t>(outer, 1) * es;
  int64_t col = 0;
  for (const View& v : in) {
    const int64_t row = v.numel / std::max<int64_t>(outer, 1) * es;
    for (int64_t o = 0; o < outer && row > 0; ++o) {
      std::memcpy(out[0].data + o * out_row + col, v.data + o * row, row);
    }
    col += row;
  }
  return Status::Ok();
}

Result<std::vector<int64_t>> split_sizes(const Node& node, std::span<const TensorInfo* const> in,
                                         int64_t dim, size_t n_out) {
  std::vector<int64_t> split;
  if (node.opset < 13) {
    split = node.attr_ints("split");
  } else {
    MOSS_ASSIGN_OR_RETURN(split, const_ints(node, in.size() > 1 ? in[1] : nullptr, "split"));
  }
  if (split.empty()) {
    int64_t n = static_cast<int64_t>(n_out);
    if (node.opset >= 18) {
      if (!node.attr("num_outputs")) return invalid_argument("{}: needs 'split' or 'num_outputs'", node.label());
      n = node.attr_int("num_outputs", 0);
      if (n != static_cast<int64_t>(n_out) || n <= 0) return invalid_argument("{}: num_outputs does not match outputs", node.label());
      int64_t chunk = (dim + n - 1) / n;
      for (int64_t i = 0; i < n; ++i) split.push_back(std::max<int64_t>(0, std::min(chunk, dim - i * chunk)));
    } else {
      if (n == 0 || dim % n != 0) return invalid_argument("{}: dimension {} does not split evenly in {}", node.label(), dim, n);
      split.assign(n_out, dim / n);
    }
  }
  int64_t total = 0;
  for (int64_t s : split) {
    if (s < 0 || s > dim) return invalid_argument("{}: split {} is out of range", node.label(), s);
    total += s;
  }
  if (total != dim || split.size() != n_out) {
    return invalid_argument("{}: split sizes do not add up to {} over {} outputs", node.label(), dim, n_out);
  }
  return split;
}

Status infer_Split(const Node& node, std::span<const TensorInfo* const> in,
                   std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 1, node.opset < 13 ? 1 : 2));
  const auto& s = in[0]->shape;
  MOSS_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(node, node.attr_int("axis", 0), static_cast<int64_t>(s.size())));
  MOSS_ASSIGN_OR_RETURN(auto split, split_sizes(node, in, s[axis], node.outputs.size()));
  out.resize(split.size());
  for (size_t i = 0; i < split.size(); ++i) {
    out[i].dtype = in[0]->dtype;
    out[i].shape = s;
    out[i].shape[axis] = split[i];
  }
  return Status::Ok();
}

Status run_Split(const Node& node, std::span<const View> in, std::span<const View> out) {
  const int64_t r = static_cast<int64_t>(in[0].shape.size());
  int64_t axis = node.attr_int("axis", 0);
  if (axis < 0) axis += r;
  const size_t es = dtype_size(in[0].dtype);
  int64_t outer = 1;
  for (int64_t i = 0; i < axis; ++i) outer *= in[0].shape[i];
  const int64_t in_row = in[0].numel / std::max<int64_t>(outer, 1) * es;
  int64_t col = 0;
  for (const View& v : out) {
    const int64_t row = v.numel / std::max<int64_t>(outer, 1) * es;
    for (int64_t o = 0; o < outer && row > 0; ++o) {
      if (v.data) std::memcpy(v.data + o * row, in[0].data + o * in_row + col, row);
    }
    col += row;
  }
  return Status::Ok();
}

// ---- Slice ----------------------------------------------------------------------------------

struct SliceSpec {
  std::vector<int64_t> start, step, shape;
};

Result<SliceSpec> slice_spec(const Node& node, std::span<const TensorInfo* const> in) {
  std::vector<int64_t> starts, ends, axes, steps;
  if (node.opset < 10) {
    starts = node.attr_ints("starts");
    ends = node.attr_ints("ends");
    axes = node.attr_ints("axes");
  } else {
    MOSS_RETURN_IF_ERROR(require_inputs(node, in, 3, 5));
    MOSS_ASSIGN_OR_RETURN(starts, const_ints(node, in[1], "starts"));
    MOSS_ASSIGN_OR_RETURN(ends, const_ints(node, in[2], "ends"));
    MOSS_ASSIGN_OR_RETURN(axes, const_ints(node, in.size() > 3 ? in[3] : nullptr, "axes"));
    MOSS_ASSIGN_OR_RETURN(steps, const_ints(node, in.size() > 4 ? in[4] : nullptr, "steps"));
  }
  const auto& s = in[0]->shape;
  const int64_t r = static_cast<int64_t>(s.size());
  if (starts.size() != ends.size()) return invalid_argument("{}: starts and ends differ in length", node.label());
  if (axes.empty()) {
    for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
  }
  if (steps.empty()) steps.assign(starts.size(), 1);
  if (axes.size() != starts.size() || steps.size() != starts.size()) {
    return invalid_argument("{}: axes/steps length does not match starts", node.label());
  }
  SliceSpec spec{std::vector<int64_t>(r, 0), std::vector<int64_t>(r, 1), s};
  std::vector<bool> seen(r, false);
  for (size_t i = 0; i < starts.size(); ++i) {
    MOSS_ASSIGN_OR_RETURN(int64_t ax, normalize_axis(node, axes[i], r));
    if (seen[ax]) return invalid_argument("{}: axis {} repeated", node.label(), ax);
    seen[ax] = true;
    const int64_t dim = s[ax];
    const int64_t step = std::max<int64_t>(steps[i], -std::numeric_limits<int64_t>::max());
    if (step == 0) return invalid_argument("{}: step is 0", node.label());
    int64_t b = starts[i], e = ends[i];
    if (b < 0) b += dim;
    if (e < 0) e = e + dim;
    if (step > 0) {
      b = std::clamp<int64_t>(b, 0, dim);
      e = std::clamp<int64_t>(e, 0, dim);
    } else {
      b = std::clamp<int64_t>(b, 0, dim - 1);
      e = std::clamp<int64_t>(e, -1, dim - 1);
    }
    // Written so that no intermediate overflows for extreme steps.
    int64_t len = step > 0 ? (e - b <= 0 ? 0 : 1 + (e - b - 1) / step)
                           : (b - e <= 0 ? 0 : 1 + (b - e - 1) / (-step));
    spec.start[ax] = b;
    spec.step[ax] = step;
    spec.shape[ax] = std::max<int64_t>(0, len);
  }
  return spec;
}

Status infer_Slice(const Node& node, std::span<const TensorInfo* const> in,
                   std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 1, 5));
  MOSS_ASSIGN_OR_RETURN(auto spec, slice_spec(node, in));
  return set_out(out, in[0]->dtype, spec.shape);
}

Status run_Slice(const Node& node, std::span<const View> in, std::span<const View> out) {
  // Re-derive the spec from constant inputs: wrap views as infos carrying their values.
  std::vector<TensorInfo> infos(in.size());
  std::vector<const TensorInfo*> ptrs(in.size(), nullptr);
  for (size_t i = 0; i < in.size(); ++i) {
    infos[i].dtype = in[i].dtype;
    infos[i].shape.assign(in[i].shape.begin(), in[i].shape.end());
    if (i > 0 && in[i].data) {
      MOSS_ASSIGN_OR_RETURN(auto t, Tensor::from_bytes(in[i].dtype, infos[i].shape,
                                                       {in[i].data, static_cast<size_t>(in[i].numel) * dtype_size(in[i].dtype)}));
      infos[i].value = std::make_shared<const Tensor>(std::move(t));
    }
    if (in[i].data || i == 0) ptrs[i] = &infos[i];
  }
  MOSS_ASSIGN_OR_RETURN(auto spec, slice_spec(node, ptrs));
  if (out[0].numel == 0) return Status::Ok();
  auto st = dense_strides(in[0].shape);
  int64_t base = 0;
  for (size_t d = 0; d < st.size(); ++d) {
    base += spec.start[d] * st[d];
    st[d] *= spec.step[d];
  }
  strided_copy(in[0].dtype, in[0].data + base * dtype_size(in[0].dtype), out[0].data, out[0].shape, st);
  return Status::Ok();
}

// ---- Gather ---------------------------------------------------------------------------------

Status infer_Gather(const Node& node, std::span<const TensorInfo* const> in,
                    std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 2, 2));
  MOSS_RETURN_IF_ERROR(require_dtype(node, *in[1], {DType::kInt64, DType::kInt32}, "indices"));
  const auto& s = in[0]->shape;
  MOSS_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(node, node.attr_int("axis", 0), static_cast<int64_t>(s.size())));
  std::vector<int64_t> shape(s.begin(), s.begin() + axis);
  shape.insert(shape.end(), in[1]->shape.begin(), in[1]->shape.end());
  shape.insert(shape.end(), s.begin() + axis + 1, s.end());
  return set_out(out, in[0]->dtype, std::move(shape));
}

Status run_Gather(const Node& node, std::span<const View> in, std::span<const View> out) {
  const auto& s = in[0].shape;
  int64_t axis = node.attr_int("axis", 0);
  if (axis < 0) axis += static_cast<int64_t>(s.size());
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < axis; ++i) outer *= s[i];
  for (size_t i = axis + 1; i < s.size(); ++i) inner *= s[i];
  const int64_t dim = s[axis];
  const size_t es = dtype_size(in[0].dtype);
  const int64_t n_idx = in[1].numel;
  std::vector<int64_t> idx(n_idx);
  for (int64_t i = 0; i < n_idx; ++i) {
    int64_t v = in[1].dtype == DType::kInt64 ? in[1].as<int64_t>()[i] : in[1].as<int32_t>()[i];
    if (v < -dim || v >= dim) {
      return out_of_range("{}: index {} out of range for dimension {}", node.label(), v, dim);
    }
    idx[i] = v < 0 ? v + dim : v;
  }
  const size_t row = static_cast<size_t>(inner) * es;
  uint8_t* dst = out[0].data;
  for (int64_t o = 0; o < outer; ++o) {
    const uint8_t* src = in[0].data + static_cast<size_t>(o * dim) * row;
    for (int64_t i = 0; i < n_idx; ++i) {
      std::memcpy(dst, src + idx[i] * row, row);
      dst += row;
    }
  }
  return Status::Ok();
}

// ---- Expand ---------------------------------------------------------------------------------

Status infer_Expand(const Node& node, std::span<const TensorInfo* const> in,
                    std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 2, 2));
  MOSS_ASSIGN_OR_RETURN(auto shape, const_ints(node, in[1], "shape"));
  MOSS_ASSIGN_OR_RETURN(auto s, broadcast_shapes(node, in[0]->shape, shape));
  return set_out(out, in[0]->dtype, std::move(s));
}

Status run_Expand(const Node&, std::span<const View> in, std::span<const View> out) {
  auto st = broadcast_strides(in[0].shape, out[0].shape);
  strided_copy(in[0].dtype, in[0].data, out[0].data, out[0].shape, st);
  return Status::Ok();
}

// ---- Shape / ConstantOfShape / Constant -----------------------------------------------------

void shape_range(const Node& node, int64_t r, int64_t& b, int64_t& e) {
  b = node.attr_int("start", 0);
  e = node.attr_int("end", r);
  if (b < 0) b += r;
  if (e < 0) e += r;
  b = std::clamp<int64_t>(b, 0, r);
  e = std::clamp<int64_t>(e, 0, r);
}

Status infer_Shape(const Node& node, std::span<const TensorInfo* const> in,
                   std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 1, 1));
  int64_t b, e;
  shape_range(node, static_cast<int64_t>(in[0]->shape.size()), b, e);
  return set_out(out, DType::kInt64, {std::max<int64_t>(0, e - b)});
}

Status run_Shape(const Node& node, std::span<const View> in, std::span<const View> out) {
  int64_t b, e;
  shape_range(node, static_cast<int64_t>(in[0].shape.size()), b, e);
  for (int64_t i = b; i < e; ++i) out[0].as<int64_t>()[i - b] = in[0].shape[i];
  return Status::Ok();
}

Status infer_ConstantOfShape(const Node& node, std::span<const TensorInfo* const> in,
                             std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 1, 1));
  MOSS_ASSIGN_OR_RETURN(auto shape, const_ints(node, in[0], "input"));
  for (int64_t d : shape) {
    if (d < 0) return invalid_argument("{}: negative dimension", node.label());
  }
  DType dt = DType::kFloat32;
  if (const Attribute* a = node.attr("value")) {
    if (!a->t || a->t->numel() != 1) return invalid_argument("{}: 'value' must hold one element", node.label());
    dt = a->t->dtype();
    if (dt != DType::kFloat32 && dt != DType::kInt64 && dt != DType::kInt32 && dt != DType::kBool) {
      return unimplemented("{}: value type {} is not supported", node.label(), dtype_name(dt));
    }
  }
  return set_out(out, dt, std::move(shape));
}

Status run_ConstantOfShape(const Node& node, std::span<const View>, std::span<const View> out) {
  const size_t es = dtype_size(out[0].dtype);
  uint8_t zero[8] = {};
  const uint8_t* v = zero;
  if (const Attribute* a = node.attr("value")) v = a->t->raw();
  for (int64_t i = 0; i < out[0].numel; ++i) std::memcpy(out[0].data + i * es, v, es);
  return Status::Ok();
}

Result<std::shared_ptr<const Tensor>> constant_value(const Node& node) {
  if (node.attrs.size() != 1) return invalid_argument("{}: needs exactly one value attribute", node.label());
  const auto& [key, a] = *node.attrs.begin();
  if (key == "value" && a.t) return a.t;
  if (key == "value_float") return std::make_shared<const Tensor>(Tensor::from_vector<float>({}, {a.f}));
  if (key == "value_floats") return std::make_shared<const Tensor>(Tensor::from_vector<float>({static_cast<int64_t>(a.floats.size())}, a.floats));
  if (key == "value_int") return std::make_shared<const Tensor>(Tensor::from_vector<int64_t>({}, {a.i}));
  if (key == "value_ints") return std::make_shared<const Tensor>(Tensor::from_vector<int64_t>({static_cast<int64_t>(a.ints.size())}, a.ints));
  return unimplemented("{}: attribute '{}' is not supported", node.label(), key);
}

Status infer_Constant(const Node& node, std::span<const TensorInfo* const> in,
                      std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 0, 0));
  MOSS_ASSIGN_OR_RETURN(auto v, constant_value(node));
  out.resize(1);
  out[0].dtype = v->dtype();
  out[0].shape = v->shape();
  out[0].value = v;
  return Status::Ok();
}

Status run_Constant(const Node& node, std::span<const View>, std::span<const View> out) {
  MOSS_ASSIGN_OR_RETURN(auto v, constant_value(node));
  if (v->nbytes() > 0) std::memcpy(out[0].data, v->raw(), v->nbytes());
  return Status::Ok();
}

// ---- Pad ------------------------------------------------------------------------------------

struct PadSpec {
  std::vector<int64_t> begin;
  std::string mode;
};

Result<PadSpec> pad_spec(const Node& node, std::span<const TensorInfo* const> in) {
  const int64_t r = static_cast<int64_t>(in[0]->shape.size());
  std::vector<int64_t> pads;
  if (node.opset < 11) {
    pads = node.attr_ints("pads");
  } else {
    MOSS_RETURN_IF_ERROR(require_inputs(node, in, 2, 4));
    MOSS_ASSIGN_OR_RETURN(pads, const_ints(node, in[1], "pads"));
  }
  std::vector<int64_t> axes;
  if (in.size() > 3 && in[3]) {
    MOSS_ASSIGN_OR_RETURN(axes, const_ints(node, in[3], "axes"));
  } else {
    for (int64_t i = 0; i < r; ++i) axes.push_back(i);
  }
  if (pads.size() != 2 * axes.size()) {
    return invalid_argument("{}: pads has {} entries for {} axes", node.label(), pads.size(), axes.size());
  }
  for (int64_t v : pads) {
    if (v > (int64_t{1} << 40) || v < -(int64_t{1} << 40)) return invalid_argument("{}: pad {} is out of range", node.label(), v);
  }
  PadSpec spec;
  spec.begin.assign(2 * r, 0);
  for (size_t i = 0; i < axes.size(); ++i) {
    MOSS_ASSIGN_OR_RETURN(int64_t ax, normalize_axis(node, axes[i], r));
    spec.begin[ax] = pads[i];
    spec.begin[r + ax] = pads[axes.size() + i];
  }
  spec.mode = node.attr_string("mode", "constant");
  if (spec.mode != "constant" && spec.mode != "reflect" && spec.mode != "edge" && spec.mode != "wrap") {
    return unimplemented("{}: mode '{}' is not supported", node.label(), spec.mode);
  }
  return spec;
}

Status infer_Pad(const Node& node, std::span<const TensorInfo* const> in,
                 std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 1, node.opset < 11 ? 1 : 4));
  MOSS_ASSIGN_OR_RETURN(auto spec, pad_spec(node, in));
  const auto& s = in[0]->shape;
  const size_t r = s.size();
  std::vector<int64_t> shape(r);
  for (size_t d = 0; d < r; ++d) {
    shape[d] = s[d] + spec.begin[d] + spec.begin[r + d];
    if (shape[d] < 0) return invalid_argument("{}: pads make dimension {} negative", node.label(), d);
    if (spec.mode != "constant" && s[d] == 0 && shape[d] > 0) {
      return invalid_argument("{}: cannot {}-pad an empty dimension", node.label(), spec.mode);
    }
    if (spec.mode == "reflect" && s[d] == 1 && shape[d] > 1) {
      return invalid_argument("{}: cannot reflect-pad a dimension of size 1", node.label());
    }
  }
  if (in.size() > 2 && in[2] && in[2]->dtype != in[0]->dtype) {
    return invalid_argument("{}: constant_value type differs from data", node.label());
  }
  return set_out(out, in[0]->dtype, std::move(shape));
}

enum class PadMode { kConstant, kReflect, kEdge, kWrap };

PadMode pad_mode(const std::string& mode) {
  if (mode == "reflect") return PadMode::kReflect;
  if (mode == "edge") return PadMode::kEdge;
  if (mode == "wrap") return PadMode::kWrap;
  return PadMode::kConstant;  // pad_spec refused anything else
}

// The source index along a dim of size `dim` of output position i (i already shifted by the
// leading pad), or -1 for the constant.
int64_t pad_source(int64_t i, int64_t dim, PadMode mode) {
  if (i >= 0 && i < dim) return i;
  switch (mode) {
    case PadMode::kConstant: return -1;
    case PadMode::kEdge: return i < 0 ? 0 : dim - 1;
    case PadMode::kWrap: return ((i % dim) + dim) % dim;
    case PadMode::kReflect: break;
  }
  // reflect: period 2*(dim-1), mirror without repeating the edge.
  const int64_t p = 2 * (dim - 1);
  int64_t m = ((i % p) + p) % p;
  return m < dim ? m : p - m;
}

// Row by row over the output's last dim: a row whose outer position falls in a constant pad is
// filled, any other copies its source row's inside part in one block and computes only the
// padded ends (Swin pads every window partition, mostly by nothing: a per-element loop made the
// Pads a fifth of its run time).
Status run_Pad(const Node& node, std::span<const View> in, std::span<const View> out) {
  std::vector<TensorInfo> infos(in.size());
  std::vector<const TensorInfo*> ptrs(in.size(), nullptr);
  for (size_t i = 0; i < in.size(); ++i) {
    infos[i].dtype = in[i].dtype;
    infos[i].shape.assign(in[i].shape.begin(), in[i].shape.end());
    if (i > 0 && in[i].data && (i == 1 || i == 3)) {
      MOSS_ASSIGN_OR_RETURN(auto t, Tensor::from_bytes(in[i].dtype, infos[i].shape,
                                                       {in[i].data, static_cast<size_t>(in[i].numel) * dtype_size(in[i].dtype)}));
      infos[i].value = std::make_shared<const Tensor>(std::move(t));
    }
    if (in[i].data || i == 0) ptrs[i] = &infos[i];
  }
  MOSS_ASSIGN_OR_RETURN(auto spec, pad_spec(node, ptrs));
  const PadMode mode = pad_mode(spec.mode);
  return dispatch_all(node, in[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    T cv{};
    if (node.opset < 11) {
      cv = static_cast<T>(node.attr_float("value", 0.0f));
    } else if (in.size() > 2 && in[2].data && in[2].numel > 0) {
      cv = in[2].as<T>()[0];
    }
    const auto& os = out[0].shape;
    const auto& is = in[0].shape;
    const size_t r = os.size();
    const T* x = in[0].as<T>();
    T* y = out[0].as<T>();
    if (out[0].numel == 0) return Status::Ok();
    if (r == 0) {
      y[0] = x[0];
      return Status::Ok();
    }
    const auto ist = dense_strides(is);
    const int64_t n = os[r - 1], in_n = is[r - 1], lead = spec.begin[r - 1];
    // Output positions [lo, hi) of a row read the source row at i - lead.
    const int64_t lo = std::clamp<int64_t>(lead, 0, n), hi = std::clamp<int64_t>(lead + in_n, lo, n);
    std::vector<int64_t> idx(r - 1, 0);
    const int64_t rows = out[0].numel / n;
    for (int64_t row = 0; row < rows; ++row) {
      int64_t src = 0;
      bool inside = true;
      for (size_t d = 0; d + 1 < r && inside; ++d) {
        const int64_t j = pad_source(idx[d] - spec.begin[d], is[d], mode);
        if (j < 0) inside = false; else src += j * ist[d];
      }
      T* yr = y + row * n;
      if (!inside) {
        std::fill_n(yr, n, cv);
      } else {
        const T* xr = x + src;
        if (hi > lo) std::copy_n(xr + (lo - lead), hi - lo, yr + lo);
        auto pad_end = [&](int64_t from, int64_t to) {
          for (int64_t i = from; i < to; ++i) {
            const int64_t j = pad_source(i - lead, in_n, mode);
            yr[i] = j < 0 ? cv : xr[j];
          }
        };
        pad_end(0, lo);
        pad_end(hi, n);
      }
      for (size_t d = r - 1; d-- > 0;) {
        if (++idx[d] < os[d]) break;
        idx[d] = 0;
      }
    }
    return Status::Ok();
  });
}

}  // namespace

std::vector<OpKernel> shape_kernels() {
  return {
      {"Reshape", infer_Reshape, run_copy, false, 0b10},
      {"Flatten", infer_Flatten, run_copy},
      {"Squeeze", infer_Squeeze, run_copy, false, 0b10},
      {"Unsqueeze", infer_Unsqueeze, run_copy, false, 0b10},
      {"Transpose", infer_Transpose, run_Transpose},
      {"Concat", infer_Concat, run_Concat},
      {"Split", infer_Split, run_Split, false, 0b10},
      {"Slice", infer_Slice, run_Slice, false, 0b11110},
      {"Gather", infer_Gather, run_Gather},
      {"Expand", infer_Expand, run_Expand, false, 0b10},
      {"Shape", infer_Shape, run_Shape, true},
      {"ConstantOfShape", infer_ConstantOfShape, run_ConstantOfShape, false, 0b1},
      {"Constant", infer_Constant, run_Constant},
      {"Pad", infer_Pad, run_Pad, false, 0b1010},
  };
}

}  // namespace moss::engine::ref
