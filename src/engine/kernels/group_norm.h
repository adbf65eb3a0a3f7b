// com.microsoft GroupNorm (ONNX Runtime's contrib operator, written by its transformer optimizer
// for diffusion U-Nets): Y = activation(GroupNorm(X) * gamma + beta), per-channel gamma/beta,
// activation 0 (none) or 1 (SiLU), channels_last 1 (NHWC, its default) or 0 (NCHW). The engine's
// group_norm_fusion pass also rewrites torch's opset <= 17 GroupNorm export into it.
#pragma once

#include "engine/kernels/kernel.h"

#include <vector>

namespace moss::engine {

// The GroupNorm kernel (float32). gamma and beta are [C], or, for NCHW, [C, 1, ..., 1] of rank
// rank(X) - 1: the per-channel shape torch's export multiplies by, which the fusion passes on.
std::vector<OpKernel> group_norm_kernels();

}  // namespace moss::engine
