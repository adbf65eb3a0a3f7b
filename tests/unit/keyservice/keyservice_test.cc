// Tests for src/keyservice against a real KeyServer on loopback (simulated TEE, explicitly allowed):
// the key release rule, every refusal with its reason, signed requests, limits, sealing at rest.
#include "keyservice/keyservice_server.h"

#include "client/keyservice_client.h"
#include "common/file_util.h"
#include "crypto/random.h"
#include "unit/keyservice/keyservice_fixture.h"

#include <gtest/gtest.h>

#include <chrono>

namespace moss::keyservice {
namespace {
namespace fs = std::filesystem;
using kstest::reason_of;

class KeyServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "moss-ks-XXXXXX").string();
    dir_ = mkdtemp(tmpl.data());
    sim_key_ = dir_ / "sim.key";
    ASSERT_TRUE(attest::SimPlatformKey::load_or_create(sim_key_).ok());
    ks_measurement_ = kstest::sim_measurement("/proc/self/exe", "moss-keyservice");
    worker_a_ = kstest::sim_measurement("/proc/self/exe", "worker-a");
    worker_b_ = kstest::sim_measurement("/proc/self/exe", "worker-b");
    ASSERT_TRUE(write_text_file(dir_ / "ks-policy.json", kstest::sim_policy_json({ks_measurement_})).ok());
  }
  void TearDown() override {
    server_.reset();
    fs::remove_all(dir_);
  }

  void start(ServiceOptions service = {}) {
    KeyServerOptions o;
    o.state_dir = dir_ / "state";
    o.producer.kind = "sim";
    o.producer.sim_key_file = sim_key_;
    o.producer.sim_identity = "moss-keyservice";
    o.worker_policy = attest::Policy::parse(kstest::sim_policy_json({worker_a_, worker_b_})).value_or_die();
    o.allow_simulated_workers = true;
    o.max_body_bytes = 64 * 1024;
    o.service = service;
    auto s = KeyServer::start(std::move(o));
    ASSERT_TRUE(s.ok()) << s.status().to_string();
    server_ = std::move(s).value();
  }

  client::ClientConfig config(bool allow_simulated = true) {
    client::ClientConfig c;
    c.keyservice_url = "https://127.0.0.1:" + std::to_string(server_->port());
    c.keyservice_policy = dir_ / "ks-policy.json";
    c.state_dir = dir_;
    c.allow_simulated = allow_simulated;
    c.sim_key_file = sim_key_;
    return c;
  }
  client::KeyServiceClient principal() {
    auto c = client::KeyServiceClient::create(config(), crypto::Identity::generate().value_or_die());
    EXPECT_TRUE(c.ok()) << c.status().to_string();
    auto ks = std::move(c).value();
    EXPECT_TRUE(ks.register_self().ok());
    return ks;
  }
  kstest::TestWorker worker(const std::string& identity) {
    auto w = kstest::TestWorker::create(sim_key_, identity, ks_measurement_, server_->port());
    EXPECT_TRUE(w.ok()) << w.status().to_string();
    return std::move(w).value();
  }
  static SecretBytes key() { return crypto::random_secret(32).value_or_die(); }

  // Owner uploads a key for "<owner>/m", grants `user` for worker A; user adds a request key.
  void setup_flow(client::KeyServiceClient& owner, client::KeyServiceClient& user) {
    model_ = owner.principal_id() + "/m";
    ASSERT_TRUE(owner.put_model_key(model_, model_key_.span(), false).ok());
    ASSERT_TRUE(owner.add_grant(model_, user.principal_id(), worker_a_).ok());
    ASSERT_TRUE(user.put_request_key(model_, worker_a_, request_key_.span()).ok());
  }

  fs::path dir_, sim_key_;
  std::string ks_measurement_, worker_a_, worker_b_, model_;
  SecretBytes model_key_ = key(), request_key_ = key();
  std::unique_ptr<KeyServer> server_;
};

nlohmann::json body_of(const net::Response& r) { return nlohmann::json::parse(r.body); }

