// The request/response envelope (docs/formats.md, "Envelope"): a JSON object carrying one
// AES-256-GCM ciphertext under the user's request key, with the model id, user id, request id
// and direction bound as associated data, so a response cannot pass for a request, nor for the
// response to another request, nor move between users or models.
//
//   {"v":1,"model_id":M,"user_id":U,"request_id":R,"direction":"request"|"response",
//    "nonce":base64(12 bytes),"ciphertext":base64(ciphertext | tag[16])}
//
//   subkey = HKDF-SHA256(request key, salt = none, info = "moss envelope v1 " + direction)
//   aad    = "moss envelope v1" | 0x00 | u16 len | M | u16 len | U | u16 len | R | u8 dir
//   nonce  = 12 random bytes per message
//
// The same sealed message has a second, binary encoding for raw HTTP bodies (no base64, no JSON
// escaping: what makes a warm request cost about its inference), docs/formats.md "Binary form":
//
//   magic 0x89 "MOSSENV" | u8 version 1 | u8 direction (1 request, 2 response)
//   | u16 len | M | u16 len | U | u16 len | R | nonce[12] | ciphertext | tag[16]   (u16 big-endian)
//
// Keys, nonce and associated data are those of the JSON form. open_envelope and
// peek_envelope_header take either encoding (the binary magic can never start JSON text).
//
// Stateless: thread-safe.
#pragma once

#include "common/secret_bytes.h"
#include "common/status.h"

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace moss::crypto {

enum class Direction { kRequest, kResponse };
std::string_view direction_name(Direction d);

struct EnvelopeHeader {
  std::string model_id;
  std::string user_id;
  std::string request_id;
  Direction direction = Direction::kRequest;

  bool operator==(const EnvelopeHeader&) const = default;
};

enum class EnvelopeEncoding { kJson, kBinary };

// The media type of a binary envelope as an HTTP body.
inline constexpr char kEnvelopeMediaType[] = "application/vnd.moss.envelope";

inline constexpr size_t kRequestKeySize = 32;
// 64 MiB of envelope: far above OpenWhisk's 2 MiB payload, far below memory trouble.
inline constexpr size_t kDefaultMaxEnvelopeBytes = size_t{64} << 20;

// Seals `plaintext` for `header` under the 32-byte `request_key`. `nonce` is for tests that
// reproduce the documented vector; leave it empty to draw a fresh random nonce.
Result<std::string> seal_envelope(std::span<const uint8_t> request_key,
                                  const EnvelopeHeader& header,
                                  std::span<const uint8_t> plaintext,
                                  std::span<const uint8_t> nonce = {},
                                  EnvelopeEncoding encoding = EnvelopeEncoding::kJson);

// Which encoding `message` claims (by its first byte); says nothing of its validity.
EnvelopeEncoding envelope_encoding(std::string_view message);

// Opens an envelope (either encoding) that must carry exactly `expected`. Fails with
// resource-exhausted when the message exceeds `max_bytes`, invalid-argument for malformed
// JSON/base64/binary framing or unknown fields, and unauthenticated for a header mismatch, a wrong
// key or any altered byte.
Result<SecretBytes> open_envelope(std::span<const uint8_t> request_key,
                                  const EnvelopeHeader& expected, std::string_view message,
                                  size_t max_bytes = kDefaultMaxEnvelopeBytes);

// Reads the header fields without authenticating them: for routing and key lookup only (which
// model, which user); trust nothing until open_envelope succeeds with that header. Checks the
// whole framing exactly as convert_envelope and open_envelope do (nonce present, ciphertext at
// least a tag long, the JSON form's base64 valid), so a message peek accepts is one they parse.
Result<EnvelopeHeader> peek_envelope_header(std::string_view message,
                                            size_t max_bytes = kDefaultMaxEnvelopeBytes);

// The same, for a body declared as a binary envelope (kEnvelopeMediaType): anything else, JSON
// text included, is invalid-argument.
Result<EnvelopeHeader> peek_binary_envelope_header(std::string_view body,
                                                   size_t max_bytes = kDefaultMaxEnvelopeBytes);

// A message parsed once: framing checked exactly as peek_envelope_header does and, for the JSON
// form, the ciphertext's base64 decoded once, so a reader that routes on the header and then
// opens (the worker) parses and decodes the message once, not twice. For the binary form it
// refers into `message`, which must outlive it. Holds only public bytes.
class ParsedEnvelope {
 public:
  static Result<ParsedEnvelope> parse(std::string_view message,
                                      size_t max_bytes = kDefaultMaxEnvelopeBytes);
  ~ParsedEnvelope();
  ParsedEnvelope(ParsedEnvelope&&) noexcept;
  ParsedEnvelope& operator=(ParsedEnvelope&&) noexcept;

  // Unauthenticated, as peek_envelope_header's.
  const EnvelopeHeader& header() const;
  // As open_envelope on the message.
  Result<SecretBytes> open(std::span<const uint8_t> request_key, const EnvelopeHeader& expected) const;

  struct Parts;  // internal (envelope.cc)

 private:
  explicit ParsedEnvelope(std::unique_ptr<Parts> parts);
  std::unique_ptr<Parts> parts_;
};

// Re-encodes an envelope in the other form, without any key: the framing is public and the
// ciphertext, nonce and header it authenticates are carried over unchanged, so the result opens
// exactly as the original did. For relays that must change the wire (FnPacker in front of
// OpenWhisk's JSON-only /run). Fails like peek_envelope_header on a malformed message.
Result<std::string> convert_envelope(std::string_view message, EnvelopeEncoding to,
                                     size_t max_bytes = kDefaultMaxEnvelopeBytes);

}  // namespace moss::crypto
