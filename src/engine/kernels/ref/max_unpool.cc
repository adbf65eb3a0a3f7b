// MaxUnpool: scatters X into a zero tensor at the flat indices MaxPool produced (over the whole
// output tensor, N and C included). Output shape from output_shape (input 2, known at plan time)
// or (in - 1) * stride + kernel - pads.
#include "engine/kernels/ref/ref_kernels.h"
#include "engine/kernels/ref/ref_util.h"

#include <cstring>

namespace moss::engine::ref {
namespace {

// The shape MaxPool's input had, from the pooling attributes: (in - 1) * stride + kernel - pads.
Result<std::vector<int64_t>> default_shape(const Node& node, std::span<const int64_t> x) {
  const size_t sp = x.size() - 2;
  const auto k = node.attr_ints("kernel_shape");
  const auto st = node.attr("strides") ? node.attr_ints("strides") : std::vector<int64_t>(sp, 1);
  const auto pads = node.attr("pads") ? node.attr_ints("pads") : std::vector<int64_t>(2 * sp, 0);
  if (k.size() != sp || st.size() != sp || pads.size() != 2 * sp) {
    return invalid_argument("{}: kernel_shape/strides/pads do not match {} spatial dims", node.label(), sp);
  }
  std::vector<int64_t> shape = {x[0], x[1]};
  for (size_t i = 0; i < sp; ++i) {
    const int64_t o = (x[i + 2] - 1) * st[i] + k[i] - pads[i] - pads[i + sp];
    if (o < 0) return invalid_argument("{}: negative output size", node.label());
    shape.push_back(o);
  }
  return shape;
}

Status infer_MaxUnpool(const Node& node, std::span<const TensorInfo* const> in,
                       std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 2, 3));
  MOSS_RETURN_IF_ERROR(require_float(node, *in[0], "X"));
  MOSS_RETURN_IF_ERROR(require_dtype(node, *in[1], {DType::kInt64}, "I"));
  const auto& x = in[0]->shape;
  if (x.size() < 3 || in[1]->shape != x) {
    return invalid_argument("{}: X must be [N, C, D1, ...] and I the same shape", node.label());
  }
  if (in.size() > 2 && in[2]) {
    MOSS_ASSIGN_OR_RETURN(auto shape, const_ints(node, in[2], "output_shape"));
    if (shape.size() != x.size() || shape[0] != x[0] || shape[1] != x[1]) {
      return invalid_argument("{}: output_shape {} does not fit X", node.label(), shape_to_string(shape));
    }
    for (int64_t d : shape) {
      if (d < 0) return invalid_argument("{}: negative output_shape", node.label());
    }
    return set_out(out, in[0]->dtype, std::move(shape));
  }
  MOSS_ASSIGN_OR_RETURN(auto shape, default_shape(node, x));
  return set_out(out, in[0]->dtype, std::move(shape));
}

Status run_MaxUnpool(const Node& node, std::span<const View> in, std::span<const View> out) {
  const size_t es = dtype_size(out[0].dtype);
  std::memset(out[0].data, 0, static_cast<size_t>(out[0].numel) * es);
  // Indices address the default-shaped tensor; with a larger output_shape each lands at the same
  // coordinates (as ONNX Runtime and the ONNX reference place them).
  MOSS_ASSIGN_OR_RETURN(auto def, default_shape(node, in[0].shape));
  const int64_t def_numel = numel_of(def);
  const auto ostride = dense_strides(out[0].shape);
  const int64_t* idx = in[1].as<int64_t>();
  for (int64_t i = 0; i < in[0].numel; ++i) {
    if (idx[i] < 0 || idx[i] >= def_numel) {
      return invalid_argument("{}: index {} is outside the output", node.label(), idx[i]);
    }
    int64_t o = 0;
    bool inside = true;
    for (size_t d = def.size(), r = static_cast<size_t>(idx[i]); d-- > 0;) {
      const int64_t c = static_cast<int64_t>(r % static_cast<size_t>(def[d]));
      r /= static_cast<size_t>(def[d]);
      inside &= c < out[0].shape[d];
      o += c * ostride[d];
    }
    if (inside) std::memcpy(out[0].data + o * es, in[0].data + i * es, es);
  }
  return Status::Ok();
}

}  // namespace

std::vector<OpKernel> max_unpool_kernels() {
  return {{"MaxUnpool", infer_MaxUnpool, run_MaxUnpool, false, 0b100}};
}

}  // namespace moss::engine::ref
