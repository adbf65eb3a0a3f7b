// Which implementation runs each operator. For now every operator has exactly one entry, the
// portable reference kernel; oneDNN kernels (kernels/onednn/) are to be placed first in the
// per-op list, with the reference kernel last as the fallback and the comparison twin.
#pragma once

#include "engine/kernels/kernel.h"

#include <string>
#include <vector>

namespace moss::engine {

// The kernel for a node (ai.onnx domain only), or nullptr when the operator is not supported.
const OpKernel* find_kernel(const Node& node);
// Error naming the node and operator when unsupported.
Result<const OpKernel*> kernel_for(const Node& node);
// Sorted operator names the engine claims.
std::vector<std::string> supported_operators();

}  // namespace moss::engine
