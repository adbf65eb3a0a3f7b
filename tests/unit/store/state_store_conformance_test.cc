// One suite, two state stores: every behaviour of the StateStore interface (state_store.h) checked
// on SqliteStateStore and on EtcdStateStore against a real etcd started on loopback (skipped, with
// the reason, when etcd is not installed). Then what only the etcd store has: two stores on one
// etcd (replicas) see each other's writes at once and never fork the audit chain, and what etcd
// holds is ciphertext under MAC names, with rows put back or moved refused.
#include "common/encoding.h"
#include "crypto/random.h"
#include "store/etcd_state_store.h"
#include "store/sqlite_state_store.h"
#include "support/etcd_process.h"
#include "support/temp_dir.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace moss::store {
namespace {

// A table with a two-column primary key (text, integer) and two more columns.
const std::string_view kSchema = R"sql(
CREATE TABLE items (
  owner TEXT NOT NULL,
  n INTEGER NOT NULL,
  secret BLOB NOT NULL,
  tag TEXT NOT NULL,
  row_version INTEGER NOT NULL,
  mac BLOB NOT NULL,
  PRIMARY KEY (owner, n)
);
)sql";
const Table kItems{"items",
                   {{"owner", Column::kText}, {"n", Column::kInt}, {"secret", Column::kBlob},
                    {"tag", Column::kText}},
                   2};

Sealer make_sealer(uint8_t fill) {
  SecretBytes key(32);
  std::fill(key.data(), key.data() + 32, fill);
  return Sealer::create(std::move(key)).value_or_die();
}

std::string reason(const Status& s) { return s.message().substr(0, s.message().find(':')); }

// The etcd every test of this file shares (each test has its own key prefix).
test_support::EtcdProcess* shared_etcd() {
  static std::unique_ptr<test_support::EtcdProcess> etcd = test_support::EtcdProcess::start();
  return etcd.get();
}

std::string fresh_prefix() {
  static std::atomic<int> n{0};
  return fmt::format("/test/{}-{}/", ::getpid(), n++);
}

class StateStoreConformanceTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "etcd") {
      if (!test_support::EtcdProcess::binary().empty() && !shared_etcd()) {
        FAIL() << "etcd is installed but did not start";
      }
      if (!shared_etcd()) GTEST_SKIP() << test_support::EtcdProcess::kMissing;
      prefix_ = fresh_prefix();
    }
  }
  Result<StateStorePtr> open(uint8_t key = 1) {
    if (GetParam() == "sqlite") {
      MOSS_ASSIGN_OR_RETURN(auto s, SqliteStateStore::open(dir_.path() / "state.db", kSchema, {kItems},
                                                           make_sealer(key)));
      return StateStorePtr(std::move(s));
    }
    EtcdStoreOptions o;
    o.client.endpoints = {shared_etcd()->endpoint()};
    o.prefix = prefix_;
    MOSS_ASSIGN_OR_RETURN(auto s, EtcdStateStore::open(std::move(o), {kItems}, make_sealer(key)));
    return StateStorePtr(std::move(s));
  }
  StateStorePtr open_ok() {
    auto s = open();
    EXPECT_TRUE(s.ok()) << s.status().to_string();
    return s.ok() ? std::move(s).value() : nullptr;
  }
  static Row item(const std::string& owner, int n, const std::string& tag = "t") {
    return {owner, std::to_string(n), std::string("\x00\x01secret", 8) + owner, tag};
  }

  test_support::TempDir dir_{"moss-conformance"};
  std::string prefix_;
};

