// Operators whose output shape depends on input contents: NonZero, Compress, NonMaxSuppression,
// Unique. Dynamic kernels (kernel.h): the planner runs them in the plan's tail and they allocate
// their outputs per request.
#include "engine/kernels/evaluate.h"
#include "engine/kernels/ref/ref_kernels.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

namespace moss::engine::ref {
namespace {

std::vector<int64_t> shape_of(const View& v) { return {v.shape.begin(), v.shape.end()}; }

// ---- NonZero -----------------------------------------------------------------------------------

Status infer_NonZero(const Node& node, std::span<const TensorInfo* const> in,
                     std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 1, 1));
  MOSS_RETURN_IF_ERROR(dispatch_all(node, in[0]->dtype, [](auto) { return Status::Ok(); }));
  out.push_back(TensorInfo{DType::kInt64, {}, nullptr});
  return Status::Ok();
}

Result<std::vector<Tensor>> run_NonZero(const Node& node, std::span<const View> in,
                                        SubgraphRunner&) {
  const View& x = in[0];
  std::vector<int64_t> hits;
  MOSS_RETURN_IF_ERROR(dispatch_all(node, x.dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* p = x.as<T>();
    for (int64_t i = 0; i < x.numel; ++i) {
      if (p[i] != T{}) hits.push_back(i);
    }
    return Status::Ok();
  }));
  const int64_t rank = static_cast<int64_t>(x.shape.size());
  const int64_t n = static_cast<int64_t>(hits.size());
  MOSS_ASSIGN_OR_RETURN(Tensor out, Tensor::zeros(DType::kInt64, {rank, n}));
  int64_t* o = out.data<int64_t>();
  for (int64_t j = 0; j < n; ++j) {
    int64_t flat = hits[static_cast<size_t>(j)];
    for (int64_t d = rank - 1; d >= 0; --d) {
      const int64_t dim = x.shape[static_cast<size_t>(d)];
      o[d * n + j] = flat % dim;
      flat /= dim;
    }
  }
  std::vector<Tensor> r;
  r.push_back(std::move(out));
  return r;
}

// ---- Compress ----------------------------------------------------------------------------------

Status infer_Compress(const Node& node, std::span<const TensorInfo* const> in,
                      std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 2, 2));
  MOSS_RETURN_IF_ERROR(require_dtype(node, *in[1], {DType::kBool}, "condition"));
  if (in[1]->shape.size() != 1) {
    return invalid_argument("{}: condition must be 1-D, got {}", node.label(),
                            shape_to_string(in[1]->shape));
  }
  if (const Attribute* a = node.attr("axis")) {
    MOSS_RETURN_IF_ERROR(normalize_axis(node, a->i, static_cast<int64_t>(in[0]->shape.size())).status());
  }
  out.push_back(TensorInfo{in[0]->dtype, {}, nullptr});
  return Status::Ok();
}

Result<std::vector<Tensor>> run_Compress(const Node& node, std::span<const View> in,
                                         SubgraphRunner&) {
  const View& x = in[0];
  const bool* cond = in[1].as<bool>();
  const int64_t clen = in[1].numel;
  const size_t es = dtype_size(x.dtype);
  std::vector<int64_t> shape;
  int64_t outer = 1, len = x.numel, inner = 1;
  if (const Attribute* a = node.attr("axis")) {
    MOSS_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(node, a->i, static_cast<int64_t>(x.shape.size())));
    shape = shape_of(x);
    len = shape[static_cast<size_t>(axis)];
    for (int64_t d = 0; d < axis; ++d) outer *= shape[static_cast<size_t>(d)];
    for (size_t d = static_cast<size_t>(axis) + 1; d < shape.size(); ++d) inner *= shape[d];
  }
  if (clen > len) {
    return invalid_argument("{}: condition has {} entries, the axis {}", node.label(), clen, len);
  }
  std::vector<int64_t> keep;
  for (int64_t i = 0; i < clen; ++i) {
    if (cond[i]) keep.push_back(i);
  }
  const int64_t k = static_cast<int64_t>(keep.size());
  if (node.attr("axis")) {
    int64_t axis = node.attr("axis")->i;
    if (axis < 0) axis += static_cast<int64_t>(shape.size());
    shape[static_cast<size_t>(axis)] = k;
  } else {
    shape = {k};
  }
  MOSS_ASSIGN_OR_RETURN(Tensor out, Tensor::zeros(x.dtype, shape));
  const size_t row = static_cast<size_t>(inner) * es;
  uint8_t* o = out.raw();
  for (int64_t a = 0; a < outer; ++a) {
    for (int64_t i : keep) {
      if (row) std::memcpy(o, x.data + (a * len + i) * static_cast<int64_t>(row), row);
      o += row;
    }
  }
  std::vector<Tensor> r;
  r.push_back(std::move(out));
  return r;
}

