// SHA-256 and HMAC-SHA256 (EVP). Stateless: thread-safe.
#pragma once

#include "common/status.h"

#include <array>
#include <cstdint>
#include <span>

namespace moss::crypto {

inline constexpr size_t kSha256Size = 32;
using Sha256Digest = std::array<uint8_t, kSha256Size>;

// SHA-256 of `data`. OpenSSL failing here is an environment failure, so it aborts (no caller
// could recover from a missing SHA-256).
Sha256Digest sha256(std::span<const uint8_t> data);

// HMAC-SHA256 with `key` (any length) over `data`.
Result<Sha256Digest> hmac_sha256(std::span<const uint8_t> key, std::span<const uint8_t> data);

}  // namespace moss::crypto
