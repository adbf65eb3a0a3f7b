// HTTPS on loopback: TLS 1.3 only, CA and host-name verification, the peer-verification hook on
// both sides, and mutual TLS.
#include <gtest/gtest.h>

#include <thread>
#include <openssl/ssl.h>

#include "net/client.h"
#include "net/server.h"
#include "net/tls_credentials.h"
#include "net_test_support.h"

namespace moss::net {
namespace {

using namespace std::chrono_literals;

// What a test hook concludes: the certificate's common name, as attest would put claims here.
struct TestIdentity : PeerIdentity {
  std::string common_name;
};

PeerVerifier accept_and_name() {
  return [](const PeerCertificate& cert) -> Result<std::shared_ptr<const PeerIdentity>> {
    MOSS_ASSIGN_OR_RETURN(std::string cn, certificate_common_name(cert.leaf_der));
    auto id = std::make_shared<TestIdentity>();
    id->name = cn;
    id->common_name = cn;
    return std::shared_ptr<const PeerIdentity>(std::move(id));
  };
}

PeerVerifier reject_all(std::string why) {
  return [why](const PeerCertificate&) -> Result<std::shared_ptr<const PeerIdentity>> {
    return unauthenticated("{}", why);
  };
}

Response whoami(const Request& req) {
  auto id = std::dynamic_pointer_cast<const TestIdentity>(req.peer);
  return Response::text(200, id ? "peer=" + id->common_name : "peer=none");
}

struct TlsFixture : ::testing::Test {
  TlsCredentials server_creds = testing::make_credentials("moss-server");
  TlsCredentials client_creds = testing::make_credentials("moss-client");

