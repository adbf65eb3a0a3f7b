// Where the sealing key comes from: a key that only the KeyService's TEE identity can derive.
//
//   GramineSealingKey  under SGX with Gramine: /dev/attestation/keys/_sgx_mrenclave, the 128-bit
//                      key the CPU derives for this exact enclave (MRENCLAVE): another binary, or
//                      the same files outside the enclave, cannot read it.
//   FileSealingKey     a 32-byte random key in a 0600 file (simulated TEE, or a TDX guest with an
//                      encrypted disk): protects nothing against whoever can read the file.
// Either way the raw key goes through HKDF-SHA256 (info "moss-store-sealing-v1") to an AES-256 key.
// Implementations are immutable after construction; thread-safe.
#pragma once

#include "common/secret_bytes.h"
#include "common/status.h"

#include <filesystem>
#include <memory>
#include <string>

namespace moss::store {

inline constexpr char kGramineMrenclaveKeyPath[] = "/dev/attestation/keys/_sgx_mrenclave";

class SealingKeySource {
 public:
  virtual ~SealingKeySource() = default;
  virtual std::string describe() const = 0;  // for logs; never the key
  // The raw key material (before HKDF).
  virtual Result<SecretBytes> raw_key() const = 0;
};
using SealingKeySourcePtr = std::unique_ptr<SealingKeySource>;

// Reads a 16- or 32-byte key from Gramine's pseudo-file (path injectable for tests).
SealingKeySourcePtr make_gramine_sealing_key(std::filesystem::path path = kGramineMrenclaveKeyPath);
// A 32-byte key file, created with mode 0600 from fresh randomness when `create` and absent;
// a file readable by group or others is refused.
SealingKeySourcePtr make_file_sealing_key(std::filesystem::path path, bool create);

// HKDF of the source's raw key: the AES-256-GCM key a Sealer uses.
Result<SecretBytes> derive_sealing_key(const SealingKeySource& source);

}  // namespace moss::store
