// int8 fast paths on oneDNN for the QOperator form (QLinearConv, QLinearAdd, MatMulInteger,
// Quantize/DequantizeLinear): plan-time kernels with the weights packed once as int8, scales and
// zero points baked in. QLinearConv and QLinearAdd are plan steps of the oneDNN bridge (they keep
// oneDNN's int8 layout, NHWC, between each other: no reorder between consecutive int8 steps); the
// others are OpKernel::prepare hooks on plain tensors. The planner tries them before run().
#pragma once

#include <string>
#include <vector>

#include "engine/kernels/kernel.h"
#include "engine/kernels/onednn_bridge.h"

namespace moss::engine {

// The int8 prepare function for an operator (plain layouts), or nullptr.
PrepareFn quant_prepare_for(const std::string& op_type);

// The int8 operators served as oneDNN bridge steps: those that take blocked layouts in and out
// (QLinearConv, QLinearAdd), and DynamicQuantizeMatMul / MatMulIntegerToFloat (plain, with
// fused post-ops).
bool quant_takes_blocked(const std::string& op_type);
bool quant_serves(const std::string& op_type);
OnednnStep prepare_quant_step(const OnednnStepRequest& request);
OnednnStep prepare_qlinear_conv_step(const OnednnStepRequest& request);
OnednnStep prepare_qlinear_add_step(const OnednnStepRequest& request);
OnednnStep prepare_dynamic_quantize_matmul_step(const OnednnStepRequest& request);  // both

// com.microsoft operators implemented here (QLinearAdd, QGemm, DynamicQuantizeMatMul,
// MatMulIntegerToFloat), for the contrib registry.
std::vector<OpKernel> quant_contrib_kernels();
std::vector<OpKernel> quant_gemm_contrib_kernels();    // QGemm (qgemm.cc)
// DynamicQuantizeMatMul, MatMulIntegerToFloat (dynamic_quantize_matmul.cc)
std::vector<OpKernel> quant_matmul_contrib_kernels();

// What PreparedKernel::kind() says for the int8 kernels (plan step labels, `moss model info`).
inline constexpr const char* kInt8Kind = "int8";

}  // namespace moss::engine