// The granted worker receives exactly the owner's model key and the user's request key.
TEST_F(KeyServiceTest, ReleasesExactlyTheGrantedKeysToTheGrantedWorker) {
  start();
  auto owner = principal(), user = principal();
  setup_flow(owner, user);
  auto w = worker("worker-a");
  auto res = w.release(model_, user.principal_id());
  ASSERT_TRUE(res.ok());
  ASSERT_EQ(res->status, 200) << res->body;
  auto j = body_of(*res);
  EXPECT_EQ(j["measurement"], worker_a_);
  ASSERT_EQ(j["model_keys"].size(), 1u);
  EXPECT_EQ(j["model_keys"][0]["version"], 1);
  EXPECT_EQ(j["model_keys"][0]["key"], base64_encode(model_key_.span()));
  EXPECT_EQ(j["request_key"]["key"], base64_encode(request_key_.span()));
  EXPECT_EQ(j["request_key"]["version"], 1);
}

// Rotation keeps the old version released (newest first) until it is retired.
TEST_F(KeyServiceTest, RotationReleasesNewestFirstUntilRetired) {
  start();
  auto owner = principal(), user = principal();
  setup_flow(owner, user);
  SecretBytes second = key();
  auto rot = owner.put_model_key(model_, second.span(), true);
  ASSERT_TRUE(rot.ok());
  EXPECT_EQ((*rot)["version"], 2);
  EXPECT_EQ(owner.put_model_key(model_, key().span(), false).status().code(), ErrorCode::kAlreadyExists);
  auto w = worker("worker-a");
  auto j = body_of(*w.release(model_, user.principal_id()));
  ASSERT_EQ(j["model_keys"].size(), 2u);
  EXPECT_EQ(j["model_keys"][0]["key"], base64_encode(second.span()));
  EXPECT_EQ(j["model_keys"][1]["version"], 1);
  ASSERT_TRUE(owner.retire_model_key(model_, 1).ok());
  auto last = owner.retire_model_key(model_, 2);
  EXPECT_NE(last.status().message().find("last-key-version"), std::string::npos);
  j = body_of(*w.release(model_, user.principal_id()));
  ASSERT_EQ(j["model_keys"].size(), 1u);
  EXPECT_EQ(j["model_keys"][0]["version"], 2);
}

// A user (no attested worker certificate) cannot fetch keys.
TEST_F(KeyServiceTest, RefusesReleaseWithoutAttestedWorkerCertificate) {
  start();
  auto owner = principal(), user = principal();
  setup_flow(owner, user);
  auto r = user.call("POST", "/v1/release",
                     nlohmann::json({{"model_id", model_}, {"user_id", user.principal_id()}}).dump());
  EXPECT_EQ(r.status().code(), ErrorCode::kUnauthenticated);
  EXPECT_NE(r.status().message().find("worker-attestation-required"), std::string::npos);
}

// A worker whose measurement was not granted, a revoked grant, a missing request key: 403.
TEST_F(KeyServiceTest, RefusesUngrantedMeasurementRevokedGrantAndMissingRequestKey) {
  start();
  auto owner = principal(), user = principal(), other = principal();
  setup_flow(owner, user);
  auto b = worker("worker-b");
  auto res = b.release(model_, user.principal_id());
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(res->status, 403);
  EXPECT_EQ(reason_of(*res), "no-grant");

  ASSERT_TRUE(owner.add_grant(model_, other.principal_id(), worker_a_).ok());
  auto a = worker("worker-a");
  res = a.release(model_, other.principal_id());
  EXPECT_EQ(res->status, 403);
  EXPECT_EQ(reason_of(*res), "no-request-key");

  ASSERT_TRUE(owner.revoke_grant(model_, user.principal_id(), worker_a_).ok());
  res = a.release(model_, user.principal_id());
  EXPECT_EQ(res->status, 403);
  EXPECT_EQ(reason_of(*res), "no-grant");
  ASSERT_TRUE(owner.add_grant(model_, user.principal_id(), worker_a_).ok());
  ASSERT_EQ(a.release(model_, user.principal_id())->status, 200);
  ASSERT_TRUE(user.delete_request_key(model_, worker_a_).ok());
  res = a.release(model_, user.principal_id());
  EXPECT_EQ(reason_of(*res), "no-request-key");
  ASSERT_TRUE(owner.delete_model(model_).ok());
  res = a.release(model_, user.principal_id());
  EXPECT_EQ(reason_of(*res), "unknown-model");
  res = a.release(owner.principal_id() + "/absent", user.principal_id());
  EXPECT_EQ(res->status, 404);
  EXPECT_EQ(reason_of(*res), "unknown-model");
}

