// The simulated TEE: evidence for development and CI, with NO hardware protection.
//
// Measurement = SHA-256("moss-sim-measurement-v1" || 0x00 || SHA-256(binary) || identity): the
// running binary (/proc/self/exe by default) plus a configured identity string, so two services
// built from one binary can still be told apart. Evidence is signed with an Ed25519 "platform
// key" kept in a local file (created 0600 on first use). Anyone holding that file can forge
// evidence, which is why every verifier refuses simulated evidence unless explicitly allowed and
// every output labels it "simulated".
//
// Wire format (little-endian): "MOSSSIM1" | u16 version=1 | measurement[32] | report_data[64] |
// u16 identity_len | identity | platform_public_key[32] | signature[64]; the signature is over
// "moss simulated evidence v1" || 0x00 || every preceding byte.
#pragma once

#include "attest/claims.h"
#include "crypto/identity.h"

#include <array>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace moss::attest {

inline constexpr std::string_view kSimEvidenceMagic = "MOSSSIM1";
inline constexpr size_t kMaxSimIdentity = 256;
using SimPublicKey = std::array<uint8_t, 32>;

// Simulated measurement of `binary` with `identity`.
Result<std::array<uint8_t, 32>> simulated_measurement(const std::filesystem::path& binary,
                                                      std::string_view identity);

// The simulated platform key. Immutable after loading; thread-safe.
class SimPlatformKey {
 public:
  // Loads the 32-byte Ed25519 seed from `path`, creating it (0600) when absent. Refuses a file
  // readable by group or others.
  static Result<SimPlatformKey> load_or_create(const std::filesystem::path& path);
  // Reads only the public half of an existing key file (what a verifier needs).
  static Result<SimPublicKey> load_public_key(const std::filesystem::path& path);

  const SimPublicKey& public_key() const { return public_key_; }

  // Evidence binding `report_data` to `measurement` and `identity`.
  Result<std::vector<uint8_t>> sign_evidence(const std::array<uint8_t, 32>& measurement,
                                             std::span<const uint8_t, 64> report_data,
                                             std::string_view identity) const;

 private:
  std::shared_ptr<const crypto::Identity> key_;
  SimPublicKey public_key_{};
};

bool looks_like_simulated_evidence(std::span<const uint8_t> bytes);

// Verifies simulated evidence against `platform_key`. Fails with "simulated: ... refused" unless
// `allow` is true, before looking at anything else.
Result<Claims> verify_simulated_evidence(std::span<const uint8_t> evidence,
                                         const SimPublicKey& platform_key, bool allow,
                                         std::time_t at);

}  // namespace moss::attest
