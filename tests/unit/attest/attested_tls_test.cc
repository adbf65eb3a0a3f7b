#include "attest/attested_tls.h"
#include "common/encoding.h"
#include "attest/connection_attestation.h"
#include "net/client.h"
#include "net/error_response.h"
#include "net/router.h"
#include "net/server.h"
#include "temp_dir.h"

#include <gtest/gtest.h>

#include <thread>

namespace moss::attest {
namespace {

using testing::TempDir;

// A simulated platform in a temp dir, producers for named identities, and policies over them.
class AttestedTlsTest : public ::testing::Test {
 protected:
  EvidenceProducerPtr producer(const std::string& identity) {
    ProducerConfig cfg;
    cfg.kind = "sim";
    cfg.sim_key_file = dir_.path() / "sim.key";
    cfg.sim_identity = identity;
    return make_producer(cfg).value_or_die();
  }
  std::string measurement(const std::string& identity) {
    return hex_encode(simulated_measurement("/proc/self/exe", identity).value_or_die());
  }
  AttestedPeerConfig peer_config(const std::string& allowed_identity, const std::string& purpose) {
    AttestedPeerConfig c;
    c.purpose = purpose;
    c.policy = Policy::parse(R"({"version":1,"allow_simulated":true,"measurements":[{"tee":"simulated","measurement":")" +
                             measurement(allowed_identity) + R"("}]})").value_or_die();
    c.verify.allow_simulated = true;
    c.verify.sim_platform_key = SimPlatformKey::load_or_create(dir_.path() / "sim.key").value_or_die().public_key();
    return c;
  }
  net::TlsCredentials credentials(const std::string& identity, const std::string& purpose) {
    AttestedCredentialOptions o;
    o.purpose = purpose;
    return make_attested_credentials(*producer(identity), o).value_or_die();
  }
  // A server answering with the verified client measurement (or "none").
  net::ServerPtr serve(net::TlsServerConfig tls) {
    net::ServerOptions o;
    o.tls = std::move(tls);
    o.worker_threads = 1;
    return net::Server::start(std::move(o), [](const net::Request& r) {
             auto id = std::dynamic_pointer_cast<const AttestedPeerIdentity>(r.peer);
             return net::Response::text(200, id ? id->claims.measurement : "none");
           }).value_or_die();
  }
  Result<net::Response> get(uint16_t port, net::TlsClientConfig tls, std::shared_ptr<const net::PeerIdentity>* peer = nullptr) {
    net::ClientOptions o;
    o.port = port;
    o.connect_timeout = std::chrono::milliseconds(3000);
    o.tls = net::ClientTlsContext::create(std::move(tls)).value_or_die();
    net::Client client(o);
    auto r = client.get("/");
    if (peer) *peer = client.peer();
    return r;
  }
  // A KeyService-like server accepting attested "worker" clients: POST /attest verifies connection
  // evidence with `verifier` and marks the connection; GET / answers with `on_get`.
  net::ServerPtr serve_connection_attestation(const ConnectionEvidenceVerifier& verifier, net::Handler on_get) {
    net::Router router;
    router.post("/attest", [&verifier](const net::Request& r) {
      auto v = verifier.accept(r);
      return v.ok() ? net::Response::text(200, "ok") : net::error_response(v.status());
    });
    router.get("/", std::move(on_get));
    net::ServerOptions so;
    so.tls = attested_server_config(credentials("keyservice", "keyservice"),
                                    make_attested_peer_verifier(peer_config("worker", "worker")).value_or_die());
    so.worker_threads = 1;
    return net::Server::start(std::move(so), std::move(router)).value_or_die();
  }
  TempDir dir_;
};

// One-way: the client verifies the server's evidence and reads its claims from the connection.
TEST_F(AttestedTlsTest, OneWayHandshakeSucceedsWhenPolicyMatches) {
  auto server = serve(attested_server_config(credentials("keyservice", "keyservice")));
  auto verifier = make_attested_peer_verifier(peer_config("keyservice", "keyservice")).value_or_die();
  std::shared_ptr<const net::PeerIdentity> peer;
  auto r = get(server->port(), attested_client_config(verifier), &peer);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->body, "none");
  auto id = std::dynamic_pointer_cast<const AttestedPeerIdentity>(peer);
  ASSERT_NE(id, nullptr);
  EXPECT_TRUE(id->claims.simulated());
  EXPECT_EQ(id->claims.measurement, measurement("keyservice"));
}

