// The public framing of the request/response envelope (docs/formats.md, "Envelope"): everything
// about it that needs no key. The sealing and opening under the request key live in
// crypto/envelope.h; a relay (FnPacker) routes on, and converts between, the two encodings with
// this part alone.
//
// JSON form:
//   {"v":1,"model_id":M,"user_id":U,"request_id":R,"direction":"request"|"response",
//    "nonce":base64(12 bytes),"ciphertext":base64(ciphertext | tag[16])}
//
// Binary form (docs/formats.md "Binary form": no base64, no JSON escaping):
//   magic 0x89 "MOSSENV" | u8 version 1 | u8 direction (1 request, 2 response)
//   | u16 len | M | u16 len | U | u16 len | R | nonce[12] | ciphertext | tag[16]   (u16 big-endian)
//
// The binary magic can never start JSON text, so the first byte tells the encodings apart.
// Nothing here is authenticated: trust a header only once crypto's open succeeds with it.
// Stateless: thread-safe.
#pragma once

#include "common/status.h"

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace moss::protocol {

enum class Direction { kRequest, kResponse };
std::string_view direction_name(Direction d);

struct EnvelopeHeader {
  std::string model_id;
  std::string user_id;
  std::string request_id;
  Direction direction = Direction::kRequest;

  bool operator==(const EnvelopeHeader&) const = default;
};

// The ids' shape rules (protocol/ids.h): what both encodings carry and the AAD binds.
Status validate_envelope_header(const EnvelopeHeader& header);

enum class EnvelopeEncoding { kJson, kBinary };

// The media type of a binary envelope as an HTTP body.
inline constexpr char kEnvelopeMediaType[] = "application/vnd.moss.envelope";

inline constexpr int kEnvelopeVersion = 1;
inline constexpr size_t kEnvelopeNonceBytes = 12;  // AES-256-GCM's nonce
inline constexpr size_t kEnvelopeTagBytes = 16;    // and its tag
// 64 MiB of envelope: far above OpenWhisk's 2 MiB payload, far below memory trouble.
inline constexpr size_t kDefaultMaxEnvelopeBytes = size_t{64} << 20;

// Which encoding `message` claims (by its first byte); says nothing of its validity.
EnvelopeEncoding envelope_encoding(std::string_view message);

// A message split into its public parts, framing checked: header ids well formed, nonce present,
// ciphertext at least a tag long, and for the JSON form exactly the known fields, version 1 and
// valid base64 (decoded once). For the binary form it refers into the message, which must
// outlive it. Move-only.
class EnvelopeFrame {
 public:
  // invalid-argument for malformed framing or unknown fields, unimplemented for another version,
  // resource-exhausted above `max_bytes`.
  static Result<EnvelopeFrame> parse(std::string_view message,
                                     size_t max_bytes = kDefaultMaxEnvelopeBytes);

  EnvelopeFrame(EnvelopeFrame&&) noexcept = default;
  EnvelopeFrame& operator=(EnvelopeFrame&&) noexcept = default;
  EnvelopeFrame(const EnvelopeFrame&) = delete;
  EnvelopeFrame& operator=(const EnvelopeFrame&) = delete;

  const EnvelopeHeader& header() const { return header_; }
  const std::array<uint8_t, kEnvelopeNonceBytes>& nonce() const { return nonce_; }
  // ciphertext | tag.
  std::span<const uint8_t> sealed() const;

  // The same message in either encoding: ciphertext, nonce and header carried over unchanged.
  std::string encode(EnvelopeEncoding to) const;

 private:
  EnvelopeFrame() = default;
  EnvelopeHeader header_;
  std::array<uint8_t, kEnvelopeNonceBytes> nonce_{};
  EnvelopeEncoding encoding_ = EnvelopeEncoding::kJson;
  std::vector<uint8_t> decoded_;          // JSON form: the ciphertext's base64, decoded
  std::span<const uint8_t> binary_sealed_;  // binary form: into the message
};

// Writers for a sealer, which knows the header and nonce and seals in place. The JSON text of
// (header, nonce, sealed); the binary form up to the nonce, reserved for `sealed_bytes` more.
std::string envelope_json_text(const EnvelopeHeader& header, std::span<const uint8_t> nonce,
                               std::span<const uint8_t> sealed);
std::string envelope_binary_prefix(const EnvelopeHeader& header, std::span<const uint8_t> nonce,
                                   size_t sealed_bytes);

// The header only (for routing and key lookup): the whole framing is checked as
// EnvelopeFrame::parse does, so a message peek accepts is one conversion and opening parse.
Result<EnvelopeHeader> peek_envelope_header(std::string_view message,
                                            size_t max_bytes = kDefaultMaxEnvelopeBytes);

// The same, for a body declared as a binary envelope (kEnvelopeMediaType): anything else, JSON
// text included, is invalid-argument.
Result<EnvelopeHeader> peek_binary_envelope_header(std::string_view body,
                                                   size_t max_bytes = kDefaultMaxEnvelopeBytes);

// Re-encodes an envelope in the other form, without any key (for relays that must change the
// wire: FnPacker in front of OpenWhisk's JSON-only /run). Fails like EnvelopeFrame::parse.
Result<std::string> convert_envelope(std::string_view message, EnvelopeEncoding to,
                                     size_t max_bytes = kDefaultMaxEnvelopeBytes);

}  // namespace moss::protocol
