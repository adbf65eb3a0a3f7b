// libFuzzer target for the request/response envelope framing, both forms
// (protocol/envelope_frame.h), and opening it (crypto/envelope.h).
// Checks the header's contract: peek, convert and open accept exactly the same messages (open
// under a fixed key then fails only authentication), conversion round-trips byte for byte, and
// the converted message peeks to the same header. Seeds: tests/fuzz/corpus/crypto_envelope_fuzz.
#include "crypto/envelope.h"

#include <array>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace moss::crypto;
  using namespace moss::protocol;
  std::string_view message(reinterpret_cast<const char*>(data), size);
  constexpr size_t kMax = 1 << 20;
  auto header = peek_envelope_header(message, kMax);
  auto binary = peek_binary_envelope_header(message, kMax);
  const EnvelopeEncoding encoding = envelope_encoding(message);
  const EnvelopeEncoding other = encoding == EnvelopeEncoding::kJson ? EnvelopeEncoding::kBinary : EnvelopeEncoding::kJson;
  auto converted = convert_envelope(message, other, kMax);
  if (header.ok() != converted.ok()) std::abort();  // "conversion fails exactly when peek does"
  if (binary.ok() != (header.ok() && encoding == EnvelopeEncoding::kBinary)) std::abort();
  static const std::array<uint8_t, kRequestKeySize> key{};
  EnvelopeHeader expected = header.ok() ? *header : EnvelopeHeader{"m/x", "u", "r", Direction::kRequest};
  auto opened = open_envelope(key, expected, message, kMax);
  if (header.ok() && !opened.ok() && opened.status().code() != moss::ErrorCode::kUnauthenticated) std::abort();
  if (!header.ok() && opened.ok()) std::abort();
  if (!converted.ok()) return 0;
  auto again = peek_envelope_header(*converted, 2 * kMax + 1024);
  if (!again.ok() || !(*again == *header)) std::abort();
  auto back = convert_envelope(*converted, encoding, 2 * kMax + 1024);
  if (!back.ok()) std::abort();
  // The binary form is canonical; the JSON form only after one conversion (field order, escapes).
  if (encoding == EnvelopeEncoding::kBinary && *back != message) std::abort();
  return 0;
}