// Only the owner named in the model id may grant, rotate or delete.
TEST_F(KeyServiceTest, RefusesGrantOnAnotherOwnersModel) {
  start();
  auto owner = principal(), user = principal();
  setup_flow(owner, user);
  auto r = user.add_grant(model_, user.principal_id(), worker_b_);
  EXPECT_EQ(r.status().code(), ErrorCode::kPermissionDenied);
  EXPECT_NE(r.status().message().find("not-owner"), std::string::npos);
  EXPECT_EQ(user.put_model_key(model_, key().span(), true).status().code(), ErrorCode::kPermissionDenied);
}

// Unsigned, replayed, late, tampered-body and tampered-signature requests are each refused.
TEST_F(KeyServiceTest, RefusesUnsignedReplayedLateAndTamperedRequests) {
  start();
  auto owner = principal(), user = principal();
  setup_flow(owner, user);
  auto id = crypto::Identity::generate().value_or_die();
  attest::AttestedPeerConfig peer;
  peer.purpose = "moss-keyservice";
  peer.policy = attest::Policy::parse(kstest::sim_policy_json({ks_measurement_})).value_or_die();
  peer.verify.allow_simulated = true;
  peer.verify.sim_platform_key = attest::SimPlatformKey::load_public_key(sim_key_).value_or_die();
  auto tls = net::ClientTlsContext::create(
      attest::attested_client_config(attest::make_attested_peer_verifier(peer).value_or_die()));
  net::ClientOptions o;
  o.port = server_->port();
  o.tls = *tls;
  net::Client c(o);
  int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                    std::chrono::system_clock::now().time_since_epoch()).count();
  std::string body = nlohmann::json({{"public_key", base64_encode(id.public_key().raw())}}).dump();

  auto unsigned_req = net::Request::make("POST", "/v1/principals", body, "application/json");
  auto r = c.request(unsigned_req);
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(reason_of(*r), "signature-missing");

  auto late = client::sign_request(id, "POST", "/v1/principals", body, now - 3600).value_or_die();
  r = c.request(late);
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(reason_of(*r), "timestamp-out-of-window");

  auto tampered = client::sign_request(id, "POST", "/v1/principals", body, now).value_or_die();
  auto other = crypto::Identity::generate().value_or_die();
  tampered.body = nlohmann::json({{"public_key", base64_encode(other.public_key().raw())}}).dump();
  r = c.request(tampered);
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(reason_of(*r), "body-hash-mismatch");

  auto bad_sig = client::sign_request(id, "POST", "/v1/principals", body, now).value_or_die();
  bad_sig.headers.set("X-Moss-Timestamp", std::to_string(now - 1));
  r = c.request(bad_sig);
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(reason_of(*r), "signature-invalid");

  auto good = client::sign_request(id, "POST", "/v1/principals", body, now).value_or_die();
  r = c.request(good);
  EXPECT_EQ(r->status, 201) << r->body;
  r = c.request(good);
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(reason_of(*r), "nonce-replayed");

  // A signature for one endpoint does not carry over to another.
  auto moved = client::sign_request(id, "GET", "/v1/audit", "", now).value_or_die();
  moved.target = "/v1/audit?limit=5";
  moved.path = "/v1/audit";
  r = c.request(moved);
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(reason_of(*r), "signature-invalid");

  auto stranger = crypto::Identity::generate().value_or_die();
  r = c.request(client::sign_request(stranger, "GET", "/v1/audit", "", now).value_or_die());
  EXPECT_EQ(reason_of(*r), "unknown-principal");
}

// A client whose policy the KeyService does not meet sends nothing: the handshake fails.
TEST_F(KeyServiceTest, ClientRefusesKeyServiceThatFailsItsPolicy) {
  start();
  ASSERT_TRUE(write_text_file(dir_ / "other-policy.json",
                              kstest::sim_policy_json({std::string(64, 'c')})).ok());
  auto cfg = config();
  cfg.keyservice_policy = dir_ / "other-policy.json";
  auto c = client::KeyServiceClient::create(cfg, crypto::Identity::generate().value_or_die());
  ASSERT_TRUE(c.ok());
  auto r = c->register_self();
  EXPECT_EQ(r.status().code(), ErrorCode::kUnauthenticated) << r.status().to_string();
  // Simulated evidence is refused unless the client config allows it, whatever the policy says.
  auto strict = client::KeyServiceClient::create(config(false), crypto::Identity::generate().value_or_die());
  ASSERT_TRUE(strict.ok());
  EXPECT_EQ(strict->register_self().status().code(), ErrorCode::kUnauthenticated);
}

