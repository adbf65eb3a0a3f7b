// TLS credentials: key pairs, self-signed certificates (optionally carrying extra X.509
// extensions, e.g. TEE evidence for attested TLS), PEM loading, and public-key hashes.
//
// Typical attested-TLS use (issue 4):
//   auto key = generate_private_key_pem();                       // SecretBytes PEM
//   auto spki_hash = public_key_sha256(*key);                    // bind into report data
//   CertificateOptions opt; opt.extensions.push_back({"1.3.6.1.4.1.99999.1", evidence, false});
//   auto cert = self_signed_certificate_pem(*key, opt);
// and on the verifying side, from PeerCertificate::leaf_der:
//   certificate_extension(der, oid) and certificate_public_key_sha256(der).
// All functions are thread-safe (no shared state).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/secret_bytes.h"
#include "common/status.h"

namespace moss::net {

enum class KeyType { kEcdsaP256, kEd25519 };

struct CertificateExtension {
  std::string oid;             // dotted, e.g. "1.2.840.113741.1.13.1"
  std::vector<uint8_t> value;  // the extnValue contents (usually DER), wrapped in an OCTET STRING
  bool critical = false;
};

struct CertificateOptions {
  std::string common_name = "localhost";
  std::vector<std::string> dns_names = {"localhost"};
  std::vector<std::string> ip_addresses = {"127.0.0.1"};
  // Validity: from `not_before` until `not_before + lifetime`; by default from one minute ago (to
  // absorb clock skew between peers) until `lifetime` from now. Attested certificates are
  // short-lived (attest/attested_tls.h).
  std::chrono::seconds lifetime = std::chrono::hours(24 * 365);
  std::optional<std::time_t> not_before;
  std::vector<CertificateExtension> extensions;
};

// How far a peer's clock may be off when checking a certificate's validity window.
inline constexpr std::chrono::seconds kCertificateClockSkew{300};

// The validity window of a DER certificate (seconds since the epoch, UTC).
struct CertificateValidity {
  std::time_t not_before = 0;
  std::time_t not_after = 0;
};

// A certificate and its private key, both PEM.
struct TlsCredentials {
  std::string cert_pem;
  SecretBytes key_pem;
};

// A fresh private key, PKCS#8 PEM.
Result<SecretBytes> generate_private_key_pem(KeyType type = KeyType::kEcdsaP256);

// The DER SubjectPublicKeyInfo of a private key's public half, and its SHA-256.
Result<std::vector<uint8_t>> public_key_spki_der(const SecretBytes& key_pem);
Result<std::array<uint8_t, 32>> public_key_sha256(const SecretBytes& key_pem);

// A self-signed X.509 v3 certificate for `key_pem` (serial random, validity from the options,
// SANs from the options, basicConstraints CA:FALSE, extra extensions appended).
Result<std::string> self_signed_certificate_pem(const SecretBytes& key_pem,
                                                const CertificateOptions& options = {});

// Key plus self-signed certificate in one call.
Result<TlsCredentials> generate_self_signed(const CertificateOptions& options = {},
                                            KeyType type = KeyType::kEcdsaP256);

// The most certificates a PEM chain may hold (configured files and certificate_pem_to_der).
inline constexpr size_t kMaxChainCertificates = 16;

// PEM <-> DER for one certificate. certificate_pem_to_der takes the first certificate of the chain
// in `pem` (the leaf; at most kMaxChainCertificates).
Result<std::vector<uint8_t>> certificate_pem_to_der(std::string_view pem);
Result<std::string> certificate_der_to_pem(std::span<const uint8_t> der);

// From an (untrusted) DER certificate: its SubjectPublicKeyInfo DER and that DER's SHA-256.
Result<std::vector<uint8_t>> certificate_spki_der(std::span<const uint8_t> cert_der);
Result<std::array<uint8_t, 32>> certificate_public_key_sha256(std::span<const uint8_t> cert_der);

// The extension `oid` of a DER certificate: nullopt when absent; an error when the certificate
// does not parse or carries the extension twice (ambiguous evidence is refused).
Result<std::optional<CertificateExtension>> certificate_extension(std::span<const uint8_t> cert_der,
                                                                  std::string_view oid);

// The validity window of an (untrusted) DER certificate.
Result<CertificateValidity> certificate_validity(std::span<const uint8_t> cert_der);
// unauthenticated unless notBefore - skew <= at <= notAfter + skew; names the dates it compared.
Status check_certificate_validity(std::span<const uint8_t> cert_der, std::time_t at,
                                  std::chrono::seconds skew = kCertificateClockSkew);

// The subject common name of a DER certificate ("" when it has none).
Result<std::string> certificate_common_name(std::span<const uint8_t> cert_der);

// Parses a private key PEM given as a string.
Result<SecretBytes> private_key_pem_from_string(std::string_view pem);

}  // namespace moss::net