  ServerPtr start(TlsServerConfig tls, Handler h = whoami) {
    ServerOptions opt;
    opt.tls = std::move(tls);
    opt.handshake_timeout = 2s;
    return Server::start(std::move(opt), std::move(h)).value_or_die();
  }
  TlsClientConfig client_config_with_cert(PeerVerifier server_hook) {
    TlsClientConfig c;
    c.verify_peer = std::move(server_hook);
    c.cert_chain_pem = client_creds.cert_pem;
    c.key_pem = client_creds.key_pem.clone();
    return c;
  }
};

TEST_F(TlsFixture, AnswersGetAndPostOverTls13WithCaVerification) {
  // A client trusting the server's certificate completes requests over HTTPS.
  auto server = start(testing::server_tls(server_creds));
  Client client(testing::client_options(server->port(), testing::client_trusting(server_creds)));
  auto get = client.get("/g");
  ASSERT_TRUE(get.ok()) << get.status().to_string();
  EXPECT_EQ(get->body, "peer=none");
  auto post = client.post("/p", std::string(100000, 'b'));
  ASSERT_TRUE(post.ok()) << post.status().to_string();
  EXPECT_EQ(post->status, 200);
}

TEST_F(TlsFixture, MovesLargeBodiesIntactOverTls) {
  // The direct read of large bodies goes through the TLS stream: 2 MiB each way, twice.
  auto server = start(testing::server_tls(server_creds), [](const Request& r) {
    return Response::text(200, std::string(r.body.rbegin(), r.body.rend()));
  });
  Client client(testing::client_options(server->port(), testing::client_trusting(server_creds)));
  std::string body(2 << 20, '\0');
  for (size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>((i * 7 + (i >> 12)) & 0xff);
  for (int round = 0; round < 2; ++round) {
    auto r = client.post("/p", body, "application/octet-stream");
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    ASSERT_EQ(r->body.size(), body.size());
    EXPECT_TRUE(std::equal(body.rbegin(), body.rend(), r->body.begin()));
  }
  EXPECT_EQ(client.connections_opened(), 1u);
}

TEST_F(TlsFixture, KeepsOneTlsConnectionForManyRequests) {
  // Keep-alive over TLS: 30 requests, one connection, one handshake.
  auto server = start(testing::server_tls(server_creds));
  Client client(testing::client_options(server->port(), testing::client_trusting(server_creds)));
  for (int i = 0; i < 30; ++i) ASSERT_TRUE(client.get("/").ok());
  EXPECT_EQ(server->connections_accepted(), 1u);
  EXPECT_EQ(client.connections_opened(), 1u);
}

TEST_F(TlsFixture, RejectsServerWhoseCertificateIsNotTrusted) {
  // A client trusting another certificate fails with unauthenticated.
  auto server = start(testing::server_tls(server_creds));
  auto other = testing::make_credentials("someone-else");
  Client client(testing::client_options(server->port(), testing::client_trusting(other)));
  auto r = client.get("/");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kUnauthenticated) << r.status().to_string();
}

TEST_F(TlsFixture, RejectsHostNameNotInCertificate) {
  // The host-name check: a certificate for localhost/127.0.0.1 does not pass for 127.0.0.2.
  CertificateOptions opt;
  opt.dns_names = {"example.test"};
  opt.ip_addresses = {"127.0.0.2"};
  auto creds = generate_self_signed(opt).value_or_die();
  auto server = start(testing::server_tls(creds));
  Client client(testing::client_options(server->port(), testing::client_trusting(creds)));
  auto r = client.get("/");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kUnauthenticated) << r.status().to_string();
}

TEST_F(TlsFixture, ClientHookAcceptsAndExposesServerIdentity) {
  // The client's hook sees the server certificate and its identity is readable from the client.
  auto server = start(testing::server_tls(server_creds));
  std::vector<uint8_t> seen_leaf;
  TlsClientConfig c;
  c.verify_peer = [&](const PeerCertificate& cert) {
    seen_leaf = cert.leaf_der;
    return accept_and_name()(cert);
  };
  Client client(testing::client_options(server->port(), ClientTlsContext::create(std::move(c)).value_or_die()));
  ASSERT_TRUE(client.get("/").ok());
  auto id = std::dynamic_pointer_cast<const TestIdentity>(client.peer());
  ASSERT_NE(id, nullptr);
  EXPECT_EQ(id->common_name, "moss-server");
  EXPECT_EQ(seen_leaf, certificate_pem_to_der(server_creds.cert_pem).value_or_die());
}

TEST_F(TlsFixture, ClientHookRejectionFailsTheHandshake) {
  // A hook error on the client side fails the request with the hook's reason.
  auto server = start(testing::server_tls(server_creds));
  TlsClientConfig c;
  c.verify_peer = reject_all("measurement not allowed");
  Client client(testing::client_options(server->port(), ClientTlsContext::create(std::move(c)).value_or_die()));
  auto r = client.get("/");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kUnauthenticated);
  EXPECT_NE(r.status().message().find("measurement not allowed"), std::string::npos) << r.status().message();
  EXPECT_EQ(server->requests_served(), 0u);
}

