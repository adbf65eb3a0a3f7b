#include "crypto/envelope.h"

#include "common/encoding.h"
#include "common/strict_json.h"
#include "crypto/aead.h"
#include "crypto/hkdf.h"
#include "crypto/ids.h"
#include "crypto/random.h"

#include <nlohmann/json.hpp>

#include <cstring>

namespace moss::crypto {
namespace {
constexpr char kLabel[] = "moss envelope v1";
constexpr int kVersion = 1;

Status validate_header(const EnvelopeHeader& h) {
  MOSS_RETURN_IF_ERROR(validate_model_id(h.model_id));
  MOSS_RETURN_IF_ERROR(validate_label(h.user_id, "user id"));
  return validate_label(h.request_id, "request id");
}

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
  std::string info = std::string(kLabel) + " " + std::string(direction_name(d));
  MOSS_ASSIGN_OR_RETURN(SecretBytes subkey,
                        hkdf_sha256(request_key, {}, as_bytes(info), kAesGcmKeySize));
  return AesGcm::create(subkey.span());
}

Result<std::string> string_field(const nlohmann::ordered_json& j, const char* name) {
  auto it = j.find(name);
  if (it == j.end() || !it->is_string()) {
    return invalid_argument("envelope: missing or non-string field '{}'", name);
  }
  return it->get<std::string>();
}

Result<nlohmann::ordered_json> parse_envelope(std::string_view json, size_t max_json_bytes) {
  if (json.size() > max_json_bytes) {
    return resource_exhausted("envelope of {} bytes exceeds the limit of {}", json.size(),
                              max_json_bytes);
  }
  MOSS_ASSIGN_OR_RETURN(auto j, parse_json_strict(json, "envelope", 4));
  if (!j.is_object()) return invalid_argument("envelope: not a JSON object");
  static const char* const kFields[] = {"v",         "model_id", "user_id",   "request_id",
                                        "direction", "nonce",    "ciphertext"};
  for (auto it = j.begin(); it != j.end(); ++it) {
    bool known = false;
    for (const char* f : kFields) known = known || it.key() == f;
    if (!known) return invalid_argument("envelope: unknown field '{}'", it.key());
  }
  auto v = j.find("v");
  if (v == j.end() || !v->is_number_integer() || v->get<int64_t>() != kVersion) {
    return unimplemented("envelope: unsupported or missing version (expected {})", kVersion);
  }
  return j;
}

Result<EnvelopeHeader> header_of(const nlohmann::ordered_json& j) {
  EnvelopeHeader h;
  MOSS_ASSIGN_OR_RETURN(h.model_id, string_field(j, "model_id"));
  MOSS_ASSIGN_OR_RETURN(h.user_id, string_field(j, "user_id"));
  MOSS_ASSIGN_OR_RETURN(h.request_id, string_field(j, "request_id"));
  MOSS_ASSIGN_OR_RETURN(std::string dir, string_field(j, "direction"));
  if (dir == "request") {
    h.direction = Direction::kRequest;
  } else if (dir == "response") {
    h.direction = Direction::kResponse;
  } else {
    return invalid_argument("envelope: direction must be 'request' or 'response'");
  }
  MOSS_RETURN_IF_ERROR(validate_header(h));
  return h;
}
}  // namespace

std::string_view direction_name(Direction d) {
  return d == Direction::kRequest ? "request" : "response";
}

Result<std::string> seal_envelope(std::span<const uint8_t> request_key,
                                  const EnvelopeHeader& header,
                                  std::span<const uint8_t> plaintext,
                                  std::span<const uint8_t> nonce) {
  MOSS_RETURN_IF_ERROR(validate_header(header));
  MOSS_ASSIGN_OR_RETURN(AesGcm aead, direction_cipher(request_key, header.direction));
  std::array<uint8_t, kAesGcmNonceSize> n{};
  if (nonce.empty()) {
    MOSS_RETURN_IF_ERROR(random_bytes(n));
  } else if (nonce.size() == n.size()) {
    std::memcpy(n.data(), nonce.data(), n.size());
  } else {
    return invalid_argument("injected envelope nonce must be {} bytes", n.size());
  }
  std::vector<uint8_t> sealed(plaintext.size() + kAesGcmTagSize);
  std::span<uint8_t, kAesGcmTagSize> tag(sealed.data() + plaintext.size(), kAesGcmTagSize);
  MOSS_RETURN_IF_ERROR(aead.seal(n, envelope_aad(header), plaintext,
                                 std::span<uint8_t>(sealed.data(), plaintext.size()), tag));
  nlohmann::ordered_json j;
  j["v"] = kVersion;
  j["model_id"] = header.model_id;
  j["user_id"] = header.user_id;
  j["request_id"] = header.request_id;
  j["direction"] = direction_name(header.direction);
  j["nonce"] = base64_encode(n);
  j["ciphertext"] = base64_encode(sealed);
  return j.dump();
}

Result<SecretBytes> open_envelope(std::span<const uint8_t> request_key,
                                  const EnvelopeHeader& expected, std::string_view json,
                                  size_t max_json_bytes) {
  MOSS_RETURN_IF_ERROR(validate_header(expected));
  MOSS_ASSIGN_OR_RETURN(auto j, parse_envelope(json, max_json_bytes));
  MOSS_ASSIGN_OR_RETURN(EnvelopeHeader got, header_of(j));
  if (!(got == expected)) {
    return unauthenticated("envelope header does not match the expected model, user, request "
                           "or direction");
  }
  MOSS_ASSIGN_OR_RETURN(std::string nonce_text, string_field(j, "nonce"));
  MOSS_ASSIGN_OR_RETURN(std::string ct_text, string_field(j, "ciphertext"));
  MOSS_ASSIGN_OR_RETURN(auto nonce, base64_decode(nonce_text, kAesGcmNonceSize));
  if (nonce.size() != kAesGcmNonceSize) {
    return invalid_argument("envelope: nonce must be {} bytes", kAesGcmNonceSize);
  }
  MOSS_ASSIGN_OR_RETURN(auto sealed, base64_decode(ct_text, max_json_bytes));
  if (sealed.size() < kAesGcmTagSize) return invalid_argument("envelope: ciphertext too short");
  MOSS_ASSIGN_OR_RETURN(AesGcm aead, direction_cipher(request_key, expected.direction));
  const size_t n = sealed.size() - kAesGcmTagSize;
  SecretBytes plain(n);
  Status s = aead.open(std::span<const uint8_t, kAesGcmNonceSize>(nonce.data(), kAesGcmNonceSize),
                       envelope_aad(expected), std::span<const uint8_t>(sealed.data(), n),
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

Result<EnvelopeHeader> peek_envelope_header(std::string_view json, size_t max_json_bytes) {
  MOSS_ASSIGN_OR_RETURN(auto j, parse_envelope(json, max_json_bytes));
  return header_of(j);
}

}  // namespace moss::crypto
