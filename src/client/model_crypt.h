// The logic behind `moss model encrypt` and `moss model decrypt`: whole files in, whole files
// out, never a partial output. Outputs go to a temporary file (mode 0600) in the target's
// directory and are renamed into place only after the last chunk is written (encrypt) or
// authenticated (decrypt); on any failure the temporary is removed. Stateless: thread-safe.
#pragma once

#include "common/status.h"
#include "crypto/model_file.h"

#include <filesystem>
#include <string>

namespace moss::client {

struct ModelCryptOptions {
  uint32_t chunk_size = crypto::kDefaultChunkSize;
  bool force = false;                // replace an existing --key-out file
  crypto::ProgressFn progress = {};  // called per chunk; empty for none
};

// Encrypts `in` under a fresh random model key, writes the model file to `out` and the key file
// (docs/formats.md) to `key_out` with mode 0600. Refuses to replace an existing key file unless
// options.force.
Status encrypt_model_file(const std::filesystem::path& in, const std::filesystem::path& out,
                          const std::string& model_id, const std::filesystem::path& key_out,
                          const ModelCryptOptions& options = {});

// Decrypts `in` with the key file `key` (whose model id must equal `model_id`) into `out`.
Status decrypt_model_file(const std::filesystem::path& in, const std::filesystem::path& key,
                          const std::string& model_id, const std::filesystem::path& out,
                          const ModelCryptOptions& options = {});

// A progress printer for a terminal: "<verb> NAME: 42% (108/256 MiB)" redrawn on one stderr line,
// at most once per percent, ending with a newline at 100%.
crypto::ProgressFn stderr_progress(std::string label);

}  // namespace moss::client
