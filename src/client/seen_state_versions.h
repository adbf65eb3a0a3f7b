// What a client remembers of each KeyService's state, per KeyService URL, so that a KeyService
// whose host put back an older copy of its state is refused instead of trusted (its grants and
// revocations would silently go back in time): the highest state version seen and the audit head
// that went with it (crypto/keyservice_state.h judges answers against it). Kept in
// <state_dir>/keyservice-versions.json, one entry per URL:
//   {"https://host:port": {"state_version": 1234, "audit_seq": 42, "audit_hash": "<hex>",
//                          "keyservice_key": "<base64, once a fork proof named it>"}, ...}
// An entry that is a bare integer (the version-only format before fork checks) still reads, as a
// version with no audit head yet. The Python client (moss_client.state_versions) shares the file.
// A KeyService that is really reset to a new state has to be forgotten by hand (delete its entry);
// the errors say so. Thread-safe within a process (one mutex over the file); concurrent `moss`
// processes can at worst lose an update, which only makes the check weaker, never wrong.
#pragma once

#include "common/status.h"
#include "crypto/keyservice_state.h"

#include <filesystem>
#include <string>

namespace moss::client {

inline constexpr char kSeenVersionsFile[] = "keyservice-versions.json";

// The record for `url` (version 0, no head, when none). Empty `state_dir`: the same.
// data-loss when the file is malformed (fail closed).
Result<crypto::SeenKeyServiceState> seen_keyservice_state(const std::filesystem::path& state_dir,
                                                          const std::string& url);

// Records `seen` for `url`, unless the file holds a higher version for it already (another
// process got further). No-op with an empty `state_dir`.
Status record_keyservice_state(const std::filesystem::path& state_dir, const std::string& url,
                               const crypto::SeenKeyServiceState& seen);

// A refusal from crypto::judge_keyservice_state / verify_audit_proof with the way out appended:
// if the KeyService was deliberately reset, remove its entry from the file.
Status with_forget_hint(Status refusal, const std::filesystem::path& state_dir, const std::string& url);

}  // namespace moss::client
