// int8 fast paths on oneDNN for the QOperator form (QLinearConv, MatMulInteger): plan-time
// kernels with the weights packed once as int8, scales and zero points baked into the primitive.
// The registry sets them as OpKernel::prepare; the planner tries them before the reference run().
#pragma once

#include <string>

#include "engine/kernels/kernel.h"

namespace moss::engine {

// The int8 prepare function for an operator, or nullptr.
PrepareFn quant_prepare_for(const std::string& op_type);

// What PreparedKernel::kind() says for the int8 kernels (plan step labels, `moss model info`).
inline constexpr const char* kInt8Kind = "int8";

}  // namespace moss::engine
