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
// The Object implementation (kernel.h: run_object) a node runs with, or nullptr for the tensor
// path: k itself when it runs on Objects, else the object variant of a tensor operator (Identity,
// Cast, CastLike) when an input is a non-tensor value (object_in) or the node makes one.
const OpKernel* object_kernel_for(const Node& node, const OpKernel& k, bool object_in);
// Sorted operator names the engine claims.
std::vector<std::string> supported_operators();

}  // namespace moss::engine
