// HKDF-SHA256 (RFC 5869) through EVP_KDF. Stateless: thread-safe.
#pragma once

#include "common/secret_bytes.h"
#include "common/status.h"

#include <cstdint>
#include <span>

namespace moss::crypto {

// Extract-then-expand: `length` bytes (1..8160) from input key material `ikm`, an optional
// `salt` (empty means the RFC's zero salt) and a context string `info` that separates uses.
Result<SecretBytes> hkdf_sha256(std::span<const uint8_t> ikm, std::span<const uint8_t> salt,
                                std::span<const uint8_t> info, size_t length);

}  // namespace moss::crypto