TEST_F(TlsFixture, HookPathRefusesExpiredAndNotYetValidCertificates) {
  // Issue 20 item 4: with a hook and no CA bundle, OpenSSL checks no dates, so a certificate that
  // expired in 2020 or is valid only from 2099 passed whenever the hook did. Both sides refuse it.
  struct Window {
    std::time_t from;
    std::chrono::seconds lifetime;
    const char* why;
  };
  for (const Window& w : {Window{1577836800 /*2020-01-01*/, std::chrono::hours(24), "expired"},
                          Window{4070908800 /*2099-01-01*/, std::chrono::hours(24), "not yet valid"}}) {
    CertificateOptions opt;
    opt.common_name = "moss-server";
    opt.not_before = w.from;
    opt.lifetime = w.lifetime;
    TlsCredentials bad = generate_self_signed(opt).value_or_die();
    // Client side: the server presents the out-of-date certificate.
    auto server = start(testing::server_tls(bad));
    TlsClientConfig c;
    c.verify_peer = accept_and_name();
    Client client(testing::client_options(server->port(), ClientTlsContext::create(std::move(c)).value_or_die()));
    auto r = client.get("/");
    ASSERT_FALSE(r.ok()) << w.why;
    EXPECT_EQ(r.status().code(), ErrorCode::kUnauthenticated);
    EXPECT_NE(r.status().message().find(w.why), std::string::npos) << r.status().message();
    // Server side: a client presents it.
    TlsServerConfig tls = testing::server_tls(server_creds);
    tls.require_client_cert = true;
    tls.verify_peer = accept_and_name();
    auto mtls = start(std::move(tls));
    TlsClientConfig cc = client_config_with_cert(accept_and_name());
    cc.cert_chain_pem = bad.cert_pem;
    cc.key_pem = bad.key_pem.clone();
    Client client2(testing::client_options(mtls->port(), ClientTlsContext::create(std::move(cc)).value_or_die()));
    EXPECT_FALSE(client2.get("/whoami").ok()) << w.why;
    EXPECT_EQ(mtls->requests_served(), 0u);
  }
  // Within the clock-skew allowance a certificate is still accepted.
  CertificateOptions opt;
  opt.common_name = "moss-server";
  opt.not_before = std::time(nullptr) + 60;
  auto early = start(testing::server_tls(generate_self_signed(opt).value_or_die()));
  TlsClientConfig c;
  c.verify_peer = accept_and_name();
  Client client(testing::client_options(early->port(), ClientTlsContext::create(std::move(c)).value_or_die()));
  EXPECT_TRUE(client.get("/").ok());
}

// Issue 20 item 13: idle TCP connections that never start a TLS handshake, from one peer, filled
// max_connections and locked every other client out for the handshake timeout. Now one address
// gets at most max_connections_per_peer of them, and a legitimate client is served at once.
TEST_F(TlsFixture, IdleConnectionFloodFromOnePeerDoesNotLockOutOthers) {
  ServerOptions opt;
  opt.tls = testing::server_tls(server_creds);
  opt.max_connections = 128;
  auto server = Server::start(std::move(opt), whoami).value_or_die();
  std::vector<std::unique_ptr<testing::RawSocket>> flood;
  for (int i = 0; i < 300; ++i) flood.push_back(std::make_unique<testing::RawSocket>(server->port(), "127.0.0.2"));
  for (int i = 0; i < 200 && server->connections_accepted() + server->connections_refused() < 300; ++i)
    std::this_thread::sleep_for(5ms);
  EXPECT_LE(server->connections_open(), ServerOptions{}.max_connections_per_peer);
  EXPECT_GT(server->connections_refused(), 0u);
  auto started = std::chrono::steady_clock::now();
  Client client(testing::client_options(server->port(), testing::client_trusting(server_creds)));
  auto r = client.get("/");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->status, 200);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 2s);
}

// Many peers, each under its own cap, together fill only the pre-handshake share of the slots:
// a client already past its handshake keeps being served, and idle connections are dropped after
// the (short) handshake timeout, after which new clients get in again.
TEST_F(TlsFixture, DistributedIdleFloodLeavesReserveAndExpiresQuickly) {
  ServerOptions opt;
  opt.tls = testing::server_tls(server_creds);
  opt.max_connections = 64;
  opt.max_connections_per_peer = 16;
  opt.handshake_timeout = 1500ms;
  auto server = Server::start(std::move(opt), whoami).value_or_die();
  Client established(testing::client_options(server->port(), testing::client_trusting(server_creds)));
  ASSERT_TRUE(established.get("/").ok());
  std::vector<std::unique_ptr<testing::RawSocket>> flood;
  for (const char* peer : {"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6"})
    for (int i = 0; i < 16; ++i) flood.push_back(std::make_unique<testing::RawSocket>(server->port(), peer));
  for (int i = 0; i < 200 && server->connections_accepted() + server->connections_refused() < 81; ++i)
    std::this_thread::sleep_for(5ms);
  // 48 pre-handshake slots (64 minus a quarter reserved), plus the established connection.
  EXPECT_EQ(server->connections_open(), 49u);
  EXPECT_EQ(server->connections_refused(), 32u);
  auto again = established.get("/");
  ASSERT_TRUE(again.ok()) << again.status().to_string();
  EXPECT_EQ(established.connections_opened(), 1u);
  std::this_thread::sleep_for(2s);  // the idle ones hit the handshake timeout
  Client late(testing::client_options(server->port(), testing::client_trusting(server_creds)));
  auto r = late.get("/");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
}