// The handshake fails when the server's measurement is not in the client's policy.
TEST_F(AttestedTlsTest, HandshakeFailsWhenMeasurementNotAllowed) {
  auto server = serve(attested_server_config(credentials("impostor", "keyservice")));
  auto verifier = make_attested_peer_verifier(peer_config("keyservice", "keyservice")).value_or_die();
  auto r = get(server->port(), attested_client_config(verifier));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("measurement"), std::string::npos) << r.status().message();
}

// Evidence made for another key (copied into a certificate for a fresh key) is refused.
TEST_F(AttestedTlsTest, HandshakeFailsWhenEvidenceBoundToAnotherKey) {
  auto genuine = credentials("keyservice", "keyservice");
  auto der = net::certificate_pem_to_der(genuine.cert_pem).value_or_die();
  auto ext = net::certificate_extension(der, kAttestedTlsEvidenceOid).value_or_die();
  ASSERT_TRUE(ext.has_value());
  net::CertificateOptions opt;
  opt.extensions.push_back(*ext);
  auto stolen = net::generate_self_signed(opt).value_or_die();
  auto server = serve(attested_server_config(std::move(stolen)));
  auto verifier = make_attested_peer_verifier(peer_config("keyservice", "keyservice")).value_or_die();
  auto r = get(server->port(), attested_client_config(verifier));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("report-data"), std::string::npos) << r.status().message();
}

// Issue 20 item 4: genuine evidence in a certificate that expired in 2020 or is valid only from
// 2099 is refused, by verify_attested_certificate itself and in the handshake.
TEST_F(AttestedTlsTest, ExpiredOrNotYetValidAttestedCertificateIsRefused) {
  for (std::time_t from : {std::time_t{1577836800}, std::time_t{4070908800}}) {
    AttestedCredentialOptions o;
    o.purpose = "keyservice";
    o.certificate.not_before = from;
    o.certificate.lifetime = std::chrono::hours(24);
    auto creds = make_attested_credentials(*producer("keyservice"), o).value_or_die();
    auto der = net::certificate_pem_to_der(creds.cert_pem).value_or_die();
    auto verifier = EvidenceVerifier::create().value_or_die();
    auto direct = verify_attested_certificate(der, verifier, peer_config("keyservice", "keyservice"));
    ASSERT_FALSE(direct.ok());
    EXPECT_EQ(direct.status().code(), ErrorCode::kUnauthenticated);
    EXPECT_NE(direct.status().message().find(from < std::time(nullptr) ? "expired" : "not yet valid"),
              std::string::npos) << direct.status().message();
    // The same certificate is fine at a time inside its window (the check uses verify.at).
    auto inside = peer_config("keyservice", "keyservice");
    inside.verify.at = from + 3600;
    EXPECT_TRUE(verify_attested_certificate(der, verifier, inside).ok());
    auto server = serve(attested_server_config(std::move(creds)));
    auto hook = make_attested_peer_verifier(peer_config("keyservice", "keyservice")).value_or_die();
    EXPECT_FALSE(get(server->port(), attested_client_config(hook)).ok());
  }
}

