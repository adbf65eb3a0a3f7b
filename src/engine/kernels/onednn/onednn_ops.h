// Fast CPU kernels on oneDNN 2.x (Debian's libdnnl 2.6) with a plain API that knows nothing of the
// engine's graph types. The registry (src/engine/kernels/registry.cc) tries these first and falls
// back to the reference kernels whenever create() returns an error.
//
// HOW TO INTEGRATE (for the engine lead)
// - Compile time: create one kernel object per node with Onednn<Op>::create(params, constants).
//   Constants (weights, bias, BN statistics) are copied and reordered ONCE into the format oneDNN
//   chose; the caller may free its buffers afterwards. create() returns kUnimplemented for an
//   attribute combination oneDNN cannot do exactly (fall back to the reference kernel) and
//   kInvalidArgument for inconsistent shapes. The kernel object is immutable and thread-safe: store
//   it in the CompiledModel and share it with every ExecutionContext.
// - Run time: each ExecutionContext owns one OnednnScratch: a oneDNN stream plus the scratchpad
//   buffer (scratchpad_mode::user, so kernels hold no mutable state). One per concurrently running
//   node if a context ever runs nodes in parallel. Size it once at context creation:
//   scratch.reserve(max over kernels of k.scratchpad_bytes()); execute() then never allocates (it
//   grows the buffer itself if you under-reserve). execute() is const and may run from many
//   threads at once, each with its own scratch.
// - Layouts. Every activation tensor has a Layout. Layout::plain(dims) is row-major (NCHW, NC,
// ...),
//   what the reference kernels and graph inputs/outputs use. Ask a kernel for LayoutChoice::any()
//   and oneDNN picks its fastest (blocked, e.g. nChw16c; the buffer may be larger than numel*4
//   because channels are padded: allocate layout.bytes()). Read the result back with src_layout()
//   and dst_layout(). A Conv asked for plain still runs oneDNN's blocked implementation and
//   reorders its input/output inside the scratch area (oneDNN's own plain-layout convolutions are
//   5-40x slower), so plain everywhere is correct and reasonably fast: start there.
//   Chain mode (the ORT-parity step): for a Conv/Pool/BN whose input is produced by a oneDNN
//   kernel, pass LayoutChoice::exactly(producer.dst_layout()); ask dst = any() when every consumer
//   is a oneDNN kernel (or an element-wise op that can run on identical layouts), plain()
//   otherwise. Where layouts still differ (graph inputs, a reference op consuming a blocked
//   tensor), insert an OnednnReorder (create(from, to)). MatMul is always plain (oneDNN's matmul is
//   fast on it). Pool asked for a plain dst also reorders internally. Worked example of a whole
//   chain (ResNet-50, MobileNetV2): bench/engine/onednn_chain_bench.cc. In short, per Conv node in
//   topological order:
//     p.src = producer_is_onednn ? LayoutChoice::exactly(producer_layout) : LayoutChoice::any();
//     p.dst = LayoutChoice::any();  p.residual_layout = layout of the residual tensor (if fused);
//     k = OnednnConv::create(p, w, b);  if (producer_layout != k->src_layout()) insert a Reorder;
//     tensor_layout[output] = k->dst_layout();  buffer size = k->dst_layout().bytes().
// - Fusion. PostOps are applied in order after the op: Conv+Relu, Conv+Clip (Relu6), Conv+Add
//   (residual)+Relu, MatMul+bias+Gelu, ... kAddResidual means dst = op(src) + residual, where the
//   residual tensor has the kernel's dst_layout() (the kernel forces dst to the residual's layout
//   when you pass residual_layout). If the planner makes dst alias the residual buffer (residual's
//   last use is this node) no copy happens; otherwise execute() copies the residual into dst first.
// - Threads. Debian's oneDNN uses OpenMP (libgomp). A kernel's thread count is fixed when it is
//   created (params.threads; 0 = omp_get_max_threads() of the creating thread) because oneDNN bakes
//   the work split into the primitive; execute() sets the same count on the calling thread, so a
//   result is bit-identical whichever thread runs it. Each request thread gets its own OpenMP team:
//   N concurrent requests use N*threads cores, so use threads=1 when requests already fill the
//   cores. On a shared/loaded host run with OMP_WAIT_POLICY=passive (read at process start):
//   spinning OpenMP teams are 5-100x slower there (docs/performance.md).
// - Errors: every call returns Status/Result; dnnl::error never escapes this folder.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"

