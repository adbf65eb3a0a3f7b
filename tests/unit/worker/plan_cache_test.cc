// PlanCache: an entry written for a compile is found again and rebuilds the model, without its
// ONNX bytes, to the same outputs; an entry for another model, model file, model key version,
// thread count, build or CPU, or truncated, tampered, under another key or with an edited header
// is ignored with its reason. A worker's hit reads only the model file's header.
#include "worker/plan_cache.h"

#include "common/file_util.h"
#include "engine/runtime/compiled_model.h"
#include "engine/runtime/execution_context.h"
#include "support/log_capture.h"
#include "support/temp_dir.h"
#include "unit/engine/test_models.h"
#include "worker/inference_service.h"
#include "worker_fixture.h"

#include <gtest/gtest.h>

namespace moss::worker {
namespace {

// A static model whose weights are packed: Conv, Conv + BatchNormalization, Gemm.
std::vector<uint8_t> small_cnn() { return engine::testing::cnn(32); }

Tensor run(const std::shared_ptr<const engine::CompiledModel>& m) { return engine::testing::run_once(m); }

class PlanCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    key_.model_id = "alice/cnn";
    key_.model_file_random.fill(7);
    key_.model_file_size = 12345;
    key_.model_key_version = 3;
    model_key_.assign(32, 0x42);
    engine::CompileOptions o;
    o.record_packed_weights = true;
    compiled_ = engine::CompiledModel::compile(model_, o).value_or_die();
    ASSERT_TRUE(compiled_->snapshot());
    ASSERT_TRUE(cache_.store(key_, model_key_, *compiled_->snapshot()).ok());
  }

  static std::vector<VersionedKey> released(const std::vector<uint8_t>& model_key, uint32_t version = 3) {
    std::vector<VersionedKey> keys;
    keys.push_back({version, SecretBytes(std::span<const uint8_t>(model_key))});
    return keys;
  }
  std::shared_ptr<const engine::PlanSnapshot> load(const PlanCacheKey& key) {
    return cache_.load(key, released(model_key_));
  }
  // The reason the entry is ignored under `key` and `model_key` ("" for a hit).
  std::string reason(const PlanCacheKey& key, const std::vector<uint8_t>& model_key, uint32_t version = 3) {
    std::string why;
    auto w = cache_.load(key, released(model_key, version), &why);
    if (w) {
      EXPECT_EQ(why, "");
    }
    return w ? "" : why;
  }
  std::vector<uint8_t> file() { return read_file(cache_.path_for(key_.model_id), 1 << 30).value_or_die(); }
  void put(const std::vector<uint8_t>& bytes) {
    ASSERT_TRUE(write_file(cache_.path_for(key_.model_id), bytes, 0600).ok());
  }

  test_support::TempDir dir_{"moss-plan-cache-test"};
  PlanCache cache_{dir_.path()};
  PlanCacheKey key_;
  std::vector<uint8_t> model_key_;
  const std::vector<uint8_t> model_ = small_cnn();
  std::shared_ptr<const engine::CompiledModel> compiled_;
};

TEST_F(PlanCacheTest, HitRebuildsTheModelToTheOutputsOfAFreshCompile) {
  auto snapshot = load(key_);
  ASSERT_TRUE(snapshot);
  EXPECT_EQ(snapshot->weights()->bytes(), compiled_->packed_weights()->bytes());
  // The first Conv's weights (18 KiB) are stored packed only.
  EXPECT_LT(snapshot->graph_bytes(), 8192u);
  auto hit = engine::CompiledModel::compile_snapshot(*snapshot).value_or_die();
  EXPECT_TRUE(hit->packed_weights_replayed());
  snapshot.reset();  // the model keeps the decrypted entry alive
  EXPECT_TRUE(run(hit).equals(run(engine::CompiledModel::compile(model_).value_or_die())));
}

TEST_F(PlanCacheTest, NoEntryAndDisabledCacheFindNothing) {
  PlanCacheKey other = key_;
  other.model_id = "bob/none";
  EXPECT_EQ(reason(other, model_key_), "");  // no file: silently nothing
  EXPECT_FALSE(load(other));
  PlanCache off{""};
  EXPECT_FALSE(off.enabled());
  EXPECT_FALSE(off.load(key_, released(model_key_)));
  EXPECT_TRUE(off.store(key_, model_key_, *compiled_->snapshot()).ok());
}

