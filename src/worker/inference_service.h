// InferenceService: one encrypted request, end to end, inside the worker's TEE.
//
//   peek the envelope header (model, user, request id) -> keys from the KeyCache (KeyService on a
//   miss) -> open the envelope under the request key -> the model from the ModelCache (on a miss:
//   fetch from the store, decrypt in memory trying each released model key, compile) -> run in a
//   pooled execution context -> seal the outputs under the request key as the response.
//
// Plaintext inputs, outputs and their serialised bytes are wiped before returning. Every failure
// is a Status naming what went wrong; nothing secret is in a message. Thread-safe.
#pragma once

#include "worker/key_cache.h"
#include "worker/metrics.h"
#include "worker/model_cache.h"
#include "worker/model_store.h"
#include "worker/worker_config.h"

#include <memory>
#include <string>

namespace moss::worker {

struct InferResult {
  std::string envelope;  // the response envelope, in the request envelope's encoding
  RunKind kind = RunKind::kWarm;
  Timing timing;
};

class InferenceService {
 public:
  InferenceService(const WorkerConfig& config, std::unique_ptr<KeySource> keys,
                   std::unique_ptr<ModelStore> store, Metrics& metrics);

  Result<InferResult> infer(std::string_view model_id, std::string_view envelope_json);

  ModelCache::Snapshot snapshot() const { return models_.snapshot(); }
  KeyCache& key_cache() { return key_cache_; }
  const ModelStore& store() const { return *store_; }

 private:
  Result<std::shared_ptr<const engine::CompiledModel>> load(const std::string& model_id,
                                                            const ReleasedKeys& keys, LoadTiming& t);

  const int intra_op_threads_;
  Metrics& metrics_;
  std::unique_ptr<KeySource> keys_;
  std::unique_ptr<ModelStore> store_;
  KeyCache key_cache_;
  ModelCache models_;
};

// Serialisation shared by the HTTP front and tests.
std::string timing_json_text(const Timing& t);

}  // namespace moss::worker
