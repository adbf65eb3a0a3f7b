// Operator fusion for the oneDNN kernels, decided per plan (shapes are known here): a Conv,
// MatMul, Gemm or com.microsoft DynamicQuantizeMatMul / MatMulIntegerToFloat absorbs the nodes
// that follow it, in order (a BatchNormalization right after a Conv is folded into its weights
// and bias), the element-wise ones as oneDNN post-ops:
//   Relu, Clip (ReLU6), LeakyRelu, Sigmoid, Tanh, Mul/Div by a scalar constant (linear),
//   Add of a same-shape tensor (residual, oneDNN's sum post-op; at most one),
//   Add of a constant [N] (MatMul bias, before any post-op),
//   the Erf GELU torch exports: Div(x, sqrt 2) -> Erf -> Add 1 -> Mul x -> Mul 0.5,
//   the tanh GELU: 0.5x(1 + Tanh(sqrt(2/pi)(x + 0.044715x^3))) written out in Mul/Pow/Add/Tanh,
//   and the opset-20 Gelu node (either approximation);
// and an int8 QLinearConv absorbs the com.microsoft QLinearAdd that adds its output to another
// int8 tensor of its shape (the residual of a quantized ResNet block: oneDNN's sum post-op).
// Only values used by nothing else (and not graph outputs) are fused away.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "engine/graph/graph.h"
#include "engine/kernels/kernel.h"
#include "engine/kernels/onednn/onednn_ops.h"

namespace moss::engine {

// An attention block (the anchor is the Q x K MatMul of two computed operands): an optional
// Mul/Div of the scores by a scalar constant, an optional mask (an Add of a float tensor that
// broadcasts to the scores, or Where(constant bool, -inf, scores) either way round), the Softmax
// over the last axis (then any inference Dropout or Identity) and the MatMul of the probabilities
// by V run as one step
// (onednn::OnednnAttention).
struct AttentionFusion {
  int v = kNoValue;                // the second MatMul's other operand
  float scale = 1.f;
  int mask = kNoValue;             // kNoValue: no mask
  bool mask_is_condition = false;  // a Where condition (constant bool) rather than added floats
  bool masked_when = true;         // the condition value that selects -inf
};

struct Fusion {
  int anchor = -1;            // node index of the Conv / MatMul / Gemm
  std::vector<int> absorbed;  // node indices fused into it, in chain order (not empty)
  std::vector<onednn::PostOp> post_ops;
  int batch_norm = -1;      // Conv: BatchNormalization node folded into weights and bias
  int bias = kNoValue;      // MatMul: constant bias value
  int residual = kNoValue;  // value added by the kAddResidual post-op
  int output = kNoValue;    // the value the fused step writes (the last absorbed node's)
  int quantized_add = -1;   // QLinearConv: the QLinearAdd node absorbed (residual = its other operand)
  std::string label;        // e.g. "Add+Relu", for profiles
  std::optional<AttentionFusion> attention;  // set: an attention block (no post-ops)
};

// `live`: node indices that run (not folded), in order; info: per value; outputs: values read
// after the steps (graph outputs, values the plan's tail reads), never fused away. Returns
// fusions with disjoint node sets.
std::vector<Fusion> find_fusions(const Graph& g, const std::vector<TensorInfo>& info,
                                 const std::vector<int>& live, const std::vector<int>& outputs);

}  // namespace moss::engine
