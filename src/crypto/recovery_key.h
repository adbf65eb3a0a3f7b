// The operator's recovery key pair (RSA, at least 3072 bits): the KeyService's replicated state
// key is sealed to its public half at setup, so an operator holding the private half can restore
// service after every replica is lost (docs/keyservice.md, "Recovery"). RSA-OAEP with SHA-256
// (and MGF1-SHA-256) and the label "moss-keyservice-recovery-v1", so a ciphertext made for another
// use of the same key does not open here.
// Immutable after construction; thread-safe.
#pragma once

#include "common/secret_bytes.h"
#include "common/status.h"

#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace moss::crypto {

inline constexpr int kMinRecoveryKeyBits = 3072;

class RecoveryPublicKey {
 public:
  // A PEM SubjectPublicKeyInfo of an RSA key of at least kMinRecoveryKeyBits (else
  // invalid-argument "recovery-key-weak").
  static Result<RecoveryPublicKey> from_pem(std::string_view pem);
  static Result<RecoveryPublicKey> load(const std::filesystem::path& path);
  RecoveryPublicKey(RecoveryPublicKey&&) noexcept;
  RecoveryPublicKey& operator=(RecoveryPublicKey&&) noexcept;
  ~RecoveryPublicKey();

  Result<std::vector<uint8_t>> seal(std::span<const uint8_t> secret) const;
  // Hex SHA-256 of the public key's DER: names the key in exports without revealing anything.
  const std::string& fingerprint() const { return fingerprint_; }
  const std::string& pem() const { return pem_; }

  struct Impl;

 private:
  RecoveryPublicKey(std::unique_ptr<Impl> impl, std::string fingerprint, std::string pem);
  std::unique_ptr<Impl> impl_;
  std::string fingerprint_;
  std::string pem_;
};

class RecoveryPrivateKey {
 public:
  // A fresh key pair of `bits` (>= kMinRecoveryKeyBits).
  static Result<RecoveryPrivateKey> generate(int bits = kMinRecoveryKeyBits);
  // An unencrypted PEM private key (file: mode 0600 or stricter is the caller's business).
  static Result<RecoveryPrivateKey> from_pem(std::span<const uint8_t> pem);
  static Result<RecoveryPrivateKey> load(const std::filesystem::path& path);
  RecoveryPrivateKey(RecoveryPrivateKey&&) noexcept;
  RecoveryPrivateKey& operator=(RecoveryPrivateKey&&) noexcept;
  ~RecoveryPrivateKey();

  // unauthenticated "recovery-open-failed" when `sealed` was not made for this key (or altered).
  Result<SecretBytes> open(std::span<const uint8_t> sealed) const;
  Result<SecretBytes> private_pem() const;
  Result<std::string> public_pem() const;
  const std::string& fingerprint() const { return fingerprint_; }

  struct Impl;

 private:
  RecoveryPrivateKey(std::unique_ptr<Impl> impl, std::string fingerprint);
  std::unique_ptr<Impl> impl_;
  std::string fingerprint_;
};

}  // namespace moss::crypto
