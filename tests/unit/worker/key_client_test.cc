// Tests for the worker's KeyClient against a stand-in KeyService on loopback (mutually attested
// TLS, simulated TEE): it attests each connection before its first release, and it refuses an
// answer whose state version is older than one it saw.
#include "worker/key_client.h"

#include "attest/connection_attestation.h"
#include "attest/simulated.h"
#include "common/encoding.h"
#include "crypto/identity.h"
#include "crypto/keyservice_state.h"
#include "crypto/signed_request.h"
#include "net/error_response.h"
#include "net/router.h"
#include "net/server.h"
#include "support/temp_dir.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>

namespace moss::worker {
namespace {

// A stand-in KeyService: verifies connection evidence like the real one, releases fixed keys only
// on an attested connection, and answers with the state version the test sets.
class KeyClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    sim_key_ = dir_.path() / "sim.key";
    ASSERT_TRUE(attest::SimPlatformKey::load_or_create(sim_key_).ok());
    server_ = start_replica(0);
    replica2_ = start_replica(1);
  }

  // Replica `index` (0 or 1): the same stand-in, with its own audit chain (chains_[index]) and a switch
  // that makes its fork proof answer 503 (as a replica cut off from its store does).
  net::ServerPtr start_replica(int index) {
    auto verifier = attest::ConnectionEvidenceVerifier::create(peer("moss-worker-test", kWorkerPurpose))
                        .value_or_die();
    net::Router router;
    router.post(kAttestConnectionPath, [this, verifier](const net::Request& r) {
      auto v = verifier.accept(r);
      if (!v.ok()) return net::error_response(v.status());
      attestations_.fetch_add(1);
      return net::Response::json(200, R"({"attested":true})");
    });
    router.post("/v1/release", [this, r = index](const net::Request& req) {
      net::Response res;
      releases_[r].fetch_add(1);
      if (!attest::connection_attestation(req.connection)) {
        res = net::error_response(unauthenticated("connection-not-attested: no fresh evidence"));
      } else {
        auto body = nlohmann::json::parse(req.body);
        const std::string key = base64_encode(std::vector<uint8_t>(32, 7));
        nlohmann::json j = {{"model_id", body["model_id"]},
                            {"user_id", body["user_id"]},
                            {"measurement", "m"},
                            {"model_keys", {{{"version", 1}, {"key", key}}}},
                            {"request_key", {{"version", 1}, {"key", key}}}};
        res = net::Response::json(200, j.dump());
      }
      res.headers.set(crypto::kHeaderStateVersion, std::to_string(version_.load()));
      std::lock_guard lock(chain_mu_);
      res.headers.set(crypto::kHeaderAuditHead, crypto::audit_head_header(head_seq(r), chains_[r].back()));
      return res;
    });
    // The fork proof: the chain value at ?at=, with the head, signed by the state identity.
    router.get(crypto::kAuditHeadPath, [this, r = index](const net::Request& req) {
      std::lock_guard lock(chain_mu_);
      proofs_.fetch_add(1);
      replica_proofs_[r].fetch_add(1);
      if (proof_down_[r].load()) return net::error_response(unavailable("store-unavailable: cut off"));
      int64_t at = std::stoll(std::string(req.query_param("at").value_or("-1")));
      if (at < 0 || at > head_seq(r)) return net::error_response(invalid_argument("audit-seq-unknown: no"));
      std::string head_hex = hex_encode(chains_[r].back()), at_hex = hex_encode(chains_[r][at]);
      std::string msg = crypto::audit_proof_signing_message(head_seq(r), head_hex, version_.load(), at, at_hex);
      nlohmann::json j = {{"seq", head_seq(r)}, {"hash", head_hex}, {"state_version", version_.load()},
                          {"at", at}, {"at_hash", at_hex},
                          {"keyservice_key", base64_encode(state_identity_.public_key().raw())},
                          {"signature", base64_encode(state_identity_.sign(as_bytes(msg)).value_or_die())}};
      return net::Response::json(200, j.dump());
    });
    net::ServerOptions so;
    so.tls = attest::attested_server_config(
        credentials("moss-keyservice-test", kKeyServicePurpose),
        attest::make_attested_peer_verifier(peer("moss-worker-test", kWorkerPurpose)).value_or_die());
    return net::Server::start(std::move(so), std::move(router)).value_or_die();
  }

