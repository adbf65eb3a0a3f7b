// The highest KeyService state version a client has seen, per KeyService URL, so that a KeyService
// whose host put back an older copy of its state is refused instead of trusted (its grants and
// revocations would silently go back in time). Kept in <state_dir>/keyservice-versions.json:
//   {"https://host:port": 1234, ...}
// A KeyService that is really reset to a new state has to be forgotten by hand (delete its line);
// the error says so. Thread-safe within a process (one mutex over the file); concurrent `moss`
// processes can at worst lose an update, which only makes the check weaker, never wrong.
#pragma once

#include "common/status.h"

#include <cstdint>
#include <filesystem>
#include <string>

namespace moss::client {

inline constexpr char kSeenVersionsFile[] = "keyservice-versions.json";

// The highest version recorded for `url` (0 when none). Empty `state_dir`: 0.
Result<int64_t> highest_seen_state_version(const std::filesystem::path& state_dir,
                                           const std::string& url);

// Checks an answer's version against `floor` (the highest seen before the request was sent: any
// answer to a later request reflects at least that state) and records it when higher.
// failed-precondition "keyservice-rollback" when the answer is older.
Status check_and_record_state_version(const std::filesystem::path& state_dir,
                                      const std::string& url, int64_t floor, int64_t answered);

}  // namespace moss::client
