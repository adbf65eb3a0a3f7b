// Server behaviour over plain HTTP on loopback: round trips, keep-alive, limits, timeouts,
// concurrency, graceful shutdown and handler failures.
#include "net/server.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>

#include "net/client.h"
#include "net/error_response.h"
#include "net_test_support.h"

namespace moss::net {
namespace {

using namespace std::chrono_literals;
using testing::RawSocket;

Response echo(const Request& req) {
  return Response::text(200, req.method + " " + req.path + " " + req.body);
}

ServerPtr start_plain(Handler h, ServerOptions opt = {}) {
  return Server::start(std::move(opt), std::move(h)).value_or_die();
}

TEST(ServerTest, AnswersGetAndPostOverPlainHttp) {
  // A GET and a POST round-trip with method, path and body intact.
  auto server = start_plain(echo);
  Client client(testing::client_options(server->port()));
  auto get = client.get("/hello?x=1");
  ASSERT_TRUE(get.ok()) << get.status().to_string();
  EXPECT_EQ(get->status, 200);
  EXPECT_EQ(get->body, "GET /hello ");
  auto post = client.post("/submit", "{\"a\":1}");
  ASSERT_TRUE(post.ok()) << post.status().to_string();
  EXPECT_EQ(post->body, "POST /submit {\"a\":1}");
  EXPECT_EQ(post->headers.get_or("content-type", ""), "text/plain; charset=utf-8");
}

TEST(ServerTest, ReusesOneConnectionForManyRequests) {
  // Keep-alive: 50 requests from one client use one TCP connection.
  auto server = start_plain(echo);
  Client client(testing::client_options(server->port()));
  uint16_t first_port = 0;
  for (int i = 0; i < 50; ++i) {
    auto r = client.get("/k");
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    if (i == 0) first_port = client.local_port();
    EXPECT_EQ(client.local_port(), first_port);
  }
  EXPECT_EQ(server->connections_accepted(), 1u);
  EXPECT_EQ(client.connections_opened(), 1u);
  EXPECT_EQ(server->requests_served(), 50u);
}

TEST(ServerTest, ClientReconnectsAfterServerClosedIdleConnection) {
  // The server drops an idle keep-alive connection; the next request reconnects transparently.
  ServerOptions opt;
  opt.idle_timeout = 100ms;
  auto server = start_plain(echo, std::move(opt));
  Client client(testing::client_options(server->port()));
  ASSERT_TRUE(client.get("/a").ok());
  std::this_thread::sleep_for(300ms);
  auto r = client.get("/b");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->body, "GET /b ");
  EXPECT_EQ(client.connections_opened(), 2u);
}

TEST(ServerTest, RefusesOversizeBodyWith413) {
  // A body above max_body_bytes is answered 413 from its Content-Length; the handler never runs.
  std::atomic<int> calls{0};
  ServerOptions opt;
  opt.max_body_bytes = 1024;
  auto server = start_plain([&](const Request&) { ++calls; return Response::text(200, "ok"); }, std::move(opt));
  Client client(testing::client_options(server->port()));
  auto r = client.post("/upload", std::string(64 * 1024, 'x'));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->status, 413);
  EXPECT_EQ(status_from_response(*r).code(), ErrorCode::kResourceExhausted);
  EXPECT_EQ(calls.load(), 0);
  auto small = client.post("/upload", std::string(1000, 'x'));
  ASSERT_TRUE(small.ok()) << small.status().to_string();
  EXPECT_EQ(small->status, 200);
}

TEST(ServerTest, RefusesAHugeContentLengthBeforeReadingOrAllocating) {
  // A header claiming 1 TB (sent together with some body bytes, in one packet) is answered 413
  // at once: the large-body path never sizes a buffer from an unchecked Content-Length.
  ServerOptions opt;
  opt.max_body_bytes = 1 << 20;
  auto server = start_plain(echo, std::move(opt));
  RawSocket s(server->port());
  ASSERT_TRUE(s.connected());
  ASSERT_TRUE(s.send_all("POST /c HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000000\r\n\r\n" +
                         std::string(70000, 'z')));
  std::string reply = s.read_until_close(2s);
  EXPECT_EQ(reply.rfind("HTTP/1.1 413", 0), 0u) << reply.substr(0, 200);
}

