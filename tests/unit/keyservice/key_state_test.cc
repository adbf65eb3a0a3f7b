// KeyState's readiness (store_readable): a result is reused for kReadinessReuseMs, and a probe
// that finds another one reading the store answers the last result instead of queueing, so
// probes never pile up on a slow etcd. A store wrapper counts (and can hold) the store reads.
#include "keyservice/key_state.h"

#include "crypto/random.h"
#include "support/temp_dir.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>

namespace moss::keyservice {
namespace {

// A SQLite state store whose readable() is counted, answers what the test sets and can be held
// until the test lets it go.
class ProbedStore final : public store::StateStore {
 public:
  explicit ProbedStore(store::StateStorePtr inner) : inner_(std::move(inner)) {}

  std::atomic<int> reads{0};
  std::atomic<bool> fail{false};
  void hold() {
    std::lock_guard lock(mu_);
    held_ = true;
  }
  void release() {
    {
      std::lock_guard lock(mu_);
      held_ = false;
    }
    cv_.notify_all();
  }

  Status readable() override {
    ++reads;
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return !held_; });
    return fail ? unavailable("etcd did not answer") : Status::Ok();
  }
  std::string describe() const override { return inner_->describe(); }
  Status write(const std::function<Status()>& body, const std::vector<Read>& reads = {}) override {
    return inner_->write(body, reads);
  }
  Result<std::vector<store::Row>> select(const store::Table& t, const store::Match& m) override {
    return inner_->select(t, m);
  }
  Status insert(const store::Table& t, const store::Row& row) override { return inner_->insert(t, row); }
  Result<int64_t> remove(const store::Table& t, const store::Match& m) override {
    return inner_->remove(t, m);
  }
  Status audit(const store::AuditEvent& e, int64_t time_ms) override { return inner_->audit(e, time_ms); }
  Status use_nonce(std::string_view p, std::string_view n, int64_t now_s, int64_t retain_s) override {
    return inner_->use_nonce(p, n, now_s, retain_s);
  }
  Result<std::vector<store::AuditRecord>> query_audit(const store::AuditQuery& q) override {
    return inner_->query_audit(q);
  }
  Result<std::vector<store::AuditRecord>> audit_records(int64_t after, int64_t limit) override {
    return inner_->audit_records(after, limit);
  }
  Result<store::StateHeadView> head() override { return inner_->head(); }
  uint64_t read_ticket() const override { return inner_->read_ticket(); }
  std::optional<store::StateHeadView> seen_since(uint64_t t) const override { return inner_->seen_since(t); }
  store::StateHeadView seen() const override { return inner_->seen(); }
  Status verify_all() override { return inner_->verify_all(); }
  const SecretBytes& identity_seed() const override { return inner_->identity_seed(); }
  const store::Sealer& sealer() const override { return inner_->sealer(); }

 private:
  store::StateStorePtr inner_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool held_ = false;  // guarded by mu_
};

class KeyStateReadinessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto sealer = store::Sealer::create(crypto::random_secret(32).value_or_die()).value_or_die();
    auto inner = open_sqlite_state(dir_.path() / "ks.db", std::move(sealer)).value_or_die();
    auto probed = std::make_unique<ProbedStore>(std::move(inner));
    store_ = probed.get();
    state_ = KeyState::open(std::move(probed), [this] { return now_ms_.load(); }).value_or_die();
  }

  test_support::TempDir dir_{"moss-keystate"};
  std::atomic<int64_t> now_ms_{1'700'000'000'000};
  ProbedStore* store_ = nullptr;  // owned by state_
  std::unique_ptr<KeyState> state_;
};

// One read serves every probe for kReadinessReuseMs; then the store is read again, and a store
// that cannot be read answers store-unavailable.
TEST_F(KeyStateReadinessTest, AResultIsReusedForTheReuseWindow) {
  const int opened = store_->reads;
  EXPECT_TRUE(state_->store_readable().ok());
  EXPECT_TRUE(state_->store_readable().ok());
  EXPECT_EQ(store_->reads, opened + 1);
  store_->fail = true;
  now_ms_ += KeyState::kReadinessReuseMs - 1;
  EXPECT_TRUE(state_->store_readable().ok());  // still the last read's answer
  EXPECT_EQ(store_->reads, opened + 1);
  now_ms_ += 1;
  Status down = state_->store_readable();
  EXPECT_EQ(down.code(), ErrorCode::kUnavailable);
  EXPECT_EQ(down.reason(), "store-unavailable") << down.to_string();
  EXPECT_EQ(store_->reads, opened + 2);
  // A clock that went back does not keep an old answer alive.
  store_->fail = false;
  now_ms_ -= 10'000;
  EXPECT_TRUE(state_->store_readable().ok());
  EXPECT_EQ(store_->reads, opened + 3);
}

// While one probe waits for the store, the others answer at once with the last result (not ready
// before there is one) and do not read the store themselves.
TEST_F(KeyStateReadinessTest, ConcurrentProbesDoNotPileUpOnASlowStore) {
  const int opened = store_->reads;
  store_->hold();
  auto first = std::async(std::launch::async, [&] { return state_->store_readable(); });
  while (store_->reads == opened) std::this_thread::yield();
  Status meanwhile = state_->store_readable();  // no result yet: fails closed
  EXPECT_EQ(meanwhile.reason(), "store-unavailable") << meanwhile.to_string();
  store_->release();
  EXPECT_TRUE(first.get().ok());

  now_ms_ += KeyState::kReadinessReuseMs;
  store_->fail = true;
  store_->hold();
  auto slow = std::async(std::launch::async, [&] { return state_->store_readable(); });
  while (store_->reads == opened + 1) std::this_thread::yield();
  for (int i = 0; i < 8; ++i) EXPECT_TRUE(state_->store_readable().ok());  // the last result
  EXPECT_EQ(store_->reads, opened + 2);
  store_->release();
  EXPECT_EQ(slow.get().reason(), "store-unavailable");
  EXPECT_EQ(state_->store_readable().reason(), "store-unavailable");  // reused now
  EXPECT_EQ(store_->reads, opened + 2);
}

}  // namespace
}  // namespace moss::keyservice
