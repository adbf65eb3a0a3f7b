// AffineGrid (opset 20): the sampling grid GridSample reads, theta applied to a normalized base
// grid. 2-D: theta [N, 2, 3], size [N, C, H, W] -> grid [N, H, W, 2] (x, y); 3-D: theta [N, 3, 4],
// size [N, C, D, H, W] -> grid [N, D, H, W, 3] (x, y, z).
#include "engine/kernels/ref/ref_kernels.h"
#include "engine/kernels/ref/ref_util.h"

namespace moss::engine::ref {
namespace {

Status infer_AffineGrid(const Node& node, std::span<const TensorInfo* const> in, std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 2, 2));
  MOSS_RETURN_IF_ERROR(require_float(node, *in[0], "theta"));
  MOSS_RETURN_IF_ERROR(require_dtype(node, *in[1], {DType::kInt64}, "size"));
  const int64_t ac = node.attr_int("align_corners", 0);
  if (ac != 0 && ac != 1) return invalid_argument("{}: align_corners must be 0 or 1", node.label());
  MOSS_ASSIGN_OR_RETURN(auto size, const_ints(node, in[1], "size"));
  if (size.size() != 4 && size.size() != 5) {
    return invalid_argument("{}: size must hold 4 (2-D) or 5 (3-D) values, has {}", node.label(), size.size());
  }
  const int64_t nd = static_cast<int64_t>(size.size()) - 2;
  const auto& th = in[0]->shape;
  if (th.size() != 3 || th[0] != size[0] || th[1] != nd || th[2] != nd + 1) {
    return invalid_argument("{}: theta {} must be [{}, {}, {}] for size {}", node.label(), shape_to_string(th), size[0],
                            nd, nd + 1, shape_to_string(size));
  }
  int64_t points = 1;
  for (size_t i = 2; i < size.size(); ++i) {
    if (size[i] < 0 || size[i] > (int64_t{1} << 31)) return invalid_argument("{}: size out of range", node.label());
    points *= size[i];
    if (points > (int64_t{1} << 40)) return invalid_argument("{}: grid too large", node.label());
  }
  std::vector<int64_t> shape{size[0]};
  shape.insert(shape.end(), size.begin() + 2, size.end());
  shape.push_back(nd);
  return set_out(out, in[0]->dtype, std::move(shape));
}

// Normalized coordinates of n points along one axis, in float as ONNX Runtime computes them (an
// Eigen LinSpaced over [-1, 1], which gives 1 for a single point, scaled by (n - 1) / n without
// align_corners: pixel centres).
std::vector<float> axis_points(int64_t n, bool align) {
  std::vector<float> v(static_cast<size_t>(n));
  const float step = n > 1 ? 2.0f / static_cast<float>(n - 1) : 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    float p = i == n - 1 ? 1.0f : -1.0f + static_cast<float>(i) * step;
    if (!align) p = p * static_cast<float>(n - 1) / static_cast<float>(n);
    v[static_cast<size_t>(i)] = p;
  }
  return v;
}

Status run_AffineGrid(const Node& node, std::span<const View> in, std::span<const View> out) {
  const bool align = node.attr_int("align_corners", 0) != 0;
  const auto& g = out[0].shape;  // [N, (D,) H, W, nd]
  const int64_t nd = g.back();
  const int64_t N = g[0];
  const int64_t D = nd == 3 ? g[1] : 1, H = g[g.size() - 3], W = g[g.size() - 2];
  const auto xs = axis_points(W, align), ys = axis_points(H, align), zs = axis_points(D, align);
  return dispatch_float(node, in[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    using CT = compute_t<T>;
    const T* theta = in[0].as<T>();
    T* grid = out[0].as<T>();
    for (int64_t n = 0; n < N; ++n) {
      CT t[12];
      for (int64_t i = 0; i < nd * (nd + 1); ++i) t[i] = static_cast<CT>(theta[n * nd * (nd + 1) + i]);
      T* o = grid + n * D * H * W * nd;
      for (int64_t d = 0; d < D; ++d) {
        for (int64_t h = 0; h < H; ++h) {
          for (int64_t w = 0; w < W; ++w) {
            const CT base[3] = {static_cast<CT>(xs[static_cast<size_t>(w)]), static_cast<CT>(ys[static_cast<size_t>(h)]),
                                static_cast<CT>(zs[static_cast<size_t>(d)])};
            for (int64_t r = 0; r < nd; ++r) {
              const CT* row = t + r * (nd + 1);
              CT v = 0;
              for (int64_t c = 0; c < nd; ++c) v += row[c] * base[c];
              *o++ = static_cast<T>(v + row[nd]);
            }
          }
        }
      }
    }
    return Status::Ok();
  });
}

}  // namespace

std::vector<OpKernel> affine_grid_kernels() {
  return {{"AffineGrid", infer_AffineGrid, run_AffineGrid, false, 0b10}};
}

}  // namespace moss::engine::ref