TEST(ServerTest, RefusesOversizeChunkedBodyWith413) {
  // A chunked body (no Content-Length) is cut off at the limit too.
  ServerOptions opt;
  opt.max_body_bytes = 100;
  auto server = start_plain(echo, std::move(opt));
  RawSocket s(server->port());
  ASSERT_TRUE(s.connected());
  std::string chunk(200, 'y');
  ASSERT_TRUE(s.send_all("POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nc8\r\n" + chunk + "\r\n0\r\n\r\n"));
  std::string reply = s.read_until_close(2s);
  EXPECT_EQ(reply.rfind("HTTP/1.1 413", 0), 0u) << reply;
}

TEST(ServerTest, RefusesOversizeHeadersWith431) {
  // Headers above max_header_bytes are answered 431.
  ServerOptions opt;
  opt.max_header_bytes = 1024;
  auto server = start_plain(echo, std::move(opt));
  Client client(testing::client_options(server->port()));
  Request req = Request::make("GET", "/h");
  req.headers.set("X-Big", std::string(4096, 'a'));
  auto r = client.request(req);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->status, 431);
}

TEST(ServerTest, AnswersMalformedRequestWith400) {
  // Garbage instead of HTTP gets a 400 and a closed connection.
  auto server = start_plain(echo);
  RawSocket s(server->port());
  ASSERT_TRUE(s.send_all("NOT HTTP AT ALL\r\n\r\n"));
  std::string reply = s.read_until_close(2s);
  EXPECT_EQ(reply.rfind("HTTP/1.1 400", 0), 0u) << reply;
}

TEST(ServerTest, DisconnectsClientThatTricklesItsRequest) {
  // A client sending one byte every 50 ms is cut off at read_timeout, not kept alive by each byte.
  ServerOptions opt;
  opt.read_timeout = 300ms;
  auto server = start_plain(echo, std::move(opt));
  RawSocket s(server->port());
  ASSERT_TRUE(s.connected());
  std::string request = "GET /slow HTTP/1.1\r\nHost: x\r\nX-Padding: " + std::string(100, 'p') + "\r\n\r\n";
  auto start = std::chrono::steady_clock::now();
  bool closed = false;
  for (char c : request) {
    if (!s.send_all(std::string_view(&c, 1))) { closed = true; break; }
    pollfd p{s.fd(), POLLIN, 0};
    if (::poll(&p, 1, 50) > 0) { closed = s.wait_closed(100ms); if (closed) break; }
  }
  if (!closed) closed = s.wait_closed(1s);
  auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(closed);
  EXPECT_GE(elapsed, 250ms);
  EXPECT_LT(elapsed, 1500ms);
}

TEST(ServerTest, ClosesConnectionThatSendsNothing) {
  // A connection that never sends a byte is closed after read_timeout.
  ServerOptions opt;
  opt.read_timeout = 200ms;
  auto server = start_plain(echo, std::move(opt));
  RawSocket s(server->port());
  auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(s.wait_closed(2s));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1500ms);
}