  attest::EvidenceProducerPtr producer(const std::string& identity) {
    attest::ProducerConfig pc;
    pc.kind = "sim";
    pc.sim_key_file = sim_key_;
    pc.sim_identity = identity;
    return attest::make_producer(pc).value_or_die();
  }
  net::TlsCredentials credentials(const std::string& identity, const std::string& purpose) {
    attest::AttestedCredentialOptions o;
    o.purpose = purpose;
    return attest::make_attested_credentials(*producer(identity), o).value_or_die();
  }
  attest::AttestedPeerConfig peer(const std::string& identity, const std::string& purpose) {
    auto m = attest::simulated_measurement("/proc/self/exe", identity).value_or_die();
    attest::AttestedPeerConfig c;
    c.purpose = purpose;
    c.policy = attest::Policy::parse(
                   nlohmann::json{{"version", 1}, {"allow_simulated", true},
                                  {"measurements", {{{"tee", "simulated"}, {"measurement", hex_encode(m)}}}}}
                       .dump())
                   .value_or_die();
    c.verify.allow_simulated = true;
    c.verify.sim_platform_key = attest::SimPlatformKey::load_public_key(sim_key_).value_or_die();
    return c;
  }
  std::unique_ptr<KeyClient> key_client(bool both_replicas = false, int attempts = 1) {
    KeyClientOptions o;
    o.url = "https://127.0.0.1:" + std::to_string(server_->port());
    if (both_replicas) o.url += ",https://127.0.0.1:" + std::to_string(replica2_->port());
    o.backoff = std::chrono::milliseconds(10);
    o.server = peer("moss-keyservice-test", kKeyServicePurpose);
    o.producer = attest::make_shared_producer(producer("moss-worker-test"));
    o.attempts = attempts;
    return KeyClient::create(std::move(o), credentials("moss-worker-test", kWorkerPurpose)).value_or_die();
  }

  int64_t head_seq(int r) const { return static_cast<int64_t>(chains_[r].size()) - 1; }
  // The stand-in's audit chain (on both replicas, or only on replica `only`): chains_[r][seq] is
  // the chain value after event seq (chains_[r][0]: start).
  void set_chain(int events, uint8_t salt, int only = -1) {
    std::lock_guard lock(chain_mu_);
    for (int r = 0; r < 2; ++r) {
      if (only >= 0 && r != only) continue;
      auto& chain = chains_[r];
      chain.assign(1, std::array<uint8_t, 32>{});
      for (int i = 1; i <= events; ++i) {
        std::array<uint8_t, 32> h{};
        h.fill(static_cast<uint8_t>(i));
        h[0] = salt;
        chain.push_back(h);
      }
    }
  }

  test_support::TempDir dir_;
  crypto::Identity state_identity_ = crypto::Identity::generate().value_or_die();
  std::mutex chain_mu_;
  std::vector<std::array<uint8_t, 32>> chains_[2] = {
      {std::array<uint8_t, 32>{}, std::array<uint8_t, 32>{1}},
      {std::array<uint8_t, 32>{}, std::array<uint8_t, 32>{1}}};
  std::atomic<int> proofs_{0};
  std::atomic<int> replica_proofs_[2] = {0, 0};
  std::atomic<int> releases_[2] = {0, 0};
  std::atomic<bool> proof_down_[2] = {false, false};
  std::filesystem::path sim_key_;
  net::ServerPtr server_;    // replica 0 (the one clients try first)
  net::ServerPtr replica2_;  // replica 1
  std::atomic<int> attestations_{0};
  std::atomic<int64_t> version_{5};
};

// Issue 20 item 4: the key client proves fresh attestation on its connection by itself (once per
// connection; keep-alive reuses it) before any release.
TEST_F(KeyClientTest, AttestsEachConnectionBeforeReleasing) {
  auto kc = key_client();
  for (int i = 0; i < 3; ++i) {
    auto keys = kc->release("o/m", "u");
    ASSERT_TRUE(keys.ok()) << keys.status().to_string();
  }
  EXPECT_EQ(kc->connections_opened(), 1u);
  EXPECT_EQ(attestations_.load(), 1);
}

