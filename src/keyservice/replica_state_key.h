// The state key of a replicated (etcd) KeyService state: 32 random bytes the first replica
// creates, from which every value in etcd is sealed and every row authenticated (the store's
// Sealer is HKDF of it). Each replica's own sealing key (MRENCLAVE-bound under Gramine) differs,
// so the state key cannot be that key; instead it travels between replicas only over mutually
// attested TLS (replica_provisioning.h) and rests only sealed:
//   <state-dir>/state-key.sealed   under this replica's own sealing key, bound to the etcd prefix
//   recovery export                RSA-OAEP to the operator's recovery public key
//                                  (<state-dir>/recovery.json and the etcd key <prefix>recovery)
// Neither etcd nor its operator ever holds it in clear. docs/keyservice.md, "High availability".
// Failures carry a reason: replica-state-key-invalid (data-loss: the local copy does not open),
// recovery-export-invalid and recovery-open-failed (crypto/recovery_export.h).
// Stateless functions: thread-safe.
#pragma once

#include "common/secret_bytes.h"
#include "common/status.h"
#include "crypto/recovery_export.h"
#include "store/sealer.h"

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace moss::keyservice {

using crypto::kStateKeyBytes;
using crypto::RecoveryExport;

inline constexpr char kStateKeyFile[] = "state-key.sealed";
inline constexpr char kRecoveryExportFile[] = "recovery.json";

// A fresh random state key.
Result<SecretBytes> new_state_key();
// The sealer of the etcd state: HKDF-SHA256 of the state key (as any sealing source's key).
Result<store::Sealer> state_sealer(const SecretBytes& state_key);

// The local copy: nullopt when <state_dir>/state-key.sealed does not exist.
Result<std::optional<SecretBytes>> load_local_state_key(const store::Sealer& local,
                                                        const std::filesystem::path& state_dir,
                                                        std::string_view prefix);
Status save_local_state_key(const store::Sealer& local, const std::filesystem::path& state_dir,
                            std::string_view prefix, const SecretBytes& state_key);

}  // namespace moss::keyservice
