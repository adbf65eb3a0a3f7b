// SHA-256, the one implementation every part hashes with (OpenSSL's EVP). Stateless: thread-safe.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

namespace moss {

inline constexpr size_t kSha256Size = 32;
using Sha256Digest = std::array<uint8_t, kSha256Size>;

// SHA-256 of `data`. OpenSSL failing here is an environment failure, so it aborts (no caller
// could recover from a missing SHA-256).
Sha256Digest sha256(std::span<const uint8_t> data);

}  // namespace moss
