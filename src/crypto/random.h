// Cryptographically secure randomness from OpenSSL's DRBG (seeded by the OS). Thread-safe.
#pragma once

#include "common/secret_bytes.h"
#include "common/status.h"

#include <cstdint>
#include <span>

namespace moss::crypto {

// Fills `out`; fails (internal) only if the DRBG cannot be seeded: callers must not fall back.
Status random_bytes(std::span<uint8_t> out);
// A fresh secret of `n` bytes (keys, nonces that are themselves secret).
Result<SecretBytes> random_secret(size_t n);

}  // namespace moss::crypto