// ---- NonMaxSuppression -------------------------------------------------------------------------

Status infer_NonMaxSuppression(const Node& node, std::span<const TensorInfo* const> in,
                               std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 2, 5));
  MOSS_RETURN_IF_ERROR(require_dtype(node, *in[0], {DType::kFloat32}, "boxes"));
  MOSS_RETURN_IF_ERROR(require_dtype(node, *in[1], {DType::kFloat32}, "scores"));
  const auto& b = in[0]->shape;
  const auto& s = in[1]->shape;
  if (b.size() != 3 || b[2] != 4 || s.size() != 3 || s[0] != b[0] || s[2] != b[1]) {
    return invalid_argument("{}: boxes {} and scores {} must be [B, N, 4] and [B, C, N]",
                            node.label(), shape_to_string(b), shape_to_string(s));
  }
  if (in.size() > 2 && in[2]) MOSS_RETURN_IF_ERROR(require_dtype(node, *in[2], {DType::kInt64}, "max_output_boxes_per_class"));
  for (size_t i = 3; i < in.size(); ++i) {
    if (in[i]) MOSS_RETURN_IF_ERROR(require_dtype(node, *in[i], {DType::kFloat32}, "threshold"));
  }
  const int64_t cpb = node.attr_int("center_point_box", 0);
  if (cpb != 0 && cpb != 1) {
    return invalid_argument("{}: center_point_box must be 0 or 1", node.label());
  }
  out.push_back(TensorInfo{DType::kInt64, {}, nullptr});
  return Status::Ok();
}

struct Box {
  float y1, x1, y2, x2;
};

Box box_at(const float* p, bool center) {
  if (center) {  // [x_center, y_center, width, height]
    return Box{p[1] - p[3] / 2, p[0] - p[2] / 2, p[1] + p[3] / 2, p[0] + p[2] / 2};
  }
  return Box{std::min(p[0], p[2]), std::min(p[1], p[3]), std::max(p[0], p[2]),
             std::max(p[1], p[3])};
}

float iou(const Box& a, const Box& b) {
  const float ih = std::min(a.y2, b.y2) - std::max(a.y1, b.y1);
  const float iw = std::min(a.x2, b.x2) - std::max(a.x1, b.x1);
  if (ih <= 0 || iw <= 0) return 0;
  const float inter = ih * iw;
  const float uni = (a.y2 - a.y1) * (a.x2 - a.x1) + (b.y2 - b.y1) * (b.x2 - b.x1) - inter;
  return uni <= 0 ? 0 : inter / uni;
}

// The boxes of one (batch, class) that greedy NMS keeps, in selection order: highest score first
// (ties keep the lower index first, ONNX Runtime's order), each kept unless a box kept before it
// overlaps it by more than iou_th. With iou_th >= 0 only boxes that overlap in x can suppress, so
// when every coordinate is finite the check visits just the kept boxes whose x1 lies within
// [x1 - margin, x2) (x-sorted; margin exceeds every box's width). The answer is the full scan's:
// a skipped box has iw <= 0, hence IoU 0. Detection models run NMS once over every class's
// boxes offset apart (torchvision's batched_nms): the full scan was quadratic in all boxes.
std::vector<int64_t> nms_one_class(std::span<const Box> boxes, const float* sc, bool has_score_th,
                                   float score_th, float iou_th, int64_t max_out, bool windowed,
                                   double margin) {
  const int64_t N = static_cast<int64_t>(boxes.size());
  std::vector<int64_t> order;
  for (int64_t i = 0; i < N; ++i) {
    if (!has_score_th || sc[i] > score_th) order.push_back(i);
  }
  std::stable_sort(order.begin(), order.end(), [&](int64_t x, int64_t y) { return sc[x] > sc[y]; });
  std::vector<int64_t> selected;
  if (!windowed) {
    std::vector<Box> kept;
    for (int64_t i : order) {
      if (static_cast<int64_t>(selected.size()) >= max_out) break;
      const Box& bx = boxes[i];
      bool suppressed = false;
      for (const Box& k : kept) {
        if (iou(bx, k) > iou_th) {
          suppressed = true;
          break;
        }
      }
      if (suppressed) continue;
      kept.push_back(bx);
      selected.push_back(i);
    }
    return selected;
  }
  // Candidates by x1 (rank r holds box by_x[r]); kept[r] marks the kept ones.
  std::vector<int64_t> by_x = order;
  std::sort(by_x.begin(), by_x.end(), [&](int64_t a, int64_t b) {
    return boxes[a].x1 < boxes[b].x1 || (boxes[a].x1 == boxes[b].x1 && a < b);
  });
  std::vector<double> x1(by_x.size());
  for (size_t r = 0; r < by_x.size(); ++r) x1[r] = boxes[by_x[r]].x1;
  std::vector<uint8_t> kept(by_x.size(), 0);
  std::vector<int64_t> rank(static_cast<size_t>(N), -1);
  for (size_t r = 0; r < by_x.size(); ++r) rank[by_x[r]] = static_cast<int64_t>(r);
  for (int64_t i : order) {
    if (static_cast<int64_t>(selected.size()) >= max_out) break;
    const Box& bx = boxes[i];
    const auto lo = std::lower_bound(x1.begin(), x1.end(), static_cast<double>(bx.x1) - margin);
    const auto hi = std::lower_bound(lo, x1.end(), static_cast<double>(bx.x2));
    bool suppressed = false;
    for (auto it = lo; it != hi && !suppressed; ++it) {
      const size_t r = static_cast<size_t>(it - x1.begin());
      suppressed = kept[r] && iou(bx, boxes[by_x[r]]) > iou_th;
    }
    if (suppressed) continue;
    kept[static_cast<size_t>(rank[i])] = 1;
    selected.push_back(i);
  }
  return selected;
}

