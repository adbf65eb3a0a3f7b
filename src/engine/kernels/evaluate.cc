#include "engine/kernels/evaluate.h"

namespace moss::engine {

View view_of(const Tensor& t) {
  return View{t.dtype(), t.shape(), const_cast<uint8_t*>(t.raw()), t.numel()};
}

Result<Tensor> tensor_of(const View& v) {
  return Tensor::from_bytes(v.dtype, std::vector<int64_t>(v.shape.begin(), v.shape.end()),
                            {v.data, static_cast<size_t>(v.numel) * dtype_size(v.dtype)});
}

Result<std::vector<std::shared_ptr<const Tensor>>> evaluate_node(
    const Node& node, const OpKernel& kernel, std::span<const TensorInfo* const> in,
    const std::vector<TensorInfo>& out_info) {
  std::vector<View> in_views(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (!in[i]) continue;
    if (in[i]->value) {
      in_views[i] = view_of(*in[i]->value);
    } else if (kernel.reads_shapes_only) {
      in_views[i] = View{in[i]->dtype, in[i]->shape, nullptr, in[i]->numel()};
    } else {
      return internal_error("{}: input {} has no value to fold", node.label(), i);
    }
  }
  std::vector<Tensor> outs;
  std::vector<View> out_views;
  outs.reserve(out_info.size());
  for (const TensorInfo& oi : out_info) {
    MOSS_ASSIGN_OR_RETURN(Tensor t, Tensor::zeros(oi.dtype, oi.shape));
    outs.push_back(std::move(t));
  }
  for (Tensor& t : outs) out_views.push_back(View{t.dtype(), t.shape(), t.raw(), t.numel()});
  MOSS_RETURN_IF_ERROR(kernel.run(node, in_views, out_views));
  std::vector<std::shared_ptr<const Tensor>> result;
  for (Tensor& t : outs) result.push_back(std::make_shared<const Tensor>(std::move(t)));
  return result;
}

}  // namespace moss::engine
