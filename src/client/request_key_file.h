// Local request key files (contract C2): the key a user encrypts requests to a model with.
//
//   <state_dir>/request-keys/<model id with '/' replaced by '__'>.json   (mode 0600)
//   {"kind":"moss-request-key","version":1,"model_id":M,"measurement":"<hex>","key_version":N,
//    "key":"<base64 of 32 bytes>"}
//
// `moss request-key add` writes it after uploading the key; `moss infer` reads it. The key is read
// straight into SecretBytes. Stateless: thread-safe.
#pragma once

#include "client/client_config.h"
#include "common/secret_bytes.h"
#include "common/status.h"

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace moss::client {

inline constexpr size_t kRequestKeyBytes = 32;
inline constexpr size_t kMaxRequestKeyFileBytes = 4096;

struct RequestKeyFile {
  std::string model_id;
  std::string measurement;  // lowercase hex of the worker measurement the key is registered for
  uint32_t key_version = 0;
  SecretBytes key;          // 32 bytes
};

// <state_dir>/request-keys/<model id, '/' -> '__'>.json; fails on an invalid model id.
Result<std::filesystem::path> request_key_file_path(const ClientConfig& config,
                                                    std::string_view model_id);

// Writes atomically with mode 0600 (directories created as needed, 0700).
Status write_request_key_file(const ClientConfig& config, const RequestKeyFile& file);

// Reads and validates the file for `model_id`; not-found when there is none, invalid-argument when
// it is malformed or names another model.
Result<RequestKeyFile> read_request_key_file(const ClientConfig& config, std::string_view model_id);

}  // namespace moss::client
