// The identity directory that `moss identity new --out DIR` creates and later commands read:
//   DIR/identity.pem      Ed25519 private key, PKCS#8 PEM, mode 0600
//   DIR/identity.pub.pem  public key, SPKI PEM, mode 0644
// Stateless: thread-safe.
#pragma once

#include "common/status.h"
#include "crypto/identity.h"

#include <filesystem>
#include <string>

namespace moss::client {

inline constexpr char kIdentityPrivateFile[] = "identity.pem";
inline constexpr char kIdentityPublicFile[] = "identity.pub.pem";

struct IdentityFiles {
  std::string principal_id;
  std::filesystem::path private_path;
  std::filesystem::path public_path;
};

// Generates a fresh identity into `dir` (created if missing). Fails with already-exists when
// `dir` already holds an identity and `force` is false, so a key is never lost by accident.
Result<IdentityFiles> create_identity(const std::filesystem::path& dir, bool force);

}  // namespace moss::client