// Short-lived attested certificates renew in place: with a 2 s lifetime the credentials are remade
// (fresh key, fresh evidence) every second while the server keeps running, new clients see the
// new key, and the certificate's validity ends within its lifetime.
TEST_F(AttestedTlsTest, AttestedCredentialsRenewBeforeExpiry) {
  AttestedCredentialOptions o;
  o.purpose = "keyservice";
  o.certificate.lifetime = std::chrono::seconds(2);
  auto live = make_renewing_attested_credentials(std::shared_ptr<EvidenceProducer>(producer("keyservice")), o).value_or_die();
  auto validity = net::certificate_validity(live->certificate_der()).value_or_die();
  EXPECT_LE(validity.not_after - std::time(nullptr), 2);
  EXPECT_LE(kAttestedCertificateLifetime, std::chrono::hours(24));  // short-lived by default
  auto server = serve(attested_server_config(live));
  auto verifier = make_attested_peer_verifier(peer_config("keyservice", "keyservice")).value_or_die();
  auto spki_of_server = [&] {
    std::shared_ptr<const net::PeerIdentity> peer;
    auto r = get(server->port(), attested_client_config(verifier), &peer);
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    auto id = std::dynamic_pointer_cast<const AttestedPeerIdentity>(peer);
    return id ? id->spki_sha256 : std::array<uint8_t, 32>{};
  };
  auto before = spki_of_server();
  for (int i = 0; i < 60 && live->generation() < 2; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_GE(live->generation(), 2u);
  EXPECT_NE(spki_of_server(), before);
}

// Evidence bound to another purpose (a worker certificate presented as a KeyService) is refused.
TEST_F(AttestedTlsTest, HandshakeFailsForAnotherPurpose) {
  auto server = serve(attested_server_config(credentials("keyservice", "worker")));
  auto verifier = make_attested_peer_verifier(peer_config("keyservice", "keyservice")).value_or_die();
  EXPECT_FALSE(get(server->port(), attested_client_config(verifier)).ok());
}

// Mutual: both sides present attested certificates; the server handler reads the client's claims.
TEST_F(AttestedTlsTest, MutualHandshakeSucceedsAndServerSeesClientClaims) {
  auto client_check = make_attested_peer_verifier(peer_config("worker", "worker")).value_or_die();
  auto server = serve(attested_server_config(credentials("keyservice", "keyservice"), client_check));
  auto server_check = make_attested_peer_verifier(peer_config("keyservice", "keyservice")).value_or_die();
  auto r = get(server->port(), attested_client_config(server_check, credentials("worker", "worker")));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->body, measurement("worker"));
}

// Mutual: a client whose measurement the server does not allow, or with no evidence, is refused.
TEST_F(AttestedTlsTest, MutualHandshakeFailsForUnattestedOrUnknownClient) {
  auto client_check = make_attested_peer_verifier(peer_config("worker", "worker")).value_or_die();
  auto server = serve(attested_server_config(credentials("keyservice", "keyservice"), client_check));
  auto server_check = make_attested_peer_verifier(peer_config("keyservice", "keyservice")).value_or_die();
  EXPECT_FALSE(get(server->port(), attested_client_config(server_check, credentials("intruder", "worker"))).ok());
  EXPECT_FALSE(get(server->port(), attested_client_config(server_check, net::generate_self_signed().value_or_die())).ok());
  EXPECT_FALSE(get(server->port(), attested_client_config(server_check)).ok());
}

// Simulated server evidence is refused by a client that does not allow simulation.
TEST_F(AttestedTlsTest, SimulatedServerRefusedUnlessAllowed) {
  auto server = serve(attested_server_config(credentials("keyservice", "keyservice")));
  auto cfg = peer_config("keyservice", "keyservice");
  cfg.verify.allow_simulated = false;
  auto verifier = make_attested_peer_verifier(std::move(cfg)).value_or_die();
  auto r = get(server->port(), attested_client_config(verifier));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("simulated"), std::string::npos) << r.status().message();
}

// Keeps a copy of the last evidence it produced (to replay it elsewhere).
class RecordingProducer : public EvidenceProducer {
 public:
  explicit RecordingProducer(EvidenceProducerPtr inner) : inner_(std::move(inner)) {}
  std::string_view name() const override { return inner_->name(); }
  Result<Evidence> produce(std::span<const uint8_t, 64> report_data) override {
    auto e = inner_->produce(report_data);
    if (e.ok()) last = e->bytes;
    return e;
  }
  std::vector<uint8_t> last;

 private:
  EvidenceProducerPtr inner_;
};