// A keep-alive connection does not outlive the certificate it was verified with: a certificate
// that expired 298 s ago still passes the handshake (5 minutes of skew), and 3 s later neither the
// server (mutual TLS) nor the client serves another request on that connection; the reconnect
// then fails verification.
TEST_F(TlsFixture, KeepAliveConnectionEndsWhenPeerCertificateExpires) {
  CertificateOptions opt;
  opt.common_name = "expiring";
  opt.not_before = std::time(nullptr) - 3600;
  opt.lifetime = std::chrono::seconds(3600 - 298);
  TlsCredentials expiring = generate_self_signed(opt).value_or_die();
  // Server side: the client's certificate expires.
  TlsServerConfig tls = testing::server_tls(server_creds);
  tls.require_client_cert = true;
  tls.verify_peer = accept_and_name();
  auto server = start(std::move(tls));
  TlsClientConfig cc = client_config_with_cert(accept_and_name());
  cc.cert_chain_pem = expiring.cert_pem;
  cc.key_pem = expiring.key_pem.clone();
  Client client(testing::client_options(server->port(), ClientTlsContext::create(std::move(cc)).value_or_die()));
  ASSERT_TRUE(client.get("/whoami").ok());
  // Client side: the server's certificate expires.
  auto expiring_server = start(testing::server_tls(expiring));
  TlsClientConfig c;
  c.verify_peer = accept_and_name();
  Client client2(testing::client_options(expiring_server->port(), ClientTlsContext::create(std::move(c)).value_or_die()));
  ASSERT_TRUE(client2.get("/").ok());
  std::this_thread::sleep_for(3s);
  EXPECT_FALSE(client.get("/whoami").ok());
  EXPECT_EQ(server->requests_served(), 1u);
  auto again = client2.get("/");  // not sent on the old connection; the new handshake refuses
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.status().message().find("expired"), std::string::npos) << again.status().message();
  EXPECT_EQ(expiring_server->requests_served(), 1u);
}

// Renewable credentials: after replace(), new handshakes on both sides present the new
// certificate while an established connection keeps working; the server is never restarted.
TEST_F(TlsFixture, RenewableCredentialsSwapWithoutRestart) {
  auto server_live = RenewableCredentials::create(testing::make_credentials("server-1")).value_or_die();
  auto client_live = RenewableCredentials::create(testing::make_credentials("client-1")).value_or_die();
  TlsServerConfig tls;
  tls.renewable = server_live;
  tls.require_client_cert = true;
  tls.verify_peer = accept_and_name();
  auto server = start(std::move(tls));
  TlsClientConfig c;
  c.verify_peer = accept_and_name();
  c.renewable = client_live;
  auto ctx = ClientTlsContext::create(std::move(c)).value_or_die();
  auto server_name = [](const Client& cl) {
    auto id = std::dynamic_pointer_cast<const TestIdentity>(cl.peer());
    return id ? id->common_name : "";
  };
  Client first(testing::client_options(server->port(), ctx));
  auto r = first.get("/whoami");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->body, "peer=client-1");
  EXPECT_EQ(server_name(first), "server-1");
  ASSERT_TRUE(server_live->replace(testing::make_credentials("server-2")).ok());
  ASSERT_TRUE(client_live->replace(testing::make_credentials("client-2")).ok());
  EXPECT_EQ(server_live->generation(), 1u);
  Client second(testing::client_options(server->port(), ctx));
  r = second.get("/whoami");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->body, "peer=client-2");
  EXPECT_EQ(server_name(second), "server-2");
  // The first connection is still the one it was.
  r = first.get("/whoami");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->body, "peer=client-1");
  EXPECT_EQ(first.connections_opened(), 1u);
  // A replacement whose key does not match its certificate is refused; the current one stays.
  TlsCredentials mismatched = testing::make_credentials("server-3");
  mismatched.key_pem = testing::make_credentials("other").key_pem.clone();
  EXPECT_FALSE(server_live->replace(std::move(mismatched)).ok());
  Client third(testing::client_options(server->port(), ctx));
  ASSERT_TRUE(third.get("/whoami").ok());
  EXPECT_EQ(server_name(third), "server-2");
}

