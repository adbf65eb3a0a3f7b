// StateAuth: the keys that authenticate what the KeyService reads back from its database, all
// derived from the sealing key with HKDF (so only the TEE that can unseal the state can forge it):
//
//   row MAC      HMAC over ("moss-row-v1", table, every column, row version): stored with each
//                row and checked on every read, so an edited row or a row copied to another
//                table or key is refused ("state-row-altered").
//   set element  HMAC of the same bytes under another key, never stored: the sealed state meta
//                holds the XOR of the elements of every live row. Elements are secret and the
//                accumulator is sealed, so a row inserted, deleted or put back from an older copy
//                changes the XOR in a way nobody without the key can predict or compensate
//                ("state-rows-changed", checked when the state opens).
//   audit key    keys the audit chain (audit_log.h).
//   key check    a value stored in clear next to the state: a different sealing key is named
//                as such ("sealing-key-mismatch") rather than as tampering.
// Immutable after construction; thread-safe.
#pragma once

#include "common/secret_bytes.h"
#include "common/status.h"
#include "store/sealer.h"

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace moss::store {

using Mac = std::array<uint8_t, 32>;

// Appends a 4-byte big-endian length and the bytes (the unambiguous field encoding of MACs).
void append_field(std::string& out, std::string_view field);

class StateAuth {
 public:
  static Result<StateAuth> derive(const Sealer& sealer);

  // `fields`: every column of the row in schema order (integers as decimal text).
  Result<Mac> row_mac(std::string_view table, std::span<const std::string> fields,
                      int64_t row_version) const;
  Result<Mac> set_element(std::string_view table, std::span<const std::string> fields,
                          int64_t row_version) const;
  std::span<const uint8_t> audit_key() const { return audit_key_.span(); }
  Result<Mac> key_check() const;

 private:
  StateAuth() = default;
  SecretBytes row_key_, set_key_, audit_key_, check_key_;
};

}  // namespace moss::store