// Rows come back authenticated, in primary-key order (integers numerically), by a key prefix or
// any column; each write is one version.
TEST_P(StateStoreConformanceTest, InsertSelectRemoveInKeyOrder) {
  auto s = open_ok();
  ASSERT_TRUE(s);
  const int64_t v0 = s->version();
  ASSERT_TRUE(s->write([&]() -> Status {
    for (int n : {10, 2, 1}) MOSS_RETURN_IF_ERROR(s->insert(kItems, item("alice", n, n == 2 ? "x" : "t")));
    return s->insert(kItems, item("bob", 5));
  }).ok());
  EXPECT_EQ(s->version(), v0 + 1);
  auto alice = s->select(kItems, {{"owner", "alice"}}).value_or_die();
  ASSERT_EQ(alice.size(), 3u);
  EXPECT_EQ(alice[0][1], "1");
  EXPECT_EQ(alice[1][1], "2");
  EXPECT_EQ(alice[2][1], "10");
  EXPECT_EQ(alice[0][2], item("alice", 1)[2]);  // blobs byte for byte
  EXPECT_EQ(s->select(kItems, {{"owner", "alice"}, {"n", "2"}}).value_or_die().size(), 1u);
  EXPECT_EQ(s->select(kItems, {{"tag", "t"}}).value_or_die().size(), 3u);
  EXPECT_EQ(s->select(kItems, {{"owner", "alice"}, {"tag", "x"}}).value_or_die()[0][1], "2");
  EXPECT_TRUE(s->select(kItems, {{"owner", "carol"}}).value_or_die().empty());
  EXPECT_EQ(s->select(kItems, {{"nope", "1"}}).status().code(), ErrorCode::kInternal);

  int64_t removed = 0;
  ASSERT_TRUE(s->write([&]() -> Status {
    MOSS_ASSIGN_OR_RETURN(removed, s->remove(kItems, {{"owner", "alice"}, {"tag", "t"}}));
    return Status::Ok();
  }).ok());
  EXPECT_EQ(removed, 2);
  EXPECT_EQ(s->version(), v0 + 2);
  EXPECT_EQ(s->select(kItems, {{"owner", "alice"}}).value_or_die().size(), 1u);
  EXPECT_TRUE(s->verify_all().ok());
  EXPECT_EQ(s->insert(kItems, item("z", 1)).code(), ErrorCode::kInternal);  // outside write()
}

// A taken primary key is already-exists; a failed write leaves nothing and keeps the version.
TEST_P(StateStoreConformanceTest, FailedWriteLeavesNothing) {
  auto s = open_ok();
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->write([&] { return s->insert(kItems, item("alice", 1)); }).ok());
  const int64_t v = s->version();
  Status dup = s->write([&]() -> Status {
    MOSS_RETURN_IF_ERROR(s->insert(kItems, item("bob", 1)));
    MOSS_RETURN_IF_ERROR(s->audit({"item.add", "bob", "", "", "", ""}, 1));
    return s->insert(kItems, item("alice", 1, "other"));
  });
  EXPECT_EQ(dup.code(), ErrorCode::kAlreadyExists);
  Status boom = s->write([&]() -> Status {
    MOSS_RETURN_IF_ERROR(s->remove(kItems, {{"owner", "alice"}}).status());
    return internal_error("boom");
  });
  EXPECT_EQ(boom.code(), ErrorCode::kInternal);
  EXPECT_EQ(s->version(), v);
  EXPECT_TRUE(s->select(kItems, {{"owner", "bob"}}).value_or_die().empty());
  EXPECT_EQ(s->select(kItems, {{"owner", "alice"}}).value_or_die().size(), 1u);
  EXPECT_EQ(s->head().value_or_die().audit.seq, 0);
  EXPECT_TRUE(s->verify_all().ok());
}

// Reads announced to write() (etcd fetches them with the head) answer exactly as unannounced ones:
// a prefix announced serves a one-key read and an insert's check inside it, a read announced but
// changed by the write shows the change, and a read not announced still works.
TEST_P(StateStoreConformanceTest, AnnouncedReadsAnswerAsAnyRead) {
  auto s = open_ok();
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->write([&]() -> Status {
    for (int n : {1, 2}) MOSS_RETURN_IF_ERROR(s->insert(kItems, item("alice", n)));
    return s->insert(kItems, item("bob", 1));
  }).ok());
  const std::vector<StateStore::Read> reads = {{&kItems, {{"owner", "alice"}}},
                                               {&kItems, {{"owner", "alice"}}},  // twice: fetched once
                                               {&kItems, {{"owner", "bob"}, {"n", "1"}}}};
  Status dup = s->write([&] { return s->insert(kItems, item("alice", 2)); }, reads);
  EXPECT_EQ(dup.code(), ErrorCode::kAlreadyExists) << dup.to_string();
  ASSERT_TRUE(s->write([&]() -> Status {
    MOSS_ASSIGN_OR_RETURN(auto one, s->select(kItems, {{"owner", "alice"}, {"n", "2"}}));
    EXPECT_EQ(one.size(), 1u);
    MOSS_ASSIGN_OR_RETURN(auto all, s->select(kItems, {{"owner", "alice"}}));
    EXPECT_EQ(all.size(), 2u);
    MOSS_ASSIGN_OR_RETURN(int64_t n, s->remove(kItems, {{"owner", "bob"}, {"n", "1"}}));
    EXPECT_EQ(n, 1);
    MOSS_ASSIGN_OR_RETURN(auto bob, s->select(kItems, {{"owner", "bob"}}));
    EXPECT_TRUE(bob.empty());
    MOSS_RETURN_IF_ERROR(s->insert(kItems, item("alice", 3)));
    MOSS_ASSIGN_OR_RETURN(all, s->select(kItems, {{"owner", "alice"}}));
    EXPECT_EQ(all.size(), 3u);
    MOSS_ASSIGN_OR_RETURN(auto carol, s->select(kItems, {{"owner", "carol"}}));  // not announced
    EXPECT_TRUE(carol.empty());
    return Status::Ok();
  }, reads).ok());
  EXPECT_EQ(s->select(kItems, {{"owner", "alice"}}).value_or_die().size(), 3u);
  EXPECT_TRUE(s->select(kItems, {{"owner", "bob"}}).value_or_die().empty());
  EXPECT_TRUE(s->verify_all().ok());
}

