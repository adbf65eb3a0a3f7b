#include "crypto/recovery_export.h"

#include "common/encoding.h"
#include "common/strict_json.h"

namespace moss::crypto {

namespace {

constexpr char kRecoveryFormat[] = "moss-keyservice-recovery-v1";
constexpr size_t kMaxExportBytes = 8 * 1024;
constexpr size_t kMaxSealedBytes = 1024;  // RSA up to 8192 bits

Status bad_export(std::string_view what) {
  return invalid_argument("recovery-export-invalid: {}", what);
}

}  // namespace

Result<RecoveryExport> RecoveryExport::seal(const RecoveryPublicKey& key,
                                            std::string_view prefix, const SecretBytes& state_key) {
  RecoveryExport e;
  e.prefix = std::string(prefix);
  e.recovery_key_sha256 = key.fingerprint();
  MOSS_ASSIGN_OR_RETURN(e.sealed_state_key, key.seal(state_key.span()));
  return e;
}

std::string RecoveryExport::to_json() const {
  nlohmann::ordered_json j = {{"format", kRecoveryFormat},
                              {"prefix", prefix},
                              {"recovery_key_sha256", recovery_key_sha256},
                              {"sealed_state_key", base64_encode(sealed_state_key)}};
  return j.dump(2) + "\n";
}

Result<RecoveryExport> RecoveryExport::parse(std::string_view json) {
  if (json.size() > kMaxExportBytes) return bad_export("larger than 8 KiB");
  auto j = parse_json_strict(json, "recovery export");
  if (!j.ok()) return bad_export(j.status().message());
  if (!j->is_object() || j->size() != 4) return bad_export("not an object of 4 fields");
  for (const char* f : {"format", "prefix", "recovery_key_sha256", "sealed_state_key"}) {
    if (!j->contains(f) || !(*j)[f].is_string()) return bad_export(fmt::format("field {} missing", f));
  }
  if ((*j)["format"] != kRecoveryFormat) return bad_export("unknown format");
  RecoveryExport e;
  e.prefix = (*j)["prefix"].get<std::string>();
  e.recovery_key_sha256 = (*j)["recovery_key_sha256"].get<std::string>();
  auto sealed = base64_decode((*j)["sealed_state_key"].get<std::string>(), kMaxSealedBytes);
  if (!sealed.ok() || sealed->empty()) return bad_export("sealed_state_key is not base64 of at most 1 KiB");
  e.sealed_state_key = std::move(sealed).value();
  return e;
}

Result<SecretBytes> RecoveryExport::open(const RecoveryPrivateKey& key) const {
  if (key.fingerprint() != recovery_key_sha256) {
    return unauthenticated("recovery-open-failed: the export is sealed to recovery key {}, not to "
                           "this one ({})", recovery_key_sha256, key.fingerprint());
  }
  MOSS_ASSIGN_OR_RETURN(SecretBytes state_key, key.open(sealed_state_key));
  if (state_key.size() != kStateKeyBytes) return bad_export("the sealed state key is not 32 bytes");
  return state_key;
}

}  // namespace moss::crypto
