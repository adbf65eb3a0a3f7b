// The KeyService over the etcd state store (store/etcd_state_store.h) with a real etcd started on
// loopback (skipped, with the reason, when etcd is not installed): the main flows on one replica,
// then two replicas over one etcd, as in a cluster: a write on one is seen by the other at once, a
// revoke acknowledged by one makes the other refuse the release, a signed request replayed to the
// other replica is refused, and both serve one audit chain; over a 3-member etcd, a replica keeps
// serving when the member it talks to is killed.
#include "keyservice/key_state.h"
#include "keyservice/keyservice_server.h"
#include "keyservice/replica_state_key.h"

#include "client/keyservice_client.h"
#include "common/file_util.h"
#include "crypto/random.h"
#include "crypto/signed_request.h"
#include "net/error_response.h"
#include "support/etcd_process.h"
#include "support/temp_dir.h"
#include "unit/keyservice/keyservice_fixture.h"

#include <gtest/gtest.h>

#include <atomic>
#include <csignal>
#include <thread>
#include <chrono>

namespace moss::keyservice {
namespace {
namespace fs = std::filesystem;
using kstest::reason_of;

test_support::EtcdProcess* shared_etcd() {
  static std::unique_ptr<test_support::EtcdProcess> etcd = test_support::EtcdProcess::start();
  return etcd.get();
}

class KeyServiceEtcdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!shared_etcd()) GTEST_SKIP() << test_support::EtcdProcess::kMissing;
    static std::atomic<int> n{0};
    prefix_ = fmt::format("/ks-test/{}-{}/", ::getpid(), n++);
    sim_key_ = dir_.path() / "sim.key";
    ASSERT_TRUE(attest::SimPlatformKey::load_or_create(sim_key_).ok());
    ks_measurement_ = kstest::sim_measurement("/proc/self/exe", "moss-keyservice");
    worker_a_ = kstest::sim_measurement("/proc/self/exe", "worker-a");
    ASSERT_TRUE(write_text_file(dir_.path() / "ks-policy.json", kstest::sim_policy_json({ks_measurement_})).ok());
  }

  // A replica: its own state directory and sealing key, the shared etcd prefix, a replica port;
  // it joins `join` (its replica port) for the state key, or is the first replica. `identity`:
  // its simulated identity (another one is another measurement); `replica_policy`: whom it
  // accepts as a replica (default: the KeyService measurement).
  Result<std::unique_ptr<KeyServer>> try_start_replica(const std::string& name,
                                                       std::vector<std::string> endpoints = {},
                                                       const KeyServer* join = nullptr,
                                                       const std::string& identity = "moss-keyservice",
                                                       std::optional<std::string> replica_policy = {}) {
    KeyServerOptions o;
    o.state_dir = dir_.path() / name;
    o.sealing = "file";
    o.store = "etcd";
    o.etcd_endpoints = endpoints.empty() ? std::vector<std::string>{shared_etcd()->endpoint()} : endpoints;
    o.etcd_prefix = prefix_;
    o.etcd_timeout = etcd_timeout_;
    o.replica_listen = std::make_pair(std::string("127.0.0.1"), uint16_t{0});
    o.replica_policy = attest::Policy::parse(replica_policy.value_or(
        kstest::sim_policy_json({ks_measurement_}))).value_or_die();
    if (join) o.join_url = fmt::format("https://127.0.0.1:{}", join->replica_port());
    o.producer.kind = "sim";
    o.producer.sim_key_file = sim_key_;
    o.producer.sim_identity = identity;
    o.worker_policy = attest::Policy::parse(kstest::sim_policy_json({worker_a_})).value_or_die();
    o.allow_simulated_workers = true;
    return KeyServer::start(std::move(o));
  }
  std::unique_ptr<KeyServer> start_replica(const std::string& name,
                                          std::vector<std::string> endpoints = {},
                                          const KeyServer* join = nullptr) {
    auto s = try_start_replica(name, std::move(endpoints), join);
    EXPECT_TRUE(s.ok()) << s.status().to_string();
    return s.ok() ? std::move(s).value() : nullptr;
  }

  client::ClientConfig config(const KeyServer& ks) {
    client::ClientConfig c;
    c.keyservice_url = "https://127.0.0.1:" + std::to_string(ks.port());
    c.keyservice_policy = dir_.path() / "ks-policy.json";
    c.state_dir = dir_.path();
    c.allow_simulated = true;
    c.sim_key_file = sim_key_;
    return c;
  }
  client::KeyServiceClient principal(const KeyServer& ks) {
    auto c = client::KeyServiceClient::create(config(ks), crypto::Identity::generate().value_or_die());
    EXPECT_TRUE(c.ok()) << c.status().to_string();
    auto p = std::move(c).value();
    EXPECT_TRUE(p.register_self().ok());
    return p;
  }
  kstest::TestWorker worker(const KeyServer& ks) {
    auto w = kstest::TestWorker::create(sim_key_, "worker-a", ks_measurement_, ks.port());
    EXPECT_TRUE(w.ok()) << w.status().to_string();
    return std::move(w).value();
  }
  // A client that attests the KeyService and sends requests as given.
  net::Client raw_client(const KeyServer& ks) {
    return kstest::attested_raw_client(ks.port(), ks_measurement_, sim_key_);
  }

  test_support::TempDir dir_{"moss-ks-etcd"};
  std::string prefix_;
  std::chrono::milliseconds etcd_timeout_ = store::EtcdClientOptions{}.timeout;  // of replicas started
  fs::path sim_key_;
  std::string ks_measurement_, worker_a_;
  SecretBytes model_key_ = crypto::random_secret(32).value_or_die();
  SecretBytes request_key_ = crypto::random_secret(32).value_or_die();
};