Result<std::vector<Tensor>> run_NonMaxSuppression(const Node& node, std::span<const View> in,
                                                  SubgraphRunner&) {
  const int64_t B = in[0].shape[0], N = in[0].shape[1], C = in[1].shape[1];
  auto scalar = [&](size_t i) -> const View* {
    return i < in.size() && in[i].present() && in[i].numel > 0 ? &in[i] : nullptr;
  };
  const int64_t max_out = scalar(2) ? std::max<int64_t>(0, in[2].as<int64_t>()[0]) : 0;
  const float iou_th = scalar(3) ? in[3].as<float>()[0] : 0.f;
  const bool has_score_th = scalar(4) != nullptr;
  const float score_th = has_score_th ? in[4].as<float>()[0] : 0.f;
  const bool center = node.attr_int("center_point_box", 0) == 1;
  std::vector<int64_t> sel;
  std::vector<Box> boxes(static_cast<size_t>(N));
  for (int64_t b = 0; b < B && max_out > 0; ++b) {
    bool finite = true;
    double width = 0;
    for (int64_t i = 0; i < N; ++i) {
      const Box& bx = boxes[i] = box_at(in[0].as<float>() + (b * N + i) * 4, center);
      finite &= std::isfinite(bx.x1) && std::isfinite(bx.x2) && std::isfinite(bx.y1) &&
                std::isfinite(bx.y2);
      width = std::max(width, static_cast<double>(bx.x2) - static_cast<double>(bx.x1));
    }
    const bool windowed = finite && iou_th >= 0;  // NaN thresholds take the full scan
    for (int64_t c = 0; c < C; ++c) {
      const float* sc = in[1].as<float>() + (b * C + c) * N;
      for (int64_t i : nms_one_class(boxes, sc, has_score_th, score_th, iou_th, max_out,
                                     windowed, 2 * width + 1)) {
        sel.insert(sel.end(), {b, c, i});
      }
    }
  }
  const int64_t n = static_cast<int64_t>(sel.size() / 3);
  std::vector<Tensor> r;
  r.push_back(Tensor::from_vector<int64_t>({n, 3}, sel));
  return r;
}

// ---- Unique ------------------------------------------------------------------------------------

Status infer_Unique(const Node& node, std::span<const TensorInfo* const> in,
                    std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 1, 1));
  MOSS_RETURN_IF_ERROR(dispatch_numeric(node, in[0]->dtype, [](auto) { return Status::Ok(); }));
  if (const Attribute* a = node.attr("axis")) {
    MOSS_RETURN_IF_ERROR(normalize_axis(node, a->i, static_cast<int64_t>(in[0]->shape.size())).status());
  }
  out.push_back(TensorInfo{in[0]->dtype, {}, nullptr});
  for (int i = 0; i < 3; ++i) out.push_back(TensorInfo{DType::kInt64, {}, nullptr});
  return Status::Ok();
}

