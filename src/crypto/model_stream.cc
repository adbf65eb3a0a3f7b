// The streaming half of the model file format: one chunk in memory at a time.
#include "protocol/ids.h"
#include "crypto/model_file.h"
#include "crypto/model_file_keys.h"

#include <istream>
#include <ostream>

namespace moss::crypto {
namespace {

// Reads up to `n` bytes; fewer only at end of stream. False on a read error (not EOF).
bool read_up_to(std::istream& in, uint8_t* dst, size_t n, size_t& got) {
  got = 0;
  while (got < n && in.good()) {
    in.read(reinterpret_cast<char*>(dst + got), static_cast<std::streamsize>(n - got));
    got += static_cast<size_t>(in.gcount());
  }
  return !in.bad();
}

// True when nothing follows in the stream: how a chunk learns that it is the last one.
bool at_end(std::istream& in) {
  return in.peek() == std::char_traits<char>::eof();
}

Status write_all(std::ostream& out, const uint8_t* data, size_t n) {
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(n));
  if (!out) return internal_error("writing model output failed");
  return Status::Ok();
}

}  // namespace

Status encrypt_model_stream(std::span<const uint8_t> model_key, std::string_view model_id,
                            std::istream& in, std::ostream& out,
                            const ModelEncryptOptions& options, uint64_t total,
                            const ProgressFn& progress) {
  MOSS_ASSIGN_OR_RETURN(ModelFileHeader h, detail::new_model_header(model_id, options));
  std::vector<uint8_t> header = detail::encode_model_header(h);
  MOSS_ASSIGN_OR_RETURN(auto cipher,
                        detail::ChunkCipher::create(model_key, header, h.file_random));
  MOSS_RETURN_IF_ERROR(write_all(out, header.data(), header.size()));
  // Plaintext in, ciphertext out in place; SecretBytes wipes what the model left behind.
  SecretBytes buf(size_t{h.chunk_size} + kAesGcmTagSize);
  uint64_t done = 0;
  for (uint64_t index = 0;; ++index) {
    size_t got = 0;
    if (!read_up_to(in, buf.data(), h.chunk_size, got)) {
      return internal_error("reading model input failed");
    }
    const bool last = got < h.chunk_size || at_end(in);
    std::span<uint8_t> body(buf.data(), got);
    std::span<uint8_t, kAesGcmTagSize> tag(buf.data() + got, kAesGcmTagSize);
    MOSS_RETURN_IF_ERROR(cipher.seal(index, last, body, body, tag));
    MOSS_RETURN_IF_ERROR(write_all(out, buf.data(), got + kAesGcmTagSize));
    done += got;
    if (progress) progress(done, total);
    if (last) break;
  }
  out.flush();
  if (!out) return internal_error("writing model output failed");
  return Status::Ok();
}

Status decrypt_model_stream(std::span<const uint8_t> model_key, std::string_view expected_model_id,
                            std::istream& in, std::ostream& out, uint64_t total,
                            const ProgressFn& progress) {
  MOSS_RETURN_IF_ERROR(detail::check_model_key(model_key));
  // Fixed part first; it says how long the model id is.
  std::vector<uint8_t> header(kModelFileFixedHeaderSize);
  size_t got = 0;
  if (!read_up_to(in, header.data(), header.size(), got)) {
    return internal_error("reading model file failed");
  }
  header.resize(got);
  {
    // With only the fixed part read, "truncated" is expected: every other check already ran.
    auto fixed = parse_model_header(header);
    if (!fixed.ok() && !(got == kModelFileFixedHeaderSize &&
                         fixed.status().code() == ErrorCode::kDataLoss)) {
      return fixed.status();
    }
  }
  const size_t id_len = static_cast<size_t>(header[10]) << 8 | header[11];
  header.resize(kModelFileFixedHeaderSize + id_len);
  if (!read_up_to(in, header.data() + kModelFileFixedHeaderSize, id_len, got)) {
    return internal_error("reading model file failed");
  }
  if (got != id_len) return data_loss("model file header is truncated");
  MOSS_ASSIGN_OR_RETURN(ModelFileHeader h, parse_model_header(header));
  if (h.model_id != expected_model_id) {
    return unauthenticated("model file is for model '{}', not '{}'", h.model_id,
                           expected_model_id);
  }
  MOSS_ASSIGN_OR_RETURN(auto cipher,
                        detail::ChunkCipher::create(model_key, header, h.file_random));
  const size_t full = size_t{h.chunk_size} + kAesGcmTagSize;
  SecretBytes buf(full);
  uint64_t done = header.size();
  for (uint64_t index = 0;; ++index) {
    if (!read_up_to(in, buf.data(), full, got)) return internal_error("reading model file failed");
    if (got < kAesGcmTagSize) {
      return data_loss("model file is truncated (chunk {} is incomplete)", index);
    }
    const bool last = got < full || at_end(in);
    size_t n = got - kAesGcmTagSize;
    std::span<uint8_t> body(buf.data(), n);
    std::span<const uint8_t, kAesGcmTagSize> tag(buf.data() + n, kAesGcmTagSize);
    MOSS_RETURN_IF_ERROR(cipher.open(index, last, body, tag, body));
    MOSS_RETURN_IF_ERROR(write_all(out, buf.data(), n));
    done += got;
    if (progress) progress(done, total);
    if (last) break;
  }
  out.flush();
  if (!out) return internal_error("writing model output failed");
  return Status::Ok();
}

}  // namespace moss::crypto