// register, set key, grant, request key, release; revoke, then the release is refused; the state
// and its audit chain verify.
TEST_F(KeyServiceEtcdTest, MainFlowsOverEtcd) {
  auto ks = start_replica("a");
  ASSERT_TRUE(ks);
  auto owner = principal(*ks), user = principal(*ks);
  const std::string model = owner.principal_id() + "/m";
  ASSERT_TRUE(owner.put_model_key(model, model_key_.span(), false).ok());
  ASSERT_TRUE(owner.add_grant(model, user.principal_id(), worker_a_).ok());
  ASSERT_TRUE(user.put_request_key(model, worker_a_, request_key_.span()).ok());
  auto grants = owner.list_grants(model).value_or_die();
  ASSERT_EQ(grants["grants"].size(), 1u) << grants.dump();

  auto w = worker(*ks);
  auto res = w.release(model, user.principal_id()).value_or_die();
  ASSERT_EQ(res.status, 200) << res.body;
  auto j = nlohmann::json::parse(res.body);
  EXPECT_EQ(j["model_keys"][0]["key"], base64_encode(model_key_.span()));
  EXPECT_EQ(j["request_key"]["key"], base64_encode(request_key_.span()));

  ASSERT_TRUE(owner.revoke_grant(model, user.principal_id(), worker_a_).ok());
  res = w.release(model, user.principal_id()).value_or_die();
  EXPECT_EQ(res.status, 403);
  EXPECT_EQ(reason_of(res), "no-grant");

  auto head = ks->state().verify_audit();
  ASSERT_TRUE(head.ok()) << head.status().to_string();
  // register x2, key set, grant, request key, release, revoke, denied release.
  EXPECT_EQ(head->seq, 8);
  auto events = owner.audit(model, 0, 100).value_or_die();
  EXPECT_GE(events["events"].size(), 5u) << events.dump();
}

