// Shared pieces of the worker unit tests: a temp dir, the tiny test models encrypted into a
// directory store, an in-memory KeySource standing in for the KeyService (the real one runs in
// tests/integration), and request/response helpers.
#pragma once

#include "support/temp_dir.h"

#include "common/encoding.h"
#include "common/file_util.h"
#include "common/safetensors.h"
#include "crypto/envelope.h"
#include "crypto/model_file.h"
#include "crypto/random.h"
#include "engine/runtime/compiled_model.h"
#include "engine/runtime/execution_context.h"
#include "worker/released_keys.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

namespace moss::worker::testing {

inline std::filesystem::path source_dir() {
  const char* s = std::getenv("MOSS_SOURCE_DIR");
  return s ? s : MOSS_WORKER_SOURCE_DIR;
}
inline std::vector<uint8_t> test_model(const std::string& name) {
  return read_file(source_dir() / "tests/data/worker" / (name + ".onnx"), 1 << 20).value_or_die();
}

using moss::test_support::TempDir;

inline SecretBytes fresh_key() { return crypto::random_secret(32).value_or_die(); }

// Keys per (model, user), with switches to refuse or fail, and a call counter.
class MemoryKeySource : public KeySource {
 public:
  void set_model_key(const std::string& model, const SecretBytes& key, uint32_t version = 1) {
    std::lock_guard l(mu_);
    model_keys_[model] = {version, key.clone()};
  }
  void grant(const std::string& model, const std::string& user, const SecretBytes& request_key) {
    std::lock_guard l(mu_);
    grants_[{model, user}] = request_key.clone();
  }
  void revoke(const std::string& model, const std::string& user) {
    std::lock_guard l(mu_);
    grants_.erase({model, user});
  }
  std::atomic<int> calls{0};
  std::atomic<bool> down{false};
  std::chrono::milliseconds delay{0};

  Result<ReleasedKeys> release(std::string_view model, std::string_view user) override {
    ++calls;
    if (delay.count()) std::this_thread::sleep_for(delay);
    if (down) return unavailable("KeyService at test unavailable after 3 attempts");
    std::lock_guard l(mu_);
    auto mk = model_keys_.find(std::string(model));
    if (mk == model_keys_.end()) return not_found("model {}", model);
    auto g = grants_.find({std::string(model), std::string(user)});
    if (g == grants_.end()) return permission_denied("no grant for {} on {}", user, model);
    ReleasedKeys k;
    k.model_id = model;
    k.user_id = user;
    k.measurement = "00";
    k.model_keys.push_back({mk->second.first, mk->second.second.clone()});
    k.request_key = {1, g->second.clone()};
    return k;
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::pair<uint32_t, SecretBytes>> model_keys_;
  std::map<std::pair<std::string, std::string>, SecretBytes> grants_;
};

// Forwards to a MemoryKeySource the test keeps controlling (a service owns its KeySource).
class ForwardingKeySource : public KeySource {
 public:
  explicit ForwardingKeySource(MemoryKeySource& s) : s_(s) {}
  Result<ReleasedKeys> release(std::string_view m, std::string_view u) override { return s_.release(m, u); }

 private:
  MemoryKeySource& s_;
};

// Encrypts the named test model into `<store>/<model_id>.moss` and registers its key.
inline void publish(const std::filesystem::path& store, MemoryKeySource& keys, const std::string& model_id,
                    const std::string& model_name) {
  SecretBytes key = fresh_key();
  auto enc = crypto::encrypt_model(key.span(), model_id, test_model(model_name)).value_or_die();
  auto path = store / (model_id + ".moss");
  std::filesystem::create_directories(path.parent_path());
  write_file(path, enc).check();
  keys.set_model_key(model_id, key);
}

inline Tensor input_tensor(float seed) {
  std::vector<float> v(8);
  for (int i = 0; i < 8; ++i) v[i] = seed + 0.25f * static_cast<float>(i);
  return Tensor::from_vector<float>({1, 8}, v);
}

inline std::string seal_request(const SecretBytes& key, const std::string& model_id, const std::string& user,
                                const std::string& request_id, const TensorBundle& inputs) {
  auto bytes = write_safetensors(inputs).value_or_die();
  return crypto::seal_envelope(key.span(), {model_id, user, request_id, protocol::Direction::kRequest}, bytes)
      .value_or_die();
}

inline TensorBundle one_input(const std::string& name, Tensor t) {
  TensorBundle b;
  b.add(name, std::move(t)).check();
  return b;
}

inline Result<TensorBundle> open_response(const SecretBytes& key, const std::string& model_id,
                                          const std::string& user, const std::string& request_id,
                                          const std::string& envelope) {
  MOSS_ASSIGN_OR_RETURN(SecretBytes plain,
                        crypto::open_envelope(key.span(),
                                              {model_id, user, request_id, protocol::Direction::kResponse},
                                              envelope));
  return read_safetensors(plain.span());
}

// The plaintext model run in-process: what the worker must reproduce bit for bit.
inline Tensor reference_output(const std::string& model_name, const Tensor& x) {
  auto model = engine::CompiledModel::compile(test_model(model_name)).value_or_die();
  engine::ExecutionContext ctx(model);
  std::vector<NamedTensor> in = {{"x", x}};
  return std::move(ctx.run(in)).value_or_die().at(0).tensor;
}

inline const std::string kUser = "0123456789abcdef0123456789abcdef";

}  // namespace moss::worker::testing
