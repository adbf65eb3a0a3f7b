// Internal helpers shared by the oneDNN kernels: the CPU engine, Layout/Scratch internals, the one
// place where dnnl::error becomes a Status, post-op translation and per-thread OpenMP settings.
// Not part of the API the engine uses (that is onednn_ops.h).
#pragma once

#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "engine/kernels/onednn/onednn_ops.h"

namespace moss::engine::onednn {

// The process-wide CPU engine. dnnl::engine is thread-safe; created on first use.
const dnnl::engine& cpu_engine();

struct Layout::Impl {
  dnnl::memory::desc md;
  Dims dims;
};

struct OnednnScratch::Impl {
  dnnl::stream stream;
  void* buffer = nullptr;  // 64-byte aligned, capacity bytes
  size_t capacity = 0;
  ~Impl();
};

Layout layout_from_md(const dnnl::memory::desc& md);
dnnl::memory::desc plain_md(const Dims& dims,
                            dnnl::memory::data_type dt = dnnl::memory::data_type::f32);
dnnl::memory::dims to_dnnl(const Dims& dims);

// Each dim in [1, 2^31) and numel*4 under 16 GiB: what we accept from a model.
Status check_dims(const Dims& dims, std::string_view what);
int64_t numel(const Dims& dims);

// The md a LayoutChoice asks for; kAny gives format_tag::any.
Result<dnnl::memory::desc> choose_md(const LayoutChoice& choice, const Dims& dims,
                                     std::string_view what,
                                     dnnl::memory::data_type dt = dnnl::memory::data_type::f32);

// Appends the post-ops; kAddResidual becomes a sum post-op when allow_residual, else
// kUnimplemented. Sets *has_residual.
Status build_post_ops(const std::vector<PostOp>& ops, bool allow_residual, dnnl::post_ops& out,
                      bool* has_residual);

// The oneDNN type of a kernel's ElementType.
dnnl::memory::data_type dnnl_type(ElementType t);

// A primitive_attr with user-managed scratchpad (kernels stay immutable) and the post-ops.
dnnl::primitive_attr make_attr(const dnnl::post_ops& ops);

// Number of OpenMP threads a kernel will use (threads == 0: the creating thread's default).
int resolve_threads(int threads);

// Sets the calling thread's OpenMP thread count for a scope and restores it. Creating and running
// a primitive under the same count keeps its work split, hence its results, fixed.
class ThreadScope {
 public:
  explicit ThreadScope(int threads);
  ~ThreadScope();
  ThreadScope(const ThreadScope&) = delete;
  ThreadScope& operator=(const ThreadScope&) = delete;

 private:
  int saved_ = 0;
};

// Runs f (returning Status or Result) and turns oneDNN and allocation exceptions into a Status:
// oneDNN's "unimplemented" into kUnimplemented (the caller falls back), the rest into kInternal.
Status status_from_dnnl(const dnnl::error& e, std::string_view what);

template <typename F>
auto dnnl_guard(std::string_view what, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const dnnl::error& e) {
    return status_from_dnnl(e, what);
  } catch (const std::bad_alloc&) {
    return resource_exhausted("{}: out of memory", what);
  }
}

// Executes a primitive with the scratch's stream and scratchpad (growing it if the caller did not
// reserve enough) and waits for it.
Status run_primitive(const dnnl::primitive& prim, const dnnl::memory::desc& scratchpad_md,
                     std::unordered_map<int, dnnl::memory>& args, OnednnScratch& scratch,
                     int threads, std::string_view what);

// A memory object over caller-owned data (no copy).
inline dnnl::memory wrap(const dnnl::memory::desc& md, const void* data) {
  return dnnl::memory(md, cpu_engine(), const_cast<void*>(data));
}

// A reorder between two layouts that needs no scratchpad (layout changes of plain types);
// throws dnnl::error (unimplemented) otherwise, so callers never share an unsized region.
dnnl::reorder layout_reorder(const dnnl::memory::desc& from, const dnnl::memory::desc& to);

// md with another element type, same dims and layout (strides count elements).
dnnl::memory::desc with_type(const dnnl::memory::desc& md, dnnl::memory::data_type dt);

// Copies `data` (in `from` layout) into a new engine-owned memory in `to` layout.
dnnl::memory pack(const dnnl::memory::desc& from, const void* data, const dnnl::memory::desc& to);

// Packed float32 weights held in a 16-bit type (WeightStorage), element for element in the packed
// layout, and widened back into a caller's buffer before each use. Only when that is exact: a
// half model's weights were half to begin with, but weights derived from them (a folded
// BatchNormalization, a Gemm's alpha) are not, and rounding them again would change the
// model's results. Such weights are not held (empty()): the kernel keeps its float32 copy.
class HalfWeights {
 public:
  HalfWeights() = default;
  // Empty unless every value of `packed` round-trips exactly through `type`.
  HalfWeights(const dnnl::memory& packed, WeightStorage type);
  bool empty() const { return bits_.empty(); }
  const dnnl::memory::desc& md() const { return md_; }  // the float32 layout widen() writes
  size_t bytes() const { return bits_.size() * sizeof(uint16_t); }
  size_t widened_bytes() const { return empty() ? 0 : md_.get_size(); }
  void widen(void* dst) const;  // widened_bytes() into dst

 private:
  dnnl::memory::desc md_;
  WeightStorage type_ = WeightStorage::kF32;
  std::vector<uint16_t> bits_;
};

// Where a kernel's widened weights go in its scratch (after `offset` bytes), or the packed memory
// itself when they are held in float32.
dnnl::memory weights_for_run(const dnnl::memory& packed, const HalfWeights& half, char* scratch,
                             size_t offset);

}  // namespace moss::engine::onednn
