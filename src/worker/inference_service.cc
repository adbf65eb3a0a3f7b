#include "worker/inference_service.h"

#include "common/logging.h"
#include "common/reply_error.h"
#include "common/safetensors.h"
#include "crypto/envelope.h"
#include "protocol/ids.h"
#include "crypto/model_file.h"
#include "protocol/error_category.h"

#include <nlohmann/json.hpp>

namespace moss::worker {

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

ModelCache::Options cache_options(const WorkerConfig& c) {
  ModelCache::Options o;
  o.budget_bytes = c.memory_budget_bytes;
  o.max_idle_contexts = c.max_concurrency;
  return o;
}

void wipe_tensors(std::vector<NamedTensor>& tensors) {
  for (auto& t : tensors) {
    auto b = t.tensor.bytes();
    secure_wipe(b.data(), b.size());
  }
}

}  // namespace

std::string timing_json_text(const Timing& t) {
  nlohmann::ordered_json j = {{"key_fetch", t.key_fetch_ms}, {"model_fetch", t.model_fetch_ms},
                              {"decrypt", t.decrypt_ms},     {"compile", t.compile_ms},
                              {"inference", t.inference_ms}, {"encrypt", t.encrypt_ms},
                              {"total", t.total_ms}};
  return j.dump();
}

InferenceService::InferenceService(const WorkerConfig& config, std::unique_ptr<KeySource> keys,
                                   std::unique_ptr<ModelStore> store, Metrics& metrics)
    : intra_op_threads_(config.intra_op_threads),
      metrics_(metrics),
      keys_(std::move(keys)),
      store_(std::move(store)),
      plan_cache_(config.plan_cache_dir),
      key_cache_(*keys_, config.key_ttl),
      models_(cache_options(config)),
      // Replays are detected while the request key could still be cached here, and at least a
      // minute; the bound keeps memory flat under any request rate.
      replays_(std::max<std::chrono::milliseconds>(config.key_ttl, std::chrono::minutes(1)), 1 << 16) {}

std::shared_ptr<const engine::CompiledModel> InferenceService::load_cached(const std::string& model_id,
                                                                          const ReleasedKeys& keys,
                                                                          LoadTiming& t,
                                                                          PlanCacheKey& key) {
  // Nothing cached (the first load of a model on this disk): no store round trip for the header.
  if (!plan_cache_.has_entry(model_id)) return nullptr;
  auto t0 = Clock::now();
  auto head = store_->fetch_head(model_id, crypto::kModelFileFixedHeaderSize + 1024);
  if (!head.ok()) return nullptr;  // the full load reports it
  auto header = crypto::parse_model_header(head->bytes);
  if (!header.ok() || header->model_id != model_id) return nullptr;
  key.model_id = model_id;
  key.model_file_random = header->file_random;
  key.model_file_size = head->size;
  key.threads = intra_op_threads_;
  t.model_fetch_ms = ms_since(t0);
  t0 = Clock::now();
  auto snapshot = plan_cache_.load(key, keys.model_keys);
  if (!snapshot) return nullptr;
  t.decrypt_ms = ms_since(t0);
  t0 = Clock::now();
  engine::CompileOptions options;
  options.intra_op_threads = intra_op_threads_;
  auto compiled = engine::CompiledModel::compile_snapshot(*snapshot, options);
  if (!compiled.ok()) {
    // Only a bug could get here (the entry names everything the compile depends on): drop it,
    // so this load records a fresh one. Code and reason only: the message may name the model's
    // nodes.
    log::get("worker")->warn("plan cache entry for {} does not compile, removed: code={} reason={}", model_id,
                             error_code_name(compiled.status().code()),
                             compiled.status().reason().empty() ? "-" : compiled.status().reason());
    plan_cache_.remove(model_id);
    return nullptr;
  }
  t.compile_ms = ms_since(t0);
  return *compiled;
}

