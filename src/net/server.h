// Server: the HTTP/1.1 (and HTTPS, TLS 1.3 only) server every MOSS service runs.
//
// I/O (accept, TLS handshakes, reading and writing) runs on a few I/O threads; handlers run on a
// fixed worker pool, so a handler that computes for 100 ms blocks neither the acceptor nor other
// connections. Limits and timeouts protect the process from untrusted clients:
//  - headers larger than max_header_bytes -> 431; a body larger than max_body_bytes -> 413, sent as
//    soon as the Content-Length is seen (the body is not read), then the connection closes;
//  - a request must arrive completely within read_timeout of its first byte (a client trickling
//    bytes is disconnected); a keep-alive connection may sit idle for idle_timeout between
//    requests; writing a response may take write_timeout; a TLS handshake handshake_timeout;
//  - at most max_connections open connections, at most max_connections_per_peer from one address,
//    and at most max_connections - reserved_connections still before their TLS handshake (or, for
//    plain HTTP, their first request): a flood of idle connections cannot fill the server, and
//    clients past the handshake always find room; further connections are closed on accept;
//  - a handler that throws answers 500 with a JSON error body; the process survives.
// Thread-safe: every method may be called from any thread. Handlers run concurrently on the
// worker pool and must be thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "common/status.h"
#include "net/http_message.h"
#include "net/router.h"
#include "net/tls_config.h"

namespace moss::net {

struct ServerOptions {
  std::string host = "127.0.0.1";  // "0.0.0.0" to listen on every interface
  uint16_t port = 0;               // 0: a free port, see Server::port()
  size_t worker_threads = 4;       // handler pool
  size_t io_threads = 1;           // accept/TLS/read/write; 1 is plenty below ~10k req/s
  size_t max_connections = 1024;
  size_t max_connections_per_peer = 64;  // per remote IP address
  size_t reserved_connections = 256;     // kept for connections past their handshake (at most a quarter)
  size_t max_header_bytes = 16 * 1024;
  size_t max_body_bytes = 4 * 1024 * 1024;
  std::chrono::milliseconds read_timeout{30'000};
  std::chrono::milliseconds write_timeout{30'000};
  std::chrono::milliseconds idle_timeout{60'000};
  // Short: until the handshake completes the peer has proven nothing and holds a slot.
  std::chrono::milliseconds handshake_timeout{3'000};
  std::optional<TlsServerConfig> tls;  // absent: plain HTTP
  std::string name = "moss";           // logger context and Server header
};

class Server;
using ServerPtr = std::unique_ptr<Server>;

class Server {
 public:
  // Binds, listens and starts the threads. Fails on a bad TLS configuration or a busy port.
  static Result<ServerPtr> start(ServerOptions options, Handler handler);
  static Result<ServerPtr> start(ServerOptions options, Router router);

  // Stops without grace (stop(0)) if still running.
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  uint16_t port() const;
  bool tls() const;

  // Graceful shutdown: stops accepting, closes idle connections, lets requests whose handler is
  // already running finish and send their response (with Connection: close) until `grace` has
  // passed, then closes everything. Returns when every I/O thread has ended and no handler runs
  // (a handler still computing after the deadline is waited for; its response is dropped).
  // Idempotent.
  void stop(std::chrono::milliseconds grace = std::chrono::seconds(5));

  // Counters, mainly for tests and /metrics.
  uint64_t connections_accepted() const;  // total since start (refused ones excluded)
  uint64_t connections_refused() const;   // closed on accept because of a connection limit
  size_t connections_open() const;
  uint64_t requests_served() const;       // handler responses handed to the connection

  struct Impl;

 private:
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace moss::net
