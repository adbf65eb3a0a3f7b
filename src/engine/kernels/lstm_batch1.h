// A batch-1 LSTM layer (forward, reverse or bidirectional, peepholes, initial states) on our own
// AVX-512 cell instead of oneDNN's RNN primitive. At batch 1 a step is a matrix-vector product
// that streams the recurrent matrix R once: oneDNN 2.6's brgemm LSTM spends about 1.3-1.6x that
// floor on per-step overhead, where this loop is the stream plus 16-wide gates (tagger models,
// bench/engine/compare_ort.py bilstm).
#pragma once

#include "engine/kernels/kernel.h"
#include "engine/kernels/onednn/onednn_ops.h"

#include <memory>

namespace moss::engine {

// The kernel for p (cell kLstm, batch 1, every sequence full length, default activations, no
// clip, no input_forget: the caller has checked the node) with constant W, R, B (or null) and
// peepholes P (or null), in ONNX layouts; nullptr when the host has no AVX-512 (oneDNN then).
// packed_inputs: the PreparedKernel::packed_inputs bits the caller computed. threads: the plan's;
// with 2 or more, a bidirectional layer runs its directions on two threads.
std::unique_ptr<const PreparedKernel> make_lstm_batch1(const onednn::RnnParams& p, const float* w,
                                                       const float* r, const float* b,
                                                       const float* peep, uint32_t packed_inputs,
                                                       int threads);
// Whether k is such a kernel (tests: which implementation a plan chose).
bool is_lstm_batch1(const PreparedKernel* k);

}  // namespace moss::engine
