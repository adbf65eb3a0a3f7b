// The sealed state head both state stores keep: the state version, the XOR accumulator of every
// live row's set element (state_auth.h), the audit head and the KeyService's identity seed, sealed
// as one value (aad "moss-state-meta-v1"), plus what both stores share to check rows against it.
#pragma once

#include "common/secret_bytes.h"
#include "common/status.h"
#include "store/audit_log.h"
#include "store/sealer.h"
#include "store/state_auth.h"

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace moss::store {

struct StateHead {
  int64_t version = 0;
  Mac digest{};  // XOR of the set elements of every live row
  AuditHead audit;
  SecretBytes identity_seed;  // 32 bytes
};

Result<std::vector<uint8_t>> seal_state_head(const Sealer& sealer, const StateHead& head);
// data-loss "state-meta-altered" when it does not open (altered, or not a head).
Result<StateHead> open_state_head(const Sealer& sealer, std::span<const uint8_t> sealed);

void xor_into(Mac& acc, const Mac& element);

// A data-loss status "<reason>: <message>" (the state was edited).
Status state_tampered(std::string_view reason, std::string message);

// The checks every authenticated row read gets: its MAC, and a version in 1..`state_version`.
// data-loss "state-row-altered" otherwise.
Status check_row(const StateAuth& auth, std::string_view table, const std::vector<std::string>& row,
                 int64_t row_version, std::span<const uint8_t> mac, int64_t state_version);

}  // namespace moss::store