// Issue 20 item 4, per-connection freshness: connection evidence binds the TLS exporter, which
// both ends compute alike and which differs for every connection; the server marks only that
// connection fresh, and the same evidence replayed on another connection (or the certificate's
// own evidence) is refused with "report-data" and leaves that connection unmarked.
TEST_F(AttestedTlsTest, ConnectionEvidenceIsFreshPerConnectionAndNotReplayable) {
  auto verifier = ConnectionEvidenceVerifier::create(peer_config("worker", "worker")).value_or_die();
  auto server = serve_connection_attestation(verifier, [](const net::Request& r) {
    std::string state = connection_attestation(r.connection) ? "fresh:" : "stale:";
    return net::Response::text(200, state + hex_encode(r.connection->tls_exporter()));
  });

  auto recorder = std::make_shared<RecordingProducer>(producer("worker"));
  AttestedCredentialOptions co;
  co.purpose = "worker";
  auto creds = make_attested_credentials(*recorder, co).value_or_die();
  const std::vector<uint8_t> cert_evidence = recorder->last;
  auto server_check = make_attested_peer_verifier(peer_config("keyservice", "keyservice")).value_or_die();
  net::ClientOptions o;
  o.port = server->port();
  o.tls = net::ClientTlsContext::create(attested_client_config(server_check, std::move(creds))).value_or_die();
  std::vector<uint8_t> exporter;
  int evidence_sent = 0;
  o.on_connect = [&, hook = make_connection_attestation_hook(recorder, "worker", "/attest")](
                     const net::NewConnection& c) {
    exporter.assign(c.tls_exporter.begin(), c.tls_exporter.end());
    ++evidence_sent;
    return hook(c);
  };

  net::Client a(o);
  auto r = a.get("/");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(exporter.size(), net::kConnectionExporterBytes);
  EXPECT_EQ(r->body, "fresh:" + hex_encode(exporter));  // both ends name the connection alike
  EXPECT_EQ(a.get("/")->body, r->body);                    // keep-alive: still fresh, no new evidence
  EXPECT_EQ(evidence_sent, 1);
  const std::vector<uint8_t> first_exporter = exporter, first_evidence = recorder->last;

  net::Client a2(o);
  auto r2 = a2.get("/");
  ASSERT_TRUE(r2.ok()) << r2.status().to_string();
  EXPECT_EQ(r2->body, "fresh:" + hex_encode(exporter));
  EXPECT_NE(exporter, first_exporter);

  for (const std::vector<uint8_t>* replay : {&first_evidence, &cert_evidence}) {
    net::ClientOptions ro = o;
    Status answer;
    ro.on_connect = [&](const net::NewConnection& c) -> Status {
      auto res = c.send(net::Request::make("POST", "/attest", std::string(replay->begin(), replay->end()),
                                           "application/octet-stream"));
      if (!res.ok()) return res.status();
      answer = net::status_from_response(*res);
      return Status::Ok();
    };
    net::Client b(ro);
    auto rb = b.get("/");
    ASSERT_TRUE(rb.ok()) << rb.status().to_string();
    EXPECT_EQ(rb->body.substr(0, 6), "stale:");
    EXPECT_EQ(answer.code(), ErrorCode::kUnauthenticated);
    EXPECT_NE(answer.message().find("connection-evidence-invalid"), std::string::npos) << answer.message();
    EXPECT_NE(answer.message().find("report-data"), std::string::npos) << answer.message();
  }
  // No evidence at all: the connection is never fresh.
  net::ClientOptions none = o;
  none.on_connect = nullptr;
  net::Client c(none);
  EXPECT_EQ(c.get("/")->body.substr(0, 6), "stale:");
}

// A refused connection attestation fails the client's request with the server's reason.
TEST_F(AttestedTlsTest, RefusedConnectionAttestationFailsTheRequest) {
  // The server judges connections against another identity than the one the client runs as.
  auto verifier = ConnectionEvidenceVerifier::create(peer_config("other", "worker")).value_or_die();
  auto server = serve_connection_attestation(
      verifier, [](const net::Request&) { return net::Response::text(200, "served"); });
  auto server_check = make_attested_peer_verifier(peer_config("keyservice", "keyservice")).value_or_die();
  net::ClientOptions o;
  o.port = server->port();
  o.tls = net::ClientTlsContext::create(attested_client_config(server_check, credentials("worker", "worker")))
              .value_or_die();
  o.on_connect = make_connection_attestation_hook(make_shared_producer(producer("worker")), "worker", "/attest");
  net::Client client(o);
  auto r = client.get("/");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kUnauthenticated);
  EXPECT_NE(r.status().message().find("connection attestation refused"), std::string::npos) << r.status().message();
  EXPECT_FALSE(client.connected());
}

}  // namespace
}  // namespace moss::attest
