// Client: HTTP/1.1 and HTTPS (TLS 1.3 only) client with one reusable keep-alive connection.
//
// One Client is one connection: it connects on first use, keeps the connection open between
// requests, and reconnects when the server closed it (a request that failed on a reused
// connection before any response byte arrived is retried once on a fresh connection; note this
// also replays a POST that the server may already have acted on — keep non-idempotent endpoints
// idempotent by request id, as MOSS's signed requests are). Errors come back as a Status, never as
// exceptions: unavailable (connect/handshake/IO), deadline-exceeded (timeouts), unauthenticated
// (peer verification failed), resource-exhausted (response too large). A failure before any byte
// of the request was written (resolve, connect, TLS handshake, on_connect hook) is marked
// Status::request_not_sent(): the caller may send it elsewhere without risk of doing it twice.
// Not thread-safe: use one Client per thread, or a ClientPool (client_pool.h).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"
#include "net/connection_context.h"
#include "net/http_message.h"
#include "net/tls_config.h"
#include "net/url.h"

namespace moss::net {

// A prepared client TLS configuration (CA store, client certificate, hook). Built once and shared
// by any number of clients; immutable and thread-safe (so the hook must be thread-safe).
class ClientTlsContext {
 public:
  static Result<std::shared_ptr<const ClientTlsContext>> create(TlsClientConfig config);
  ~ClientTlsContext();

  struct Impl;
  const Impl& impl() const { return *impl_; }

 private:
  explicit ClientTlsContext(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};
using ClientTlsContextPtr = std::shared_ptr<const ClientTlsContext>;

struct ClientOptions {
  std::string host = "127.0.0.1";  // DNS name or IP; also the TLS host name checked and sent (SNI)
  uint16_t port = 80;
  ClientTlsContextPtr tls;  // null: plain HTTP
  std::chrono::milliseconds connect_timeout{5'000};  // TCP connect plus TLS handshake
  std::chrono::milliseconds write_timeout{30'000};   // sending one request
  std::chrono::milliseconds read_timeout{30'000};    // the whole response, from the request sent
  size_t max_response_body_bytes = 64 * 1024 * 1024;
  size_t max_response_header_bytes = 64 * 1024;
  std::string user_agent = "moss";
  // Runs on every new connection after its handshake, before its first request (e.g. to prove
  // attestation fresh for this connection); see connection_context.h.
  ConnectHook on_connect;
};

class Client {
 public:
  explicit Client(ClientOptions options);
  // Options from an "http(s)://host:port" URL (its path is ignored: pass targets per request).
  // An https URL needs `tls`; an http URL must not have it.
  static Result<Client> for_url(std::string_view url, ClientOptions options);

  ~Client();
  Client(Client&&) noexcept;
  Client& operator=(Client&&) noexcept;

  // Sends `request` (Host, User-Agent and Content-Length are set for you).
  Result<Response> request(const Request& request);
  Result<Response> get(std::string target);
  Result<Response> post(std::string target, std::string body,
                        std::string_view content_type = "application/json");

  // Connects (and handshakes) now if not connected; requests do this themselves.
  Status connect();
  // Closes the connection; the next request reconnects.
  void close();
  bool connected() const;

  // The identity the peer-verification hook returned for the latest TLS connection (null without
  // a hook, or before the first connection). Re-read after each request: a reconnect re-verifies.
  std::shared_ptr<const PeerIdentity> peer() const;
  // Local port of the current connection (0 when not connected); lets tests see connection reuse.
  uint16_t local_port() const;
  // Connections opened so far (1 while keep-alive holds).
  uint64_t connections_opened() const;

  const ClientOptions& options() const;
  // Changes the timeouts of later requests (a caller with a deadline clips them to what is left).
  void set_timeouts(std::chrono::milliseconds connect, std::chrono::milliseconds write,
                    std::chrono::milliseconds read);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace moss::net