// Inside a write, reads see the write's own changes (remove then re-insert: how a row is updated).
TEST_P(StateStoreConformanceTest, WriteReadsItsOwnChanges) {
  auto s = open_ok();
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->write([&] { return s->insert(kItems, item("alice", 1, "old")); }).ok());
  ASSERT_TRUE(s->write([&]() -> Status {
    MOSS_ASSIGN_OR_RETURN(int64_t n, s->remove(kItems, {{"owner", "alice"}, {"n", "1"}}));
    EXPECT_EQ(n, 1);
    MOSS_ASSIGN_OR_RETURN(auto gone, s->select(kItems, {{"owner", "alice"}}));
    EXPECT_TRUE(gone.empty());
    MOSS_RETURN_IF_ERROR(s->insert(kItems, item("alice", 1, "new")));
    MOSS_RETURN_IF_ERROR(s->insert(kItems, item("alice", 2, "new")));
    MOSS_ASSIGN_OR_RETURN(auto back, s->select(kItems, {{"owner", "alice"}, {"tag", "new"}}));
    EXPECT_EQ(back.size(), 2u);
    EXPECT_EQ(s->insert(kItems, item("alice", 2)).code(), ErrorCode::kAlreadyExists);
    return Status::Ok();
  }).ok());
  auto rows = s->select(kItems, {{"owner", "alice"}}).value_or_die();
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0][3], "new");
  EXPECT_TRUE(s->verify_all().ok());
}

// Audit events commit with their write, chain, and read back in order: audit_records(n - 1, 1) is
// event n with its chain value (what a fork-consistency check compares); party queries filter.
TEST_P(StateStoreConformanceTest, AuditChainsAndReadsBack) {
  auto s = open_ok();
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->write([&]() -> Status {
    MOSS_RETURN_IF_ERROR(s->audit({"model.key.set", "alice", "alice/m", "", "", "version=1"}, 100));
    return s->audit({"grant.add", "alice", "alice/m", "bob", "ab", ""}, 101);
  }).ok());
  ASSERT_TRUE(s->write([&] { return s->audit({"model.key.set", "carol", "carol/x", "", "", ""}, 102); }).ok());
  auto all = s->audit_records(0, 10).value_or_die();
  ASSERT_EQ(all.size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(all[i].seq, i + 1);
  EXPECT_EQ(all[1].prev_hash, all[0].hash);
  EXPECT_EQ(all[1].event.user_id, "bob");
  EXPECT_EQ(all[1].time_ms, 101);
  auto head = s->head().value_or_die();
  EXPECT_EQ(head.audit.seq, 3);
  EXPECT_EQ(head.audit.hash, all[2].hash);
  auto second = s->audit_records(1, 1).value_or_die();
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].hash, all[1].hash);
  EXPECT_TRUE(s->audit_records(3, 10).value_or_die().empty());
  EXPECT_EQ(s->audit_records(0, 0).status().code(), ErrorCode::kInvalidArgument);

  auto bob = s->query_audit({"bob", "", 0, 10}).value_or_die();
  ASSERT_EQ(bob.size(), 1u);
  EXPECT_EQ(bob[0].seq, 2);
  EXPECT_EQ(s->query_audit({"alice", "", 0, 10}).value_or_die().size(), 2u);
  EXPECT_EQ(s->query_audit({"alice", "", 1, 10}).value_or_die().size(), 1u);
  EXPECT_EQ(s->query_audit({"alice", "", 0, 1}).value_or_die().size(), 1u);
  EXPECT_TRUE(s->query_audit({"bob", "carol/x", 0, 10}).value_or_die().empty());
  EXPECT_EQ(s->query_audit({"carol", "carol/x", 0, 10}).value_or_die().size(), 1u);
}

