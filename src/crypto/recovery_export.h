// The recovery export of a replicated KeyService state: its 32-byte state key sealed (RSA-OAEP,
// crypto/recovery_key.h) to the operator's recovery public key, with the etcd prefix of the state
// and the fingerprint of the key it is sealed to. Written at setup by the first replica
// (<state-dir>/recovery.json and the etcd key <prefix>recovery); opened with the private key by
// `moss-keyservice --recover` after losing every replica (docs/keyservice.md, "Recovery").
// JSON: {"format":"moss-keyservice-recovery-v1","prefix","recovery_key_sha256","sealed_state_key"}.
// Failures: invalid-argument "recovery-export-invalid", unauthenticated "recovery-open-failed".
// Plain value; thread-compatible.
#pragma once

#include "common/secret_bytes.h"
#include "common/status.h"
#include "crypto/recovery_key.h"

#include <string>
#include <string_view>
#include <vector>

namespace moss::crypto {

inline constexpr size_t kStateKeyBytes = 32;

struct RecoveryExport {
  std::string prefix;
  std::string recovery_key_sha256;
  std::vector<uint8_t> sealed_state_key;

  static Result<RecoveryExport> seal(const RecoveryPublicKey& key, std::string_view prefix,
                                     const SecretBytes& state_key);
  // Untrusted input: bounded and checked field by field.
  static Result<RecoveryExport> parse(std::string_view json);
  std::string to_json() const;
  // The state key; refused when sealed to another key, altered, or not 32 bytes.
  Result<SecretBytes> open(const RecoveryPrivateKey& key) const;
};

}  // namespace moss::crypto
