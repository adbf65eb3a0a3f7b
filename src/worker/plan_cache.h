// PlanCache: compiled plans (the weights a compile packed, engine/runtime/packed_weights.h) kept
// on the instance's disk, so the next cold start of the same model maps them instead of packing.
//
// One file per model, `<dir>/<hex SHA-256 of model id>.plan`:
//   "MOSSPLAN" | version u16 | header_len u32 | header (JSON, cleartext)
//   | the packed weights in the encrypted model file format (crypto/model_file.h)
// The header names what the plan is valid for: the model id, the encrypted model file it was
// compiled from (its 32 random bytes and size: a re-encrypted or replaced file has new ones), the
// intra-op thread count, the engine build and the CPU feature set. The payload key is
//   HKDF-SHA256(model key, salt = SHA-256(magic | version | header_len | header),
//               info = "moss plan cache v1")
// so the header is authenticated with the payload (any edit fails chunk 0), and only a holder of
// the model key can read or forge an entry. Loading maps the file and decrypts it chunk by chunk
// straight into the buffer the kernels then read in place (no second copy).
//
// An entry that is missing, for another model file, build, CPU or thread count, truncated,
// tampered or under another key is ignored with a logged reason, and the model is compiled from
// scratch; the fresh plan then replaces the entry (written in the background). Thread-safe.
#pragma once

#include "common/secret_bytes.h"
#include "common/status.h"
#include "engine/runtime/packed_weights.h"

#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

namespace moss::worker {

struct PlanCacheKey {
  std::string model_id;
  std::array<uint8_t, 32> model_file_random{};
  uint64_t model_file_size = 0;
  int threads = 1;
  std::string build_id = engine::engine_build_id();
  std::string cpu_features = engine::cpu_feature_set();
};

class PlanCache {
 public:
  // An empty `dir` disables the cache (load finds nothing, store writes nothing).
  explicit PlanCache(std::filesystem::path dir);
  ~PlanCache();  // waits for background writes
  PlanCache(const PlanCache&) = delete;
  PlanCache& operator=(const PlanCache&) = delete;

  bool enabled() const { return !dir_.empty(); }
  std::filesystem::path path_for(const std::string& model_id) const;

  // The cached packed weights for `key`, or null; why an entry was ignored goes to the log and,
  // when given, to *reason ("" for a hit or a cache without an entry).
  std::shared_ptr<const engine::PackedWeights> load(const PlanCacheKey& key,
                                                    std::span<const uint8_t> model_key,
                                                    std::string* reason = nullptr) const;
  Status store(const PlanCacheKey& key, std::span<const uint8_t> model_key,
               const engine::PackedWeights& weights) const;
  // store() on a background thread (the weights hold their buffers alive until written).
  void store_in_background(PlanCacheKey key, SecretBytes model_key,
                           std::shared_ptr<const engine::PackedWeights> weights);
  void wait();  // background writes finished
  void remove(const std::string& model_id) const;

 private:
  std::filesystem::path dir_;
  std::mutex mu_;
  std::vector<std::thread> writers_;  // guarded by mu_
};

}  // namespace moss::worker
