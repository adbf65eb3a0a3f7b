// InferenceService: one encrypted request, end to end, inside the worker's TEE.
//
//   peek the envelope header (model, user, request id) -> keys from the KeyCache (KeyService on a
//   miss) -> open the envelope under the request key -> the model from the ModelCache (on a miss:
//   a compiled-plan cache hit for the file the store holds, else fetch from the store, decrypt in
//   memory trying each released model key, compile) -> run in a pooled execution context -> seal
//   the outputs under the request key as the response.
//
// Before the envelope is opened a failure is a Status (its message holds nothing from the
// plaintext: only the envelope's public header, the KeyService's answer). Once it is opened, every
// answer is sealed for the user: a failure becomes an error-form response envelope
// (common/reply_error.h) and InferResult::failure carries only its fixed category, code and reason,
// which is all the cleartext answer (category and code) and the log may show. Plaintext inputs,
// outputs and their serialised bytes are wiped before returning. Thread-safe.
#pragma once

#include "worker/key_cache.h"
#include "worker/metrics.h"
#include "worker/model_cache.h"
#include "worker/model_store.h"
#include "worker/plan_cache.h"
#include "worker/replay_cache.h"
#include "worker/worker_config.h"

#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace moss::worker {

// The reason of a model that does not compile: its detail is sealed for the requester only.
inline constexpr std::string_view kReasonModelDoesNotCompile = "model-does-not-compile";

// Why an opened request failed, as much as may be said in cleartext (the log line too).
struct SealedFailure {
  std::string_view category;  // protocol/error_category.h
  ErrorCode code;             // decides the HTTP status
  std::string reason;         // Status::reason(), a fixed word ("" when none)
};

struct InferResult {
  std::string envelope;  // the response envelope, in the request envelope's encoding
  protocol::RunKind kind = protocol::RunKind::kWarm;
  Timing timing;
  std::string request_id;                // from the envelope's header
  std::optional<SealedFailure> failure;  // set: `envelope` seals the error detail instead of outputs
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
  // The model rebuilt from its compiled-plan cache entry without fetching the model file (only
  // its header, to know which file the store holds), or null with `key` filled for the entry
  // the full load then writes.
  std::shared_ptr<const engine::CompiledModel> load_cached(const std::string& model_id,
                                                          const ReleasedKeys& keys, LoadTiming& t,
                                                          PlanCacheKey& key);
  // After the envelope opened: inputs -> model -> outputs, the response plaintext (safetensors)
  // or the failure with its category.
  Result<std::vector<uint8_t>> run_opened(const std::string& model_id, const ReleasedKeys& keys,
                                          SecretBytes plaintext, InferResult& out,
                                          std::string_view& category);

  const int intra_op_threads_;
  Metrics& metrics_;
  std::unique_ptr<KeySource> keys_;
  std::unique_ptr<ModelStore> store_;
  PlanCache plan_cache_;
  KeyCache key_cache_;
  ModelCache models_;
  ReplayCache replays_;
};

// Serialisation shared by the HTTP front and tests.
std::string timing_json_text(const Timing& t);

}  // namespace moss::worker
