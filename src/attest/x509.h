// The X.509 side of DCAP verification: CRLs, certificate fingerprints and names, and the chain
// check from a PCK or TCB-signing certificate up to the pinned Intel root. Handles and PEM/DER
// reading are common/ossl.h's. Every function is thread-safe; handles are not shared.
#pragma once

#include "common/ossl.h"
#include "common/sha256.h"
#include "common/status.h"

#include <ctime>
#include <span>
#include <string>

namespace moss::attest::x509 {

Result<ossl::X509CrlPtr> parse_der_crl(std::span<const uint8_t> der);
// SHA-256 of the certificate's DER.
Sha256Digest cert_fingerprint(X509* cert);
std::string common_name(const X509_NAME* name);

// Verifies `leaf` up to `trusted_root` (the only trust anchor) through `untrusted` intermediates
// at time `at`. With CRLs, every certificate in the chain must be covered by a current CRL.
// The message names the failing OpenSSL check ("certificate has expired", "CRL has expired").
// Borrowed pointers: nothing is copied or freed.
Status verify_chain(X509* leaf, std::span<X509* const> untrusted, X509* trusted_root,
                    std::span<X509_CRL* const> crls, std::time_t at);

}  // namespace moss::attest::x509