// A nonce is accepted once per principal.
TEST_P(StateStoreConformanceTest, NonceIsAcceptedOnce) {
  auto s = open_ok();
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->use_nonce("alice", "n1", 1000, 600).ok());
  EXPECT_EQ(s->use_nonce("alice", "n1", 1001, 600).code(), ErrorCode::kAlreadyExists);
  EXPECT_TRUE(s->use_nonce("bob", "n1", 1001, 600).ok());
  EXPECT_TRUE(s->use_nonce("alice", "n2", 1001, 600).ok());
  EXPECT_TRUE(s->verify_all().ok());
}

// An open store is readable, also while a write of the same store is under way (readiness
// never waits for a write).
TEST_P(StateStoreConformanceTest, ReadableWhileAWriteRuns) {
  auto s = open_ok();
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->readable().ok());
  Status during;
  ASSERT_TRUE(s->write([&]() -> Status {
    during = s->readable();
    return s->insert(kItems, item("alice", 1));
  }).ok());
  EXPECT_TRUE(during.ok()) << during.to_string();
}

// Reopened, the state is the same (rows, version, audit head, identity); another sealing key is
// named as such.
TEST_P(StateStoreConformanceTest, ReopensTheSameStateAndNamesAnotherSealingKey) {
  SecretBytes identity;
  int64_t version = 0;
  {
    auto s = open_ok();
    ASSERT_TRUE(s);
    ASSERT_EQ(s->identity_seed().size(), 32u);
    identity = SecretBytes(s->identity_seed().span());
    ASSERT_TRUE(s->write([&]() -> Status {
      MOSS_RETURN_IF_ERROR(s->insert(kItems, item("alice", 1)));
      return s->audit({"item.add", "alice", "", "", "", ""}, 5);
    }).ok());
    ASSERT_TRUE(s->use_nonce("alice", "n", 1000, 600).ok());
    version = s->version();
  }
  auto s = open_ok();
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->identity_seed().equals(identity.span()));
  EXPECT_EQ(s->version(), version);
  EXPECT_EQ(s->select(kItems, {{"owner", "alice"}}).value_or_die().size(), 1u);
  EXPECT_EQ(s->head().value_or_die().audit.seq, 1);
  EXPECT_EQ(s->use_nonce("alice", "n", 1001, 600).code(), ErrorCode::kAlreadyExists);
  s.reset();
  auto other = open(2);
  EXPECT_EQ(other.status().code(), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(reason(other.status()), "sealing-key-mismatch");
}

INSTANTIATE_TEST_SUITE_P(Backends, StateStoreConformanceTest, ::testing::Values("sqlite", "etcd"),
                         [](const auto& info) { return info.param; });

// ---- etcd only: replicas, and what etcd holds ----

class EtcdStateStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!shared_etcd()) GTEST_SKIP() << test_support::EtcdProcess::kMissing;
    prefix_ = fresh_prefix();
    EtcdClientOptions o;
    o.endpoints = {shared_etcd()->endpoint()};
    client_ = EtcdClient::create(o).value_or_die();
  }
  EtcdStoreOptions options() const {
    EtcdStoreOptions o;
    o.client.endpoints = {shared_etcd()->endpoint()};
    o.prefix = prefix_;
    return o;
  }
  std::unique_ptr<EtcdStateStore> open(uint8_t key = 1) {
    auto s = EtcdStateStore::open(options(), {kItems}, make_sealer(key));
    EXPECT_TRUE(s.ok()) << s.status().to_string();
    return s.ok() ? std::move(s).value() : nullptr;
  }
  std::vector<EtcdKv> everything() {
    return client_->range({prefix_, EtcdClient::prefix_end(prefix_), 0, 0}).value_or_die().kvs;
  }
  std::string prefix_;
  std::unique_ptr<EtcdClient> client_;
};