Result<std::vector<Tensor>> run_Unique(const Node& node, std::span<const View> in,
                                       SubgraphRunner&) {
  const View& x = in[0];
  std::vector<int64_t> shape = shape_of(x);
  int64_t outer = 1, len = x.numel, inner = 1;
  size_t axis = 0;
  const bool has_axis = node.attr("axis") != nullptr;
  if (has_axis) {
    MOSS_ASSIGN_OR_RETURN(int64_t a, normalize_axis(node, node.attr("axis")->i,
                                                    static_cast<int64_t>(shape.size())));
    axis = static_cast<size_t>(a);
    len = shape[axis];
    for (size_t d = 0; d < axis; ++d) outer *= shape[d];
    for (size_t d = axis + 1; d < shape.size(); ++d) inner *= shape[d];
  }
  const bool sorted = node.attr_int("sorted", 1) != 0;
  std::vector<Tensor> r;
  MOSS_RETURN_IF_ERROR(dispatch_numeric(node, x.dtype, [&](auto tag) -> Status {
    using T = decltype(tag);
    const T* p = x.as<T>();
    // Slice i along the axis, compared element by element in (outer, inner) order.
    auto less = [&](int64_t a, int64_t b) {
      for (int64_t o = 0; o < outer; ++o) {
        for (int64_t k = 0; k < inner; ++k) {
          const T va = p[(o * len + a) * inner + k], vb = p[(o * len + b) * inner + k];
          if (va != vb) return va < vb;
        }
      }
      return false;
    };
    auto equal = [&](int64_t a, int64_t b) { return !less(a, b) && !less(b, a); };
    std::vector<int64_t> order(static_cast<size_t>(len));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), less);
    // Groups of equal slices; each group's first occurrence is its smallest index.
    std::vector<int64_t> group_of(static_cast<size_t>(len));
    std::vector<int64_t> first, counts;
    for (size_t i = 0; i < order.size(); ++i) {
      if (i == 0 || !equal(order[i - 1], order[i])) {
        first.push_back(order[i]);
        counts.push_back(0);
      }
      group_of[static_cast<size_t>(order[i])] = static_cast<int64_t>(first.size()) - 1;
      ++counts.back();
    }
    std::vector<int64_t> rank(first.size());  // output position of each group
    std::iota(rank.begin(), rank.end(), 0);
    if (!sorted) {  // order of first occurrence
      std::vector<int64_t> by_first(first.size());
      std::iota(by_first.begin(), by_first.end(), 0);
      std::sort(by_first.begin(), by_first.end(),
                [&](int64_t a, int64_t b) { return first[a] < first[b]; });
      for (size_t i = 0; i < by_first.size(); ++i) rank[by_first[i]] = static_cast<int64_t>(i);
    }
    const int64_t u = static_cast<int64_t>(first.size());
    std::vector<int64_t> yshape = has_axis ? shape : std::vector<int64_t>{u};
    if (has_axis) yshape[axis] = u;
    MOSS_ASSIGN_OR_RETURN(Tensor y, Tensor::zeros(x.dtype, yshape));
    std::vector<int64_t> idx(static_cast<size_t>(u)), cnt(static_cast<size_t>(u)),
        inv(static_cast<size_t>(len));
    T* yp = y.data<T>();
    for (int64_t g = 0; g < u; ++g) {
      const int64_t pos = rank[static_cast<size_t>(g)];
      idx[static_cast<size_t>(pos)] = first[static_cast<size_t>(g)];
      cnt[static_cast<size_t>(pos)] = counts[static_cast<size_t>(g)];
      for (int64_t o = 0; o < outer; ++o) {
        for (int64_t k = 0; k < inner; ++k) {
          yp[(o * u + pos) * inner + k] = p[(o * len + first[static_cast<size_t>(g)]) * inner + k];
        }
      }
    }
    for (int64_t i = 0; i < len; ++i) inv[static_cast<size_t>(i)] = rank[static_cast<size_t>(group_of[static_cast<size_t>(i)])];
    r.push_back(std::move(y));
    r.push_back(Tensor::from_vector<int64_t>({u}, idx));
    r.push_back(Tensor::from_vector<int64_t>({len}, inv));
    r.push_back(Tensor::from_vector<int64_t>({u}, cnt));
    return Status::Ok();
  }));
  return r;
}

}  // namespace

std::vector<OpKernel> data_dependent_kernels() {
  return {dynamic_kernel("NonZero", infer_NonZero, run_NonZero),
          dynamic_kernel("Compress", infer_Compress, run_Compress),
          dynamic_kernel("NonMaxSuppression", infer_NonMaxSuppression, run_NonMaxSuppression),
          dynamic_kernel("Unique", infer_Unique, run_Unique)};
}

}  // namespace moss::engine::ref
