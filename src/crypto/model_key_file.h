// The model key file written by `moss model encrypt --key-out` and read by `--key`:
//
//   {"kind":"moss-model-key","version":1,"model_id":"<id>","key":"<base64 of 32 bytes>"}
//
// Written with mode 0600; read back straight into SecretBytes. Stateless: thread-safe.
#pragma once

#include "common/secret_bytes.h"
#include "common/status.h"

#include <filesystem>
#include <span>
#include <string>
#include <string_view>

namespace moss::crypto {

struct ModelKey {
  std::string model_id;
  SecretBytes key;  // 32 bytes
};

// The JSON text, held in SecretBytes because it contains the key.
Result<SecretBytes> encode_model_key(std::string_view model_id, std::span<const uint8_t> key);
Result<ModelKey> decode_model_key(std::span<const uint8_t> text);

Status write_model_key_file(const std::filesystem::path& path, std::string_view model_id,
                            std::span<const uint8_t> key);
Result<ModelKey> read_model_key_file(const std::filesystem::path& path);

}  // namespace moss::crypto
