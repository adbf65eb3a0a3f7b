#include "crypto/envelope.h"

#include "crypto/aead.h"
#include "crypto/hkdf.h"
#include "crypto/random.h"
#include "common/encoding.h"

#include <array>
#include <cstring>
#include <vector>

namespace moss::crypto {

using protocol::Direction;
using protocol::EnvelopeEncoding;
using protocol::EnvelopeFrame;
using protocol::EnvelopeHeader;

static_assert(protocol::kEnvelopeNonceBytes == kAesGcmNonceSize);
static_assert(protocol::kEnvelopeTagBytes == kAesGcmTagSize);

namespace {
constexpr char kLabel[] = "moss envelope v1";

void put_field(std::vector<uint8_t>& out, std::string_view s) {
  out.push_back(static_cast<uint8_t>(s.size() >> 8));
  out.push_back(static_cast<uint8_t>(s.size()));
  out.insert(out.end(), s.begin(), s.end());
}

// Length-prefixed fields, so no two headers share an encoding.
std::vector<uint8_t> envelope_aad(const EnvelopeHeader& h) {
  std::vector<uint8_t> aad(kLabel, kLabel + sizeof(kLabel));  // includes the NUL
  put_field(aad, h.model_id);
  put_field(aad, h.user_id);
  put_field(aad, h.request_id);
  aad.push_back(h.direction == Direction::kRequest ? 1 : 2);
  return aad;
}

Result<AesGcm> direction_cipher(std::span<const uint8_t> request_key, Direction d) {
  if (request_key.size() != kRequestKeySize) {
    return invalid_argument("request key must be {} bytes, got {}", kRequestKeySize,
                            request_key.size());
  }
  std::string info = std::string(kLabel) + " " + std::string(protocol::direction_name(d));
  MOSS_ASSIGN_OR_RETURN(SecretBytes subkey,
                        hkdf_sha256(request_key, {}, as_bytes(info), kAesGcmKeySize));
  return AesGcm::create(subkey.span());
}
}  // namespace

Result<std::string> seal_envelope(std::span<const uint8_t> request_key,
                                  const EnvelopeHeader& header,
                                  std::span<const uint8_t> plaintext,
                                  std::span<const uint8_t> nonce, EnvelopeEncoding encoding) {
  MOSS_RETURN_IF_ERROR(protocol::validate_envelope_header(header));
  MOSS_ASSIGN_OR_RETURN(AesGcm aead, direction_cipher(request_key, header.direction));
  std::array<uint8_t, kAesGcmNonceSize> n{};
  if (nonce.empty()) {
    MOSS_RETURN_IF_ERROR(random_bytes(n));
  } else if (nonce.size() == n.size()) {
    std::memcpy(n.data(), nonce.data(), n.size());
  } else {
    return invalid_argument("injected envelope nonce must be {} bytes", n.size());
  }
  const size_t sealed_size = plaintext.size() + kAesGcmTagSize;
  // Binary: seal straight into the message; JSON: into a buffer that is then base64-encoded.
  std::string message;
  std::vector<uint8_t> buffer;
  uint8_t* sealed;
  if (encoding == EnvelopeEncoding::kBinary) {
    message = protocol::envelope_binary_prefix(header, n, sealed_size);
    const size_t at = message.size();
    message.resize(at + sealed_size);
    sealed = reinterpret_cast<uint8_t*>(message.data()) + at;
  } else {
    buffer.resize(sealed_size);
    sealed = buffer.data();
  }
  MOSS_RETURN_IF_ERROR(aead.seal(n, envelope_aad(header), plaintext,
                                 std::span<uint8_t>(sealed, plaintext.size()),
                                 std::span<uint8_t, kAesGcmTagSize>(sealed + plaintext.size(), kAesGcmTagSize)));
  if (encoding == EnvelopeEncoding::kBinary) return message;
  return protocol::envelope_json_text(header, n, buffer);
}

Result<SecretBytes> open_envelope(std::span<const uint8_t> request_key,
                                  const EnvelopeHeader& expected, const EnvelopeFrame& frame) {
  MOSS_RETURN_IF_ERROR(protocol::validate_envelope_header(expected));
  if (!(frame.header() == expected)) {
    return unauthenticated("envelope header does not match the expected model, user, request "
                           "or direction");
  }
  MOSS_ASSIGN_OR_RETURN(AesGcm aead, direction_cipher(request_key, expected.direction));
  const std::span<const uint8_t> sealed = frame.sealed();
  const size_t n = sealed.size() - kAesGcmTagSize;
  SecretBytes plain(n);
  Status s = aead.open(frame.nonce(), envelope_aad(expected), sealed.first(n),
                       std::span<const uint8_t, kAesGcmTagSize>(sealed.data() + n, kAesGcmTagSize),
                       plain.span());
  if (!s.ok()) {
    if (s.code() == ErrorCode::kUnauthenticated) {
      return unauthenticated("envelope failed authentication (wrong key or altered message)");
    }
    return s;
  }
  return plain;
}

Result<SecretBytes> open_envelope(std::span<const uint8_t> request_key,
                                  const EnvelopeHeader& expected, std::string_view message,
                                  size_t max_bytes) {
  MOSS_ASSIGN_OR_RETURN(EnvelopeFrame frame, EnvelopeFrame::parse(message, max_bytes));
  return open_envelope(request_key, expected, frame);
}

}  // namespace moss::crypto