// Two stores on one prefix are two replicas: the second created nothing (one identity), and each
// sees the other's write at once.
TEST_F(EtcdStateStoreTest, ReplicasShareOneStateAndSeeWritesAtOnce) {
  auto a = open(), b = open();
  ASSERT_TRUE(a && b);
  EXPECT_TRUE(a->identity_seed().equals(b->identity_seed().span()));
  ASSERT_TRUE(a->write([&] { return a->insert(kItems, {"alice", "1", "k", "t"}); }).ok());
  EXPECT_EQ(b->select(kItems, {{"owner", "alice"}}).value_or_die().size(), 1u);
  EXPECT_EQ(b->version(), a->version());
  ASSERT_TRUE(b->write([&] { return b->remove(kItems, {{"owner", "alice"}}).status(); }).ok());
  EXPECT_TRUE(a->select(kItems, {{"owner", "alice"}}).value_or_die().empty());
  // b's write built on a's: one history.
  EXPECT_GT(b->version(), a->version() - 1);
  EXPECT_EQ(a->head().value_or_die().version, b->version());
  EXPECT_EQ(a->use_nonce("alice", "n", 1000, 600).code(), ErrorCode::kOk);
  EXPECT_EQ(b->use_nonce("alice", "n", 1000, 600).code(), ErrorCode::kAlreadyExists);
}

// Replicas writing at the same time never fork the audit chain: every event lands once, in one
// chain, and the state verifies.
TEST_F(EtcdStateStoreTest, ConcurrentReplicasNeverForkTheAuditChain) {
  auto a = open(), b = open();
  ASSERT_TRUE(a && b);
  constexpr int kEach = 25;
  std::atomic<int> failures{0};
  auto run = [&](EtcdStateStore* s, const std::string& who) {
    for (int i = 0; i < kEach; ++i) {
      Status st = s->write([&]() -> Status {
        MOSS_RETURN_IF_ERROR(s->insert(kItems, {who, std::to_string(i), "k", "t"}));
        return s->audit({"item.add", who, "", "", "", std::to_string(i)}, i);
      });
      if (!st.ok()) ++failures;
    }
  };
  std::thread ta(run, a.get(), "a"), tb(run, b.get(), "b");
  ta.join();
  tb.join();
  EXPECT_EQ(failures.load(), 0);
  auto head = a->head().value_or_die();
  EXPECT_EQ(head.audit.seq, 2 * kEach);
  auto log = a->audit_records(0, 1000).value_or_die();
  ASSERT_EQ(log.size(), 2u * kEach);
  for (size_t i = 1; i < log.size(); ++i) EXPECT_EQ(log[i].prev_hash, log[i - 1].hash);
  EXPECT_TRUE(a->verify_all().ok());
  EXPECT_TRUE(b->verify_all().ok());
  EXPECT_EQ(a->select(kItems, {{"tag", "t"}}).value_or_die().size(), 2u * kEach);
}

// etcd holds no plaintext: no owner name, secret or audit field in any key or value.
TEST_F(EtcdStateStoreTest, EtcdHoldsCiphertextUnderMacNames) {
  auto s = open();
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->write([&]() -> Status {
    MOSS_RETURN_IF_ERROR(s->insert(kItems, {"alice-the-owner", "7", "TOPSECRETKEY", "tagvalue"}));
    return s->audit({"grant.add", "alice-the-owner", "alice-the-owner/model", "bob-the-user", "", ""}, 1);
  }).ok());
  ASSERT_TRUE(s->use_nonce("alice-the-owner", "nonce-value", 1000, 600).ok());
  auto kvs = everything();
  EXPECT_GE(kvs.size(), 4u);  // head, row, audit record, nonce
  for (const EtcdKv& kv : kvs) {
    for (const char* secret : {"alice-the-owner", "TOPSECRETKEY", "tagvalue", "bob-the-user", "nonce-value"}) {
      EXPECT_EQ(kv.key.find(secret), std::string::npos) << kv.key;
      EXPECT_EQ(kv.value.find(secret), std::string::npos) << kv.key;
    }
  }
}