// Finding 2: an answer with a state version older than one seen before means the KeyService's
// state was rolled back; the key client refuses it ("keyservice-rollback") and keeps the highest.
TEST_F(KeyClientTest, RefusesAnAnswerWithAnOlderStateVersion) {
  auto kc = key_client();
  version_ = 7;
  ASSERT_TRUE(kc->release("o/m", "u").ok());
  version_ = 6;
  auto rolled_back = kc->release("o/m", "u");
  ASSERT_FALSE(rolled_back.ok());
  EXPECT_EQ(rolled_back.status().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(rolled_back.status().message().find("keyservice-rollback"), std::string::npos)
      << rolled_back.status().message();
  version_ = 7;
  EXPECT_TRUE(kc->release("o/m", "u").ok());
  version_ = 8;
  EXPECT_TRUE(kc->release("o/m", "u").ok());
  version_ = 7;
  EXPECT_FALSE(kc->release("o/m", "u").ok());
}

// Fork consistency: an answer with the remembered audit head is fresh without another request; a
// log that grew is proven once (GET /v1/audit/head?at=<remembered seq>) and then remembered.
TEST_F(KeyClientTest, LegitimateAuditAdvanceIsProvenOnce) {
  auto kc = key_client();
  set_chain(3, 0);
  ASSERT_TRUE(kc->release("o/m", "u").ok());
  version_ = 9;  // a state change without an audit event (a nonce): no proof needed
  ASSERT_TRUE(kc->release("o/m", "u").ok());
  EXPECT_EQ(proofs_.load(), 0);
  set_chain(5, 0);  // the same chain, two events longer
  version_ = 11;
  auto keys = kc->release("o/m", "u");
  ASSERT_TRUE(keys.ok()) << keys.status().to_string();
  EXPECT_EQ(proofs_.load(), 1);
  ASSERT_TRUE(kc->release("o/m", "u").ok());
  EXPECT_EQ(proofs_.load(), 1);
  EXPECT_EQ(kc->connections_opened(), 1u);
}

// A state put back and written to: its head at the remembered sequence differs (no proof needed),
// or its longer log cannot prove the remembered chain value. Both "keyservice-forked"; no keys.
TEST_F(KeyClientTest, ForkedAuditLogIsRefused) {
  for (int fork_events : {3, 6}) {
    SCOPED_TRACE(fork_events);
    auto kc = key_client();
    version_ = 5;
    set_chain(3, 0);
    ASSERT_TRUE(kc->release("o/m", "u").ok());
    version_ = 20;  // past the remembered version
    set_chain(fork_events, 1);
    auto keys = kc->release("o/m", "u");
    ASSERT_FALSE(keys.ok());
    EXPECT_EQ(keys.status().code(), ErrorCode::kFailedPrecondition);
    EXPECT_EQ(keys.status().message().rfind("keyservice-forked:", 0), 0u) << keys.status().to_string();
  }
}

// HA: the replica that answered cannot answer the fork check now (killed, or cut off from its
// store: 503). The check is asked of the next replica, which proves both that its chain holds
// what was seen and that it holds the answer's head; the release succeeds through it.
TEST_F(KeyClientTest, ForkCheckFailsOverToTheNextReplica) {
  auto kc = key_client(/*both_replicas=*/true);
  set_chain(3, 0);
  ASSERT_TRUE(kc->release("o/m", "u").ok());
  EXPECT_EQ(releases_[0].load(), 1);
  set_chain(5, 0);
  version_ = 11;
  proof_down_[0] = true;
  auto keys = kc->release("o/m", "u");
  ASSERT_TRUE(keys.ok()) << keys.status().to_string();
  EXPECT_EQ(releases_[0].load(), 2);
  EXPECT_EQ(releases_[1].load(), 0);
  EXPECT_EQ(replica_proofs_[0].load(), 1);
  EXPECT_EQ(replica_proofs_[1].load(), 2);  // at the seen head, then at the answer's head
  // The proven head is remembered: the next answer with it needs no proof.
  ASSERT_TRUE(kc->release("o/m", "u").ok());
  EXPECT_EQ(proofs_.load(), 3);
}

// Every replica fails the fork check: the release fails (unavailable, naming the fork check), with
// every attempt's keys held back; nothing is released.
TEST_F(KeyClientTest, ForkCheckUnansweredByEveryReplicaReleasesNothing) {
  auto kc = key_client(/*both_replicas=*/true, /*attempts=*/2);
  set_chain(3, 0);
  ASSERT_TRUE(kc->release("o/m", "u").ok());
  set_chain(5, 0);
  version_ = 11;
  proof_down_[0] = true;
  proof_down_[1] = true;
  auto keys = kc->release("o/m", "u");
  ASSERT_FALSE(keys.ok());
  EXPECT_EQ(keys.status().code(), ErrorCode::kUnavailable) << keys.status().to_string();
  EXPECT_NE(keys.status().message().find("fork check"), std::string::npos) << keys.status().to_string();
  EXPECT_EQ(replica_proofs_[0].load() + replica_proofs_[1].load(), 4);  // both replicas, both attempts
  // Once a replica can prove again, the release goes through.
  proof_down_[1] = false;
  EXPECT_TRUE(kc->release("o/m", "u").ok());
}

// The next replica's proof does not vouch for an answer from a forked instance: the answering
// replica (a copy put back and written to) shows a head the next replica's chain does not hold,
// so the check fails closed ("keyservice-forked") although the remembered head is proven.
TEST_F(KeyClientTest, AForkedAnswerIsNotVouchedForByAnotherReplica) {
  auto kc = key_client(/*both_replicas=*/true);
  set_chain(3, 0);
  ASSERT_TRUE(kc->release("o/m", "u").ok());
  set_chain(5, 0, /*only=*/1);  // the real chain, grown
  set_chain(5, 0, /*only=*/0);
  {
    std::lock_guard lock(chain_mu_);
    chains_[0][4][1] = 0xee;  // replica 0 forked after the seen head (event 4 differs)
    chains_[0][5][1] = 0xee;
  }
  version_ = 11;
  proof_down_[0] = true;
  auto keys = kc->release("o/m", "u");
  ASSERT_FALSE(keys.ok());
  EXPECT_EQ(keys.status().code(), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(keys.status().message().rfind("keyservice-forked:", 0), 0u) << keys.status().to_string();
}

}  // namespace
}  // namespace moss::worker