// Two replicas over one etcd.
TEST_F(KeyServiceEtcdTest, ReplicasShareWritesRevokesAndNonces) {
  auto a = start_replica("a");
  ASSERT_TRUE(a);
  auto b = start_replica("b", {}, a.get());
  ASSERT_TRUE(b);
  EXPECT_EQ(a->state().identity().raw(), b->state().identity().raw());  // one signing identity
  auto owner = principal(*a), user = principal(*a);
  const std::string model = owner.principal_id() + "/m";
  ASSERT_TRUE(owner.put_model_key(model, model_key_.span(), false).ok());
  ASSERT_TRUE(user.put_request_key(model, worker_a_, request_key_.span()).ok());
  auto on_b = worker(*b);
  // Not granted yet: refused on b.
  EXPECT_EQ(on_b.release(model, user.principal_id()).value_or_die().status, 403);
  // Granted on a: released on b at once.
  ASSERT_TRUE(owner.add_grant(model, user.principal_id(), worker_a_).ok());
  auto res = on_b.release(model, user.principal_id()).value_or_die();
  ASSERT_EQ(res.status, 200) << res.body;
  EXPECT_EQ(nlohmann::json::parse(res.body)["model_keys"][0]["key"], base64_encode(model_key_.span()));
  // Revoke acknowledged by a: b refuses at once (no cache on b).
  ASSERT_TRUE(owner.revoke_grant(model, user.principal_id(), worker_a_).ok());
  res = on_b.release(model, user.principal_id()).value_or_die();
  EXPECT_EQ(res.status, 403);
  EXPECT_EQ(reason_of(res), "no-grant");

  // A signed request accepted by a is a replay at b.
  auto id = crypto::Identity::generate().value_or_die();
  const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch()).count();
  auto req = client::sign_request(id, "POST", "/v1/principals",
                                  nlohmann::json({{"public_key", base64_encode(id.public_key().raw())}}).dump(),
                                  now).value_or_die();
  EXPECT_EQ(raw_client(*a).request(req).value_or_die().status, 201);
  auto replay = raw_client(*b).request(req).value_or_die();
  EXPECT_EQ(replay.status, 401);
  EXPECT_EQ(reason_of(replay), "nonce-replayed");

  // One audit chain, signed alike by both.
  auto ha = a->state().signed_audit_head().value_or_die();
  auto hb = b->state().signed_audit_head().value_or_die();
  EXPECT_EQ(ha.head, hb.head);
  EXPECT_EQ(ha.state_version, hb.state_version);
  EXPECT_TRUE(a->state().verify_audit().ok());
  EXPECT_TRUE(b->state().verify_audit().ok());
}

// Over a 3-member etcd, kill -9 of the member the replica talks to: the replica fails over to the
// next endpoint, keeps every acknowledged write, and goes on writing and releasing.
TEST_F(KeyServiceEtcdTest, ServesThroughTheLossOfAnEtcdMember) {
  auto cluster = test_support::EtcdProcess::start(3);
  ASSERT_TRUE(cluster) << "a 3-member etcd did not start";
  auto ks = start_replica("a", cluster->endpoints());
  ASSERT_TRUE(ks);
  auto owner = principal(*ks), user = principal(*ks);
  const std::string model = owner.principal_id() + "/m";
  ASSERT_TRUE(owner.put_model_key(model, model_key_.span(), false).ok());
  ASSERT_TRUE(user.put_request_key(model, worker_a_, request_key_.span()).ok());
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(owner.add_grant(model, user.principal_id(), std::string(64, "abcde"[i])).ok());
  }
  cluster->stop_member(0, SIGKILL);
  ASSERT_TRUE(owner.add_grant(model, user.principal_id(), worker_a_).ok());
  auto grants = owner.list_grants(model).value_or_die();
  EXPECT_EQ(grants["grants"].size(), 6u) << grants.dump();
  auto res = worker(*ks).release(model, user.principal_id()).value_or_die();
  EXPECT_EQ(res.status, 200) << res.body;
  EXPECT_TRUE(ks->state().verify_audit().ok());
}