TEST_F(TlsFixture, ThrowingHookCountsAsRejection) {
  // A hook that throws fails the handshake instead of crashing or accepting.
  auto server = start(testing::server_tls(server_creds));
  TlsClientConfig c;
  c.verify_peer = [](const PeerCertificate&) -> Result<std::shared_ptr<const PeerIdentity>> {
    throw std::runtime_error("parser bug");
  };
  Client client(testing::client_options(server->port(), ClientTlsContext::create(std::move(c)).value_or_die()));
  auto r = client.get("/");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kUnauthenticated);
  EXPECT_NE(r.status().message().find("parser bug"), std::string::npos);
}

TEST_F(TlsFixture, ServerHookAcceptsClientAndHandlerSeesIdentity) {
  // Mutual TLS with a server-side hook: the handler reads the identity the hook returned.
  TlsServerConfig tls = testing::server_tls(server_creds);
  tls.require_client_cert = true;
  tls.verify_peer = accept_and_name();
  auto server = start(std::move(tls));
  auto ctx = ClientTlsContext::create(client_config_with_cert(accept_and_name())).value_or_die();
  Client client(testing::client_options(server->port(), ctx));
  auto r = client.get("/whoami");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->body, "peer=moss-client");
  auto id = std::dynamic_pointer_cast<const TestIdentity>(client.peer());
  ASSERT_NE(id, nullptr);
  EXPECT_EQ(id->common_name, "moss-server");
}

TEST_F(TlsFixture, ServerHookRejectionRefusesClient) {
  // A server-side hook error refuses the client: no request reaches the handler.
  TlsServerConfig tls = testing::server_tls(server_creds);
  tls.require_client_cert = true;
  tls.verify_peer = reject_all("client not attested");
  auto server = start(std::move(tls));
  auto ctx = ClientTlsContext::create(client_config_with_cert(accept_and_name())).value_or_die();
  Client client(testing::client_options(server->port(), ctx));
  auto r = client.get("/whoami");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(server->requests_served(), 0u);
}

TEST_F(TlsFixture, MutualTlsRefusesClientWithoutCertificate) {
  // With require_client_cert, a client presenting no certificate gets no answer.
  TlsServerConfig tls = testing::server_tls(server_creds);
  tls.require_client_cert = true;
  tls.verify_peer = accept_and_name();
  auto server = start(std::move(tls));
  Client client(testing::client_options(server->port(), testing::client_trusting(server_creds)));
  auto r = client.get("/whoami");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(server->requests_served(), 0u);
}

TEST_F(TlsFixture, MutualTlsWithClientCaBundle) {
  // Client certificates can also be verified by a CA bundle instead of a hook.
  TlsServerConfig tls = testing::server_tls(server_creds);
  tls.require_client_cert = true;
  tls.client_ca_pem = client_creds.cert_pem;
  auto server = start(std::move(tls));
  TlsClientConfig c = client_config_with_cert(nullptr);
  c.ca_pem = server_creds.cert_pem;
  Client client(testing::client_options(server->port(), ClientTlsContext::create(std::move(c)).value_or_die()));
  auto r = client.get("/");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->status, 200);
}

