// FailoverClient against real servers on loopback: a URL nobody listens on and a 5xx move the
// call to the next URL, a 4xx and a failed peer verification stop it, the per-call deadline holds
// across URLs, each attempt builds its request anew; and URL lists parse from JSON or commas.
#include "net/failover_client.h"

#include "common/loopback_port.h"
#include "net/server.h"
#include "net/tls_credentials.h"
#include "net_test_support.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace moss::net {
namespace {

using namespace std::chrono_literals;

ServerPtr serve(int status, std::string body, std::chrono::milliseconds delay = 0ms) {
  ServerOptions o;
  o.worker_threads = 2;
  return Server::start(std::move(o), [=](const Request&) {
           std::this_thread::sleep_for(delay);
           return Response::text(status, body);
         }).value_or_die();
}

std::string url_of(uint16_t port) { return "http://127.0.0.1:" + std::to_string(port); }

FailoverClient client_for(std::vector<std::string> urls, std::chrono::milliseconds deadline = 10s,
                          ClientTlsContextPtr tls = nullptr) {
  FailoverOptions o;
  o.urls = std::move(urls);
  o.client.tls = std::move(tls);
  o.client.connect_timeout = 2s;
  o.deadline = deadline;
  return FailoverClient::create(std::move(o)).value_or_die();
}

TEST(FailoverClientTest, AConnectErrorMovesToTheNextUrlAndStaysThere) {
  auto up = serve(200, "b");
  const uint16_t nobody = free_loopback_port().value_or_die();
  auto c = client_for({url_of(nobody), url_of(up->port())});
  int built = 0;
  auto r = c.call([&]() -> Result<Request> {
    ++built;
    return Request::make("GET", "/x");
  });
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->body, "b");
  EXPECT_EQ(built, 2);  // built again for the second URL (a signed request is signed again)
  EXPECT_EQ(c.failovers(), 1u);
  EXPECT_EQ(c.current_url(), url_of(up->port()));
  // The next call starts where the last one succeeded.
  ASSERT_TRUE(c.request(Request::make("GET", "/y")).ok());
  EXPECT_EQ(c.failovers(), 1u);
}

TEST(FailoverClientTest, A5xxMovesOnAnd4xxStops) {
  auto failing = serve(503, "unavailable"), refusing = serve(403, "no"), fine = serve(200, "ok");
  auto c = client_for({url_of(failing->port()), url_of(fine->port())});
  auto r = c.request(Request::make("GET", "/"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(failing->requests_served(), 1u);

  auto d = client_for({url_of(refusing->port()), url_of(fine->port())});
  const uint64_t served = fine->requests_served();
  r = d.request(Request::make("GET", "/"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 403);  // a refusal is the answer: not asked elsewhere
  EXPECT_EQ(fine->requests_served(), served);
  EXPECT_EQ(d.failovers(), 0u);

  // Every URL 5xx: the last answer comes back as is.
  auto e = client_for({url_of(failing->port()), url_of(failing->port())});
  r = e.request(Request::make("GET", "/"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 503);
}

// When every URL fails and a 5xx is the answer, current() is the replica that gave it: a
// follow-up about that answer (the worker's fork-check proof goes to current()) must not land on
// the next URL, maybe a dead replica (what failed releases in the replica-kill fault run).
TEST(FailoverClientTest, AfterEveryUrlFailedCurrentIsTheOneWhoseAnswerCameBack) {
  auto failing = serve(503, "unavailable");
  const uint16_t nobody = free_loopback_port().value_or_die();
  auto c = client_for({url_of(nobody), url_of(failing->port())});
  auto r = c.request(Request::make("GET", "/"));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(c.current_url(), url_of(failing->port()));
  auto again = c.current().get("/proof");
  ASSERT_TRUE(again.ok()) << again.status().to_string();
  EXPECT_EQ(again->status, 503);
}

TEST(FailoverClientTest, TheDeadlineHoldsAcrossUrls) {
  auto slow_a = serve(200, "late", 3s), slow_b = serve(200, "late", 3s);
  auto c = client_for({url_of(slow_a->port()), url_of(slow_b->port())}, 600ms);
  const auto start = std::chrono::steady_clock::now();
  auto r = c.request(Request::make("GET", "/"));
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kDeadlineExceeded) << r.status().to_string();
  EXPECT_LT(took, 2500ms);  // not one full read timeout per URL
  slow_a->stop(0ms);
  slow_b->stop(0ms);
}

TEST(FailoverClientTest, APeerFailingVerificationStopsTheCall) {
  auto creds = testing::make_credentials("replica");
  ServerOptions so;
  so.tls = testing::server_tls(creds);
  auto impostor = Server::start(std::move(so), [](const Request&) { return Response::text(200, "x"); }).value_or_die();
  ServerOptions po;
  po.tls = testing::server_tls(creds);
  auto next = Server::start(std::move(po), [](const Request&) { return Response::text(200, "y"); }).value_or_die();
  TlsClientConfig tc;
  tc.verify_peer = [](const PeerCertificate&) -> Result<std::shared_ptr<const PeerIdentity>> {
    return unauthenticated("measurement not allowed");
  };
  auto c = client_for({"https://127.0.0.1:" + std::to_string(impostor->port()),
                       "https://127.0.0.1:" + std::to_string(next->port())},
                      10s, ClientTlsContext::create(std::move(tc)).value_or_die());
  auto r = c.request(Request::make("GET", "/"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kUnauthenticated);
  EXPECT_EQ(c.failovers(), 0u);
  EXPECT_EQ(next->requests_served(), 0u);
  EXPECT_EQ(c.connect().code(), ErrorCode::kUnauthenticated);
}

TEST(FailoverClientTest, UrlListsParseFromJsonOrCommas) {
  const std::vector<std::string> two = {"https://a:1", "https://b:2"};
  EXPECT_EQ(parse_url_list("https://a:1, https://b:2").value_or_die(), two);
  EXPECT_EQ(parse_url_list(R"(["https://a:1","https://b:2"])").value_or_die(), two);
  EXPECT_EQ(parse_url_list("https://a:1").value_or_die(), std::vector<std::string>{"https://a:1"});
  EXPECT_FALSE(parse_url_list("").ok());
  EXPECT_FALSE(parse_url_list("[]").ok());
  EXPECT_FALSE(parse_url_list("https://a:1,,https://b:2").ok());
  EXPECT_FALSE(parse_url_list(R"(["https://a:1", 7])").ok());
  EXPECT_FALSE(parse_url_list("ftp://a:1").ok());
}

}  // namespace
}  // namespace moss::net
