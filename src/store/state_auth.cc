#include "store/state_auth.h"

#include "common/encoding.h"
#include "crypto/hash.h"

namespace moss::store {

namespace {
std::string row_bytes(std::string_view table, std::span<const std::string> fields, int64_t version) {
  std::string buf("moss-row-v1", 11);
  buf.push_back('\0');
  append_field(buf, table);
  append_field(buf, std::to_string(fields.size()));
  for (const std::string& f : fields) append_field(buf, f);
  append_field(buf, std::to_string(version));
  return buf;
}
}  // namespace

void append_field(std::string& out, std::string_view field) {
  uint32_t n = static_cast<uint32_t>(field.size());
  out.push_back(static_cast<char>(n >> 24));
  out.push_back(static_cast<char>(n >> 16));
  out.push_back(static_cast<char>(n >> 8));
  out.push_back(static_cast<char>(n));
  out.append(field);
}

Result<StateAuth> StateAuth::derive(const Sealer& sealer) {
  StateAuth a;
  MOSS_ASSIGN_OR_RETURN(a.row_key_, sealer.derive_subkey("moss-state-row-mac-v1"));
  MOSS_ASSIGN_OR_RETURN(a.set_key_, sealer.derive_subkey("moss-state-row-set-v1"));
  MOSS_ASSIGN_OR_RETURN(a.audit_key_, sealer.derive_subkey("moss-state-audit-v1"));
  MOSS_ASSIGN_OR_RETURN(a.check_key_, sealer.derive_subkey("moss-state-key-check-v1"));
  return a;
}

Result<Mac> StateAuth::row_mac(std::string_view table, std::span<const std::string> fields,
                               int64_t row_version) const {
  return crypto::hmac_sha256(row_key_.span(), as_bytes(row_bytes(table, fields, row_version)));
}

Result<Mac> StateAuth::set_element(std::string_view table, std::span<const std::string> fields,
                                   int64_t row_version) const {
  return crypto::hmac_sha256(set_key_.span(), as_bytes(row_bytes(table, fields, row_version)));
}

Result<Mac> StateAuth::key_check() const {
  constexpr std::string_view kLabel = "moss-sealing-key-check";
  return crypto::hmac_sha256(check_key_.span(), as_bytes(kLabel));
}

}  // namespace moss::store