TEST(ServerTest, Serves64ConcurrentClientsCorrectly) {
  // 64 clients on 64 threads, each with its own connection, all get their own answers.
  ServerOptions opt;
  opt.worker_threads = 4;
  auto server = start_plain(
      [](const Request& req) {
        std::this_thread::sleep_for(2ms);  // keeps handlers overlapping
        return Response::text(200, "n=" + req.body);
      },
      std::move(opt));
  std::atomic<int> good{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 64; ++t) {
    threads.emplace_back([&, t] {
      Client client(testing::client_options(server->port()));
      for (int i = 0; i < 5; ++i) {
        std::string body = std::to_string(t * 100 + i);
        auto r = client.post("/n", body, "text/plain");
        if (r.ok() && r->status == 200 && r->body == "n=" + body) ++good;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(good.load(), 64 * 5);
  EXPECT_EQ(server->connections_accepted(), 64u);
}

TEST(ServerTest, RunsSlowHandlersWithoutBlockingOthers) {
  // A 300 ms handler does not delay a fast request on another connection.
  auto server = start_plain([](const Request& req) {
    if (req.path == "/slow") std::this_thread::sleep_for(300ms);
    return Response::text(200, "done");
  });
  auto slow = std::async(std::launch::async, [&] {
    Client c(testing::client_options(server->port()));
    return c.get("/slow");
  });
  std::this_thread::sleep_for(50ms);
  Client fast(testing::client_options(server->port()));
  auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(fast.get("/fast").ok());
  EXPECT_LT(std::chrono::steady_clock::now() - start, 200ms);
  EXPECT_TRUE(slow.get().ok());
}

TEST(ServerTest, TurnsHandlerExceptionInto500Json) {
  // A throwing handler yields a 500 with the JSON error shape, and the server keeps serving.
  auto server = start_plain([](const Request& req) -> Response {
    if (req.path == "/boom") throw std::runtime_error("secret detail");
    return Response::text(200, "fine");
  });
  Client client(testing::client_options(server->port()));
  auto r = client.get("/boom");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->status, 500);
  EXPECT_EQ(r->headers.get_or("Content-Type", ""), "application/json");
  EXPECT_EQ(r->body, R"({"error":{"code":"internal","reason":"internal","message":"internal error"}})");
  auto after = client.get("/ok");
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->body, "fine");
}

TEST(ServerTest, ShutdownFinishesInFlightRequestAndRefusesNewOnes) {
  // stop() lets a running handler answer, then no new connection is accepted.
  std::promise<void> entered;
  auto server = start_plain([&](const Request&) {
    entered.set_value();
    std::this_thread::sleep_for(300ms);
    return Response::text(200, "finished");
  });
  uint16_t port = server->port();
  auto inflight = std::async(std::launch::async, [&] {
    Client c(testing::client_options(port));
    return c.get("/work");
  });
  entered.get_future().wait();
  auto start = std::chrono::steady_clock::now();
  server->stop(2s);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1500ms);
  auto r = inflight.get();
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->body, "finished");
  EXPECT_EQ(r->headers.get_or("Connection", ""), "close");
  Client late(testing::client_options(port));
  auto refused = late.get("/again");
  EXPECT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), ErrorCode::kUnavailable);
}

TEST(ServerTest, ClientSaysWhetherAFailedRequestWasSent) {
  // A refused connect never sent the request: safe to send elsewhere. A timeout after sending
  // may have been acted on: not marked.
  auto server = start_plain([](const Request&) {
    std::this_thread::sleep_for(300ms);
    return Response::text(200, "late");
  });
  const uint16_t port = server->port();
  ClientOptions o = testing::client_options(port);
  o.read_timeout = 50ms;
  Client slow(o);
  auto timed_out = slow.get("/");
  ASSERT_FALSE(timed_out.ok());
  EXPECT_FALSE(timed_out.status().request_not_sent());
  server->stop(2s);
  Client late(testing::client_options(port));
  auto refused = late.get("/");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), ErrorCode::kUnavailable);
  EXPECT_TRUE(refused.status().request_not_sent());
  EXPECT_TRUE(refused.status().with_context("invoking").request_not_sent());
}

TEST(ServerTest, ShutdownClosesIdleKeepAliveConnectionsAtOnce) {
  // An idle keep-alive connection does not hold up stop().
  auto server = start_plain(echo);
  Client client(testing::client_options(server->port()));
  ASSERT_TRUE(client.get("/x").ok());
  auto start = std::chrono::steady_clock::now();
  server->stop(5s);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  EXPECT_EQ(server->connections_open(), 0u);
}

TEST(ServerTest, ClosesConnectionsBeyondTheCap) {
  // With max_connections = 2 a third concurrent connection is closed on accept.
  ServerOptions opt;
  opt.max_connections = 2;
  opt.read_timeout = 5s;
  auto server = start_plain(echo, std::move(opt));
  RawSocket a(server->port()), b(server->port());
  // Make sure both are accepted before the third arrives.
  for (int i = 0; i < 100 && server->connections_open() < 2; ++i) std::this_thread::sleep_for(5ms);
  ASSERT_EQ(server->connections_open(), 2u);
  RawSocket c(server->port());
  EXPECT_TRUE(c.wait_closed(2s));
  EXPECT_EQ(server->connections_refused(), 1u);
}

