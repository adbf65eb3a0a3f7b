// Tests for the worker's KeyClient against a stand-in KeyService on loopback (mutually attested
// TLS, simulated TEE): it attests each connection before its first release, and it refuses an
// answer whose state version is older than one it saw.
#include "worker/key_client.h"

#include "attest/connection_attestation.h"
#include "attest/simulated.h"
#include "common/encoding.h"
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
    auto verifier = attest::ConnectionEvidenceVerifier::create(peer("moss-worker-test", kWorkerPurpose))
                        .value_or_die();
    net::Router router;
    router.post(kAttestConnectionPath, [this, verifier](const net::Request& r) {
      auto v = verifier.accept(r);
      if (!v.ok()) return net::error_response(v.status());
      attestations_.fetch_add(1);
      return net::Response::json(200, R"({"attested":true})");
    });
    router.post("/v1/release", [this](const net::Request& r) {
      net::Response res;
      if (!attest::connection_attestation(r.connection)) {
        res = net::error_response(unauthenticated("connection-not-attested: no fresh evidence"));
      } else {
        auto body = nlohmann::json::parse(r.body);
        const std::string key = base64_encode(std::vector<uint8_t>(32, 7));
        nlohmann::json j = {{"model_id", body["model_id"]},
                            {"user_id", body["user_id"]},
                            {"measurement", "m"},
                            {"model_keys", {{{"version", 1}, {"key", key}}}},
                            {"request_key", {{"version", 1}, {"key", key}}}};
        res = net::Response::json(200, j.dump());
      }
      res.headers.set(crypto::kHeaderStateVersion, std::to_string(version_.load()));
      return res;
    });
    net::ServerOptions so;
    so.tls = attest::attested_server_config(
        credentials("moss-keyservice-test", kKeyServicePurpose),
        attest::make_attested_peer_verifier(peer("moss-worker-test", kWorkerPurpose)).value_or_die());
    server_ = net::Server::start(std::move(so), std::move(router)).value_or_die();
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
  std::unique_ptr<KeyClient> key_client() {
    KeyClientOptions o;
    o.url = "https://127.0.0.1:" + std::to_string(server_->port());
    o.server = peer("moss-keyservice-test", kKeyServicePurpose);
    o.producer = attest::make_shared_producer(producer("moss-worker-test"));
    o.attempts = 1;
    return KeyClient::create(std::move(o), credentials("moss-worker-test", kWorkerPurpose)).value_or_die();
  }

  test_support::TempDir dir_;
  std::filesystem::path sim_key_;
  net::ServerPtr server_;
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

}  // namespace
}  // namespace moss::worker