// Oversized bodies get 413; a principal over its rate gets 429.
TEST_F(KeyServiceTest, EnforcesSizeAndRateLimits) {
  ServiceOptions s;
  s.rate_per_s = 1;
  s.rate_burst = 3;
  start(s);
  auto owner = principal();  // one token
  int limited = 0;
  for (int i = 0; i < 6; ++i) {
    auto r = owner.audit("", 0, 10);
    if (!r.ok() && r.status().code() == ErrorCode::kResourceExhausted &&
        r.status().message().find("rate-limited") != std::string::npos) {
      ++limited;
    }
  }
  EXPECT_GE(limited, 3);
  auto big = owner.call("POST", "/v1/request-keys", std::string(100 * 1024, 'x'));
  EXPECT_EQ(big.status().code(), ErrorCode::kResourceExhausted);
}

// Keys are sealed at rest: the database never holds them in the clear, and the audit verifies.
TEST_F(KeyServiceTest, StoresKeysSealedAndAuditsEveryChange) {
  start();
  auto owner = principal(), user = principal();
  setup_flow(owner, user);
  auto w = worker("worker-a");
  ASSERT_EQ(w.release(model_, user.principal_id())->status, 200);
  auto head = server_->state().verify_audit();
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->seq, 6);  // 2 registrations, key set, grant, request key, release
  server_.reset();
  for (const char* name : {"keyservice.db", "keyservice.db-wal"}) {
    if (!fs::exists(dir_ / "state" / name)) continue;
    auto bytes = read_file(dir_ / "state" / name, 64 << 20).value_or_die();
    for (const SecretBytes* k : {&model_key_, &request_key_}) {
      EXPECT_EQ(std::search(bytes.begin(), bytes.end(), k->span().begin(), k->span().end()),
                bytes.end()) << name;
    }
  }
  auto events = owner.audit("", 0, 100);
  EXPECT_FALSE(events.ok());  // server stopped: nothing answers
}

}  // namespace
}  // namespace moss::keyservice

namespace moss::keyservice {
namespace {

// Nonces are stored durably: a request captured before a restart is still a replay after it, and
// state (principals, keys) comes back unsealed under the same sealing key.
TEST_F(KeyServiceTest, ReplayAfterRestartIsStillRefused) {
  start();
  auto owner = principal(), user = principal();
  setup_flow(owner, user);
  auto id = crypto::Identity::generate().value_or_die();
  int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                    std::chrono::system_clock::now().time_since_epoch()).count();
  auto req = client::sign_request(id, "POST", "/v1/principals",
                                  nlohmann::json({{"public_key", base64_encode(id.public_key().raw())}}).dump(),
                                  now).value_or_die();
  auto send = [&](const net::Request& r) {
    attest::AttestedPeerConfig peer;
    peer.purpose = "moss-keyservice";
    peer.policy = attest::Policy::parse(kstest::sim_policy_json({ks_measurement_})).value_or_die();
    peer.verify.allow_simulated = true;
    peer.verify.sim_platform_key = attest::SimPlatformKey::load_public_key(sim_key_).value_or_die();
    net::ClientOptions o;
    o.port = server_->port();
    o.tls = net::ClientTlsContext::create(attest::attested_client_config(
        attest::make_attested_peer_verifier(peer).value_or_die())).value_or_die();
    net::Client c(o);
    return c.request(r).value_or_die();
  };
  EXPECT_EQ(send(req).status, 201);
  server_.reset();
  start();
  auto again = send(req);
  EXPECT_EQ(again.status, 401);
  EXPECT_EQ(reason_of(again), "nonce-replayed");
  auto w = worker("worker-a");
  auto res = w.release(model_, user.principal_id());
  ASSERT_EQ(res->status, 200);
  EXPECT_EQ(nlohmann::json::parse(res->body)["model_keys"][0]["key"], base64_encode(model_key_.span()));
}

}  // namespace
}  // namespace moss::keyservice
