// Glue between the planner and the oneDNN kernels in kernels/onednn/: builds a oneDNN kernel for
// a plan step once shapes are bound, with constant weights packed once, fused post-ops (Relu,
// Clip, GELU, bias, residual Add, ...) and blocked layouts kept between consecutive oneDNN steps
// (chain mode, docs/performance.md).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/kernels/kernel.h"
#include "engine/kernels/onednn/onednn_ops.h"
#include "engine/quant/half_precision.h"

namespace moss::engine {

// The prepare function for an operator, or nullptr when oneDNN does not serve it (the plain
// OpKernel::prepare hook: no fusion, plain layouts).
PrepareFn onednn_prepare_for(const std::string& op_type);
// LSTM, GRU and RNN on oneDNN's RNN primitives (onednn_recurrent.cc), else nullptr.
PrepareFn onednn_recurrent_prepare(const std::string& op_type);

// Disables oneDNN (MOSS_ENGINE_REFERENCE_ONLY=1 in the environment): reference kernels only,
// for comparison runs.
bool onednn_disabled();

// One plan step served by oneDNN, possibly with fused operators.
struct OnednnStepRequest {
  const Node* node = nullptr;
  std::span<const TensorInfo* const> in;  // the node's inputs
  const std::vector<TensorInfo>* out = nullptr;
  int threads = 1;
  std::vector<onednn::PostOp> post_ops;  // applied in order after the op (and bias)
  const TensorInfo* bias = nullptr;      // MatMul only: a constant bias fused from an Add
  // Conv only: an inference BatchNormalization (scale, B, mean, var; constants [M]) folded into
  // the weights and bias.
  std::vector<const TensorInfo*> batch_norm;
  float batch_norm_epsilon = 1e-5f;
  // With a kAddResidual post-op: the residual, passed at run time as the step's last input.
  const TensorInfo* residual = nullptr;
  // QLinearConv with a fused com.microsoft QLinearAdd (kAddResidual): the Add and its inputs
  // (constant scales and zero points; the conv's output is one operand, the residual the other).
  const Node* quantized_add = nullptr;
  std::vector<const TensorInfo*> quantized_add_in;
  onednn::Layout src_layout;       // layout of input 0; empty = plain
  std::vector<onednn::Layout> in_layouts;  // per input (empty = plain); the int8 steps read it
  onednn::Layout residual_layout;  // empty = plain
  bool dst_blocked_ok = false;     // every consumer of the output takes a blocked layout
  HalfPlan half;  // a half model's weights and compute precision (Plan::half)
};

struct OnednnStep {
  std::shared_ptr<const PreparedKernel> kernel;  // null: oneDNN does not serve this request
  onednn::Layout dst_layout;                     // empty when the output is plain
};

// Ops whose oneDNN kernel reads input 0 in a blocked layout (Conv, pools, BatchNormalization,
// the int8 QLinearConv and QLinearAdd).
bool onednn_takes_blocked(const std::string& op_type);
// Whether input i of node may be blocked (input 0 of those ops; QLinearAdd's B too).
bool onednn_takes_blocked_input(const Node& node, size_t i);
// Ops prepare_onednn_step serves (those, MatMul, Gemm, Softmax, LayerNormalization, Transpose,
// ConvTranspose, the int8 com.microsoft DynamicQuantizeMatMul and MatMulIntegerToFloat).
bool onednn_serves(const std::string& op_type);

OnednnStep prepare_onednn_step(const OnednnStepRequest& request);

// A fused attention block (planner/fusion.h): softmax(scale * A x B + mask, last axis) x V, where
// the request's node is the A x B MatMul (in = {A, B}, plain) and the step reads {A, B, V, mask}.
struct AttentionStepRequest {
  const TensorInfo* v = nullptr;
  const TensorInfo* mask = nullptr;  // null: no mask
  float scale = 1.f;
  // The mask is a constant bool condition instead of a float tensor added to the scores:
  // Where(mask, -inf, scores) when masked_when, Where(mask, scores, -inf) otherwise.
  bool mask_is_condition = false;
  bool masked_when = true;
};
OnednnStep prepare_attention_step(const OnednnStepRequest& r, const AttentionStepRequest& a);

// A layout conversion step (blocked -> plain before a reference kernel).
std::shared_ptr<const PreparedKernel> onednn_reorder_step(const onednn::Layout& from,
                                                          const onednn::Layout& to, int threads);

}  // namespace moss::engine
