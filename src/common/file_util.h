// Whole-file reads and durable writes, with size caps for untrusted files.
#pragma once

#include "common/secret_bytes.h"
#include "common/status.h"

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

namespace moss {

// Reads a whole file; fails with resource-exhausted when it is larger than `max_bytes`.
Result<std::vector<uint8_t>> read_file(const std::filesystem::path& path, size_t max_bytes);
Result<std::string> read_text_file(const std::filesystem::path& path, size_t max_bytes);
// Reads key material straight into SecretBytes (no intermediate copy left behind).
Result<SecretBytes> read_secret_file(const std::filesystem::path& path, size_t max_bytes);

// Writes atomically: a temporary file in the same directory, fsync, rename, fsync the directory.
// `mode` applies from creation (0600 for secrets), so the content is never readable by others.
Status write_file(const std::filesystem::path& path, std::span<const uint8_t> bytes,
                  unsigned mode = 0644);
Status write_text_file(const std::filesystem::path& path, std::string_view text,
                       unsigned mode = 0644);

// The last `max_lines` lines of a text file, from at most its last 64 KiB (a log's tail for an
// error message); empty when unreadable.
std::string file_tail_lines(const std::filesystem::path& path, size_t max_lines);

}  // namespace moss
