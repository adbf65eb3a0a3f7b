// Private to src/crypto: the parts of the model file format shared by the in-memory and the
// streaming code (header encoding, per-file subkey, chunk nonces). Not thread-safe per object.
#pragma once

#include "crypto/aead.h"
#include "crypto/model_file.h"

namespace moss::crypto::detail {

std::vector<uint8_t> encode_model_header(const ModelFileHeader& header);

// Builds and validates the header for a new file (fresh or injected file random).
Result<ModelFileHeader> new_model_header(std::string_view model_id,
                                         const ModelEncryptOptions& options);

// The per-file cipher: AES-GCM under the HKDF subkey plus the nonce prefix.
class ChunkCipher {
 public:
  static Result<ChunkCipher> create(std::span<const uint8_t> model_key,
                                    std::span<const uint8_t> encoded_header,
                                    std::span<const uint8_t, kModelFileRandomSize> file_random);

  Status seal(uint64_t index, bool last, std::span<const uint8_t> in, std::span<uint8_t> out,
              std::span<uint8_t, kAesGcmTagSize> tag);
  // unauthenticated "chunk <index> failed authentication" on a bad tag.
  Status open(uint64_t index, bool last, std::span<const uint8_t> in,
              std::span<const uint8_t, kAesGcmTagSize> tag, std::span<uint8_t> out);

 private:
  ChunkCipher(AesGcm aead, std::array<uint8_t, 4> prefix) : aead_(std::move(aead)), prefix_(prefix) {}
  std::array<uint8_t, kAesGcmNonceSize> nonce(uint64_t index, bool last) const;
  AesGcm aead_;
  std::array<uint8_t, 4> prefix_;
};

// Chunk indices are 56 bits in the nonce.
inline constexpr uint64_t kMaxChunkIndex = (uint64_t{1} << 56) - 1;

Status check_model_key(std::span<const uint8_t> key);

}  // namespace moss::crypto::detail