// No answer shows an older state than one already acknowledged (issue 18: grants and revocations
// read linearizably; clients refuse an older version as a rollback). Replica b talks only to etcd
// member 2, which is frozen while replica a (members 0 and 1) acknowledges writes, then thawed.
// Frozen, b answers 503 and shows no state: before, it showed the version it had seen last,
// older than a's acknowledgement (the fault run's "keyservice-rollback: ... state version 471,
// older than 968"). An answer given before any read of the state (an unsigned request) shows none
// either, frozen or thawed. Thawed, b's answers, read through the member that lagged, show at
// least what a acknowledged.
TEST_F(KeyServiceEtcdTest, NoAnswerShowsAnOlderStateThanOneAcknowledged) {
  auto cluster = test_support::EtcdProcess::start(3);
  ASSERT_TRUE(cluster) << "a 3-member etcd did not start";
  etcd_timeout_ = std::chrono::milliseconds(500);
  auto a = start_replica("a", {cluster->endpoint(0), cluster->endpoint(1)});
  ASSERT_TRUE(a);
  auto b = start_replica("b", {cluster->endpoint(2)}, a.get());
  ASSERT_TRUE(b);
  auto owner = principal(*a), user = principal(*a);
  const std::string model = owner.principal_id() + "/m";
  ASSERT_TRUE(owner.put_model_key(model, model_key_.span(), false).ok());
  ASSERT_TRUE(user.put_request_key(model, worker_a_, request_key_.span()).ok());
  ASSERT_TRUE(owner.add_grant(model, user.principal_id(), worker_a_).ok());
  auto on_b = worker(*b);
  auto version_of = [](const net::Response& r) {
    auto h = r.headers.get(crypto::kHeaderStateVersion);
    return h ? std::optional<int64_t>(crypto::parse_state_version(h)) : std::nullopt;
  };
  auto res = on_b.release(model, user.principal_id()).value_or_die();
  ASSERT_EQ(res.status, 200) << res.body;
  ASSERT_TRUE(version_of(res));
  const int64_t before = *version_of(res);

  // Frozen once a read of its own times out (SIGSTOP lands asynchronously).
  cluster->pause_member(2);
  {
    store::EtcdClientOptions o;
    o.endpoints = {cluster->endpoint(2)};
    o.timeout = std::chrono::milliseconds(200);
    auto probe = store::EtcdClient::create(o).value_or_die();
    for (int i = 0; i < 20 && probe->range(store::EtcdRange::one("probe")).ok(); ++i) {
    }
  }
  // Until 0 and 1 have a leader (member 2 may have led), a's calls may fail: retried.
  for (int i = 0; i < 3; ++i) {
    Status granted = unavailable("not tried");
    for (int attempt = 0; attempt < 40 && !granted.ok(); ++attempt) {
      if (attempt) std::this_thread::sleep_for(std::chrono::milliseconds(250));
      granted = owner.add_grant(model, user.principal_id(), std::string(64, "abc"[i])).status();
    }
    ASSERT_TRUE(granted.ok()) << granted.to_string();
  }
  const int64_t acked = a->state().state_version();
  ASSERT_GT(acked, before);

  auto shows_no_older = [&](const net::Response& r, const char* what) {
    auto v = version_of(r);
    EXPECT_TRUE(!v || *v >= acked) << what << ": HTTP " << r.status << " shows state version " << *v
                                   << ", older than " << acked << " acknowledged before";
  };
  res = on_b.release(model, user.principal_id()).value_or_die();
  EXPECT_EQ(res.status, 503) << res.body;
  shows_no_older(res, "frozen, release");
  EXPECT_FALSE(version_of(res)) << "a 5xx shows no state";
  auto c = raw_client(*b);
  const std::string grants = "/v1/models/" + model + "/grants";
  auto unsigned_get = c.get(grants).value_or_die();
  EXPECT_EQ(unsigned_get.status, 401) << unsigned_get.body;
  shows_no_older(unsigned_get, "frozen, unsigned request");

  cluster->resume_member(2);
  ASSERT_TRUE(cluster->wait_serving(2, std::chrono::seconds(30)));
  unsigned_get = c.get(grants).value_or_die();
  EXPECT_EQ(unsigned_get.status, 401) << unsigned_get.body;
  shows_no_older(unsigned_get, "thawed, unsigned request");
  res = on_b.release(model, user.principal_id()).value_or_die();
  ASSERT_EQ(res.status, 200) << res.body;
  ASSERT_TRUE(version_of(res));
  EXPECT_GT(*version_of(res), acked);  // its own commit (the release's audit event) came after
}

