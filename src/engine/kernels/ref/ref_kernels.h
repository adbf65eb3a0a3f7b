// Portable C++ kernels, one function per operator family; each returns its OpKernels for the
// registry. Deterministic and single-threaded, so results never depend on scheduling.
#pragma once

#include "engine/kernels/kernel.h"

#include <vector>

namespace moss::engine::ref {

std::vector<OpKernel> elementwise_kernels();  // Where, Clip, Identity
std::vector<OpKernel> unary_kernels();        // math functions, activations, Not, IsNaN, ...
std::vector<OpKernel> binary_kernels();       // arithmetic, comparisons, logic, Max/Min/Sum/Mean
std::vector<OpKernel> cast_kernels();         // Cast, CastLike
std::vector<OpKernel> shape_kernels();        // Reshape, Transpose, Concat, Slice, Gather, ...
std::vector<OpKernel> conv_pool_kernels();    // Conv, MaxPool, AveragePool, GlobalAveragePool
std::vector<OpKernel> nn_kernels();           // Gemm, MatMul, norms, Softmax
std::vector<OpKernel> reduce_kernels();       // Reduce*, ArgMax, ArgMin
std::vector<OpKernel> resize_kernels();       // Resize
std::vector<OpKernel> softmax_loss_kernels(); // LogSoftmax, Hardmax, NLL and cross-entropy losses
std::vector<OpKernel> gather_scatter_kernels();  // GatherElements/ND, ScatterElements/ND
std::vector<OpKernel> index_kernels();        // Trilu, Range, OneHot, CumSum, Tile, Size, ...
std::vector<OpKernel> dropout_kernels();      // Dropout (inference and seeded training mode)
std::vector<OpKernel> normalization_kernels();  // Instance/Group/MVN/Lp normalization, LRN
std::vector<OpKernel> topk_kernels();         // TopK
std::vector<OpKernel> einsum_kernels();       // Einsum
std::vector<OpKernel> conv_transpose_kernels();  // ConvTranspose
std::vector<OpKernel> signal_kernels();       // window functions, DFT, STFT
std::vector<OpKernel> det_kernels();          // Det
std::vector<OpKernel> conv_integer_kernels(); // ConvInteger, QLinearConv
std::vector<OpKernel> max_unpool_kernels();   // MaxUnpool
std::vector<OpKernel> grid_sample_kernels();  // GridSample
std::vector<OpKernel> affine_grid_kernels();  // AffineGrid
std::vector<OpKernel> col2im_kernels();       // Col2Im
std::vector<OpKernel> deform_conv_kernels();  // DeformConv
std::vector<OpKernel> quantize_kernels();     // Quantize/DequantizeLinear, integer MatMuls
std::vector<OpKernel> control_flow_kernels();  // If, Loop, Scan (subgraphs; dynamic)
std::vector<OpKernel> data_dependent_kernels();  // NonZero, Compress, NonMaxSuppression, ...
std::vector<OpKernel> recurrent_kernels();     // LSTM, GRU, RNN
std::vector<OpKernel> sequence_kernels();      // Sequence*, SplitToSequence, Optional*, ...
std::vector<OpKernel> string_kernels();        // StringNormalizer, TfIdfVectorizer
// Object variants of tensor operators for string/sequence/optional values (registry.h:
// object_kernel_for): Identity, Cast, CastLike.
std::vector<OpKernel> object_variant_kernels();
// String tensors through tensor kernels via int64 stand-ins (string_stand_ins.cc): Gather,
// Concat, Reshape, Slice, Where, ..., Shape, Size, Equal. Part of object_variant_kernels().
std::vector<OpKernel> string_stand_in_kernels();
OpKernel identity_object_kernel();  // sequence_ops.cc
std::vector<OpKernel> roi_align_kernels();     // RoiAlign
std::vector<OpKernel> random_kernels();        // RandomNormal/Uniform[Like], Bernoulli, Multinomial
std::vector<OpKernel> mel_weight_matrix_kernels();  // MelWeightMatrix
std::vector<OpKernel> contrib_kernels();       // com.microsoft: Gelu family, attention, ... (contrib.cc)

// An operator with data-dependent outputs (kernel.h: run_dynamic).
inline OpKernel dynamic_kernel(const char* op, InferFn infer, DynamicRunFn run) {
  OpKernel k{op, infer, nullptr};
  k.run_dynamic = run;
  return k;
}

// An operator on Objects (kernel.h: run_object).
inline OpKernel object_kernel(const char* op, InferFn infer, ObjectRunFn run) {
  OpKernel k{op, infer, nullptr};
  k.run_object = run;
  return k;
}

// infer() of an operator on Objects: such nodes run in the plan's tail, where only the output
// count matters; their values are checked when they run.
inline Status infer_object_outputs(const Node& node, std::span<const TensorInfo* const>,
                                   std::vector<TensorInfo>& out) {
  out.assign(node.outputs.size(), TensorInfo{});
  return Status::Ok();
}

// A tensor input of a run_object kernel (kernel.h): null when omitted, an error naming the node
// and the value's type when it is a sequence, optional or string tensor.
inline Result<const Tensor*> object_tensor(const Node& node, const ObjectPtr& o, const char* what) {
  if (!o) return static_cast<const Tensor*>(nullptr);
  if (!o->is_tensor()) {
    return invalid_argument("{}: {} must be a tensor of numbers, got {}", node.label(), what,
                            type_name(type_of(*o)));
  }
  return o->tensor.get();
}

}  // namespace moss::engine::ref