namespace moss::engine::onednn {

using Dims = std::vector<int64_t>;

// How an activation tensor is laid out in memory (a oneDNN memory descriptor, f32).
// Immutable after construction; cheap to copy (shares the descriptor).
class Layout {
 public:
  Layout();  // empty; is_empty() is true
  // Row-major f32 (NCHW for 4-D). Fails for rank 0 or > 6, or a dim <= 0.
  static Result<Layout> plain(std::span<const int64_t> dims);
  // A strided f32 view (element strides per dim), e.g. a transposed plain tensor: a reorder
  // from strided(out dims, permuted strides) to plain(out dims) is a Transpose.
  static Result<Layout> strided(std::span<const int64_t> dims, std::span<const int64_t> strides);

  bool is_empty() const;
  bool is_plain() const;          // row-major, no padding
  // Row-major with this layout's element type (f32, or u8/s8 for the int8 kernels' layouts).
  Layout plain_same_type() const;
  const Dims& dims() const;       // logical dims, e.g. N,C,H,W
  size_t bytes() const;           // buffer size to allocate (>= numel*4 for padded blocked layouts)
  std::string to_string() const;  // e.g. "1x64x56x56 nChw16c"
  bool operator==(const Layout& other) const;

  struct Impl;  // holds the dnnl::memory::desc; defined in onednn_common.h
  const Impl& impl() const { return *impl_; }
  explicit Layout(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}

 private:
  std::shared_ptr<const Impl> impl_;
};

// What the caller wants for a kernel's input or output layout.
struct LayoutChoice {
  enum class Kind { kPlain, kAny, kExact };
  Kind kind = Kind::kPlain;
  Layout exact;  // for kExact
  static LayoutChoice plain() { return {}; }
  static LayoutChoice any() { return {Kind::kAny, {}}; }
  static LayoutChoice exactly(Layout l) { return {Kind::kExact, std::move(l)}; }
};

// Per-request mutable state: a oneDNN stream and a scratchpad buffer. Not thread-safe: one per
// ExecutionContext (or per thread). Movable.
class OnednnScratch {
 public:
  static Result<OnednnScratch> create();
  OnednnScratch(OnednnScratch&&) noexcept;
  OnednnScratch& operator=(OnednnScratch&&) noexcept;
  ~OnednnScratch();

  // Grows the scratchpad to at least `bytes` (64-byte aligned). Call once with the maximum of
  // scratchpad_bytes() over all kernels so execute() never allocates.
  void reserve(size_t bytes);
  size_t capacity() const;

  struct Impl;
  Impl& impl() { return *impl_; }

