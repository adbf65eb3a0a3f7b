// Compile-time graph passes, one per file, run in this order by CompiledModel::compile.
#pragma once

#include "common/status.h"
#include "engine/graph/graph.h"

namespace moss::engine {

// Evaluates every node whose inputs are all constants (Constant nodes included) and turns its
// outputs into constants; the node is removed. Results larger than max_bytes stay computed at run
// time so that folding never inflates the weights much. keep_dequantize: DequantizeLinear nodes
// stay (quant/qdq_rewrite.h reads the quantized weights behind them, then folds again).
Status fold_constants(Graph& g, size_t max_bytes = size_t{64} << 20, bool keep_dequantize = false);

// Rewrites torch's opset <= 17 GroupNorm export (Reshape, InstanceNormalization, Reshape, Mul,
// Add, optionally Sigmoid and Mul) into one com.microsoft GroupNorm node (group_norm_fusion.cc).
Status fuse_group_norm(Graph& g);

// Removes nodes none of whose outputs reach a graph output.
Status remove_dead_nodes(Graph& g);

}  // namespace moss::engine
