// The encrypted model file (docs/formats.md, "Encrypted model file"): a header, then the model in
// fixed-size chunks, each sealed with AES-256-GCM under a per-file subkey.
//
//   header  = "MOSSMODL" | version u16 | model_id_len u16 | chunk_size u32 | file_random[32]
//             | model_id                                           (integers big-endian)
//   subkey  = HKDF-SHA256(model key, salt = file_random,
//                         info = "moss model file v1" | 0x00 | header)  -> 32-byte key | 4-byte prefix
//   nonce_i = prefix[4] | i as 56-bit big-endian | last ? 0x01 : 0x00
//   chunk_i = AES-256-GCM(subkey, nonce_i, aad = "", plaintext_i) | tag[16]
//
// Every chunk but the last holds exactly chunk_size plaintext bytes; the last holds 0..chunk_size
// (an empty model is one empty last chunk). Binding the whole header into the subkey makes any
// header change, a wrong model id or a chunk from another file fail authentication; the last flag
// in the nonce makes truncation at a chunk boundary and appended data fail.
//
// Free functions; stateless apart from their arguments: thread-safe.
#pragma once

#include "common/secret_bytes.h"
#include "common/status.h"

#include <array>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace moss::crypto {

inline constexpr char kModelFileMagic[8] = {'M', 'O', 'S', 'S', 'M', 'O', 'D', 'L'};
inline constexpr uint16_t kModelFileVersion = 1;
inline constexpr size_t kModelFileRandomSize = 32;
inline constexpr size_t kModelFileFixedHeaderSize = 8 + 2 + 2 + 4 + kModelFileRandomSize;  // 48
inline constexpr uint32_t kDefaultChunkSize = 1u << 20;  // 1 MiB
inline constexpr uint32_t kMinChunkSize = 1u << 10;      // 1 KiB
inline constexpr uint32_t kMaxChunkSize = 1u << 26;      // 64 MiB: bounds streaming memory
inline constexpr size_t kModelKeySize = 32;

// Called after each chunk with plaintext bytes done and the total (0 when unknown).
using ProgressFn = std::function<void(uint64_t done, uint64_t total)>;

struct ModelEncryptOptions {
  uint32_t chunk_size = kDefaultChunkSize;
  // Empty: a fresh random value (always, outside tests). Tests inject 32 bytes to reproduce the
  // vectors in docs/formats.md.
  std::span<const uint8_t> file_random = {};
};

struct ModelFileHeader {
  uint16_t version = kModelFileVersion;
  uint32_t chunk_size = 0;
  std::array<uint8_t, kModelFileRandomSize> file_random{};
  std::string model_id;

  size_t encoded_size() const { return kModelFileFixedHeaderSize + model_id.size(); }
};

// Parses and bounds-checks a header from untrusted bytes (at least the header; more is ignored).
// invalid-argument for a bad magic, model id or chunk size; unimplemented for another version;
// data-loss when the bytes end inside the header.
Result<ModelFileHeader> parse_model_header(std::span<const uint8_t> file);

// Size of the encrypted file for a model of `plaintext_size` bytes.
uint64_t encrypted_model_size(std::string_view model_id, uint64_t plaintext_size,
                              uint32_t chunk_size);

// In memory. `model_key` is 32 bytes.
Result<std::vector<uint8_t>> encrypt_model(std::span<const uint8_t> model_key,
                                           std::string_view model_id,
                                           std::span<const uint8_t> plaintext,
                                           const ModelEncryptOptions& options = {});
// Into a caller buffer of exactly encrypted_model_size(...) bytes (no allocation, no copy).
Status encrypt_model_into(std::span<const uint8_t> model_key, std::string_view model_id,
                          std::span<const uint8_t> plaintext, const ModelEncryptOptions& options,
                          std::span<uint8_t> out);

// The plaintext size a well-formed file decrypts to (from its length and header; unauthenticated,
// use it to size a buffer only). data-loss when the length cannot be a valid file.
Result<uint64_t> decrypted_model_size(std::span<const uint8_t> file);

// Decrypts a whole file in memory; the worker's path, so plaintext never touches disk. Fails with
// unauthenticated for a wrong key, wrong model id or any altered byte, data-loss for a truncated
// file. `expected_model_id` must equal the header's.
Result<SecretBytes> decrypt_model(std::span<const uint8_t> model_key,
                                  std::string_view expected_model_id,
                                  std::span<const uint8_t> file);
// Into a caller buffer of exactly decrypted_model_size(file) bytes; wiped on failure.
Status decrypt_model_into(std::span<const uint8_t> model_key, std::string_view expected_model_id,
                          std::span<const uint8_t> file, std::span<uint8_t> out);

// Streaming, holding one chunk in memory. Encrypt reads `in` to its end. Decrypt writes each
// chunk's plaintext only after that chunk authenticates, but a failure can come after earlier
// chunks were written: callers writing files must write to a temporary and rename on success.
// `total` for progress: plaintext size when encrypting, file size when decrypting (0: unknown).
Status encrypt_model_stream(std::span<const uint8_t> model_key, std::string_view model_id,
                            std::istream& in, std::ostream& out,
                            const ModelEncryptOptions& options = {}, uint64_t total = 0,
                            const ProgressFn& progress = {});
Status decrypt_model_stream(std::span<const uint8_t> model_key, std::string_view expected_model_id,
                           std::istream& in, std::ostream& out, uint64_t total = 0,
                           const ProgressFn& progress = {});

}  // namespace moss::crypto
