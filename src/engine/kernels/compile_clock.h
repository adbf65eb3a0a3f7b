// Per-thread counters of where compile time goes inside the planner: creating kernels (oneDNN
// primitive descriptors and primitives) and packing weights into their layouts. compile() reads
// them around build_plan to report CompiledModel::compile_timing; nothing else depends on them.
#pragma once

#include <chrono>
#include <cstdint>

namespace moss::engine {

struct CompileClock {
  int64_t kernel_ns = 0;  // inside kernel creation, packing included
  int64_t pack_ns = 0;    // inside weight packing
};

// The calling thread's counters (compile runs on one thread).
CompileClock& compile_clock();

// Adds the scope's duration to one counter.
class ClockScope {
 public:
  explicit ClockScope(int64_t& counter)
      : counter_(counter), start_(std::chrono::steady_clock::now()) {}
  ~ClockScope() {
    counter_ += std::chrono::duration_cast<std::chrono::nanoseconds>(
                    std::chrono::steady_clock::now() - start_)
                    .count();
  }
  ClockScope(const ClockScope&) = delete;
  ClockScope& operator=(const ClockScope&) = delete;

 private:
  int64_t& counter_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace moss::engine
