// Attested TLS (RA-TLS): TEE evidence inside a self-signed certificate, checked in the handshake.
//
// The certificate carries the extension kAttestedTlsEvidenceOid (a private arc under 2.25, the
// UUID-based OID space that needs no registration) whose value is the raw evidence: a DCAP quote
// or simulated evidence. The evidence's 64-byte report data is
//   [0, 32)  SHA-256 of the certificate's SubjectPublicKeyInfo DER
//   [32, 64) SHA-256("moss-attested-tls-v1" || 0x00 || purpose)
// so the evidence vouches for this key and this use (a KeyService certificate cannot be replayed
// as a worker's). The TLS handshake proves possession of the key. Freshness is the certificate's
// lifetime: attested certificates are short-lived (kAttestedCertificateLifetime by default), their
// validity dates are checked on every verification, and running services renew them in place
// (make_renewing_attested_credentials); and, where it matters, fresh evidence bound to each
// connection (connection_attestation.h).
//
// The peer verifier runs as net's verification hook on either side and returns an
// AttestedPeerIdentity holding the verified claims; handlers read it from Request::peer, clients
// from Client::peer().
#pragma once

#include "attest/evidence_producer.h"
#include "attest/evidence_verifier.h"
#include "net/peer_identity.h"
#include "net/renewable_credentials.h"
#include "net/tls_config.h"
#include "net/tls_credentials.h"

#include <chrono>
#include <memory>

namespace moss::attest {

inline constexpr char kAttestedTlsEvidenceOid[] = "2.25.73943003643445851295599434248433295863.1";
inline constexpr size_t kMaxCertEvidenceBytes = 64 * 1024;

// The report data binding a public key (its SPKI SHA-256) to a purpose label.
std::array<uint8_t, 64> attested_tls_report_data(const std::array<uint8_t, 32>& spki_sha256,
                                                 std::string_view purpose);

// How long an attested certificate is valid by default; renewed at half of it.
inline constexpr std::chrono::seconds kAttestedCertificateLifetime = std::chrono::hours(6);

// The certificate-lifetime settings of the KeyService and the worker: a duration of at least
// one minute (shorter would renew faster than a handshake and clock skew allow), as seconds.
Result<std::chrono::seconds> attested_certificate_lifetime(std::chrono::milliseconds configured,
                                                          std::string_view setting);

struct AttestedCredentialOptions {
  std::string purpose = "moss";
  // The evidence extension is appended to these; lifetime kAttestedCertificateLifetime.
  net::CertificateOptions certificate = [] {
    net::CertificateOptions c;
    c.lifetime = kAttestedCertificateLifetime;
    return c;
  }();
};

// A fresh P-256 key and a self-signed certificate carrying evidence bound to it.
Result<net::TlsCredentials> make_attested_credentials(EvidenceProducer& producer,
                                                      const AttestedCredentialOptions& options);

// The same, made now and remade with fresh evidence and a fresh key every half lifetime for as
// long as the returned object lives (servers and clients configured with it pick up each new
// certificate at their next handshake). Fails if the first credentials cannot be made.
Result<net::RenewableCredentialsPtr> make_renewing_attested_credentials(
    std::shared_ptr<EvidenceProducer> producer, AttestedCredentialOptions options);

// What a verified peer is. Immutable.
struct AttestedPeerIdentity : net::PeerIdentity {
  Claims claims;
  std::array<uint8_t, 32> spki_sha256{};
};

// How peers are judged. The cache (if any) is shared with whoever refreshes collateral.
struct AttestedPeerConfig {
  std::string purpose = "moss";   // the label the peer's report data must bind
  Policy policy;                  // what the peer must be
  EvidenceVerifyOptions verify;   // time (default now), collateral or cache, simulated key
  std::shared_ptr<const CollateralCache> cache;  // kept alive for verify.cache
};

// Verifies one peer certificate (DER): extension present once, evidence verifies, report data
// binds the certificate's key and the purpose, policy holds. Thread-safe.
Result<std::shared_ptr<const AttestedPeerIdentity>> verify_attested_certificate(
    std::span<const uint8_t> cert_der, const EvidenceVerifier& verifier,
    const AttestedPeerConfig& config);

// The hook for net's TLS stack (server or client side).
Result<net::PeerVerifier> make_attested_peer_verifier(AttestedPeerConfig config);

// Server configuration presenting `credentials`; with `client_verifier`, clients must present an
// attested certificate too (mutual attested TLS).
net::TlsServerConfig attested_server_config(net::TlsCredentials credentials,
                                            net::PeerVerifier client_verifier = nullptr);
net::TlsServerConfig attested_server_config(net::RenewableCredentialsPtr credentials,
                                            net::PeerVerifier client_verifier = nullptr);
// Client configuration verifying the server with `server_verifier`; with `credentials`, the
// client presents its own attested certificate.
net::TlsClientConfig attested_client_config(net::PeerVerifier server_verifier,
                                            std::optional<net::TlsCredentials> credentials = std::nullopt);
net::TlsClientConfig attested_client_config(net::PeerVerifier server_verifier,
                                            net::RenewableCredentialsPtr credentials);

}  // namespace moss::attest