 private:
  explicit OnednnScratch(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Activations and other fused element-wise steps applied after the main op, in order.
struct PostOp {
  enum class Kind {
    kRelu,       // max(x, 0)
    kLeakyRelu,  // x >= 0 ? x : alpha * x
    kClip,       // min(max(x, alpha), beta): Relu6 is {kClip, 0, 6}
    kSigmoid,
    kTanh,
    kHardSwish,    // x * max(0, min(1, x/6 + 1/2)) (ONNX HardSwish)
    kHardSigmoid,  // max(0, min(1, alpha*x + beta)) (ONNX HardSigmoid)
    kGeluErf,      // 0.5x(1 + erf(x/sqrt 2)), what torch exports as Erf-based Gelu
    kGeluTanh,     // 0.5x(1 + tanh(sqrt(2/pi)(x + 0.044715x^3))), GELU(approximate="tanh")
    kLinear,       // alpha*x + beta (a folded Mul/Add by scalars)
    kAddResidual,  // x + residual (full tensor in dst layout); at most once per kernel
  };
  Kind kind = Kind::kRelu;
  float alpha = 0.f;
  float beta = 0.f;
};

// How a kernel holds its constant weights: float32, or (a float16/bfloat16 model's weights) in
// that 16-bit type, widened to float32 into the scratch before each run: half the memory, one
// conversion pass per run.
enum class WeightStorage { kF32, kF16, kBF16 };

struct KernelOptions {
  std::vector<PostOp> post_ops;
  int threads = 0;  // OpenMP threads used by this kernel; 0 = omp_get_max_threads() at create()
  WeightStorage weights = WeightStorage::kF32;  // Conv weights, MatMul/Gemm constant B
  // Conv: compute in bfloat16 (source reordered to bf16 per run, weights packed once as bf16,
  // float32 accumulation and output) where the CPU has AVX512-BF16; float32 otherwise.
  bool bf16 = false;
};

// Whether oneDNN runs bfloat16 natively here (AVX512-BF16 or AMX), not by emulation.
bool cpu_has_bf16();
// Whether oneDNN's int8 convolutions and matmuls sum exactly here: with AVX512-VNNI each u8 x s8
// product goes straight into the int32 sum; without it oneDNN adds pairs of products in int16
// first (vpmaddubsw), which saturates for large values and changes results by many steps. The
// int8 kernels (quant/) decline without it, and the reference kernels run those operators.
bool cpu_has_vnni();

// ---------------------------------------------------------------------------------------------
// Conv (ONNX Conv, 1-D/2-D/3-D, grouped and depthwise). Weights [M, C/group, k...] f32.
struct ConvParams {
  Dims src_dims;     // N, C, spatial...
  Dims weight_dims;  // M, C/group, kernel... (transposed: C, M/group, kernel..., ONNX's order)
  Dims strides;      // per spatial dim (default 1s if empty)
  Dims pads_begin;   // explicit pads (resolve auto_pad before calling)
  Dims pads_end;
  Dims dilations;  // ONNX convention: 1 = dense (default 1s if empty)
  int64_t group = 1;
  bool has_bias = false;  // bias [M]
  // ConvTranspose (oneDNN's deconvolution): out = (in - 1) * stride + span - pads; an ONNX
  // output_padding is a smaller pads_end (the caller refuses what would make it negative).
  bool transposed = false;
  LayoutChoice src = LayoutChoice::plain();
  LayoutChoice dst = LayoutChoice::plain();
  Layout residual_layout;  // required layout of the residual when post_ops has kAddResidual
  KernelOptions options;
};

class OnednnConv {
 public:
  // `weights` has numel(weight_dims) floats; `bias` has M floats or is null when !has_bias.
  static Result<std::unique_ptr<const OnednnConv>> create(const ConvParams& params,
                                                          const float* weights, const float* bias);
  ~OnednnConv();

  const Layout& src_layout() const;
  const Layout& dst_layout() const;
  const Dims& dst_dims() const;  // N, M, out spatial...
  size_t scratchpad_bytes() const;
  size_t weights_bytes() const;        // packed weights + bias held by this kernel
  std::string implementation() const;  // oneDNN's name, e.g. "brgconv:avx512_core"
  double flops() const;                // 2*MACs per run, for GFLOP/s figures
  bool computes_bf16() const;          // options.bf16 asked and granted

  // src in src_layout(), dst in dst_layout(); residual (dst_layout) only with kAddResidual and may
  // equal dst. Thread-safe (const); `scratch` must not be used by another thread meanwhile.
  Status execute(const float* src, float* dst, const float* residual, OnednnScratch& scratch) const;

  struct Impl;
  explicit OnednnConv(std::unique_ptr<Impl> impl);

 private:
  std::unique_ptr<Impl> impl_;
};

// ---------------------------------------------------------------------------------------------
// MatMul (ONNX MatMul with numpy broadcasting, and Gemm). Y = A x B [+ bias] then post-ops.
// A is always a run-time input in plain layout; B is constant (packed once) or a run-time input.
struct MatmulParams {
  Dims a_dims;            // [..., M, K] (1-D [K] is promoted to [1, K] as numpy does)
  Dims b_dims;            // [..., K, N] (1-D [N]... as numpy); with trans_b, [..., N, K]
  bool trans_a = false;   // Gemm transA (2-D only)
  bool trans_b = false;   // Gemm transB (2-D only)
  float alpha = 1.f;      // Gemm alpha; != 1 needs a constant B (folded into it)
  Dims bias_dims;         // empty = no bias; else broadcastable to [M, N] (Gemm C, MatMul+Add)
  float beta = 1.f;       // Gemm beta (scales the constant bias)
  KernelOptions options;  // kAddResidual: residual has the output's (plain) shape
};

class OnednnMatmul {
 public:
  // `b_const`: numel(b_dims) floats, or null when B is a run-time input. `bias`: numel(bias_dims)
  // floats (constant) or null when bias_dims is empty.
  static Result<std::unique_ptr<const OnednnMatmul>> create(const MatmulParams& params,
                                                            const float* b_const,
                                                            const float* bias);
  ~OnednnMatmul();

  const Dims& dst_dims() const;  // broadcast batch dims..., M, N (1-D promotions not squeezed)
  size_t scratchpad_bytes() const;
  size_t weights_bytes() const;
  std::string implementation() const;
  double flops() const;

  // All tensors plain row-major. `b` is ignored (may be null) when B is constant.
  Status execute(const float* a, const float* b, float* dst, const float* residual,
                 OnednnScratch& scratch) const;

  struct Impl;
  explicit OnednnMatmul(std::unique_ptr<Impl> impl);

 private:
  std::unique_ptr<Impl> impl_;
};

// Element type of a kernel's activations where it is not always f32 (pooling of int8 tensors).
enum class ElementType { kF32, kU8, kS8 };

// ---------------------------------------------------------------------------------------------
// MaxPool / AveragePool / GlobalAveragePool / GlobalMaxPool.
struct PoolParams {
  ElementType element = ElementType::kF32;  // u8/s8: MaxPool of quantized tensors (src = dst type)
  enum class Kind { kMax, kAverage };
  Kind kind = Kind::kMax;
  Dims src_dims;    // N, C, spatial...
  Dims kernel;      // per spatial dim; empty = global pooling (kernel = spatial dims)
  Dims strides;     // default 1s
  Dims pads_begin;  // explicit pads (resolve auto_pad before calling)
  Dims pads_end;
  Dims dilations;  // ONNX convention, default 1s
  bool ceil_mode = false;
  bool count_include_pad = false;
  LayoutChoice src = LayoutChoice::plain();
  LayoutChoice dst = LayoutChoice::plain();
  KernelOptions options;  // post_ops other than kAddResidual
};

class OnednnPool {
 public:
  // kUnimplemented for: MaxPool's Indices output (never asked here; do not route it), average
  // pooling with count_include_pad and a ceil_mode window overhanging the padded input.
  static Result<std::unique_ptr<const OnednnPool>> create(const PoolParams& params);
  ~OnednnPool();

  const Layout& src_layout() const;
  const Layout& dst_layout() const;
  const Dims& dst_dims() const;  // check it equals your shape inference; fall back if not
  size_t scratchpad_bytes() const;
  std::string implementation() const;

  Status execute(const float* src, float* dst, OnednnScratch& scratch) const;

  struct Impl;
  explicit OnednnPool(std::unique_ptr<Impl> impl);

 private:
  std::unique_ptr<Impl> impl_;
};

// ---------------------------------------------------------------------------------------------
// BatchNormalization, inference mode (running statistics), 2-D..5-D input, dst layout = src layout.
struct BatchNormParams {
  Dims src_dims;  // N, C, ...
  float epsilon = 1e-5f;
  LayoutChoice src = LayoutChoice::plain();
  KernelOptions options;  // only {kRelu} is fused here; other post-ops return kUnimplemented
};

class OnednnBatchNorm {
 public:
  // scale, bias, mean, var: C floats each.
  static Result<std::unique_ptr<const OnednnBatchNorm>> create(const BatchNormParams& params,
                                                               const float* scale,
                                                               const float* bias, const float* mean,
                                                               const float* var);
  ~OnednnBatchNorm();

  const Layout& src_layout() const;
  const Layout& dst_layout() const;
  size_t scratchpad_bytes() const;
  std::string implementation() const;

  Status execute(const float* src, float* dst, OnednnScratch& scratch) const;

  struct Impl;
  explicit OnednnBatchNorm(std::unique_ptr<Impl> impl);

 private:
  std::unique_ptr<Impl> impl_;
};

// ---------------------------------------------------------------------------------------------
// Softmax / LogSoftmax along one axis, plain layout (ONNX opset 13 semantics). For opset < 13 pass
// the 2-D coerced dims [prod(dims[:axis]), prod(dims[axis:])] and axis 1.
struct SoftmaxParams {
  Dims dims;
  int64_t axis = -1;      // negative counts from the end
  bool log = false;       // LogSoftmax
  KernelOptions options;  // post_ops are not supported here (kUnimplemented)
};

class OnednnSoftmax {
 public:
  static Result<std::unique_ptr<const OnednnSoftmax>> create(const SoftmaxParams& params);
  ~OnednnSoftmax();
  size_t scratchpad_bytes() const;
  std::string implementation() const;
  // src and dst plain, numel(dims) floats; dst may equal src.
  Status execute(const float* src, float* dst, OnednnScratch& scratch) const;

  struct Impl;
  explicit OnednnSoftmax(std::unique_ptr<Impl> impl);

 private:
  std::unique_ptr<Impl> impl_;
};

// ---------------------------------------------------------------------------------------------
// LayerNormalization (ONNX opset 17), output Y only: normalizes over dims[axis:], plain layout.
// Scale (and bias) must have numel(dims[axis:]) elements (the usual [hidden]); other broadcast
// shapes return kUnimplemented. Mean/InvStdDev outputs are not produced (do not route those).
struct LayerNormParams {
  Dims dims;
  int64_t axis = -1;
  float epsilon = 1e-5f;
  bool has_bias = true;
  KernelOptions options;  // post_ops are not supported here (kUnimplemented)
};

class OnednnLayerNorm {
 public:
  static Result<std::unique_ptr<const OnednnLayerNorm>> create(const LayerNormParams& params,
                                                               const float* scale,
                                                               const float* bias);
  ~OnednnLayerNorm();
  size_t scratchpad_bytes() const;
  std::string implementation() const;
  Status execute(const float* src, float* dst, OnednnScratch& scratch) const;

  struct Impl;
  explicit OnednnLayerNorm(std::unique_ptr<Impl> impl);

 private:
  std::unique_ptr<Impl> impl_;
};

// ---------------------------------------------------------------------------------------------
// One element-wise activation (a PostOp kind with a single oneDNN algorithm: Relu, LeakyRelu,
// Clip, Sigmoid, Tanh, HardSwish, GeluErf, Linear) over a plain tensor of any shape.
struct EltwiseParams {
  Dims dims;
  PostOp op;
  int threads = 0;  // as KernelOptions::threads
};

class OnednnEltwise {
 public:
  static Result<std::unique_ptr<const OnednnEltwise>> create(const EltwiseParams& params);
  ~OnednnEltwise();
  size_t scratchpad_bytes() const;
  std::string implementation() const;
  // src and dst plain, numel(dims) floats; dst may equal src.
  Status execute(const float* src, float* dst, OnednnScratch& scratch) const;

  struct Impl;
  explicit OnednnEltwise(std::unique_ptr<Impl> impl);

 private:
  std::unique_ptr<Impl> impl_;
};

// ---------------------------------------------------------------------------------------------
// One recurrent layer (ONNX LSTM, GRU, RNN) on oneDNN's RNN primitives, forward inference. Every
// tensor is in ONNX's layout and gate order; the weights are reordered once at create. What
// oneDNN cannot do (sequence_lens, clip, input_forget, other activations) stays with the caller.
struct RnnParams {
  enum class Cell {
    kLstm,       // gates i o f c (ONNX), sigmoid/tanh/tanh
    kGru,        // gates z r h, linear_before_reset = 0
    kLbrGru,     // linear_before_reset = 1 (what torch exports)
    kRnnTanh,    // RNN with activation Tanh
    kRnnRelu,    // Relu
    kRnnSigmoid  // Sigmoid
  };
  enum class Direction { kForward, kReverse, kBidirectional };
  Cell cell = Cell::kLstm;
  Direction direction = Direction::kForward;
  int64_t seq = 0, batch = 0, input = 0, hidden = 0;
  bool batch_first = false;  // ONNX layout 1: X [batch, seq, input], states [batch, dirs, hidden]
  bool has_initial_h = false, has_initial_c = false;  // absent: zeros
  int threads = 0;           // as KernelOptions::threads
  int gates() const {        // weight blocks per direction
    return cell == Cell::kLstm ? 4 : cell == Cell::kGru || cell == Cell::kLbrGru ? 3 : 1;
  }
};

class OnednnRnn {
 public:
  // W [dirs, gates*hidden, input], R [dirs, gates*hidden, hidden], B [dirs, 2*gates*hidden] or
  // null (zeros), P [dirs, 3*hidden] (LSTM peepholes, i o f) or null.
  static Result<std::unique_ptr<const OnednnRnn>> create(const RnnParams& params, const float* w,
                                                         const float* r, const float* b,
                                                         const float* p);
  ~OnednnRnn();
  size_t scratchpad_bytes() const;  // oneDNN's scratchpad and layout staging
  size_t weights_bytes() const;
  std::string implementation() const;

  // x, initial states and outputs in ONNX shapes: Y [seq, dirs, batch, hidden] (batch_first:
  // [batch, seq, dirs, hidden]), Y_h/Y_c [dirs, batch, hidden] ([batch, dirs, hidden]). h0/c0 are
  // read only when the params said so; y, y_h and y_c may be null (not produced).
  Status execute(const float* x, const float* h0, const float* c0, float* y, float* y_h,
                 float* y_c, OnednnScratch& scratch) const;

  struct Impl;
  explicit OnednnRnn(std::unique_ptr<Impl> impl);

 private:
  std::unique_ptr<Impl> impl_;
};

// ---------------------------------------------------------------------------------------------
// Layout conversion, for graph edges (plain <-> blocked). Dims of both layouts must match.
class OnednnReorder {
 public:
  static Result<std::unique_ptr<const OnednnReorder>> create(const Layout& from, const Layout& to,
                                                             int threads = 0);
  ~OnednnReorder();
  Status execute(const float* src, float* dst, OnednnScratch& scratch) const;

  struct Impl;
  explicit OnednnReorder(std::unique_ptr<Impl> impl);

 private:
  std::unique_ptr<Impl> impl_;
};

// ---------------------------------------------------------------------------------------------
// Row-major C[m, n] = op(A)[m, k] * op(B)[k, n] + beta * C on the calling thread (one OpenMP
// thread), for reference kernels built from matrix products (LSTM/GRU/RNN). op = transpose when
// trans_*; lda/ldb/ldc are row strides of the stored matrices.
Status sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a,
             int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

}  // namespace moss::engine::onednn

namespace moss::engine::onednn {

// ---------------------------------------------------------------------------------------------
// Scaled dot-product attention as transformer exports write it out (MatMul, Div, Add/Where,
// Softmax, MatMul): Y = softmax(scale * (Q x K) + mask, last axis) x V, in one kernel: a oneDNN
// matmul with the scale and the mask as post-ops writes the scores into the scratchpad, oneDNN's
// softmax normalises them in place and a second matmul multiplies by V. Batch dims (batch,
// heads) of Q, K and V must be equal; plain layouts.
struct AttentionParams {
  Dims q_dims;     // [..., M, D]
  Dims k_dims;     // [..., D, N] (K already transposed, as the graph's MatMul reads it)
  Dims v_dims;     // [..., N, Dv]
  float scale = 1.f;
  Dims mask_dims;  // empty: no mask; else broadcastable to [..., M, N], added to scaled scores
  KernelOptions options;  // threads; post_ops are not supported here
};

class OnednnAttention {
 public:
  // `mask_const`: numel(mask_dims) floats packed once, or null for a run-time mask (execute's
  // `mask`) or no mask.
  static Result<std::unique_ptr<const OnednnAttention>> create(const AttentionParams& params,
                                                               const float* mask_const);
  ~OnednnAttention();

  const Dims& dst_dims() const;  // [..., M, Dv]
  size_t scratchpad_bytes() const;  // the scores plus the primitives' scratchpad
  size_t weights_bytes() const;     // a packed constant mask
  // `mask` is read only for a run-time mask (ignored otherwise).
  Status execute(const float* q, const float* k, const float* v, const float* mask, float* dst,
                 OnednnScratch& scratch) const;

  struct Impl;
  explicit OnednnAttention(std::unique_ptr<Impl> impl);

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace moss::engine::onednn