TEST(ServerTest, ClientTimesOutOnSlowHandler) {
  // The client's read_timeout bounds how long it waits for a response.
  auto server = start_plain([](const Request&) {
    std::this_thread::sleep_for(500ms);
    return Response::text(200, "late");
  });
  ClientOptions o = testing::client_options(server->port());
  o.read_timeout = 100ms;
  Client client(o);
  auto r = client.get("/");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kDeadlineExceeded);
}

TEST(ServerTest, ClientRefusesOversizeResponseBody) {
  // A response larger than max_response_body_bytes is an error, not a truncated body.
  auto server = start_plain([](const Request&) { return Response::text(200, std::string(10000, 'z')); });
  ClientOptions o = testing::client_options(server->port());
  o.max_response_body_bytes = 1000;
  Client client(o);
  auto r = client.get("/");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kResourceExhausted);
}

// Every byte value, in a pattern that shows shifts and truncation.
std::string pattern(size_t n, unsigned seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + seed + (i >> 16)) & 0xff);
  return s;
}

TEST(ServerTest, MovesLargeBodiesIntactBothWays) {
  // Bodies from 64 KiB up are read straight into place on both sides: sizes around that
  // threshold and a 3 MiB one, several on one keep-alive connection, come back byte for byte.
  ServerOptions opt;
  opt.max_body_bytes = 8 << 20;
  auto server = start_plain([](const Request& r) {
    std::string body(r.body.rbegin(), r.body.rend());
    return Response::text(200, std::move(body));
  }, std::move(opt));
  ClientOptions o = testing::client_options(server->port());
  o.max_response_body_bytes = 8 << 20;
  Client client(o);
  unsigned seed = 1;
  for (size_t n : {size_t{65535}, size_t{65536}, size_t{65537}, size_t{3} << 20 | 7, size_t{200000}}) {
    const std::string body = pattern(n, seed++);
    auto r = client.post("/r", body, "application/octet-stream");
    ASSERT_TRUE(r.ok()) << n << ": " << r.status().to_string();
    ASSERT_EQ(r->body.size(), n);
    EXPECT_TRUE(std::equal(body.rbegin(), body.rend(), r->body.begin())) << n;
  }
  EXPECT_EQ(client.connections_opened(), 1u);
  // The limits still hold for large bodies: a request over the server's (answered 413 while the
  // server discards up to 1 MiB of it), a response over the client's.
  ServerOptions limited;
  limited.max_body_bytes = 300000;
  auto strict = start_plain(echo, std::move(limited));
  Client to_strict(testing::client_options(strict->port()));
  auto big = to_strict.post("/r", pattern(400000, 9), "application/octet-stream");
  ASSERT_TRUE(big.ok()) << big.status().to_string();
  EXPECT_EQ(big->status, 413);
  o.max_response_body_bytes = 100000;
  Client small(o);
  auto refused = small.post("/r", pattern(200000, 3), "application/octet-stream");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), ErrorCode::kResourceExhausted);
}

TEST(ServerTest, FailsToStartOnBusyPort) {
  // A second server on the same port reports unavailable instead of crashing.
  auto first = start_plain(echo);
  ServerOptions opt;
  opt.port = first->port();
  auto second = Server::start(std::move(opt), Handler(echo));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), ErrorCode::kUnavailable);
}

TEST(ServerTest, HandlesExpectContinue) {
  // A client waiting for "100 Continue" gets it and then the final answer.
  auto server = start_plain(echo);
  RawSocket s(server->port());
  ASSERT_TRUE(s.send_all("POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"));
  pollfd p{s.fd(), POLLIN, 0};
  ASSERT_GT(::poll(&p, 1, 2000), 0);
  char buf[256];
  ssize_t n = ::recv(s.fd(), buf, sizeof(buf), 0);
  ASSERT_GT(n, 0);
  EXPECT_EQ(std::string(buf, static_cast<size_t>(n)).rfind("HTTP/1.1 100", 0), 0u);
  ASSERT_TRUE(s.send_all("abc"));
  ::shutdown(s.fd(), SHUT_WR);
  std::string reply = s.read_until_close(2s);
  EXPECT_NE(reply.find("POST /e abc"), std::string::npos) << reply;
}

}  // namespace
}  // namespace moss::net
