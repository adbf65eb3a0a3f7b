// Text encodings of binary data: base64 (RFC 4648 standard and URL-safe alphabets) and lowercase hex.
//
// Decoders treat their input as untrusted: they are strict (no whitespace, no mixed alphabets,
// canonical padding and zero trailing bits, so one byte string has exactly one encoding) and
// bounded (the caller names the largest decoded size it accepts; larger input fails before any
// allocation). Stateless: thread-safe.
#pragma once

#include "common/secret_bytes.h"
#include "common/status.h"

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace moss {

// Standard alphabet (+/), always padded with '='.
std::string base64_encode(std::span<const uint8_t> bytes);
// URL-safe alphabet (-_), never padded: safe in paths, query strings and file names.
std::string base64url_encode(std::span<const uint8_t> bytes);

// Decodes standard base64; padding is required. Fails with invalid-argument on any character
// outside the alphabet, bad padding or non-zero trailing bits, and with resource-exhausted when
// the decoded size would exceed `max_bytes`.
Result<std::vector<uint8_t>> base64_decode(std::string_view text, size_t max_bytes);
// Decodes URL-safe base64; padding is optional but, when present, must be exact.
Result<std::vector<uint8_t>> base64url_decode(std::string_view text, size_t max_bytes);
// Decodes standard base64 straight into SecretBytes, for key material (no stray copy).
Result<SecretBytes> base64_decode_secret(std::string_view text, size_t max_bytes);

// Lowercase hex.
std::string hex_encode(std::span<const uint8_t> bytes);
// Accepts upper- or lowercase digits; fails on an odd length or a non-hex character, and with
// resource-exhausted when the decoded size would exceed `max_bytes`.
Result<std::vector<uint8_t>> hex_decode(std::string_view text, size_t max_bytes);

// Convenience views over text as bytes and back.
inline std::span<const uint8_t> as_bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}
inline std::string_view as_chars(std::span<const uint8_t> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

}  // namespace moss
