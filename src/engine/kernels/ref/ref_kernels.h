// Portable C++ kernels, one function per operator family; each returns its OpKernels for the
// registry. Deterministic and single-threaded, so results never depend on scheduling.
#pragma once

#include "engine/kernels/kernel.h"

#include <vector>

namespace moss::engine::ref {

std::vector<OpKernel> elementwise_kernels();  // unary, binary, Where, Clip, Cast, Identity
std::vector<OpKernel> shape_kernels();        // Reshape, Transpose, Concat, Slice, Gather, ...
std::vector<OpKernel> conv_pool_kernels();    // Conv, MaxPool, AveragePool, GlobalAveragePool
std::vector<OpKernel> nn_kernels();           // Gemm, MatMul, norms, Softmax
std::vector<OpKernel> reduce_kernels();       // ReduceMean, ReduceSum
std::vector<OpKernel> resize_kernels();       // Resize
std::vector<OpKernel> control_flow_kernels();  // If, Loop, Scan (subgraphs; dynamic)
std::vector<OpKernel> data_dependent_kernels();  // NonZero, Compress, NonMaxSuppression, ...
std::vector<OpKernel> recurrent_kernels();     // LSTM, GRU, RNN

// An operator with data-dependent outputs (kernel.h: run_dynamic).
inline OpKernel dynamic_kernel(const char* op, InferFn infer, DynamicRunFn run) {
  OpKernel k{op, infer, nullptr};
  k.run_dynamic = run;
  return k;
}

}  // namespace moss::engine::ref