// Whoever runs etcd can put back an older value of a row or move a value to another key; both are
// refused when read, and the state fails to verify.
TEST_F(EtcdStateStoreTest, RowsPutBackOrMovedAreRefused) {
  auto s = open();
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->write([&]() -> Status {
    MOSS_RETURN_IF_ERROR(s->insert(kItems, {"alice", "1", "k", "granted"}));
    return s->insert(kItems, {"bob", "1", "k", "t"});
  }).ok());
  auto row_kvs = [&] {
    std::vector<EtcdKv> out;
    for (auto& kv : everything()) {
      if (kv.key.starts_with(prefix_ + "t/")) out.push_back(kv);
    }
    return out;
  };
  auto before = row_kvs();
  ASSERT_EQ(before.size(), 2u);
  ASSERT_TRUE(s->write([&] { return s->remove(kItems, {{"owner", "alice"}}).status(); }).ok());
  auto bob = row_kvs();
  ASSERT_EQ(bob.size(), 1u);
  // The removed (say, revoked) row put back, as it was.
  const EtcdKv& alice = before[0].key == bob[0].key ? before[1] : before[0];
  ASSERT_TRUE(client_->txn({}, {EtcdOp::put(alice.key, alice.value)}, {}).ok());
  auto reopened = EtcdStateStore::open(options(), {kItems}, make_sealer(1));
  EXPECT_EQ(reason(reopened.status()), "state-rows-changed");
  EXPECT_EQ(reason(s->verify_all()), "state-rows-changed");
  ASSERT_TRUE(client_->txn({}, {EtcdOp::del(alice.key)}, {}).ok());
  EXPECT_TRUE(s->verify_all().ok());
  // Bob's value under another key (a name that reads as another row).
  std::string moved = bob[0].key.substr(0, bob[0].key.size() - 1) + (bob[0].key.back() == '0' ? "1" : "0");
  ASSERT_TRUE(client_->txn({}, {EtcdOp::put(moved, bob[0].value)}, {}).ok());
  EXPECT_EQ(reason(s->verify_all()), "state-row-altered");
}

// A state whose head was deleted is refused rather than silently recreated.
TEST_F(EtcdStateStoreTest, MissingHeadIsRefused) {
  auto s = open();
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->write([&] { return s->insert(kItems, {"alice", "1", "k", "t"}); }).ok());
  ASSERT_TRUE(client_->txn({}, {EtcdOp::del(prefix_ + "head")}, {}).ok());
  EXPECT_EQ(reason(s->readable()), "state-meta-missing");
  auto reopened = EtcdStateStore::open(options(), {kItems}, make_sealer(1));
  EXPECT_EQ(reason(reopened.status()), "state-meta-missing");
}

// readable() fails (unavailable) while etcd is down, within the client timeout while it hangs,
// and is OK again once etcd is back.
TEST_F(EtcdStateStoreTest, ReadableFollowsEtcd) {
  auto etcd = test_support::EtcdProcess::start(1);
  ASSERT_TRUE(etcd) << "etcd did not start";
  EtcdStoreOptions o;
  o.client.endpoints = etcd->endpoints();
  o.client.timeout = std::chrono::milliseconds(500);
  o.prefix = prefix_;
  auto s = EtcdStateStore::open(std::move(o), {kItems}, make_sealer(1)).value_or_die();
  Status up = s->readable();
  EXPECT_TRUE(up.ok()) << up.to_string();
  etcd->pause_member(0);
  // SIGSTOP lands asynchronously: a read racing it may still be answered.
  Status hung = Status::Ok();
  for (int i = 0; i < 10 && hung.ok(); ++i) {
    const auto start = std::chrono::steady_clock::now();
    hung = s->readable();
    if (!hung.ok()) {
      EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
    }
  }
  EXPECT_EQ(hung.code(), ErrorCode::kUnavailable) << hung.to_string();
  etcd->resume_member(0);
  ASSERT_TRUE(etcd->wait_serving(0, std::chrono::seconds(10)));
  // A member just thawed may answer its first calls late (over a loaded machine): a few tries.
  Status back = s->readable();
  for (int i = 0; i < 20 && !back.ok(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    back = s->readable();
  }
  EXPECT_TRUE(back.ok()) << back.to_string();
  etcd->stop_member(0, SIGKILL);
  Status down = s->readable();
  EXPECT_EQ(down.code(), ErrorCode::kUnavailable) << down.to_string();
}

}  // namespace
}  // namespace moss::store
