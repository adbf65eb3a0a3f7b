// ModelCache: compiled models resident in the worker, within a memory budget.
//
// Each resident model holds its weights once (CompiledModel) and a pool of execution contexts,
// one per concurrent request, each owning only its activation arena. The budget accounts weights
// plus every context's arena. A request that misses loads the model through the caller's loader
// (fetch, decrypt, compile); concurrent misses of one model share that single load. Room for a
// new model is made by evicting the least recently used models one at a time, never a model that
// a request is using; when only models in use stand in the way, the load waits for them (up to
// `wait_for_room`) and then fails with resource-exhausted.
//
// A model is resident per (model id, key generation): the generation names the model keys the
// KeyService released (InferenceService passes a fingerprint of versions and key bytes), so after
// a delete, retire or re-key the next request, holding the new keys, loads the model afresh and
// the old copy is dropped; it is never served again. A failed load is remembered for
// `failure_backoff` (the file is not re-read and re-decrypted for every request) and does not
// count as a load. Thread-safe.
#pragma once

#include "engine/runtime/compiled_model.h"
#include "engine/runtime/execution_context.h"
#include "protocol/run_kind.h"

#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace moss::worker {

struct LoadTiming {
  double model_fetch_ms = 0;
  double decrypt_ms = 0;
  double compile_ms = 0;
};

class ModelCache {
 public:
  using Clock = std::chrono::steady_clock;
  struct Options {
    uint64_t budget_bytes = uint64_t{4} << 30;
    size_t max_idle_contexts = 8;  // per model; more are freed when returned
    std::chrono::milliseconds wait_for_room{30'000};
    // How long a failed load answers from memory before the next request tries again (not for
    // resource-exhausted: room may free up at any moment).
    std::chrono::milliseconds failure_backoff{2'000};
  };
  // Fills `timing` as it goes; returns the compiled model or why it could not be loaded.
  using Loader = std::function<Result<std::shared_ptr<const engine::CompiledModel>>(LoadTiming& timing)>;

  explicit ModelCache(Options options);
  ~ModelCache();

  struct Entry;
  // A model pinned for one request plus that request's execution context; returns both on
  // destruction. Move-only.
  class Lease {
   public:
    Lease(Lease&&) noexcept;
    Lease& operator=(Lease&&) = delete;
    Lease(const Lease&) = delete;
    ~Lease();
    engine::ExecutionContext& context() { return *context_; }

   private:
    friend class ModelCache;
    Lease(ModelCache* cache, std::shared_ptr<Entry> entry, std::unique_ptr<engine::ExecutionContext> ctx);
    ModelCache* cache_;
    std::shared_ptr<Entry> entry_;
    std::unique_ptr<engine::ExecutionContext> context_;
    size_t arena_at_acquire_ = 0;
  };

  struct Acquired {
    Lease lease;
    protocol::RunKind kind;
    LoadTiming timing;  // zero for warm runs
  };
  // `generation`: which keys the model is loaded under (see above); "" for callers with one.
  Result<Acquired> acquire(const std::string& model_id, const Loader& loader,
                           std::string_view generation = {});

  struct ModelInfo {
    std::string model_id;
    uint64_t weights_bytes = 0;
    uint64_t arena_bytes = 0;  // all contexts
    size_t contexts = 0;
    size_t in_use = 0;
    int64_t last_used_ms_ago = 0;
  };
  struct Snapshot {
    uint64_t budget_bytes = 0;
    uint64_t used_bytes = 0;
    std::vector<ModelInfo> models;  // most recently used first
    uint64_t hits = 0, misses = 0, loads = 0, load_failures = 0, evictions = 0;
    uint64_t failures_remembered = 0;  // requests answered by a remembered failure (no load)
  };
  Snapshot snapshot() const;

 private:
  void release(Lease& lease);
  // Precondition: lock held. Evicts LRU unpinned models (not `keep`) until `need` more bytes
  // fit; waits for pinned ones up to the deadline.
  Status make_room(uint64_t need, const std::string& keep, std::unique_lock<std::mutex>& lock);
  void evict_over_budget();  // lock held; no waiting
  // Lock held: removes a resident entry and its bytes from the budget.
  void drop_locked(const std::string& key);

  const Options options_;
  mutable std::mutex mu_;
  std::condition_variable room_;
  // By model id + '\n' + generation (model ids have no newline). Guarded by mu_.
  std::map<std::string, std::shared_ptr<Entry>> entries_;
  struct Failure {
    Status status;
    Clock::time_point retry_at;
  };
  std::map<std::string, Failure> failures_;  // guarded by mu_; same keys
  uint64_t used_ = 0;                        // guarded by mu_
  uint64_t hits_ = 0, misses_ = 0, loads_ = 0, load_failures_ = 0, evictions_ = 0,
           failures_remembered_ = 0;
};

}  // namespace moss::worker