// A grant, a revoke and a release each cost two etcd round trips (issue 18), counted in the etcd
// client: the head and every row the change reads in one txn, then the commit (a compare-and-swap
// on the head, with the audit event). Before the reads were announced to the store they took 6, 7,
// 3 and 5 (each read its own round trip), and one more each to publish the version.
TEST_F(KeyServiceEtcdTest, AGrantRevokeOrReleaseIsTwoEtcdRoundTrips) {
  store::EtcdStoreOptions o;
  o.client.endpoints = {shared_etcd()->endpoint()};
  o.prefix = prefix_;
  auto sealer = store::Sealer::create(crypto::random_secret(32).value_or_die()).value_or_die();
  auto opened = open_etcd_state(o, std::move(sealer));
  ASSERT_TRUE(opened.ok()) << opened.status().to_string();
  auto* etcd = dynamic_cast<store::EtcdStateStore*>(opened->get());
  ASSERT_NE(etcd, nullptr);
  auto state = KeyState::open(std::move(opened).value()).value_or_die();
  const std::string owner(64, 'a'), user(64, 'b'), model = owner + "/m", m(64, 'c');
  ASSERT_TRUE(state->register_principal(owner, std::vector<uint8_t>(32, 1)).ok());
  ASSERT_TRUE(state->register_principal(user, std::vector<uint8_t>(32, 2)).ok());
  ASSERT_TRUE(state->put_model_key(owner, model, model_key_.span(), false).ok());
  ASSERT_TRUE(state->put_request_key(user, model, m, request_key_.span()).ok());
  uint64_t before = etcd->etcd_round_trips();
  auto since = [&] {
    const uint64_t now = etcd->etcd_round_trips(), spent = now - before;
    before = now;
    return spent;
  };
  EXPECT_TRUE(state->add_grant(owner, model, user, m).value_or_die());
  EXPECT_EQ(since(), 2u) << "grant";
  EXPECT_TRUE(state->release(model, user, m).ok());
  EXPECT_EQ(since(), 2u) << "release";
  EXPECT_TRUE(state->revoke_grant(owner, model, user, m).ok());
  EXPECT_EQ(since(), 2u) << "revoke";
  EXPECT_EQ(state->release(model, user, m).status().reason(), "no-grant");
  EXPECT_EQ(since(), 2u) << "release refused";
  EXPECT_TRUE(state->verify_audit().ok());
}

