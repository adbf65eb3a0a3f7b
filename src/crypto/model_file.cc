// The in-memory half of the model file format: header parsing and whole-buffer encrypt/decrypt.
#include "crypto/model_file.h"

#include "protocol/ids.h"
#include "crypto/model_file_keys.h"

#include <cstring>

namespace moss::crypto {
namespace {
constexpr uint64_t kChunkOverhead = kAesGcmTagSize;

uint16_t get_u16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
uint32_t get_u32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}

uint64_t chunk_count(uint64_t plaintext_size, uint32_t chunk_size) {
  return plaintext_size == 0 ? 1 : (plaintext_size + chunk_size - 1) / chunk_size;
}

Status check_expected_id(const ModelFileHeader& h, std::string_view expected) {
  if (h.model_id != expected) {
    return unauthenticated("model file is for model '{}', not '{}'", h.model_id, expected);
  }
  return Status::Ok();
}

// The body layout implied by the file length: count chunks, the last holding last_plain bytes.
struct BodyLayout {
  uint64_t chunks = 0;
  uint64_t last_plain = 0;
  uint64_t plaintext = 0;
};

Result<BodyLayout> body_layout(uint64_t body_size, uint32_t chunk_size) {
  const uint64_t full = uint64_t{chunk_size} + kChunkOverhead;
  if (body_size < kChunkOverhead) return data_loss("model file is truncated (no final chunk)");
  BodyLayout l;
  l.chunks = (body_size + full - 1) / full;
  uint64_t last_size = body_size - (l.chunks - 1) * full;
  if (last_size < kChunkOverhead) return data_loss("model file is truncated inside a chunk tag");
  l.last_plain = last_size - kChunkOverhead;
  l.plaintext = (l.chunks - 1) * uint64_t{chunk_size} + l.last_plain;
  return l;
}
}  // namespace

Result<ModelFileHeader> parse_model_header(std::span<const uint8_t> file) {
  if (file.size() < sizeof(kModelFileMagic) ||
      std::memcmp(file.data(), kModelFileMagic, sizeof(kModelFileMagic)) != 0) {
    return invalid_argument("not a MOSS encrypted model file (bad magic)");
  }
  if (file.size() < kModelFileFixedHeaderSize) return data_loss("model file header is truncated");
  const uint8_t* p = file.data() + sizeof(kModelFileMagic);
  ModelFileHeader h;
  h.version = get_u16(p);
  if (h.version != kModelFileVersion) {
    return unimplemented("model file version {} is not supported (expected {})", h.version,
                         kModelFileVersion);
  }
  uint16_t id_len = get_u16(p + 2);
  h.chunk_size = get_u32(p + 4);
  std::memcpy(h.file_random.data(), p + 8, kModelFileRandomSize);
  if (h.chunk_size < kMinChunkSize || h.chunk_size > kMaxChunkSize) {
    return invalid_argument("model file chunk size {} outside {}..{}", h.chunk_size,
                            kMinChunkSize, kMaxChunkSize);
  }
  if (id_len == 0 || id_len > protocol::kMaxModelIdBytes) {
    return invalid_argument("model file model id length {} outside 1..{}", id_len,
                            protocol::kMaxModelIdBytes);
  }
  if (file.size() < kModelFileFixedHeaderSize + id_len) {
    return data_loss("model file header is truncated");
  }
  h.model_id.assign(reinterpret_cast<const char*>(file.data()) + kModelFileFixedHeaderSize, id_len);
  Status s = protocol::validate_model_id(h.model_id);
  if (!s.ok()) return std::move(s).with_context("model file header");
  return h;
}

uint64_t encrypted_model_size(std::string_view model_id, uint64_t plaintext_size,
                              uint32_t chunk_size) {
  return kModelFileFixedHeaderSize + model_id.size() + plaintext_size +
         chunk_count(plaintext_size, chunk_size) * kChunkOverhead;
}

