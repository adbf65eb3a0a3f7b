// Col2Im (opset 18): the inverse of im2col, PyTorch's fold. Input [N, C * prod(block_shape), L]
// holds, per column l, one block of the image; blocks are summed back into an image of
// image_shape with the given pads, strides and dilations (any number of spatial dims).
#include "engine/kernels/ref/ref_kernels.h"
#include "engine/kernels/ref/ref_util.h"

#include <algorithm>

namespace moss::engine::ref {
namespace {

// Per spatial dim: image size, block size, stride, dilation, begin pad and block count.
struct Col2ImGeometry {
  std::vector<int64_t> image, block, stride, dil, pad_b, blocks;
  int64_t block_numel = 1, columns = 1;
};

Result<Col2ImGeometry> geometry(const Node& node, std::vector<int64_t> image, std::vector<int64_t> block) {
  const size_t nd = image.size();
  if (nd == 0 || block.size() != nd) {
    return invalid_argument("{}: image_shape ({} values) and block_shape ({} values) must be non-empty and of equal length",
                            node.label(), image.size(), block.size());
  }
  auto ints_or = [&](const char* name, size_t n, int64_t def) -> Result<std::vector<int64_t>> {
    auto v = node.attr_ints(name);
    if (v.empty()) return std::vector<int64_t>(n, def);
    if (v.size() != n) return invalid_argument("{}: '{}' must have {} values, has {}", node.label(), name, n, v.size());
    return v;
  };
  Col2ImGeometry g;
  MOSS_ASSIGN_OR_RETURN(g.stride, ints_or("strides", nd, 1));
  MOSS_ASSIGN_OR_RETURN(g.dil, ints_or("dilations", nd, 1));
  MOSS_ASSIGN_OR_RETURN(auto pads, ints_or("pads", 2 * nd, 0));
  g.image = std::move(image);
  g.block = std::move(block);
  constexpr int64_t kMax = int64_t{1} << 31;
  for (size_t i = 0; i < nd; ++i) {
    const int64_t pb = pads[i], pe = pads[nd + i];
    if (g.image[i] < 0 || g.image[i] > kMax || g.block[i] < 1 || g.block[i] > kMax || g.stride[i] < 1 ||
        g.stride[i] > kMax || g.dil[i] < 1 || g.dil[i] > kMax || pb < 0 || pb > kMax || pe < 0 || pe > kMax) {
      return invalid_argument("{}: image_shape, block_shape, strides, dilations or pads out of range", node.label());
    }
    const int64_t span = g.dil[i] * (g.block[i] - 1) + 1;
    const int64_t room = g.image[i] + pb + pe - span;
    if (room < 0) return invalid_argument("{}: block larger than the padded image in dim {}", node.label(), i);
    g.pad_b.push_back(pb);
    g.blocks.push_back(room / g.stride[i] + 1);
    g.block_numel *= g.block[i];
    g.columns *= g.blocks.back();
    if (g.block_numel > kMax || g.columns > kMax) return invalid_argument("{}: too many blocks", node.label());
  }
  return g;
}

Status infer_Col2Im(const Node& node, std::span<const TensorInfo* const> in, std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 3, 3));
  MOSS_RETURN_IF_ERROR(require_numeric(node, *in[0], "input"));
  MOSS_RETURN_IF_ERROR(require_dtype(node, *in[1], {DType::kInt64}, "image_shape"));
  MOSS_RETURN_IF_ERROR(require_dtype(node, *in[2], {DType::kInt64}, "block_shape"));
  MOSS_ASSIGN_OR_RETURN(auto image, const_ints(node, in[1], "image_shape"));
  MOSS_ASSIGN_OR_RETURN(auto block, const_ints(node, in[2], "block_shape"));
  MOSS_ASSIGN_OR_RETURN(Col2ImGeometry g, geometry(node, std::move(image), std::move(block)));
  const auto& x = in[0]->shape;
  if (x.size() != 3 || x[1] % g.block_numel != 0 || x[2] != g.columns) {
    return invalid_argument("{}: input {} must be [N, C * {}, {}]", node.label(), shape_to_string(x), g.block_numel,
                            g.columns);
  }
  std::vector<int64_t> shape{x[0], x[1] / g.block_numel};
  shape.insert(shape.end(), g.image.begin(), g.image.end());
  return set_out(out, in[0]->dtype, std::move(shape));
}

std::vector<int64_t> view_ints(const View& v) { return {v.as<int64_t>(), v.as<int64_t>() + v.numel}; }

Status run_Col2Im(const Node& node, std::span<const View> in, std::span<const View> out) {
  MOSS_ASSIGN_OR_RETURN(Col2ImGeometry g, geometry(node, view_ints(in[1]), view_ints(in[2])));
  const size_t nd = g.image.size();
  const int64_t planes = out[0].shape[0] * out[0].shape[1];  // N * C
  const int64_t image_numel = numel_of(g.image);
  const auto image_strides = dense_strides(g.image);
  return dispatch_numeric(node, in[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    using CT = compute_t<T>;
    const T* X = in[0].as<T>();
    T* Y = out[0].as<T>();
    std::vector<CT> acc(static_cast<size_t>(image_numel));
    std::vector<int64_t> k(nd), b(nd);
    for (int64_t p = 0; p < planes; ++p) {
      std::fill(acc.begin(), acc.end(), CT{});
      std::fill(k.begin(), k.end(), 0);
      for (int64_t ki = 0; ki < g.block_numel; ++ki) {
        const T* col = X + (p * g.block_numel + ki) * g.columns;
        std::fill(b.begin(), b.end(), 0);
        for (int64_t l = 0; l < g.columns; ++l) {
          int64_t at = 0;
          bool inside = true;
          for (size_t d = 0; d < nd && inside; ++d) {
            const int64_t pos = b[d] * g.stride[d] - g.pad_b[d] + k[d] * g.dil[d];
            inside = pos >= 0 && pos < g.image[d];
            at += pos * image_strides[d];
          }
          if (inside) acc[static_cast<size_t>(at)] += static_cast<CT>(col[l]);
          for (size_t d = nd; d-- > 0;) {  // next column: odometer over block positions
            if (++b[d] < g.blocks[d]) break;
            b[d] = 0;
          }
        }
        for (size_t d = nd; d-- > 0;) {  // next element of the block
          if (++k[d] < g.block[d]) break;
          k[d] = 0;
        }
      }
      T* y = Y + p * image_numel;
      for (int64_t i = 0; i < image_numel; ++i) y[i] = static_cast<T>(acc[static_cast<size_t>(i)]);
    }
    return Status::Ok();
  });
}

}  // namespace

std::vector<OpKernel> col2im_kernels() { return {{"Col2Im", infer_Col2Im, run_Col2Im, false, 0b110}}; }

}  // namespace moss::engine::ref
