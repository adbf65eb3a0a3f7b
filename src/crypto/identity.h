// Ed25519 identities: a principal is its public key, and its id is derived from the key's hash,
// so ids are self-certifying (design: KeyService).
//
// Principal id: lowercase hex of the first 16 bytes of SHA-256(raw 32-byte public key), i.e.
// 32 characters of [0-9a-f]. 128 bits keep collisions out of reach and the id contains no '/',
// so `<owner id>/<model name>` model ids split unambiguously.
//
// Identity and PublicKey are immutable after construction: const methods are thread-safe.
#pragma once

#include "common/secret_bytes.h"
#include "common/status.h"

#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace moss::crypto {

inline constexpr size_t kEd25519PublicKeySize = 32;
inline constexpr size_t kEd25519PrivateKeySize = 32;
inline constexpr size_t kEd25519SignatureSize = 64;
inline constexpr size_t kPrincipalIdChars = 32;

using Ed25519Signature = std::array<uint8_t, kEd25519SignatureSize>;
using Ed25519PublicRaw = std::array<uint8_t, kEd25519PublicKeySize>;

// Derives the principal id from a raw public key (see the header comment).
std::string principal_id_of(std::span<const uint8_t, kEd25519PublicKeySize> raw_public_key);
// True when `id` has the principal id shape (32 lowercase hex characters).
bool is_principal_id(std::string_view id);

// True when `encoded` is a canonical encoding (y < p) of a point outside the small-order
// subgroup (not one of the 8 torsion points). Strict verification refuses anything else as a
// public key or as a signature's R: with a small-order key one constant signature verifies for
// every message.
bool is_strict_ed25519_point(std::span<const uint8_t, 32> encoded);

class PublicKey {
 public:
  // Strict: a non-canonical or small-order key is refused (invalid-argument).
  static Result<PublicKey> from_raw(std::span<const uint8_t> raw);
  // Parses an SPKI PEM ("BEGIN PUBLIC KEY") holding an Ed25519 key; anything else fails.
  static Result<PublicKey> from_pem(std::string_view pem);
  static Result<PublicKey> load(const std::filesystem::path& path);

  const Ed25519PublicRaw& raw() const { return raw_; }
  std::string principal_id() const { return principal_id_of(raw_); }
  Result<std::string> to_pem() const;

  // ok, or unauthenticated when the signature does not verify (any length other than 64 fails).
  // Strict: R must be a canonical point of large order and S < L (no malleable encodings).
  Status verify(std::span<const uint8_t> message, std::span<const uint8_t> signature) const;

 private:
  friend class Identity;
  explicit PublicKey(const Ed25519PublicRaw& raw) : raw_(raw) {}
  Ed25519PublicRaw raw_;
};

class Identity {
 public:
  static Result<Identity> generate();
  // From a raw 32-byte seed (RFC 8032 "secret key"); used by tests with published vectors.
  static Result<Identity> from_private_raw(std::span<const uint8_t> seed);
  // Parses a PKCS#8 PEM ("BEGIN PRIVATE KEY", unencrypted) holding an Ed25519 key.
  static Result<Identity> from_pem(std::span<const uint8_t> pem);
  static Result<Identity> load(const std::filesystem::path& private_pem_path);

  Identity(Identity&&) noexcept;
  Identity& operator=(Identity&&) noexcept;
  ~Identity();

  const PublicKey& public_key() const { return public_key_; }
  std::string principal_id() const { return public_key_.principal_id(); }

  Result<Ed25519Signature> sign(std::span<const uint8_t> message) const;
  // The PKCS#8 PEM text, held in SecretBytes.
  Result<SecretBytes> private_pem() const;
  Result<SecretBytes> private_raw() const;

  // Writes the private key PEM with mode 0600 (atomically; never readable by others).
  Status save_private(const std::filesystem::path& path) const;

 private:
  struct Impl;
  Identity(std::unique_ptr<Impl> impl, PublicKey public_key);
  static Result<Identity> from_pkey(void* pkey);
  std::unique_ptr<Impl> impl_;
  PublicKey public_key_;
};

}  // namespace moss::crypto