Result<std::shared_ptr<const engine::CompiledModel>> InferenceService::load(const std::string& model_id,
                                                                            const ReleasedKeys& keys,
                                                                            LoadTiming& t) {
  // A compiled-plan cache hit stands in for the model file (docs/worker.md, "Compiled-plan
  // cache"): the entry is authenticated under the model key and names this very file.
  PlanCacheKey cache_key;
  if (plan_cache_.enabled()) {
    if (auto cached = load_cached(model_id, keys, t, cache_key)) return cached;
    t = LoadTiming{};
  }
  auto t0 = Clock::now();
  MOSS_ASSIGN_OR_RETURN(std::vector<uint8_t> file, store_->fetch(model_id));
  t.model_fetch_ms = ms_since(t0);

  t0 = Clock::now();
  std::optional<SecretBytes> plain;
  const VersionedKey* model_key = nullptr;
  for (const VersionedKey& k : keys.model_keys) {
    auto r = crypto::decrypt_model(k.key.span(), model_id, file);
    if (r.ok()) {
      plain = std::move(r).value();
      model_key = &k;
      break;
    }
    // A wrong key fails authentication of chunk 0; anything else (truncated, bad header) is the
    // file's fault whatever the key.
    if (r.status().code() != ErrorCode::kUnauthenticated) {
      return data_loss("model file for {} in the store is corrupted: {}", model_id, r.status().message());
    }
  }
  if (!plain) {
    return data_loss(
        "model file for {} fails authentication under each of its {} model key(s): the stored file "
        "is corrupted or was encrypted under a key the KeyService does not hold",
        model_id, keys.model_keys.size());
  }
  t.decrypt_ms = ms_since(t0);

  t0 = Clock::now();
  engine::CompileOptions options;
  options.intra_op_threads = intra_op_threads_;
  // The plan cache entry is tied to this authenticated file (its header's random bytes and size).
  if (plan_cache_.enabled()) {
    auto header = crypto::parse_model_header(file);
    if (header.ok()) {
      cache_key.model_id = model_id;
      cache_key.model_file_random = header->file_random;
      cache_key.model_file_size = file.size();
      cache_key.model_key_version = model_key->version;
      cache_key.threads = intra_op_threads_;
      options.record_packed_weights = true;
    }
  }
  // The encrypted file is not needed any more: free it before compile allocates.
  std::vector<uint8_t>().swap(file);
  auto compiled = engine::CompiledModel::compile(plain->span(), options);
  if (!compiled.ok()) {
    // The detail names the model's internals (nodes, operators): it goes only into the answer
    // sealed for the requester; the cleartext answer and the log see the code and the reason.
    return Status(compiled.status().code() == ErrorCode::kUnimplemented ? ErrorCode::kUnimplemented
                                                                        : ErrorCode::kInvalidArgument,
                  "model " + model_id + " does not compile: " + compiled.status().message(),
                  std::string(kReasonModelDoesNotCompile));
  }
  t.compile_ms = ms_since(t0);
  if (auto snapshot = (*compiled)->take_snapshot()) {
    plan_cache_.store_in_background(cache_key, model_key->key.clone(), std::move(snapshot));
  }
  return compiled;
}

