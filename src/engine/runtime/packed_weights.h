// PackedWeights: the weight buffers a compile packed into oneDNN layouts, in the order it packed
// them, so that a later compile of the same model by the same engine build, on a CPU with the same
// features and with the same thread count, can take them instead of reordering the weights again
// (the worker's compiled-plan cache, worker/plan_cache.h).
//
// Recording: CompileOptions::record_packed_weights; CompiledModel::packed_weights() then holds
// every buffer (sharing the kernels' memory, no copy). Replay: CompileOptions::packed_weights;
// each pack() takes the next recorded buffer only when its source and destination oneDNN memory
// descriptors equal the ones asked for exactly; at the first difference replay stops for good and
// the weights are packed from the model as without a cache (a stale cache costs time, never a
// wrong answer: the model's own weights are always there). Replayed kernels read the stored
// bytes in place, so the PackedWeights is kept alive by the CompiledModel.
//
// Contract with PlanSnapshot (plan_snapshot.h): a kernel that hands a constant's own bytes to
// pack() unchanged derives nothing else from them; a snapshot stores such a weight without its
// bytes, and a rebuild from it replays the packed copy.
#pragma once

#include "common/status.h"

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace moss::engine {

// What packed weights depend on besides the model: this binary (its GNU build id, else a hash of
// the executable) with the oneDNN library's version and commit, and the CPU's instruction sets.
const std::string& engine_build_id();
const std::string& cpu_feature_set();

class PackedWeights {
 public:
  struct Buffer {
    std::string from_md, to_md;  // dnnl_memory_desc_t bytes (same build, so same layout)
    const uint8_t* data = nullptr;
    size_t size = 0;
    // Recording only (not serialised): the bytes pack() reordered and how many, so the compile
    // can tell constants handed to pack() unchanged (plan_snapshot.h stores those without bytes).
    const void* source = nullptr;
    size_t source_size = 0;
  };

  // Index then 64-byte aligned buffers; parse() reads it back.
  std::vector<uint8_t> serialize() const;
  // Buffers point into `bytes`, which `storage` keeps alive. The bytes come from an authenticated
  // cache entry; lengths and offsets are still checked.
  static Result<std::shared_ptr<const PackedWeights>> parse(std::shared_ptr<const void> storage,
                                                            std::span<const uint8_t> bytes);

  const std::vector<Buffer>& buffers() const { return buffers_; }
  size_t bytes() const;

  // For the kernels' pack(): appends a buffer kept alive by `keep`.
  void add(Buffer buffer, std::shared_ptr<const void> keep);

 private:
  std::vector<Buffer> buffers_;
  std::vector<std::shared_ptr<const void>> keep_;
};

// The recording or replay in effect on this thread for one build_plan (compile installs it).
class PackSession {
 public:
  PackSession(const PackedWeights* replay, PackedWeights* record);
  ~PackSession();
  PackSession(const PackSession&) = delete;
  PackSession& operator=(const PackSession&) = delete;

  static PackSession* current();
  // The next recorded buffer when replay is still in step and `matches` accepts it; otherwise
  // null, and replay stops.
  template <typename Match>
  const PackedWeights::Buffer* next(Match&& matches) {
    if (!replay_ || stopped_ || next_ >= replay_->buffers().size()) {
      stopped_ = replay_ != nullptr;
      return nullptr;
    }
    const PackedWeights::Buffer& b = replay_->buffers()[next_];
    if (!matches(b)) {
      stopped_ = true;
      return nullptr;
    }
    ++next_;
    return &b;
  }
  PackedWeights* recording() { return record_; }
  // Recorded buffers taken so far (kernels read them in place, also after replay stopped).
  size_t taken() const { return next_; }
  // Every recorded buffer was taken, in order, and nothing was packed afresh.
  bool replayed_all() const {
    return replay_ && !stopped_ && next_ == replay_->buffers().size();
  }

 private:
  const PackedWeights* replay_;
  PackedWeights* record_;
  PackSession* previous_;
  size_t next_ = 0;
  bool stopped_ = false;
};

}  // namespace moss::engine
