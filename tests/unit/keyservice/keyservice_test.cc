// Tests for src/keyservice against a real KeyServer on loopback (simulated TEE, explicitly allowed):
// the key release rule, every refusal with its reason, signed requests, limits, sealing at rest.
#include "keyservice/keyservice_server.h"

#include "client/keyservice_client.h"
#include "client/seen_state_versions.h"
#include "common/file_util.h"
#include "crypto/hash.h"
#include "crypto/random.h"
#include "crypto/keyservice_state.h"
#include "crypto/signed_request.h"
#include "unit/keyservice/keyservice_fixture.h"
#include "support/log_capture.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

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

  // A client that attests the KeyService but sends requests as given (signed or not).
  net::Client raw_client() {
    return kstest::attested_raw_client(server_->port(), ks_measurement_, sim_key_);
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

// Issue 20 item 4, per-connection freshness: a worker certificate's evidence may be hours old, so
// keys leave only on a connection for which the worker sent fresh evidence (bound to that
// connection's TLS exporter); evidence made for another connection is refused.
TEST_F(KeyServiceTest, ReleaseNeedsFreshEvidenceForItsConnection) {
  start();
  auto owner = principal(), user = principal();
  setup_flow(owner, user);
  auto silent = kstest::TestWorker::create(sim_key_, "worker-a", ks_measurement_, server_->port(),
                                           /*attest_connections=*/false).value_or_die();
  auto res = silent.release(model_, user.principal_id()).value_or_die();
  EXPECT_EQ(res.status, 401);
  EXPECT_EQ(reason_of(res), "connection-not-attested");
  // Genuine evidence from the worker's TEE, but for another connection's exporter (what a replay
  // from another connection carries): refused, and this connection stays unattested.
  auto elsewhere = attest::connection_report_data(std::vector<uint8_t>(32, 0x5a), {}, "moss-worker");
  auto evidence = silent.producer->produce(elsewhere).value_or_die();
  auto att = silent.client()
                 .post("/v1/attest-connection", std::string(evidence.bytes.begin(), evidence.bytes.end()),
                       "application/octet-stream")
                 .value_or_die();
  EXPECT_EQ(att.status, 401);
  EXPECT_EQ(reason_of(att), "connection-evidence-invalid");
  EXPECT_NE(att.body.find("report-data"), std::string::npos) << att.body;
  EXPECT_EQ(reason_of(silent.release(model_, user.principal_id()).value_or_die()), "connection-not-attested");
  // A peer without a worker certificate cannot attest a connection at all.
  auto plain = raw_client();
  res = plain.post("/v1/attest-connection", "x", "application/octet-stream").value_or_die();
  EXPECT_EQ(res.status, 401);
  EXPECT_EQ(reason_of(res), "worker-attestation-required");
  // A worker that attests its connection (once, on connect) gets keys on it, as often as it asks.
  auto w = worker("worker-a");
  EXPECT_EQ(w.release(model_, user.principal_id())->status, 200);
  EXPECT_EQ(w.release(model_, user.principal_id())->status, 200);
  EXPECT_EQ(w.client().connections_opened(), 1u);
  const std::string m = plain.get("/metrics")->body;
  EXPECT_NE(m.find("moss_keyservice_connection_attestations_total 1\n"), std::string::npos) << m;
  EXPECT_NE(m.find("moss_keyservice_connection_attestations_refused_total 1\n"), std::string::npos) << m;
}

// Finding 11: a flood of refusals leaves a bounded number of log lines; every refusal is still
// counted in /metrics.
TEST_F(KeyServiceTest, RefusalFloodLogsBoundedLinesAndCountsAll) {
  start();
  auto c = raw_client();
  const int kRefusals = 300;
  {
    test_support::LogCapture log("info", {"keyservice"});
    for (int i = 0; i < kRefusals; ++i) {
      auto r = c.post("/v1/release", R"({"model_id":"a/b","user_id":"u"})");
      ASSERT_TRUE(r.ok()) << r.status().to_string();
      ASSERT_EQ(r->status, 401);
    }
    EXPECT_GE(log.lines(), 1u);
    EXPECT_LE(log.lines(), 21u) << log.text();  // the throttle: 20 lines per 10 s (and a summary)
  }
  const std::string m = c.get("/metrics")->body;
  EXPECT_NE(m.find("moss_keyservice_requests_total{endpoint=\"release\",status=\"401\"} 300\n"),
            std::string::npos) << m;
}

// Review finding (log injection): an unknown field's name from a request is quoted into the
// refusal (which reaches the log) only when it is a plain identifier; a name with quotes and a
// newline cannot forge or split a log line.
TEST_F(KeyServiceTest, UnknownFieldNamesAreNotQuotedVerbatim) {
  start();
  auto w = worker("worker-a");
  const std::string forged = "x\" refused=\"none\"\nFORGED endpoint=release";
  test_support::LogCapture log("info", {"keyservice"});
  auto r = w.client()
               .post("/v1/release", nlohmann::json{{"model_id", "a/b"}, {"user_id", "u"}, {forged, 1}}.dump())
               .value_or_die();
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(reason_of(r), "bad-request");
  EXPECT_EQ(r.body.find("FORGED"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("a name of"), std::string::npos) << r.body;
  r = w.client().post("/v1/release", R"({"model_id":"a/b","user_id":"u","colour":1})").value_or_die();
  EXPECT_NE(r.body.find("unknown field 'colour'"), std::string::npos) << r.body;
  const std::string logged = log.text();
  EXPECT_EQ(logged.find("FORGED"), std::string::npos) << logged;
  EXPECT_NE(logged.find("unknown field"), std::string::npos) << logged;
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
  net::Client c = raw_client();
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
  auto send = [&](const net::Request& r) { return raw_client().request(r).value_or_die(); };
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

// ---- Hardening (issue 20) ----
namespace moss::keyservice {
namespace {

class KeyServiceHardeningTest : public KeyServiceTest {
 protected:
  static int64_t now_s() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch()).count();
  }
  net::Response send_signed(const crypto::Identity& id, const std::string& method,
                            const std::string& target, const std::string& body) {
    auto req = client::sign_request(id, method, target, body, now_s()).value_or_die();
    return raw_client().request(req).value_or_die();
  }
};

// A small-order public key (here the identity point) would let one constant signature (R = the
// identity, S = 0) verify for every message: registration refuses it, whatever the signature.
TEST_F(KeyServiceHardeningTest, RegistrationRefusesSmallOrderKeysAndTheForgedSignature) {
  start();
  std::array<uint8_t, 32> identity_point{};
  identity_point[0] = 1;
  std::string id = crypto::principal_id_of(identity_point);
  std::string body = nlohmann::json({{"public_key", base64_encode(identity_point)}}).dump();
  net::Request req = net::Request::make("POST", "/v1/principals", body, "application/json");
  std::array<uint8_t, 64> forged{};
  forged[0] = 1;  // R = identity (encoded y = 1), S = 0
  req.headers.set(crypto::kHeaderPrincipal, id);
  req.headers.set(crypto::kHeaderTimestamp, std::to_string(now_s()));
  req.headers.set(crypto::kHeaderNonce, std::string(32, 'a'));
  req.headers.set(crypto::kHeaderBodySha256, hex_encode(sha256(as_bytes(body))));
  req.headers.set(crypto::kHeaderSignature, base64_encode(forged));
  auto res = raw_client().request(req).value_or_die();
  EXPECT_EQ(res.status, 400) << res.body;
  EXPECT_EQ(reason_of(res), "weak-public-key");
  // Non-canonical encodings of a point (y >= p) are refused too.
  std::array<uint8_t, 32> non_canonical{};
  non_canonical.fill(0xff);
  non_canonical[31] = 0x7f;
  EXPECT_FALSE(crypto::PublicKey::from_raw(non_canonical).ok());
}

// "%2F" in the path would make a model id with two '/' that no release could name: refused.
TEST_F(KeyServiceHardeningTest, ModelIdWithEncodedSlashIsRefused) {
  start();
  auto owner = principal();
  std::string b64 = base64_encode(key().span());
  auto r = owner.call("POST", "/v1/models/" + owner.principal_id() + "/a%2Fb/keys",
                      "{\"key\":\"" + b64 + "\"}");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
}

// Registering a request key answers the same whether the model exists or not.
TEST_F(KeyServiceHardeningTest, RequestKeyAnswerIsNoOracleForModelExistence) {
  start();
  auto owner = principal(), user = principal();
  setup_flow(owner, user);
  std::string present = owner.principal_id() + "/other-present";
  ASSERT_TRUE(owner.put_model_key(present, key().span(), false).ok());
  std::string absent = owner.principal_id() + "/absent";
  auto a1 = user.put_request_key(present, worker_b_, key().span());
  auto b1 = user.put_request_key(absent, worker_b_, key().span());
  ASSERT_TRUE(a1.ok()) << a1.status().to_string();
  ASSERT_TRUE(b1.ok()) << b1.status().to_string();
  EXPECT_EQ((*a1)["version"], (*b1)["version"]);
  auto a2 = user.put_request_key(present, worker_b_, key().span());
  auto b2 = user.put_request_key(absent, worker_b_, key().span());
  ASSERT_TRUE(a2.ok() && b2.ok());
  EXPECT_EQ((*a2)["version"], (*b2)["version"]);
}

// A release and a revoke racing: in the audit log, no release of the triple appears between a
// revoke and the next grant (the release read the grant and recorded itself in one transaction).
TEST_F(KeyServiceHardeningTest, ReleaseAndRevokeAreOrderedInTheAuditLog) {
  start();
  KeyState& s = server_->state();
  auto owner = crypto::Identity::generate().value_or_die();
  auto user = crypto::Identity::generate().value_or_die();
  ASSERT_TRUE(s.register_principal(owner.principal_id(), owner.public_key().raw()).ok());
  ASSERT_TRUE(s.register_principal(user.principal_id(), user.public_key().raw()).ok());
  std::string model = owner.principal_id() + "/m";
  std::string o = owner.principal_id(), u = user.principal_id(), m = worker_a_;
  ASSERT_TRUE(s.put_model_key(o, model, key().span(), false).ok());
  ASSERT_TRUE(s.put_request_key(u, model, m, key().span()).ok());
  std::atomic<bool> stop{false};
  std::atomic<int> released{0};
  std::vector<std::thread> releasers;
  for (int t = 0; t < 4; ++t) {
    releasers.emplace_back([&] {
      while (!stop.load()) {
        if (s.release(model, u, m, "w").ok()) ++released;
      }
    });
  }
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(s.add_grant(o, model, u, m).ok());
    if (i % 20 == 0) {
      // Now and then wait for a release under this grant, so that releases happen however the
      // threads are scheduled; the revoke below still races the releases in flight.
      const int seen = released.load();
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
      while (released.load() == seen && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::yield();
      }
    } else {
      std::this_thread::yield();
    }
    ASSERT_TRUE(s.revoke_grant(o, model, u, m).ok());
  }
  stop = true;
  for (auto& t : releasers) t.join();
  bool granted = false;
  int releases = 0, out_of_order = 0;
  int64_t after = 0;
  while (true) {
    auto page = s.query_audit({o, model, after, 1000}).value_or_die();
    if (page.empty()) break;
    for (const auto& r : page) {
      if (r.event.type == "grant.add") granted = true;
      if (r.event.type == "grant.revoke") granted = false;
      if (r.event.type == "key.release") {
        ++releases;
        if (!granted) ++out_of_order;
      }
    }
    after = page.back().seq;
  }
  EXPECT_GT(releases, 0);
  EXPECT_EQ(out_of_order, 0) << "releases recorded after the revoke that preceded them";
}

// A refused release names the worker and says the requester was not authenticated; it is not
// filed under the user the worker named (who may never have sent anything).
TEST_F(KeyServiceHardeningTest, DeniedReleaseIsNotBlamedOnTheNamedUser) {
  start();
  auto owner = principal(), user = principal();
  setup_flow(owner, user);
  auto b = worker("worker-b");
  ASSERT_EQ(b.release(model_, user.principal_id())->status, 403);
  auto mine = user.audit("", 0, 100).value_or_die();
  for (const auto& e : mine["events"]) EXPECT_NE(e["type"], "key.release.denied") << e.dump();
  auto owners = owner.audit(model_, 0, 100).value_or_die();
  bool found = false;
  for (const auto& e : owners["events"]) {
    if (e["type"] != "key.release.denied") continue;
    found = true;
    EXPECT_EQ(e["user_id"], "");
    std::string detail = e["detail"];
    EXPECT_NE(detail.find("requester=unauthenticated"), std::string::npos) << detail;
    EXPECT_NE(detail.find("claimed_user=" + user.principal_id()), std::string::npos) << detail;
    EXPECT_NE(detail.find("worker="), std::string::npos) << detail;
    EXPECT_EQ(e["actor"], "worker:" + worker_b_);
  }
  EXPECT_TRUE(found);
}

// Every answer carries the state version, which only grows; the signed audit head verifies
// under the KeyService's state identity, and that identity survives a restart.
TEST_F(KeyServiceHardeningTest, StateVersionIsSentAndTheAuditHeadIsSigned) {
  start();
  auto owner = principal();
  auto c = raw_client();
  auto h1 = c.get("/healthz").value_or_die();
  auto r1 = owner.list_grants(owner.principal_id() + "/none");  // a refusal carries it too
  EXPECT_FALSE(r1.ok());
  auto head = owner.audit_head().value_or_die();
  auto pub = crypto::PublicKey::from_raw(base64_decode(head["keyservice_key"].get<std::string>(), 32).value_or_die()).value_or_die();
  std::string msg = crypto::audit_head_signing_message(head["seq"], head["hash"].get<std::string>(), head["state_version"]);
  EXPECT_TRUE(pub.verify(as_bytes(msg), base64_decode(head["signature"].get<std::string>(), 64).value_or_die()).ok());
  EXPECT_GT(head["state_version"].get<int64_t>(), 0);
  int64_t v1 = server_->state().state_version();
  server_.reset();
  start();
  EXPECT_EQ(server_->state().state_version(), v1);
  EXPECT_EQ(server_->state().identity().raw(), pub.raw());
}

// Fork consistency (docs/keyservice.md "Rollback and forks"): every answer carries the audit head
// with the version; GET /v1/audit/head?at=SEQ answers the chain value at SEQ (that event's hash)
// with the head, signed together by the state identity, for a principal (signed) or an attested
// worker (unsigned); a sequence not in the log is refused. A client that comes back after the log
// grew gets that proof and passes (a legitimate advance), pinning the state identity.
TEST_F(KeyServiceHardeningTest, AuditHeadAtProvesTheChainValueAndALegitimateAdvancePasses) {
  start();
  auto solo_config = config();
  solo_config.state_dir = dir_ / "solo";
  auto solo = client::KeyServiceClient::create(solo_config, crypto::Identity::generate().value_or_die())
                  .value_or_die();
  ASSERT_TRUE(solo.register_self().ok());
  const std::string url = solo_config.keyservice_url;
  auto before = client::seen_keyservice_state(dir_ / "solo", url).value_or_die();
  EXPECT_GE(before.audit_seq, 1);
  EXPECT_TRUE(before.keyservice_key.empty());  // no proof was needed yet

  auto owner = principal(), user = principal();
  setup_flow(owner, user);  // the log grows past what solo saw
  auto events = owner.audit("", 0, 100).value_or_die()["events"];
  ASSERT_GE(events.size(), 2u);
  const auto& first = events[0];
  auto proof = owner.call("GET", "/v1/audit/head?at=" + std::to_string(first["seq"].get<int64_t>()))
                   .value_or_die();
  EXPECT_EQ(proof["at"], first["seq"]);
  EXPECT_EQ(proof["at_hash"], first["hash"]);
  EXPECT_GE(proof["seq"].get<int64_t>(), events.back()["seq"].get<int64_t>());
  auto pub = crypto::PublicKey::from_raw(
                 base64_decode(proof["keyservice_key"].get<std::string>(), 32).value_or_die())
                 .value_or_die();
  std::string msg = crypto::audit_proof_signing_message(
      proof["seq"], proof["hash"].get<std::string>(), proof["state_version"], proof["at"],
      proof["at_hash"].get<std::string>());
  EXPECT_TRUE(pub.verify(as_bytes(msg), base64_decode(proof["signature"].get<std::string>(), 64).value_or_die()).ok());
  auto zero = owner.call("GET", "/v1/audit/head?at=0").value_or_die();
  EXPECT_EQ(zero["at_hash"], std::string(64, '0'));
  auto beyond = owner.call("GET", "/v1/audit/head?at=100000");
  ASSERT_FALSE(beyond.ok());
  EXPECT_EQ(beyond.status().message().rfind("audit-seq-unknown:", 0), 0u) << beyond.status().to_string();
  EXPECT_FALSE(owner.call("GET", "/v1/audit/head?at=-1").ok());
  EXPECT_FALSE(owner.call("GET", "/v1/audit/head?at=1x").ok());

  // A worker asks unsigned on its attested connection; a plain client cannot.
  auto w = worker("worker-a");
  auto res = w.client().get("/v1/audit/head?at=" + std::to_string(first["seq"].get<int64_t>())).value_or_die();
  ASSERT_EQ(res.status, 200) << res.body;
  EXPECT_EQ(body_of(res)["at_hash"], first["hash"]);
  auto state = crypto::parse_keyservice_state(res.headers.get(crypto::kHeaderStateVersion),
                                              res.headers.get(crypto::kHeaderAuditHead));
  ASSERT_TRUE(state.has_value());
  EXPECT_GE(state->audit_seq, first["seq"].get<int64_t>());
  EXPECT_EQ(raw_client().get("/v1/audit/head?at=1").value_or_die().status, 401);

  // The legitimate advance: solo's next call proves the remembered head and passes.
  ASSERT_TRUE(solo.audit("", 0, 10).ok());
  auto after = client::seen_keyservice_state(dir_ / "solo", url).value_or_die();
  EXPECT_GT(after.audit_seq, before.audit_seq);
  EXPECT_GT(after.version, before.version);
  EXPECT_EQ(after.keyservice_key, proof["keyservice_key"]);
}

// Every endpoint refuses every wrong principal, with the reason.
TEST_F(KeyServiceHardeningTest, AuthorizationMatrix) {
  start();
  auto owner = principal(), user = principal(), other = principal();
  setup_flow(owner, user);
  auto unregistered = crypto::Identity::generate().value_or_die();
  const std::string mp = "/v1/models/" + model_;
  const std::string grant = nlohmann::json({{"user_id", user.principal_id()}, {"measurement", worker_a_}}).dump();
  const std::string keybody = "{\"key\":\"" + base64_encode(key().span()) + "\"}";
  const std::string rk = nlohmann::json({{"model_id", model_}, {"measurement", worker_a_}}).dump();
  struct Endpoint {
    std::string method, target, body;
    bool owner_only;
  };
  const std::vector<Endpoint> endpoints = {
      {"POST", mp + "/keys", keybody, true},
      {"GET", mp + "/keys", "", true},
      {"POST", mp + "/keys/1/retire", "{}", true},
      {"DELETE", mp, "", true},
      {"POST", mp + "/grants", grant, true},
      {"GET", mp + "/grants", "", true},
      {"POST", mp + "/grants/revoke", grant, true},
      {"POST", "/v1/request-keys", nlohmann::json({{"model_id", model_}, {"measurement", worker_a_}, {"key", base64_encode(key().span())}}).dump(), false},
      {"POST", "/v1/request-keys/delete", rk, false},
      {"GET", "/v1/audit", "", false},
      {"GET", "/v1/audit/head", "", false},
  };
  auto c = raw_client();
  for (const auto& e : endpoints) {
    SCOPED_TRACE(e.method + " " + e.target);
    // Unsigned.
    auto res = c.request(net::Request::make(e.method, e.target, e.body, "application/json")).value_or_die();
    EXPECT_EQ(res.status, 401);
    EXPECT_EQ(reason_of(res), "signature-missing");
    // Signed by a principal that never registered.
    res = send_signed(unregistered, e.method, e.target, e.body);
    EXPECT_EQ(res.status, 401);
    EXPECT_EQ(reason_of(res), "unknown-principal");
    if (e.owner_only) {
      // Another owner, and the granted user instead of the owner.
      for (auto* who : {&other, &user}) {
        auto r = who->call(e.method, e.target, e.body);
        ASSERT_FALSE(r.ok());
        EXPECT_EQ(r.status().code(), ErrorCode::kPermissionDenied);
        EXPECT_NE(r.status().message().find("not-owner"), std::string::npos) << r.status().message();
      }
    }
  }
  // Request keys are per user: another user cannot delete this user's key.
  auto del = other.call("POST", "/v1/request-keys/delete", rk);
  EXPECT_EQ(del.status().code(), ErrorCode::kNotFound);
  // Audit: another principal sees none of the owner's model events.
  auto seen = other.audit(model_, 0, 100).value_or_die();
  EXPECT_TRUE(seen["events"].empty());
  // Release: no worker certificate (unsigned, or signed by the owner or the user), and a worker
  // whose measurement has no grant.
  const std::string rel = nlohmann::json({{"model_id", model_}, {"user_id", user.principal_id()}}).dump();
  auto res = c.request(net::Request::make("POST", "/v1/release", rel, "application/json")).value_or_die();
  EXPECT_EQ(res.status, 401);
  EXPECT_EQ(reason_of(res), "worker-attestation-required");
  for (auto* who : {&owner, &user}) {
    auto r = who->call("POST", "/v1/release", rel);
    EXPECT_EQ(r.status().code(), ErrorCode::kUnauthenticated);
    EXPECT_NE(r.status().message().find("worker-attestation-required"), std::string::npos);
  }
  auto b = worker("worker-b");
  res = b.release(model_, user.principal_id()).value_or_die();
  EXPECT_EQ(res.status, 403);
  EXPECT_EQ(reason_of(res), "no-grant");
  // And the granted worker still gets the keys (the matrix refused only the wrong ones).
  EXPECT_EQ(worker("worker-a").release(model_, user.principal_id())->status, 200);
}

}  // namespace
}  // namespace moss::keyservice