TEST_F(PlanCacheTest, EntriesForSomethingElseAreIgnored) {
  auto with = [&](auto change) {
    PlanCacheKey k = key_;
    change(k);
    return reason(k, model_key_);
  };
  EXPECT_NE(with([](PlanCacheKey& k) { k.model_file_random[0] ^= 1; }).find("another model file"),
            std::string::npos);
  EXPECT_NE(with([](PlanCacheKey& k) { k.model_file_size += 1; }).find("another model file"),
            std::string::npos);
  EXPECT_NE(with([](PlanCacheKey& k) { k.threads = 2; }).find("thread count"), std::string::npos);
  EXPECT_NE(with([](PlanCacheKey& k) { k.build_id += "x"; }).find("engine build"), std::string::npos);
  EXPECT_NE(with([](PlanCacheKey& k) { k.cpu_features += " avx9"; }).find("CPU"), std::string::npos);
  // The key version the entry names is no longer released (retired): the same key bytes under
  // another version do not count.
  EXPECT_NE(reason(key_, model_key_, 4).find("not among the released keys"), std::string::npos);
  // Another model's entry copied over this model's file name.
  PlanCacheKey bob = key_;
  bob.model_id = "bob/cnn";
  ASSERT_TRUE(cache_.store(bob, model_key_, *compiled_->snapshot()).ok());
  put(read_file(cache_.path_for(bob.model_id), 1 << 30).value_or_die());
  EXPECT_NE(reason(key_, model_key_).find("another model"), std::string::npos);
}

TEST_F(PlanCacheTest, WrongKeyTamperedTruncatedAndEditedHeaderAreIgnored) {
  std::vector<uint8_t> other_key(32, 0x43);
  EXPECT_NE(reason(key_, other_key).find("does not authenticate"), std::string::npos);
  const std::vector<uint8_t> good = file();
  std::vector<uint8_t> tampered = good;
  tampered[tampered.size() - 100] ^= 0x01;
  put(tampered);
  EXPECT_NE(reason(key_, model_key_).find("does not authenticate"), std::string::npos);
  put({good.begin(), good.end() - 1000});
  EXPECT_FALSE(reason(key_, model_key_).empty());
  put({good.begin(), good.begin() + 20});
  EXPECT_FALSE(reason(key_, model_key_).empty());
  // An edited header that names exactly what this load asks for still fails: the header is
  // bound into the payload key.
  std::string text(good.begin(), good.end());
  const size_t at = text.find("\"threads\":1");
  ASSERT_NE(at, std::string::npos);
  text[at + 10] = '2';
  put({text.begin(), text.end()});
  PlanCacheKey two = key_;
  two.threads = 2;
  EXPECT_NE(reason(two, model_key_).find("does not authenticate"), std::string::npos);
  put(good);
  EXPECT_EQ(reason(key_, model_key_), "");
}

TEST_F(PlanCacheTest, BackgroundWriteIsFoundAfterWait) {
  PlanCacheKey k = key_;
  k.model_id = "carol/cnn";
  cache_.store_in_background(k, SecretBytes(std::span<const uint8_t>(model_key_)),
                             compiled_->snapshot());
  cache_.wait();
  EXPECT_TRUE(load(k));
  cache_.remove(k.model_id);
  EXPECT_FALSE(load(k));
}

// A worker's store holding "o/mlp" (granted to kUser under request_key) and a plan-cache
// directory, and the worker configuration over both.
class PlanCacheServiceTest : public ::testing::Test {
 protected:
  PlanCacheServiceTest() {
    testing::publish(store.path(), keys, "o/mlp", "mlp");
    keys.grant("o/mlp", testing::kUser, request_key);
    config.model_store = store.path().string();
    config.memory_budget_bytes = 1 << 30;
    config.plan_cache_dir = cache.path().string();
  }

  test_support::TempDir store{"moss-plan-cache-store"}, cache{"moss-plan-cache-dir"};
  testing::MemoryKeySource keys;
  const SecretBytes request_key = testing::fresh_key();
  WorkerConfig config;
};

// The worker end to end: the first load compiles and writes the entry; a fresh service on the
// same disk answers from the entry alone, byte for byte, even with the model file's chunks
// destroyed (only its header is read); a re-encrypted file is a miss and is compiled from.
TEST_F(PlanCacheServiceTest, AHitReadsOnlyTheModelFilesHeader) {
  using namespace testing;
  Metrics metrics;
  const Tensor x = input_tensor(0.5f);
  const Tensor expected = reference_output("mlp", x);
  int request = 0;
  auto infer = [&](InferenceService& service) {
    const std::string id = "r" + std::to_string(++request);
    auto r = service.infer("o/mlp", seal_request(request_key, "o/mlp", kUser, id, one_input("x", x)));
    EXPECT_TRUE(r.ok() && !r->failure) << (r.ok() ? "sealed failure" : r.status().to_string());
    if (!r.ok() || r->failure) return Tensor();
    auto out = open_response(request_key, "o/mlp", kUser, id, r->envelope).value_or_die();
    return out.tensors().at(0).tensor;
  };
  auto service = [&] {
    auto s = make_model_store(config.model_store, config.max_model_bytes).value_or_die();
    return std::make_unique<InferenceService>(config, std::make_unique<ForwardingKeySource>(keys),
                                              std::move(s), metrics);
  };
  EXPECT_TRUE(infer(*service()).equals(expected));  // compiles; the entry is written on the way out
  const auto path = store.path() / "o/mlp.moss";
  std::vector<uint8_t> file = read_file(path, 1 << 20).value_or_die();
  const size_t header = crypto::parse_model_header(file).value_or_die().encoded_size();
  for (size_t i = header; i < file.size(); ++i) file[i] ^= 0x5a;
  write_file(path, file).check();
  EXPECT_TRUE(infer(*service()).equals(expected));
  // Published again (a new key, a new file): the entry does not apply and the file is read.
  publish(store.path(), keys, "o/mlp", "mlp");
  EXPECT_TRUE(infer(*service()).equals(expected));
}

