// AES-256-GCM with a reusable context: the key schedule is set up once and each message only
// re-keys the nonce, which is what makes the chunked model format cost little over raw AEAD.
//
// Fixed parameters: 32-byte key, 12-byte nonce, 16-byte tag. Not thread-safe (it owns EVP
// contexts): use one AesGcm per thread. Move-only.
#pragma once

#include "common/secret_bytes.h"
#include "common/status.h"

#include <cstdint>
#include <memory>
#include <span>

namespace moss::crypto {

inline constexpr size_t kAesGcmKeySize = 32;
inline constexpr size_t kAesGcmNonceSize = 12;
inline constexpr size_t kAesGcmTagSize = 16;

class AesGcm {
 public:
  // Fails with invalid-argument unless `key` is 32 bytes. The key is copied into OpenSSL's
  // context (which wipes it on free); the caller keeps ownership of its SecretBytes.
  static Result<AesGcm> create(std::span<const uint8_t> key);

  AesGcm(AesGcm&&) noexcept;
  AesGcm& operator=(AesGcm&&) noexcept;
  ~AesGcm();

  // Encrypts `in` to `out` (same size; `out` may alias `in` exactly) and writes the tag.
  // A nonce must never repeat under one key; the callers' formats make sure of that.
  Status seal(std::span<const uint8_t, kAesGcmNonceSize> nonce, std::span<const uint8_t> aad,
              std::span<const uint8_t> in, std::span<uint8_t> out,
              std::span<uint8_t, kAesGcmTagSize> tag);

  // Decrypts and verifies. On a tag mismatch returns unauthenticated and wipes `out`, so no
  // unauthenticated plaintext is ever left for the caller to use by mistake.
  Status open(std::span<const uint8_t, kAesGcmNonceSize> nonce, std::span<const uint8_t> aad,
              std::span<const uint8_t> in, std::span<const uint8_t, kAesGcmTagSize> tag,
              std::span<uint8_t> out);

 private:
  struct Impl;
  explicit AesGcm(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace moss::crypto
