#include "common/encoding.h"

#include <array>

namespace moss {
namespace {

constexpr char kStdAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr char kUrlAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
constexpr char kHexDigits[] = "0123456789abcdef";

// 0xff marks a character outside the alphabet.
constexpr std::array<uint8_t, 256> make_reverse(const char* alphabet) {
  std::array<uint8_t, 256> table{};
  for (auto& v : table) v = 0xff;
  for (int i = 0; i < 64; ++i) table[static_cast<uint8_t>(alphabet[i])] = static_cast<uint8_t>(i);
  return table;
}
constexpr auto kStdReverse = make_reverse(kStdAlphabet);
constexpr auto kUrlReverse = make_reverse(kUrlAlphabet);

std::string encode(std::span<const uint8_t> in, const char* alphabet, bool pad) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    uint32_t v = (uint32_t{in[i]} << 16) | (uint32_t{in[i + 1]} << 8) | in[i + 2];
    out.push_back(alphabet[(v >> 18) & 63]);
    out.push_back(alphabet[(v >> 12) & 63]);
    out.push_back(alphabet[(v >> 6) & 63]);
    out.push_back(alphabet[v & 63]);
  }
  size_t rest = in.size() - i;
  if (rest == 0) return out;
  uint32_t v = uint32_t{in[i]} << 16;
  if (rest == 2) v |= uint32_t{in[i + 1]} << 8;
  out.push_back(alphabet[(v >> 18) & 63]);
  out.push_back(alphabet[(v >> 12) & 63]);
  if (rest == 2) out.push_back(alphabet[(v >> 6) & 63]);
  if (pad) out.append(rest == 1 ? "==" : "=");
  return out;
}

size_t decoded_size(size_t n) { return n / 4 * 3 + (n % 4 == 0 ? 0 : n % 4 - 1); }

// Validates `text` and returns the number of significant (non-padding) characters, after which
// decode_into writes exactly decoded_size(n) bytes.
Result<size_t> check_base64(std::string_view text, const std::array<uint8_t, 256>& rev,
                            bool padding_required, size_t max_bytes) {
  size_t n = text.size();
  size_t pad = 0;
  while (pad < 2 && n > 0 && text[n - 1] == '=') {
    --n;
    ++pad;
  }
  if (pad > 0 && text.size() % 4 != 0) return invalid_argument("base64: bad padding");
  if (padding_required && text.size() % 4 != 0) {
    return invalid_argument("base64: length {} is not a multiple of 4", text.size());
  }
  if (n % 4 == 1) return invalid_argument("base64: truncated input");
  if (pad > 0 && (n + pad) % 4 != 0) return invalid_argument("base64: bad padding");
  size_t decoded = decoded_size(n);
  if (decoded > max_bytes) {
    return resource_exhausted("base64: decoded size {} exceeds the limit of {} bytes", decoded,
                              max_bytes);
  }
  for (size_t i = 0; i < n; ++i) {
    if (rev[static_cast<uint8_t>(text[i])] == 0xff) {
      return invalid_argument("base64: invalid character at offset {}", i);
    }
  }
  // Canonical form: the bits below the last full byte must be zero.
  if (n % 4 == 2 && (rev[static_cast<uint8_t>(text[n - 1])] & 0x0f) != 0) {
    return invalid_argument("base64: non-canonical trailing bits");
  }
  if (n % 4 == 3 && (rev[static_cast<uint8_t>(text[n - 1])] & 0x03) != 0) {
    return invalid_argument("base64: non-canonical trailing bits");
  }
  return n;
}

// Precondition: check_base64 accepted text[0, n).
void decode_into(std::string_view text, size_t n, const std::array<uint8_t, 256>& rev,
                 uint8_t* out) {
  size_t i = 0;
  auto at = [&](size_t k) { return uint32_t{rev[static_cast<uint8_t>(text[k])]}; };
  for (; i + 4 <= n; i += 4) {
    uint32_t v = (at(i) << 18) | (at(i + 1) << 12) | (at(i + 2) << 6) | at(i + 3);
    *out++ = static_cast<uint8_t>(v >> 16);
    *out++ = static_cast<uint8_t>(v >> 8);
    *out++ = static_cast<uint8_t>(v);
  }
  size_t rest = n - i;
  if (rest < 2) return;
  uint32_t v = (at(i) << 18) | (at(i + 1) << 12) | (rest == 3 ? at(i + 2) << 6 : 0);
  *out++ = static_cast<uint8_t>(v >> 16);
  if (rest == 3) *out++ = static_cast<uint8_t>(v >> 8);
}

Result<std::vector<uint8_t>> decode(std::string_view text, const std::array<uint8_t, 256>& rev,
                                    bool padding_required, size_t max_bytes) {
  MOSS_ASSIGN_OR_RETURN(size_t n, check_base64(text, rev, padding_required, max_bytes));
  std::vector<uint8_t> out(decoded_size(n));
  decode_into(text, n, rev, out.data());
  return out;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string base64_encode(std::span<const uint8_t> bytes) {
  return encode(bytes, kStdAlphabet, true);
}
std::string base64url_encode(std::span<const uint8_t> bytes) {
  return encode(bytes, kUrlAlphabet, false);
}

Result<std::vector<uint8_t>> base64_decode(std::string_view text, size_t max_bytes) {
  return decode(text, kStdReverse, true, max_bytes);
}
Result<std::vector<uint8_t>> base64url_decode(std::string_view text, size_t max_bytes) {
  return decode(text, kUrlReverse, false, max_bytes);
}

Result<SecretBytes> base64_decode_secret(std::string_view text, size_t max_bytes) {
  MOSS_ASSIGN_OR_RETURN(size_t n, check_base64(text, kStdReverse, true, max_bytes));
  SecretBytes out(decoded_size(n));
  decode_into(text, n, kStdReverse, out.data());
  return out;
}

std::string hex_encode(std::span<const uint8_t> bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (uint8_t b : bytes) {
    out.push_back(kHexDigits[b >> 4]);
    out.push_back(kHexDigits[b & 15]);
  }
  return out;
}

Result<std::vector<uint8_t>> hex_decode(std::string_view text, size_t max_bytes) {
  if (text.size() % 2 != 0) return invalid_argument("hex: odd length {}", text.size());
  if (text.size() / 2 > max_bytes) {
    return resource_exhausted("hex: decoded size {} exceeds the limit of {} bytes",
                              text.size() / 2, max_bytes);
  }
  std::vector<uint8_t> out(text.size() / 2);
  for (size_t i = 0; i < out.size(); ++i) {
    int hi = hex_value(text[2 * i]), lo = hex_value(text[2 * i + 1]);
    if (hi < 0 || lo < 0) return invalid_argument("hex: invalid character near offset {}", 2 * i);
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return out;
}

}  // namespace moss