Result<InferResult> InferenceService::infer(std::string_view model_id_view, std::string_view envelope) {
  const auto start = Clock::now();
  const std::string model_id(model_id_view);
  MOSS_RETURN_IF_ERROR(protocol::validate_model_id(model_id));
  // Parsed once: the whole framing checked (the JSON form's base64 decoded once), so the envelope
  // is well formed before the KeyService is asked on behalf of a user nobody has authenticated
  // yet, and opening below decodes nothing again. The header is unauthenticated, for key lookup
  // only; opening checks these exact fields.
  MOSS_ASSIGN_OR_RETURN(protocol::EnvelopeFrame parsed, protocol::EnvelopeFrame::parse(envelope));
  const protocol::EnvelopeHeader& header = parsed.header();
  if (header.model_id != model_id) {
    return invalid_argument("the envelope is for model {}, the request names {}", header.model_id, model_id);
  }
  if (header.direction != protocol::Direction::kRequest) {
    return invalid_argument("the envelope is a response, not a request");
  }
  InferResult out;
  out.request_id = header.request_id;

  auto t0 = Clock::now();
  MOSS_ASSIGN_OR_RETURN(KeyCache::Lookup keys, key_cache_.get(model_id, header.user_id));
  metrics_.record_key_lookup(keys.hit);
  out.timing.key_fetch_ms = ms_since(t0);

  t0 = Clock::now();
  MOSS_ASSIGN_OR_RETURN(SecretBytes plaintext,
                        crypto::open_envelope(keys.keys->request_key.key.span(), header, parsed));
  out.timing.decrypt_ms = ms_since(t0);

  // Opened: from here on every answer is sealed for the user.
  std::string_view category;
  Result<std::vector<uint8_t>> reply = std::vector<uint8_t>();
  if (!replays_.first_use(header.user_id, model_id, header.request_id)) {
    category = protocol::kCategoryReplayed;
    reply = already_exists("request {} was already received by this worker (a replayed envelope)",
                           header.request_id);
    plaintext.wipe();
  } else {
    reply = run_opened(model_id, *keys.keys, std::move(plaintext), out, category);
    // A request that did not run may be sent again as it is (e.g. after the budget freed up).
    if (!reply.ok()) replays_.forget(header.user_id, model_id, header.request_id);
  }
  if (!reply.ok()) {
    out.failure = SealedFailure{category, reply.status().code(), reply.status().reason()};
    reply = write_reply_error({std::string(category), std::string(error_code_name(reply.status().code())),
                               reply.status().message()});
    if (!reply.ok()) return internal_error("cannot write the error response");  // nothing of the detail
  }

  t0 = Clock::now();
  protocol::EnvelopeHeader response = header;
  response.direction = protocol::Direction::kResponse;
  // Answered in the request's encoding.
  auto sealed = crypto::seal_envelope(keys.keys->request_key.key.span(), response, *reply, {},
                                      protocol::envelope_encoding(envelope));
  secure_wipe(*reply);
  if (!sealed.ok()) return internal_error("cannot seal the response: {}", error_code_name(sealed.status().code()));
  out.envelope = std::move(sealed).value();
  out.timing.encrypt_ms = ms_since(t0);
  out.timing.total_ms = ms_since(start);
  return out;
}

Result<std::vector<uint8_t>> InferenceService::run_opened(const std::string& model_id, const ReleasedKeys& keys,
                                                          SecretBytes plaintext, InferResult& out,
                                                          std::string_view& category) {
  category = protocol::kCategoryBadInput;
  auto t0 = Clock::now();
  auto bundle = read_safetensors(plaintext.span());
  plaintext.wipe();
  if (!bundle.ok()) {
    // Unreadable inputs are the caller's, whatever the reader calls them (a shape whose element
    // count overflows is not a capacity problem).
    return invalid_argument("request inputs: {}", bundle.status().message());
  }
  std::vector<NamedTensor> inputs;
  std::vector<std::string> names;
  for (const auto& nt : bundle->tensors()) names.push_back(nt.name);
  for (auto& name : names) inputs.push_back({name, std::move(bundle->take(name)).value()});
  out.timing.decrypt_ms += ms_since(t0);

  category = protocol::kCategoryModelUnavailable;
  auto acquired = models_.acquire(
      model_id, [&](LoadTiming& t) { return load(model_id, keys, t); }, model_key_generation(keys));
  if (!acquired.ok()) {
    wipe_tensors(inputs);
    return acquired.status();
  }
  out.kind = acquired->kind;
  out.timing.model_fetch_ms = acquired->timing.model_fetch_ms;
  out.timing.decrypt_ms += acquired->timing.decrypt_ms;
  out.timing.compile_ms = acquired->timing.compile_ms;

  t0 = Clock::now();
  auto outputs = acquired->lease.context().run(inputs);
  wipe_tensors(inputs);
  if (!outputs.ok()) {
    const Status& s = outputs.status();
    if (s.code() == ErrorCode::kInternal) {
      category = protocol::kCategoryInferenceFailed;
      return s.with_context("inference on " + model_id);
    }
    // Inputs the model cannot take (names, types, shapes, values such as an index out of range,
    // sizes beyond what a context may hold) are the caller's error, whatever the engine calls them.
    category = protocol::kCategoryBadInput;
    return invalid_argument("inference on {}: {}", model_id, s.message());
  }
  out.timing.inference_ms = ms_since(t0);

  category = protocol::kCategoryInferenceFailed;
  TensorBundle result;
  for (auto& o : *outputs) MOSS_RETURN_IF_ERROR(result.add(o.name, std::move(o.tensor)));
  auto bytes = write_safetensors(result);
  for (const auto& o : *outputs) {
    if (Tensor* t = result.find(o.name)) secure_wipe(t->bytes().data(), t->nbytes());
  }
  if (!bytes.ok()) return std::move(bytes).status().with_context("response outputs");
  return bytes;
}

}  // namespace moss::worker
