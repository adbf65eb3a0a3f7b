// Per-connection binding: what both ends of one TLS connection can name it by, and what a server
// remembers about it.
//
// The name is the TLS 1.3 exporter value (RFC 8446 §7.5) under kConnectionExporterLabel. Both
// ends derive it from the handshake secrets, so only they know it, it differs for every
// connection, and it depends on the random the server chose for this connection: a server-chosen
// nonce the client can bind into evidence without an extra round trip (attest/
// connection_attestation.h does). Computed once per handshake (one HKDF-Expand-Label).
//
// Server side, handlers see a ConnectionContext on every request (Request::connection), shared by
// the requests of one connection, with one slot to remember something for the connection's rest
// (e.g. "this peer sent fresh evidence here"). Client side, ClientOptions::on_connect runs a
// ConnectHook on every new connection before its first request, with the exporter and a way to
// send requests on that connection.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "common/status.h"
#include "net/peer_identity.h"

namespace moss::net {

struct Request;
struct Response;

inline constexpr char kConnectionExporterLabel[] = "EXPORTER-moss-attestation";
inline constexpr size_t kConnectionExporterBytes = 32;

// Base class of what a handler remembers about a connection. Immutable once attached.
struct ConnectionAttachment {
  virtual ~ConnectionAttachment() = default;
};

// Server side: one per connection, shared by its requests. Thread-safe.
class ConnectionContext {
 public:
  explicit ConnectionContext(std::vector<uint8_t> tls_exporter) : exporter_(std::move(tls_exporter)) {}

  // kConnectionExporterBytes bytes for TLS connections; empty for plain HTTP.
  std::span<const uint8_t> tls_exporter() const { return exporter_; }

  // What a handler attached (null until one did); read it with std::dynamic_pointer_cast.
  std::shared_ptr<const ConnectionAttachment> attachment() const {
    std::lock_guard lock(mu_);
    return attachment_;
  }
  // Replaces the attachment for the rest of the connection.
  void attach(std::shared_ptr<const ConnectionAttachment> attachment) {
    std::lock_guard lock(mu_);
    attachment_ = std::move(attachment);
  }

 private:
  const std::vector<uint8_t> exporter_;
  mutable std::mutex mu_;
  std::shared_ptr<const ConnectionAttachment> attachment_;
};

// Client side: what a ConnectHook sees of a connection just opened (valid during the call only).
struct NewConnection {
  std::span<const uint8_t> tls_exporter;           // empty for plain HTTP
  std::span<const uint8_t> local_certificate_der;  // the certificate this client presented, or empty
  std::shared_ptr<const PeerIdentity> peer;        // what the verification hook returned, or null
  // Sends a request on this connection (it is not retried on another one).
  std::function<Result<Response>(const Request&)> send;
};

// Runs after the handshake of every new connection, before the request that opened it; an error
// closes the connection and fails that request with the error.
using ConnectHook = std::function<Status(const NewConnection&)>;

}  // namespace moss::net
