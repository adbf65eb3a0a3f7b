// The OpenSSL calls attestation needs (hashing, ECDSA P-256, Ed25519, X.509, CRLs), wrapped once
// with RAII handles and Status errors. Every function is thread-safe; handles are not shared.
#pragma once

#include "common/status.h"

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <array>
#include <cstdint>
#include <ctime>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace moss::attest::ossl {

struct X509Free { void operator()(X509* p) const { X509_free(p); } };
struct X509CrlFree { void operator()(X509_CRL* p) const { X509_CRL_free(p); } };
struct PkeyFree { void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); } };
struct StoreFree { void operator()(X509_STORE* p) const { X509_STORE_free(p); } };
using X509Ptr = std::unique_ptr<X509, X509Free>;
using X509CrlPtr = std::unique_ptr<X509_CRL, X509CrlFree>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using StorePtr = std::unique_ptr<X509_STORE, StoreFree>;

using Sha256 = std::array<uint8_t, 32>;
Sha256 sha256(std::span<const uint8_t> data);
Sha256 sha256(std::span<const uint8_t> a, std::span<const uint8_t> b);

// Lowercase hex of bytes, and its inverse (accepts either case; fails on odd length or non-hex).
std::string to_hex(std::span<const uint8_t> bytes);
Result<std::vector<uint8_t>> from_hex(std::string_view hex);

// An uncompressed P-256 public key from its raw 64-byte X||Y form (as in DCAP quotes).
Result<PkeyPtr> p256_key_from_raw(std::span<const uint8_t> xy);
// Verifies an ECDSA-SHA256 signature given as raw 64-byte r||s over `message`.
Status verify_ecdsa_raw(EVP_PKEY* key, std::span<const uint8_t> message,
                        std::span<const uint8_t> raw_sig);

// Parses every certificate of a PEM bundle in order; fails on zero certificates or any bad block.
Result<std::vector<X509Ptr>> parse_pem_chain(std::string_view pem, size_t max_certs = 8);
Result<X509CrlPtr> parse_der_crl(std::span<const uint8_t> der);
std::vector<uint8_t> cert_der(X509* cert);
Sha256 cert_fingerprint(X509* cert);
std::string common_name(const X509_NAME* name);

// Verifies `leaf` up to `trusted_root` (the only trust anchor) through `untrusted` intermediates
// at time `at`. With CRLs, every certificate in the chain must be covered by a current CRL.
// The message names the failing OpenSSL check ("certificate has expired", "CRL has expired").
// Borrowed pointers: nothing is copied or freed.
Status verify_chain(X509* leaf, std::span<X509* const> untrusted, X509* trusted_root,
                    std::span<X509_CRL* const> crls, std::time_t at);

// The time of an ASN1_TIME as Unix seconds.
Result<std::time_t> asn1_time_to_unix(const ASN1_TIME* t);

// "2025-07-01T00:00:00Z" (fractional seconds and +00:00 accepted) <-> Unix seconds.
Result<std::time_t> parse_rfc3339(std::string_view text);
std::string format_rfc3339(std::time_t t);

// The most recent OpenSSL error as text (and clears the queue).
std::string last_error();

}  // namespace moss::attest::ossl
