// QDQ form -> QOperator form, at compile time. A quantizer's QDQ graph spells an int8 convolution
// as DequantizeLinear(x_q), DequantizeLinear(w_q) [, DequantizeLinear(b_i32)] -> Conv [-> Relu]
// -> QuantizeLinear. rewrite_qdq replaces each such chain by one QLinearConv node (the bias
// requantized to int32 with scale x_scale*w_scale), which runs as one oneDNN int8 convolution
// (quant/onednn_qconv.cc); likewise QDQ Add, MaxPool and Gemm (QLinearAdd, 8-bit MaxPool, QGemm)
// and the dynamic quantization chain DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul
// [-> Add bias] (DynamicQuantizeMatMul). Patterns it cannot express run as they are
// (DequantizeLinear -> float -> QuantizeLinear) and are listed in the report; a malformed pattern
// (a scale or zero point of the wrong shape, a zero point of another type than its tensor) is
// refused.
//
// Run after fold_constants(g, ..., /*keep_dequantize=*/true) (so weight DequantizeLinear nodes are
// still there) and before the ordinary fold_constants and remove_dead_nodes.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "engine/graph/graph.h"

namespace moss::engine {

struct QdqReport {
  int rewritten = 0;               // chains turned into one quantized operator
  std::vector<std::string> kept;   // "node 'x' (Conv): reason" for QDQ chains left in float
};

Result<QdqReport> rewrite_qdq(Graph& g);

}  // namespace moss::engine