// Counts what a service asks its store for.
class CountingStore : public ModelStore {
 public:
  CountingStore(std::unique_ptr<ModelStore> inner, std::atomic<int>& fetches, std::atomic<int>& heads)
      : inner_(std::move(inner)), fetches_(fetches), heads_(heads) {}
  Result<std::vector<uint8_t>> fetch(std::string_view model_id) override {
    ++fetches_;
    return inner_->fetch(model_id);
  }
  Result<ModelFileHead> fetch_head(std::string_view model_id, size_t max_bytes) override {
    ++heads_;
    return inner_->fetch_head(model_id, max_bytes);
  }
  std::string describe() const override { return inner_->describe(); }

 private:
  std::unique_ptr<ModelStore> inner_;
  std::atomic<int>& fetches_;
  std::atomic<int>& heads_;
};

// With no entry on disk the first load goes straight to the model file (no round trip for its
// header); once the entry is written, a fresh service reads the header only.
TEST_F(PlanCacheServiceTest, WithoutAnEntryTheHeaderIsNotFetched) {
  using namespace testing;
  Metrics metrics;
  std::atomic<int> fetches{0}, heads{0};
  auto infer_once = [&](const std::string& id) {
    auto inner = make_model_store(config.model_store, config.max_model_bytes).value_or_die();
    InferenceService service(config, std::make_unique<ForwardingKeySource>(keys),
                             std::make_unique<CountingStore>(std::move(inner), fetches, heads), metrics);
    auto r = service.infer("o/mlp", seal_request(request_key, "o/mlp", kUser, id, one_input("x", input_tensor(1))));
    EXPECT_TRUE(r.ok() && !r->failure) << (r.ok() ? "sealed failure" : r.status().to_string());
  };  // the service waits for its background write on the way out
  infer_once("r1");
  EXPECT_EQ(heads.load(), 0);
  EXPECT_EQ(fetches.load(), 1);
  infer_once("r2");
  EXPECT_EQ(heads.load(), 1);
  EXPECT_EQ(fetches.load(), 1);
}

// An entry that decrypts but does not rebuild (here: another model's packed weights under this
// model's graph) is removed and the model compiled from its file; the log line names the code
// and the reason, never the engine's message.
TEST_F(PlanCacheServiceTest, AnEntryThatDoesNotRebuildIsRemovedAndLoggedByReasonOnly) {
  using namespace testing;

  const std::vector<uint8_t> file = read_file(store.path() / "o/mlp.moss", 1 << 20).value_or_die();
  PlanCacheKey key;
  key.model_id = "o/mlp";
  key.model_file_random = crypto::parse_model_header(file).value_or_die().file_random;
  key.model_file_size = file.size();
  key.model_key_version = 1;
  key.threads = config.intra_op_threads;
  engine::CompileOptions record;
  record.record_packed_weights = true;
  auto mine = engine::CompiledModel::compile(test_model("mlp"), record).value_or_die();
  auto other = engine::CompiledModel::compile(small_cnn(), record).value_or_die();
  ASSERT_TRUE(mine->snapshot() && other->snapshot());
  auto mixed = engine::PlanSnapshot::record(mine->snapshot()->graph().value_or_die(), {},
                                            other->snapshot()->weights())
                   .value_or_die();
  PlanCache plans{cache.path()};
  auto released = keys.release("o/mlp", kUser).value_or_die();
  ASSERT_TRUE(plans.store(key, released.model_keys.at(0).key.span(), *mixed).ok());

  Metrics metrics;
  auto service = std::make_unique<InferenceService>(
      config, std::make_unique<ForwardingKeySource>(keys),
      make_model_store(config.model_store, config.max_model_bytes).value_or_die(), metrics);
  const Tensor x = input_tensor(0.5f);
  test_support::LogCapture log("info", {"worker", "engine"});
  auto r = service->infer("o/mlp", seal_request(request_key, "o/mlp", kUser, "r1", one_input("x", x)));
  ASSERT_TRUE(r.ok() && !r->failure) << (r.ok() ? "sealed failure" : r.status().to_string());
  auto out = open_response(request_key, "o/mlp", kUser, "r1", r->envelope).value_or_die();
  EXPECT_TRUE(out.tensors().at(0).tensor.equals(reference_output("mlp", x)));
  const std::string logged = log.text();
  EXPECT_NE(logged.find("does not compile, removed: code=failed-precondition reason=" +
                        std::string(engine::kSnapshotDoesNotReplay)),
            std::string::npos)
      << logged;
  EXPECT_EQ(logged.find("a kernel packs"), std::string::npos) << logged;
}

}  // namespace
}  // namespace moss::worker
