// Runs one node on owned Tensors: used by constant folding (at compile time and when input
// shapes are bound) and by string stand-ins (kernels/ref/string_stand_ins.cc).
#pragma once

#include "engine/kernels/kernel.h"

namespace moss::engine {

// in: one entry per node input (nullptr when omitted); each present input must carry a value
// unless the kernel reads shapes only. out_info: what infer() returned.
Result<std::vector<std::shared_ptr<const Tensor>>> evaluate_node(
    const Node& node, const OpKernel& kernel, std::span<const TensorInfo* const> in,
    const std::vector<TensorInfo>& out_info);

// A view over a constant tensor.
View view_of(const Tensor& t);
// A tensor copied out of a view.
Result<Tensor> tensor_of(const View& v);

}  // namespace moss::engine
