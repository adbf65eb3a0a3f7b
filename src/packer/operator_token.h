// The FnPacker's operator token: the bearer token its management API requires. Kept in a file
// (0600) that the packer creates with a fresh random token when it does not exist, so a first
// start needs no secret handed over. Stateless; thread-safe.
#pragma once

#include "common/status.h"

#include <filesystem>
#include <string>

namespace moss::packer {

// Shortest token accepted from a file: a guessable token would open the whole management API.
inline constexpr size_t kMinOperatorTokenLength = 16;

// Reads the token from `path` (trailing newline and spaces dropped), creating the file with 32
// random bytes in hex first when it does not exist. Fails when the file is unreadable, larger than
// 4 KiB, or holds fewer than kMinOperatorTokenLength characters.
Result<std::string> load_or_create_operator_token(const std::filesystem::path& path);

}  // namespace moss::packer
