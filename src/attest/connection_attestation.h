// Per-connection freshness for attested TLS: evidence bound to one TLS connection.
//
// An attested certificate (attested_tls.h) proves what produced its key, but its evidence is as
// old as the certificate (hours): a certificate and key stolen from a TEE replay until expiry.
// Connection attestation closes that window. After the handshake the client produces fresh
// evidence whose report data is
//   [0, 32)  SHA-256("moss-connection-attestation-v1" || 0x00 || exporter || SPKI SHA-256)
//   [32, 64) SHA-256("moss-attested-tls-v1" || 0x00 || purpose)   (as in the certificate)
// where `exporter` is the connection's TLS exporter value (net/connection_context.h): it depends
// on the random the server chose for this connection, so it is a server-chosen nonce without an
// extra round trip, and only the two ends of this connection know it. SPKI is the client's
// certificate key on this connection. The client sends the raw evidence once per connection
// (POST to a path the server names, body application/octet-stream); the server verifies it
// against the same policy as the certificate, checks that it names the same TEE and measurement
// as the certificate, and attaches a ConnectionAttestation to the connection. Evidence from
// another connection fails "report-data". Cost: one evidence production (a quote: milliseconds)
// and one round trip per connection; keep-alive amortizes it.
#pragma once

#include "attest/attested_tls.h"
#include "net/connection_context.h"

#include <array>
#include <memory>
#include <span>
#include <string>

namespace moss::attest {

// The report data binding a connection's exporter and the client's certificate key to a purpose.
std::array<uint8_t, 64> connection_report_data(std::span<const uint8_t> exporter,
                                               const std::array<uint8_t, 32>& spki_sha256,
                                               std::string_view purpose);

// Client: a hook (ClientOptions::on_connect) that, on every new connection, produces evidence
// over connection_report_data(exporter, our certificate's SPKI, purpose) and POSTs it to `path`.
// A refusal fails the connection with the server's status. `producer` must be thread-safe when
// shared (make_shared_producer).
net::ConnectHook make_connection_attestation_hook(std::shared_ptr<EvidenceProducer> producer,
                                                  std::string purpose, std::string path);

// Server: what a verified connection carries (net::ConnectionContext::attachment()).
struct ConnectionAttestation : net::ConnectionAttachment {
  Claims claims;
  std::array<uint8_t, 32> spki_sha256{};
};

// Server: verifies connection evidence. Immutable, thread-safe.
class ConnectionEvidenceVerifier {
 public:
  // `config`: the same purpose, policy and verify options as the peer's certificate.
  static Result<ConnectionEvidenceVerifier> create(AttestedPeerConfig config);

  // Report data binds `connection`'s exporter, `peer`'s certificate key and the purpose; the
  // evidence verifies and meets the policy; it names the TEE and measurement of `peer`'s
  // certificate. Errors are unauthenticated with a "connection-evidence-..." reason prefix.
  Result<std::shared_ptr<const ConnectionAttestation>> verify(
      std::span<const uint8_t> evidence, const net::ConnectionContext& connection,
      const AttestedPeerIdentity& peer) const;

  // A server handler's whole step: the request's body is the evidence, its peer an attested
  // certificate (else "connection-evidence-invalid"); on success the result is attached to the
  // request's connection and returned.
  Result<std::shared_ptr<const ConnectionAttestation>> accept(const net::Request& request) const;

 private:
  ConnectionEvidenceVerifier(std::shared_ptr<const AttestedPeerConfig> config,
                             std::shared_ptr<const EvidenceVerifier> verifier)
      : config_(std::move(config)), verifier_(std::move(verifier)) {}
  std::shared_ptr<const AttestedPeerConfig> config_;
  std::shared_ptr<const EvidenceVerifier> verifier_;
};

// The connection's attestation when fresh evidence was verified on it, else null.
std::shared_ptr<const ConnectionAttestation> connection_attestation(
    const std::shared_ptr<net::ConnectionContext>& connection);

}  // namespace moss::attest
