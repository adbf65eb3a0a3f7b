// Tensor buffers for the values the interpreter computes (the plan's tail and the bodies of If,
// Loop and Scan). A buffer whose users have all released it is handed out again for the next
// value of the same element type and shape, so a loop body whose shapes do not change stops
// allocating after its first iterations. A buffer is free when the pool holds the only reference
// to it (values are shared_ptrs; raw views never outlive the value they view).
// One per Interpreter (per request); not thread-safe.
#pragma once

#include "common/status.h"
#include "common/tensor.h"

#include <map>
#include <memory>
#include <span>
#include <utility>
#include <vector>

namespace moss::engine {

class BufferPool {
 public:
  // A zero-filled tensor of dtype and shape: a free buffer of exactly that type and shape when
  // there is one, else a new one (which fails on an invalid or oversized shape).
  Result<std::shared_ptr<Tensor>> acquire(DType dtype, std::span<const int64_t> shape);
  // Buffers allocated so far; reuses are not counted. For tests and profiling.
  size_t allocations() const { return allocations_; }
  // Bytes of every buffer the pool holds, in use or free.
  size_t held_bytes() const { return held_bytes_; }

 private:
  // Drops free buffers until they hold no more bytes than the buffers in use: a loop whose shapes
  // change on every iteration (a growing sequence) keeps memory proportional to what it uses.
  void trim();

  // Below this many bytes held the pool never trims (a steady loop stops allocating long before).
  static constexpr size_t kFirstTrim = size_t{64} << 20;

  std::map<std::pair<DType, int64_t>, std::vector<std::shared_ptr<Tensor>>> buckets_;  // (dtype, numel)
  size_t held_bytes_ = 0;
  size_t trim_at_ = kFirstTrim;
  size_t allocations_ = 0;
};

}  // namespace moss::engine