Status encrypt_model_into(std::span<const uint8_t> model_key, std::string_view model_id,
                          std::span<const uint8_t> plaintext, const ModelEncryptOptions& options,
                          std::span<uint8_t> out) {
  MOSS_ASSIGN_OR_RETURN(ModelFileHeader h, detail::new_model_header(model_id, options));
  if (out.size() != encrypted_model_size(model_id, plaintext.size(), h.chunk_size)) {
    return invalid_argument("encrypt_model_into: output buffer has the wrong size");
  }
  std::vector<uint8_t> header = detail::encode_model_header(h);
  MOSS_ASSIGN_OR_RETURN(auto cipher,
                        detail::ChunkCipher::create(model_key, header, h.file_random));
  std::memcpy(out.data(), header.data(), header.size());
  uint8_t* dst = out.data() + header.size();
  const uint64_t chunks = chunk_count(plaintext.size(), h.chunk_size);
  for (uint64_t i = 0; i < chunks; ++i) {
    size_t offset = static_cast<size_t>(i * h.chunk_size);
    size_t n = std::min<size_t>(h.chunk_size, plaintext.size() - offset);
    std::span<uint8_t, kAesGcmTagSize> tag(dst + n, kAesGcmTagSize);
    MOSS_RETURN_IF_ERROR(cipher.seal(i, i + 1 == chunks, plaintext.subspan(offset, n),
                                     std::span<uint8_t>(dst, n), tag));
    dst += n + kAesGcmTagSize;
  }
  return Status::Ok();
}

Result<std::vector<uint8_t>> encrypt_model(std::span<const uint8_t> model_key,
                                           std::string_view model_id,
                                           std::span<const uint8_t> plaintext,
                                           const ModelEncryptOptions& options) {
  MOSS_RETURN_IF_ERROR(protocol::validate_model_id(model_id));
  std::vector<uint8_t> out(encrypted_model_size(model_id, plaintext.size(), options.chunk_size));
  MOSS_RETURN_IF_ERROR(encrypt_model_into(model_key, model_id, plaintext, options, out));
  return out;
}

Result<uint64_t> decrypted_model_size(std::span<const uint8_t> file) {
  MOSS_ASSIGN_OR_RETURN(ModelFileHeader h, parse_model_header(file));
  MOSS_ASSIGN_OR_RETURN(BodyLayout l, body_layout(file.size() - h.encoded_size(), h.chunk_size));
  return l.plaintext;
}

Status decrypt_model_into(std::span<const uint8_t> model_key, std::string_view expected_model_id,
                          std::span<const uint8_t> file, std::span<uint8_t> out) {
  MOSS_RETURN_IF_ERROR(detail::check_model_key(model_key));
  MOSS_ASSIGN_OR_RETURN(ModelFileHeader h, parse_model_header(file));
  MOSS_RETURN_IF_ERROR(check_expected_id(h, expected_model_id));
  const size_t header_size = h.encoded_size();
  MOSS_ASSIGN_OR_RETURN(BodyLayout l, body_layout(file.size() - header_size, h.chunk_size));
  if (out.size() != l.plaintext) {
    return invalid_argument("decrypt_model_into: output buffer has the wrong size");
  }
  MOSS_ASSIGN_OR_RETURN(auto cipher, detail::ChunkCipher::create(
                                         model_key, file.first(header_size), h.file_random));
  const uint8_t* src = file.data() + header_size;
  for (uint64_t i = 0; i < l.chunks; ++i) {
    const bool last = i + 1 == l.chunks;
    size_t n = last ? static_cast<size_t>(l.last_plain) : h.chunk_size;
    size_t offset = static_cast<size_t>(i * h.chunk_size);
    std::span<const uint8_t, kAesGcmTagSize> tag(src + n, kAesGcmTagSize);
    Status s = cipher.open(i, last, {src, n}, tag, out.subspan(offset, n));
    if (!s.ok()) {
      secure_wipe(out.data(), out.size());  // earlier chunks too: all or nothing
      return s;
    }
    src += n + kAesGcmTagSize;
  }
  return Status::Ok();
}

Result<SecretBytes> decrypt_model(std::span<const uint8_t> model_key,
                                  std::string_view expected_model_id,
                                  std::span<const uint8_t> file) {
  MOSS_ASSIGN_OR_RETURN(uint64_t size, decrypted_model_size(file));
  SecretBytes out(static_cast<size_t>(size));
  MOSS_RETURN_IF_ERROR(decrypt_model_into(model_key, expected_model_id, file, out.span()));
  return out;
}

}  // namespace moss::crypto
