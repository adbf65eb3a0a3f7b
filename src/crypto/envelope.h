// Sealing and opening the request/response envelope (docs/formats.md, "Envelope"): one
// AES-256-GCM ciphertext under the user's request key, with the model id, user id, request id
// and direction bound as associated data, so a response cannot pass for a request, nor for the
// response to another request, nor move between users or models.
//
//   subkey = HKDF-SHA256(request key, salt = none, info = "moss envelope v1 " + direction)
//   aad    = "moss envelope v1" | 0x00 | u16 len | M | u16 len | U | u16 len | R | u8 dir
//   nonce  = 12 random bytes per message
//
// The framing of both encodings (JSON and binary), which needs no key, is protocol's
// (protocol/envelope_frame.h); this file holds only what needs the key.
//
// Stateless: thread-safe.
#pragma once

#include "common/secret_bytes.h"
#include "common/status.h"
#include "protocol/envelope_frame.h"

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace moss::crypto {

inline constexpr size_t kRequestKeySize = 32;

// Seals `plaintext` for `header` under the 32-byte `request_key`. `nonce` is for tests that
// reproduce the documented vector; leave it empty to draw a fresh random nonce.
Result<std::string> seal_envelope(std::span<const uint8_t> request_key,
                                  const protocol::EnvelopeHeader& header,
                                  std::span<const uint8_t> plaintext,
                                  std::span<const uint8_t> nonce = {},
                                  protocol::EnvelopeEncoding encoding = protocol::EnvelopeEncoding::kJson);

// Opens a parsed envelope that must carry exactly `expected`: unauthenticated for a header
// mismatch, a wrong key or any altered byte. A reader that routes on the frame's header and then
// opens (the worker) parses and decodes the message once.
Result<SecretBytes> open_envelope(std::span<const uint8_t> request_key,
                                  const protocol::EnvelopeHeader& expected,
                                  const protocol::EnvelopeFrame& frame);

// The same on a message (either encoding): parse failures as protocol::EnvelopeFrame::parse's
// (resource-exhausted above `max_bytes`, invalid-argument for malformed framing).
Result<SecretBytes> open_envelope(std::span<const uint8_t> request_key,
                                  const protocol::EnvelopeHeader& expected, std::string_view message,
                                  size_t max_bytes = protocol::kDefaultMaxEnvelopeBytes);

}  // namespace moss::crypto
