#include "crypto/model_file_keys.h"

#include "crypto/hkdf.h"
#include "protocol/ids.h"
#include "crypto/random.h"

#include <cstring>

namespace moss::crypto::detail {
namespace {
constexpr char kHkdfLabel[] = "moss model file v1";  // followed by 0x00 and the header

void put_u16(std::vector<uint8_t>& out, uint16_t v) {
  out.push_back(static_cast<uint8_t>(v >> 8));
  out.push_back(static_cast<uint8_t>(v));
}
void put_u32(std::vector<uint8_t>& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(v >> shift));
}
}  // namespace

Status check_model_key(std::span<const uint8_t> key) {
  if (key.size() != kModelKeySize) {
    return invalid_argument("model key must be {} bytes, got {}", kModelKeySize, key.size());
  }
  return Status::Ok();
}

std::vector<uint8_t> encode_model_header(const ModelFileHeader& h) {
  std::vector<uint8_t> out(kModelFileMagic, kModelFileMagic + sizeof(kModelFileMagic));
  out.reserve(h.encoded_size());
  put_u16(out, h.version);
  put_u16(out, static_cast<uint16_t>(h.model_id.size()));
  put_u32(out, h.chunk_size);
  out.insert(out.end(), h.file_random.begin(), h.file_random.end());
  out.insert(out.end(), h.model_id.begin(), h.model_id.end());
  return out;
}

Result<ModelFileHeader> new_model_header(std::string_view model_id,
                                         const ModelEncryptOptions& options) {
  MOSS_RETURN_IF_ERROR(protocol::validate_model_id(model_id));
  if (options.chunk_size < kMinChunkSize || options.chunk_size > kMaxChunkSize) {
    return invalid_argument("chunk size {} outside {}..{}", options.chunk_size, kMinChunkSize,
                            kMaxChunkSize);
  }
  ModelFileHeader h;
  h.chunk_size = options.chunk_size;
  h.model_id = std::string(model_id);
  if (options.file_random.empty()) {
    MOSS_RETURN_IF_ERROR(random_bytes(h.file_random));
  } else if (options.file_random.size() == kModelFileRandomSize) {
    std::memcpy(h.file_random.data(), options.file_random.data(), kModelFileRandomSize);
  } else {
    return invalid_argument("injected file random must be {} bytes", kModelFileRandomSize);
  }
  return h;
}

Result<ChunkCipher> ChunkCipher::create(std::span<const uint8_t> model_key,
                                        std::span<const uint8_t> encoded_header,
                                        std::span<const uint8_t, kModelFileRandomSize> file_random) {
  MOSS_RETURN_IF_ERROR(check_model_key(model_key));
  std::vector<uint8_t> info(kHkdfLabel, kHkdfLabel + sizeof(kHkdfLabel));  // includes the NUL
  info.insert(info.end(), encoded_header.begin(), encoded_header.end());
  MOSS_ASSIGN_OR_RETURN(SecretBytes okm,
                        hkdf_sha256(model_key, file_random, info, kAesGcmKeySize + 4));
  MOSS_ASSIGN_OR_RETURN(AesGcm aead, AesGcm::create(okm.span().first(kAesGcmKeySize)));
  std::array<uint8_t, 4> prefix{};
  std::memcpy(prefix.data(), okm.data() + kAesGcmKeySize, prefix.size());
  return ChunkCipher(std::move(aead), prefix);
}

std::array<uint8_t, kAesGcmNonceSize> ChunkCipher::nonce(uint64_t index, bool last) const {
  std::array<uint8_t, kAesGcmNonceSize> n{};
  std::memcpy(n.data(), prefix_.data(), prefix_.size());
  for (int i = 0; i < 7; ++i) n[4 + i] = static_cast<uint8_t>(index >> (8 * (6 - i)));
  n[11] = last ? 0x01 : 0x00;
  return n;
}

Status ChunkCipher::seal(uint64_t index, bool last, std::span<const uint8_t> in,
                         std::span<uint8_t> out, std::span<uint8_t, kAesGcmTagSize> tag) {
  if (index > kMaxChunkIndex) return out_of_range("model too large: chunk index overflow");
  auto n = nonce(index, last);
  return aead_.seal(n, {}, in, out, tag);
}

Status ChunkCipher::open(uint64_t index, bool last, std::span<const uint8_t> in,
                         std::span<const uint8_t, kAesGcmTagSize> tag, std::span<uint8_t> out) {
  if (index > kMaxChunkIndex) return data_loss("model file has too many chunks");
  auto n = nonce(index, last);
  Status s = aead_.open(n, {}, in, tag, out);
  if (s.code() == ErrorCode::kUnauthenticated) {
    return unauthenticated(
        "model file chunk {} failed authentication (wrong key or model id, or the file was "
        "altered, truncated or spliced)",
        index);
  }
  return s;
}

}  // namespace moss::crypto::detail