TEST_F(TlsFixture, OptionalClientCertificateIsVerifiedWhenPresent) {
  // Without require_client_cert, clients without a certificate connect (peer none) and clients
  // with one are verified by the hook (one server for users and attested workers alike).
  TlsServerConfig tls = testing::server_tls(server_creds);
  tls.verify_peer = accept_and_name();
  auto server = start(std::move(tls));
  Client anonymous(testing::client_options(server->port(), testing::client_trusting(server_creds)));
  auto a = anonymous.get("/");
  ASSERT_TRUE(a.ok()) << a.status().to_string();
  EXPECT_EQ(a->body, "peer=none");
  auto ctx = ClientTlsContext::create(client_config_with_cert(accept_and_name())).value_or_die();
  Client named(testing::client_options(server->port(), ctx));
  auto b = named.get("/");
  ASSERT_TRUE(b.ok()) << b.status().to_string();
  EXPECT_EQ(b->body, "peer=moss-client");
}

TEST_F(TlsFixture, RefusesTls12OnlyClient) {
  // A client that speaks at most TLS 1.2 cannot complete a handshake.
  auto server = start(testing::server_tls(server_creds));
  testing::RawSocket sock(server->port());
  ASSERT_TRUE(sock.connected());
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  SSL* ssl = SSL_new(ctx);
  SSL_set_fd(ssl, sock.fd());
  int rc = SSL_connect(ssl);
  EXPECT_LE(rc, 0);
  SSL_free(ssl);
  SSL_CTX_free(ctx);
}

TEST_F(TlsFixture, PlainHttpClientGetsNoAnswerFromTlsServer) {
  // Speaking plain HTTP to the HTTPS port fails cleanly on the client.
  auto server = start(testing::server_tls(server_creds));
  Client client(testing::client_options(server->port()));
  auto r = client.get("/");
  EXPECT_FALSE(r.ok());
}

TEST_F(TlsFixture, WorksWithEd25519Certificates) {
  // Ed25519 keys work for both server and client certificates.
  auto server_ed = testing::make_credentials("ed-server", KeyType::kEd25519);
  auto client_ed = testing::make_credentials("ed-client", KeyType::kEd25519);
  TlsServerConfig tls = testing::server_tls(server_ed);
  tls.require_client_cert = true;
  tls.verify_peer = accept_and_name();
  auto server = start(std::move(tls));
  TlsClientConfig c;
  c.ca_pem = server_ed.cert_pem;
  c.cert_chain_pem = client_ed.cert_pem;
  c.key_pem = client_ed.key_pem.clone();
  Client client(testing::client_options(server->port(), ClientTlsContext::create(std::move(c)).value_or_die()));
  auto r = client.get("/");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->body, "peer=ed-client");
}

TEST_F(TlsFixture, RejectsClientConfigWithoutAnyVerification) {
  // There is no "verify nothing" mode: no CA and no hook is a configuration error.
  auto ctx = ClientTlsContext::create(TlsClientConfig{});
  ASSERT_FALSE(ctx.ok());
  EXPECT_EQ(ctx.status().code(), ErrorCode::kInvalidArgument);
}

TEST_F(TlsFixture, RejectsMismatchedServerKey) {
  // A server key that does not match its certificate fails at start, not at the first client.
  TlsServerConfig tls;
  tls.cert_chain_pem = server_creds.cert_pem;
  tls.key_pem = client_creds.key_pem.clone();
  ServerOptions opt;
  opt.tls = std::move(tls);
  auto server = Server::start(std::move(opt), Handler(whoami));
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.status().code(), ErrorCode::kInvalidArgument);
}

TEST_F(TlsFixture, ServesConcurrentTlsClients) {
  // 16 TLS clients in parallel, each on its own connection, all served.
  auto server = start(testing::server_tls(server_creds));
  auto ctx = testing::client_trusting(server_creds);
  std::atomic<int> good{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 16; ++t) {
    threads.emplace_back([&] {
      Client client(testing::client_options(server->port(), ctx));
      for (int i = 0; i < 5; ++i) {
        auto r = client.get("/");
        if (r.ok() && r->status == 200) ++good;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(good.load(), 80);
}

}  // namespace
}  // namespace moss::net
