// ClientPool: many threads share a bounded set of keep-alive connections.
#include "net/client_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "net/server.h"
#include "net_test_support.h"

namespace moss::net {
namespace {

TEST(ClientPoolTest, ReusesConnectionsAcrossThreads) {
  // 8 threads x 20 requests through one pool open at most 8 connections and all succeed.
  auto server = Server::start(ServerOptions{}, Handler([](const Request& r) {
                                return Response::text(200, r.body);
                              })).value_or_die();
  ClientPool pool(testing::client_options(server->port()), 8);
  std::atomic<int> good{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        std::string body = std::to_string(t) + ":" + std::to_string(i);
        auto r = pool.post("/", body, "text/plain");
        if (r.ok() && r->body == body) ++good;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(good.load(), 160);
  EXPECT_LE(server->connections_accepted(), 8u);
  EXPECT_LE(pool.idle_connections(), 8u);
  EXPECT_EQ(pool.connections_opened(), server->connections_accepted());
}

TEST(ClientPoolTest, ReportsPeerIdentityPerRequest) {
  // The identity from the client-side hook comes back with each pooled request.
  auto creds = testing::make_credentials("pooled-server");
  ServerOptions opt;
  opt.tls = testing::server_tls(creds);
  auto server = Server::start(std::move(opt), Handler([](const Request&) { return Response::text(200, "x"); }))
                    .value_or_die();
  TlsClientConfig c;
  c.verify_peer = [](const PeerCertificate& cert) -> Result<std::shared_ptr<const PeerIdentity>> {
    auto id = std::make_shared<PeerIdentity>();
    MOSS_ASSIGN_OR_RETURN(id->name, certificate_common_name(cert.leaf_der));
    return std::shared_ptr<const PeerIdentity>(id);
  };
  ClientPool pool(testing::client_options(server->port(), ClientTlsContext::create(std::move(c)).value_or_die()));
  std::shared_ptr<const PeerIdentity> peer;
  ASSERT_TRUE(pool.request(Request::make("GET", "/"), &peer).ok());
  ASSERT_NE(peer, nullptr);
  EXPECT_EQ(peer->name, "pooled-server");
}

}  // namespace
}  // namespace moss::net
