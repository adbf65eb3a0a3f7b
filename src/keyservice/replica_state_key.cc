#include "keyservice/replica_state_key.h"

#include "common/encoding.h"
#include "common/file_util.h"
#include "crypto/hkdf.h"
#include "crypto/random.h"

namespace moss::keyservice {

namespace fs = std::filesystem;

namespace {

std::string local_aad(std::string_view prefix) {
  std::string a = "moss-replica-state-key-v1";
  a.push_back('\0');
  a.append(prefix);
  return a;
}

}  // namespace

Result<SecretBytes> new_state_key() { return crypto::random_secret(kStateKeyBytes); }

Result<store::Sealer> state_sealer(const SecretBytes& state_key) {
  if (state_key.size() != kStateKeyBytes) return internal_error("state key of {} bytes", state_key.size());
  // The same derivation as a sealing source's key (store/sealing_key.h), under its own label.
  constexpr std::string_view kInfo = "moss-replica-state-sealing-v1";
  MOSS_ASSIGN_OR_RETURN(SecretBytes key, crypto::hkdf_sha256(state_key.span(), {}, as_bytes(kInfo), 32));
  return store::Sealer::create(std::move(key));
}

Result<std::optional<SecretBytes>> load_local_state_key(const store::Sealer& local,
                                                        const fs::path& state_dir,
                                                        std::string_view prefix) {
  const fs::path path = state_dir / kStateKeyFile;
  std::error_code ec;
  if (!fs::exists(path, ec)) return std::optional<SecretBytes>();
  MOSS_ASSIGN_OR_RETURN(auto sealed, read_file(path, 1024));
  auto key = local.open(local_aad(prefix), sealed);
  if (!key.ok() || key->size() != kStateKeyBytes) {
    return data_loss("replica-state-key-invalid: {} does not open with this replica's sealing key "
                     "for prefix {} (another sealing key, another prefix, or an altered file)",
                     path.string(), prefix);
  }
  return std::optional<SecretBytes>(std::move(key).value());
}

Status save_local_state_key(const store::Sealer& local, const fs::path& state_dir,
                            std::string_view prefix, const SecretBytes& state_key) {
  MOSS_ASSIGN_OR_RETURN(auto sealed, local.seal(local_aad(prefix), state_key.span()));
  return write_file(state_dir / kStateKeyFile, sealed, 0600);
}

}  // namespace moss::keyservice
