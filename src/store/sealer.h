// Sealer: AES-256-GCM encryption of values stored at rest.
//
// Sealed value = 0x01 | nonce (12, random) | ciphertext | tag (16). The associated data names what
// the value is and where it belongs (e.g. "model-key\0<model id>\0<version>"), so a sealed value
// copied into another row fails to open. Random nonces: at 2^32 seals per key the collision chance
// stays below 2^-32, far beyond what a KeyService writes.
// Immutable after construction; thread-safe (each call makes its own cipher context).
#pragma once

#include "common/secret_bytes.h"
#include "common/status.h"

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace moss::store {

class Sealer {
 public:
  // `key` must be 32 bytes (derive_sealing_key).
  static Result<Sealer> create(SecretBytes key);

  Result<std::vector<uint8_t>> seal(std::string_view aad, std::span<const uint8_t> plaintext) const;
  // data-loss with reason "sealed-value-invalid" when the value was altered, sealed under another
  // key or for another aad: the state is damaged or not ours, never the caller's mistake.
  Result<SecretBytes> open(std::string_view aad, std::span<const uint8_t> sealed) const;

  // A 32-byte key for another purpose, HKDF-derived from the sealing key with `info`.
  Result<SecretBytes> derive_subkey(std::string_view info) const;

 private:
  explicit Sealer(SecretBytes key) : key_(std::move(key)) {}
  SecretBytes key_;
};

}  // namespace moss::store
