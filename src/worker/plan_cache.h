// PlanCache: compiled plans kept on the instance's disk, so the next cold start of the same model
// neither fetches, decrypts nor parses the model: the entry holds the compiled graph and the
// packed weights (engine/runtime/plan_snapshot.h), and CompiledModel::compile_snapshot() rebuilds
// the model from it alone.
//
// One file per model, `<dir>/<hex SHA-256 of model id>.plan`:
//   "MOSSPLAN" | version u16 (3) | header_len u32 | header (JSON, cleartext)
//   | the snapshot in the encrypted model file format (crypto/model_file.h)
// The header names what the plan is valid for: the model id, the encrypted model file it was
// compiled from (its 32 random bytes and size: a re-encrypted or replaced file has new ones), the
// version of the model key it is encrypted under, the intra-op thread count, the engine build and
// the CPU feature set. The payload key is
//   HKDF-SHA256(model key, salt = SHA-256(magic | version | header_len | header),
//               info = "moss plan cache v3")
// so the header is authenticated with the payload (any edit fails chunk 0), and only a holder of
// the model key can read or forge an entry (docs/worker.md, "Compiled-plan cache", says why an
// entry stands in for the model file). Loading reads the payload chunk by chunk (read(2): a mapping
// of it would fault in every page-cache page) and decrypts each into the 64-byte aligned buffer
// the kernels and the graph's constants then read in place.
//
// An entry that is missing, for another model file, key, build, CPU or thread count, truncated,
// tampered or under another key is ignored with a logged reason, and the model is compiled from
// scratch; the fresh plan then replaces the entry (written in the background). Thread-safe.
#pragma once

#include "common/secret_bytes.h"
#include "common/status.h"
#include "engine/runtime/packed_weights.h"
#include "engine/runtime/plan_snapshot.h"
#include "worker/released_keys.h"

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
  // The model key the entry is written under (store); load reads it from the entry's header and
  // takes that version from the released keys.
  uint32_t model_key_version = 0;
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
  // Whether an entry for the model is on disk (valid or not: load() decides), so a caller can
  // skip the work of asking for one (a store round trip for the model file's header).
  bool has_entry(const std::string& model_id) const;

  // The cached snapshot for `key`, decrypted under the released model key the entry names, or
  // null; why an entry was ignored goes to the log and, when given, to *reason ("" for a hit or
  // a cache without an entry).
  std::shared_ptr<const engine::PlanSnapshot> load(const PlanCacheKey& key,
                                                   std::span<const VersionedKey> model_keys,
                                                   std::string* reason = nullptr) const;
  // Under `model_key`, whose version is key.model_key_version.
  Status store(const PlanCacheKey& key, std::span<const uint8_t> model_key,
               const engine::PlanSnapshot& snapshot) const;
  // store() on a background thread (the snapshot holds its buffers alive until written).
  void store_in_background(PlanCacheKey key, SecretBytes model_key,
                           std::shared_ptr<const engine::PlanSnapshot> snapshot);
  void wait();  // background writes finished
  void remove(const std::string& model_id) const;

 private:
  std::filesystem::path dir_;
  std::mutex mu_;
  std::vector<std::thread> writers_;  // guarded by mu_
};

}  // namespace moss::worker
