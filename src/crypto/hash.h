// HMAC-SHA256 (EVP_MAC). SHA-256 itself is common/sha256.h, included here for the digest type.
// Stateless: thread-safe.
#pragma once

#include "common/sha256.h"
#include "common/status.h"

#include <cstdint>
#include <span>

namespace moss::crypto {

// HMAC-SHA256 with `key` (any length) over `data`.
Result<Sha256Digest> hmac_sha256(std::span<const uint8_t> key, std::span<const uint8_t> data);

}  // namespace moss::crypto
