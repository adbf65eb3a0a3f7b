// ECDSA P-256 as DCAP quotes encode it: the attestation key as raw X||Y, signatures as raw r||s,
// over SHA-256. Thread-safe.
#pragma once

#include "common/ossl.h"
#include "common/status.h"

#include <span>

namespace moss::attest {

// An uncompressed P-256 public key from its raw 64-byte X||Y form; fails unless on the curve.
Result<ossl::PkeyPtr> p256_key_from_raw(std::span<const uint8_t> xy);
// Verifies an ECDSA-SHA256 signature given as raw 64-byte r||s over `message`.
Status verify_ecdsa_raw(EVP_PKEY* key, std::span<const uint8_t> message,
                        std::span<const uint8_t> raw_sig);

}  // namespace moss::attest