// Replica key provisioning: the first replica creates the state key; a second one with no copy
// of it is refused unless it joins; joined over mutually attested TLS, it serves the shared state,
// keeps the key sealed under its own sealing key, and restarts from that copy without joining.
TEST_F(KeyServiceEtcdTest, ANewReplicaJoinsByAttestedProvisioningAndServes) {
  auto a = start_replica("a");
  ASSERT_TRUE(a);
  ASSERT_NE(a->replica_port(), 0);
  auto owner = principal(*a), user = principal(*a);
  const std::string model = owner.principal_id() + "/m";
  ASSERT_TRUE(owner.put_model_key(model, model_key_.span(), false).ok());
  ASSERT_TRUE(owner.add_grant(model, user.principal_id(), worker_a_).ok());
  ASSERT_TRUE(user.put_request_key(model, worker_a_, request_key_.span()).ok());

  auto alone = try_start_replica("b");
  ASSERT_FALSE(alone.ok());
  EXPECT_EQ(alone.status().code(), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(alone.status().reason(), "replica-join-required") << alone.status().to_string();

  auto b = start_replica("b", {}, a.get());
  ASSERT_TRUE(b);
  EXPECT_EQ(a->state().identity().raw(), b->state().identity().raw());
  auto res = worker(*b).release(model, user.principal_id()).value_or_die();
  ASSERT_EQ(res.status, 200) << res.body;
  EXPECT_EQ(nlohmann::json::parse(res.body)["model_keys"][0]["key"], base64_encode(model_key_.span()));
  // b keeps the key only sealed: under its own sealing key, not a's.
  const auto sealed_a = read_file(dir_.path() / "a" / kStateKeyFile, 1024).value_or_die();
  const auto sealed_b = read_file(dir_.path() / "b" / kStateKeyFile, 1024).value_or_die();
  EXPECT_NE(sealed_a, sealed_b);
  EXPECT_NE(read_file(dir_.path() / "a" / "sealing.key", 64).value_or_die(),
            read_file(dir_.path() / "b" / "sealing.key", 64).value_or_die());

  // With a gone, b restarts from its sealed copy, no join needed, and writes.
  a.reset();
  b.reset();
  b = start_replica("b");
  ASSERT_TRUE(b);
  auto owner_b = client::KeyServiceClient::create(config(*b), crypto::Identity::generate().value_or_die()).value_or_die();
  ASSERT_TRUE(owner_b.register_self().ok());
  EXPECT_TRUE(b->state().verify_audit().ok());
}

// A replica the policy does not admit gets no key, and a joiner refuses a replica its own policy
// does not admit: either way it does not start.
TEST_F(KeyServiceEtcdTest, AReplicaFailingTheReplicaPolicyIsRefused) {
  auto a = start_replica("a");
  ASSERT_TRUE(a);
  // Another simulated identity: another measurement, which a's replica policy does not list.
  auto impostor = try_start_replica("b", {}, a.get(), "not-the-keyservice",
                                    kstest::sim_policy_json({ks_measurement_}));
  ASSERT_FALSE(impostor.ok());
  EXPECT_EQ(impostor.status().reason(), "replica-join-failed") << impostor.status().to_string();
  // A joiner whose policy names another measurement refuses a in the handshake.
  auto wary = try_start_replica("c", {}, a.get(), "moss-keyservice",
                                kstest::sim_policy_json({std::string(64, 'e')}));
  ASSERT_FALSE(wary.ok());
  EXPECT_EQ(wary.status().reason(), "replica-join-failed") << wary.status().to_string();
  EXPECT_FALSE(fs::exists(dir_.path() / "b" / kStateKeyFile));
  EXPECT_FALSE(fs::exists(dir_.path() / "c" / kStateKeyFile));
}

// Readiness follows the store: /healthz answers 503 store-unavailable while the replica's only
// etcd member is down (once the last answer, reused for KeyState::kReadinessReuseMs, is older)
// and 200 again once it is back; /livez answers throughout.
TEST_F(KeyServiceEtcdTest, HealthzFollowsTheStoreAndLivezDoesNot) {
  auto etcd = test_support::EtcdProcess::start(1);
  ASSERT_TRUE(etcd) << "etcd did not start";
  auto ks = start_replica("a", etcd->endpoints());
  ASSERT_TRUE(ks);
  auto c = raw_client(*ks);
  EXPECT_EQ(c.get("/healthz").value_or_die().status, 200);
  etcd->stop_member(0, SIGKILL);
  net::Response down;
  for (int i = 0; i < 50 && down.status != 503; ++i) {
    down = c.get("/healthz").value_or_die();
    if (down.status != 503) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(down.status, 503) << down.body;
  EXPECT_EQ(net::status_from_response(down).reason(), "store-unavailable") << down.body;
  EXPECT_EQ(c.get("/livez").value_or_die().status, 200);
  ASSERT_TRUE(etcd->restart_member(0));
  int status = 0;
  for (int i = 0; i < 50 && status != 200; ++i) {
    status = c.get("/healthz").value_or_die().status;
    if (status != 200) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(status, 200);
}

// keyservice.etcd-timeout reaches both etcd clients the server makes: the one that reads the
// state key at start and the state store's. With etcd frozen, start fails and /healthz turns 503
// within the short timeout set here, not the 5 s default.
TEST_F(KeyServiceEtcdTest, EtcdTimeoutBoundsStartAndReadiness) {
  auto etcd = test_support::EtcdProcess::start(1);
  ASSERT_TRUE(etcd) << "etcd did not start";
  etcd_timeout_ = std::chrono::milliseconds(300);
  const auto bound = std::chrono::milliseconds(2500);
  auto timed = [](auto&& call) {
    const auto start = std::chrono::steady_clock::now();
    auto result = call();
    return std::make_pair(std::move(result), std::chrono::steady_clock::now() - start);
  };
  // SIGSTOP lands asynchronously: frozen once a read of its own times out.
  auto freeze = [&] {
    etcd->pause_member(0);
    store::EtcdClientOptions o;
    o.endpoints = etcd->endpoints();
    o.timeout = std::chrono::milliseconds(200);
    auto probe = store::EtcdClient::create(o).value_or_die();
    for (int i = 0; i < 20 && probe->range(store::EtcdRange::one("probe")).ok(); ++i) {
    }
  };
  freeze();
  auto [frozen, took] = timed([&] { return try_start_replica("early", etcd->endpoints()); });
  EXPECT_EQ(frozen.status().code(), ErrorCode::kUnavailable) << frozen.status().to_string();
  EXPECT_LT(took, bound);
  etcd->resume_member(0);
  ASSERT_TRUE(etcd->wait_serving(0, std::chrono::seconds(10)));

  auto ks = start_replica("a", etcd->endpoints());
  ASSERT_TRUE(ks);
  auto c = raw_client(*ks);
  EXPECT_EQ(c.get("/healthz").value_or_die().status, 200);
  freeze();
  net::Response down;
  for (int i = 0; i < 30 && down.status != 503; ++i) {
    auto [r, t] = timed([&] { return c.get("/healthz"); });
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_LT(t, bound);
    down = *r;
    if (down.status != 503) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(down.status, 503) << down.body;
  etcd->resume_member(0);
}

}  // namespace
}  // namespace moss::keyservice
