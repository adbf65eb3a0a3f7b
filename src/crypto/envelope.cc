#include "crypto/envelope.h"

#include "common/encoding.h"
#include "common/strict_json.h"
#include "crypto/aead.h"
#include "crypto/hkdf.h"
#include "crypto/ids.h"
#include "crypto/random.h"

#include <nlohmann/json.hpp>

#include <array>
#include <cstring>

namespace moss::crypto {

// A message split into its parts. `sealed` points into the message (binary form) or into
// `decoded` (JSON form: the base64 decoded).
struct ParsedEnvelope::Parts {
  EnvelopeHeader header;
  std::array<uint8_t, kAesGcmNonceSize> nonce{};
  std::vector<uint8_t> decoded;
  std::span<const uint8_t> sealed;
};

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

constexpr uint8_t kMagic[8] = {0x89, 'M', 'O', 'S', 'S', 'E', 'N', 'V'};
constexpr uint8_t kDirRequest = 1, kDirResponse = 2;

using Parsed = ParsedEnvelope::Parts;

Result<Direction> direction_from(std::string_view name) {
  if (name == "request") return Direction::kRequest;
  if (name == "response") return Direction::kResponse;
  return invalid_argument("envelope: direction must be 'request' or 'response'");
}

// JSON form.
Status parse_json(std::string_view json, size_t max_bytes, Parsed& out) {
  MOSS_ASSIGN_OR_RETURN(auto j, parse_json_strict(json, "envelope", 4));
  if (!j.is_object()) return invalid_argument("envelope: not a JSON object");
  static const char* const kFields[] = {"v",         "model_id", "user_id",   "request_id",
                                        "direction", "nonce",    "ciphertext"};
  for (auto it = j.begin(); it != j.end(); ++it) {
    bool known = false;
    for (const char* f : kFields) known = known || it.key() == f;
    if (!known) return invalid_argument("envelope: unknown field {}", quote_input_name(it.key()));
  }
  auto v = j.find("v");
  if (v == j.end() || !v->is_number_integer() || v->get<int64_t>() != kVersion) {
    return unimplemented("envelope: unsupported or missing version (expected {})", kVersion);
  }
  EnvelopeHeader& h = out.header;
  MOSS_ASSIGN_OR_RETURN(h.model_id, string_field(j, "model_id"));
  MOSS_ASSIGN_OR_RETURN(h.user_id, string_field(j, "user_id"));
  MOSS_ASSIGN_OR_RETURN(h.request_id, string_field(j, "request_id"));
  MOSS_ASSIGN_OR_RETURN(std::string dir, string_field(j, "direction"));
  MOSS_ASSIGN_OR_RETURN(h.direction, direction_from(dir));
  MOSS_RETURN_IF_ERROR(validate_header(h));
  MOSS_ASSIGN_OR_RETURN(std::string nonce_text, string_field(j, "nonce"));
  MOSS_ASSIGN_OR_RETURN(std::string ct_text, string_field(j, "ciphertext"));
  MOSS_ASSIGN_OR_RETURN(auto nonce, base64_decode(nonce_text, kAesGcmNonceSize));
  if (nonce.size() != kAesGcmNonceSize) {
    return invalid_argument("envelope: nonce must be {} bytes", kAesGcmNonceSize);
  }
  std::memcpy(out.nonce.data(), nonce.data(), kAesGcmNonceSize);
  MOSS_ASSIGN_OR_RETURN(out.decoded, base64_decode(ct_text, max_bytes));
  out.sealed = out.decoded;
  return Status::Ok();
}

// Binary form: every length checked against what is left, nothing copied but the ids.
Status parse_binary(std::string_view msg, Parsed& out) {
  const auto* p = reinterpret_cast<const uint8_t*>(msg.data());
  const size_t n = msg.size();
  if (n < sizeof(kMagic) + 2 || std::memcmp(p, kMagic, sizeof(kMagic)) != 0) {
    return invalid_argument("envelope: not a binary envelope (bad magic)");
  }
  size_t pos = sizeof(kMagic);
  if (p[pos] != kVersion) {
    return unimplemented("envelope: unsupported version {} (expected {})", p[pos], kVersion);
  }
  const uint8_t dir = p[pos + 1];
  if (dir != kDirRequest && dir != kDirResponse) {
    return invalid_argument("envelope: direction byte must be 1 (request) or 2 (response)");
  }
  out.header.direction = dir == kDirRequest ? Direction::kRequest : Direction::kResponse;
  pos += 2;
  for (std::string* field : {&out.header.model_id, &out.header.user_id, &out.header.request_id}) {
    if (n - pos < 2) return invalid_argument("envelope: truncated header");
    const size_t len = size_t{p[pos]} << 8 | p[pos + 1];
    pos += 2;
    if (n - pos < len) return invalid_argument("envelope: truncated header");
    field->assign(msg.substr(pos, len));
    pos += len;
  }
  MOSS_RETURN_IF_ERROR(validate_header(out.header));
  if (n - pos < kAesGcmNonceSize) return invalid_argument("envelope: truncated nonce");
  std::memcpy(out.nonce.data(), p + pos, kAesGcmNonceSize);
  pos += kAesGcmNonceSize;
  out.sealed = std::span<const uint8_t>(p + pos, n - pos);
  return Status::Ok();
}

// The one framing check behind peek, convert and open, so that they accept exactly the same
// messages (the JSON form's base64 is decoded even to peek: a peek that passed what conversion
// refuses let a relay route a message it could then not forward).
Status parse(std::string_view msg, size_t max_bytes, Parsed& out) {
  if (msg.size() > max_bytes) {
    return resource_exhausted("envelope of {} bytes exceeds the limit of {}", msg.size(), max_bytes);
  }
  MOSS_RETURN_IF_ERROR(envelope_encoding(msg) == EnvelopeEncoding::kBinary
                           ? parse_binary(msg, out)
                           : parse_json(msg, max_bytes, out));
  if (out.sealed.size() < kAesGcmTagSize) return invalid_argument("envelope: ciphertext too short");
  return Status::Ok();
}

void put_u16_field(std::string& out, std::string_view s) {
  out.push_back(static_cast<char>(s.size() >> 8));
  out.push_back(static_cast<char>(s.size() & 0xff));
  out.append(s);
}

// The framing before the ciphertext, and where the ciphertext starts in the returned string.
std::string binary_prefix(const EnvelopeHeader& h, std::span<const uint8_t> nonce, size_t payload) {
  std::string out;
  out.reserve(sizeof(kMagic) + 2 + 6 + h.model_id.size() + h.user_id.size() + h.request_id.size() +
              kAesGcmNonceSize + payload);
  out.append(reinterpret_cast<const char*>(kMagic), sizeof(kMagic));
  out.push_back(static_cast<char>(kVersion));
  out.push_back(static_cast<char>(h.direction == Direction::kRequest ? kDirRequest : kDirResponse));
  put_u16_field(out, h.model_id);
  put_u16_field(out, h.user_id);
  put_u16_field(out, h.request_id);
  out.append(reinterpret_cast<const char*>(nonce.data()), nonce.size());
  return out;
}

// The JSON form written directly: ids are validated to [A-Za-z0-9._:/-] and base64 needs no
// escaping, so this equals nlohmann's dump of the same ordered object without its per-character
// escaping pass over a long ciphertext.
std::string json_text(const EnvelopeHeader& h, std::span<const uint8_t> nonce,
                      std::span<const uint8_t> sealed) {
  std::string ct = base64_encode(sealed);
  std::string out;
  out.reserve(ct.size() + 200 + h.model_id.size() + h.user_id.size() + h.request_id.size());
  out += R"({"v":1,"model_id":")";
  out += h.model_id;
  out += R"(","user_id":")";
  out += h.user_id;
  out += R"(","request_id":")";
  out += h.request_id;
  out += R"(","direction":")";
  out += direction_name(h.direction);
  out += R"(","nonce":")";
  out += base64_encode(nonce);
  out += R"(","ciphertext":")";
  out += ct;
  out += R"("})";
  return out;
}
}  // namespace

std::string_view direction_name(Direction d) {
  return d == Direction::kRequest ? "request" : "response";
}

EnvelopeEncoding envelope_encoding(std::string_view message) {
  return !message.empty() && static_cast<uint8_t>(message[0]) == kMagic[0] ? EnvelopeEncoding::kBinary
                                                                            : EnvelopeEncoding::kJson;
}

Result<std::string> seal_envelope(std::span<const uint8_t> request_key,
                                  const EnvelopeHeader& header,
                                  std::span<const uint8_t> plaintext,
                                  std::span<const uint8_t> nonce, EnvelopeEncoding encoding) {
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
  const size_t sealed_size = plaintext.size() + kAesGcmTagSize;
  // Binary: seal straight into the message; JSON: into a buffer that is then base64-encoded.
  std::string message;
  std::vector<uint8_t> buffer;
  uint8_t* sealed;
  if (encoding == EnvelopeEncoding::kBinary) {
    message = binary_prefix(header, n, sealed_size);
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
  return json_text(header, n, buffer);
}

Result<SecretBytes> open_envelope(std::span<const uint8_t> request_key,
                                  const EnvelopeHeader& expected, std::string_view message,
                                  size_t max_bytes) {
  MOSS_ASSIGN_OR_RETURN(ParsedEnvelope parsed, ParsedEnvelope::parse(message, max_bytes));
  return parsed.open(request_key, expected);
}

ParsedEnvelope::ParsedEnvelope(std::unique_ptr<Parts> parts) : parts_(std::move(parts)) {}
ParsedEnvelope::~ParsedEnvelope() = default;
ParsedEnvelope::ParsedEnvelope(ParsedEnvelope&&) noexcept = default;
ParsedEnvelope& ParsedEnvelope::operator=(ParsedEnvelope&&) noexcept = default;

Result<ParsedEnvelope> ParsedEnvelope::parse(std::string_view message, size_t max_bytes) {
  auto parts = std::make_unique<Parts>();
  MOSS_RETURN_IF_ERROR(crypto::parse(message, max_bytes, *parts));
  return ParsedEnvelope(std::move(parts));
}

const EnvelopeHeader& ParsedEnvelope::header() const { return parts_->header; }

Result<SecretBytes> ParsedEnvelope::open(std::span<const uint8_t> request_key,
                                         const EnvelopeHeader& expected) const {
  MOSS_RETURN_IF_ERROR(validate_header(expected));
  const Parts& m = *parts_;
  if (!(m.header == expected)) {
    return unauthenticated("envelope header does not match the expected model, user, request "
                           "or direction");
  }
  MOSS_ASSIGN_OR_RETURN(AesGcm aead, direction_cipher(request_key, expected.direction));
  const size_t n = m.sealed.size() - kAesGcmTagSize;
  SecretBytes plain(n);
  Status s = aead.open(m.nonce, envelope_aad(expected), m.sealed.first(n),
                       std::span<const uint8_t, kAesGcmTagSize>(m.sealed.data() + n, kAesGcmTagSize),
                       plain.span());
  if (!s.ok()) {
    if (s.code() == ErrorCode::kUnauthenticated) {
      return unauthenticated("envelope failed authentication (wrong key or altered message)");
    }
    return s;
  }
  return plain;
}

Result<std::string> convert_envelope(std::string_view message, EnvelopeEncoding to, size_t max_bytes) {
  Parsed m;
  MOSS_RETURN_IF_ERROR(parse(message, max_bytes, m));
  if (to == EnvelopeEncoding::kJson) return json_text(m.header, m.nonce, m.sealed);
  std::string out = binary_prefix(m.header, m.nonce, m.sealed.size());
  out.append(reinterpret_cast<const char*>(m.sealed.data()), m.sealed.size());
  return out;
}

Result<EnvelopeHeader> peek_envelope_header(std::string_view message, size_t max_bytes) {
  Parsed m;
  MOSS_RETURN_IF_ERROR(parse(message, max_bytes, m));
  return std::move(m.header);
}

Result<EnvelopeHeader> peek_binary_envelope_header(std::string_view body, size_t max_bytes) {
  if (envelope_encoding(body) != EnvelopeEncoding::kBinary) {
    return invalid_argument("a {} body must be a binary envelope", kEnvelopeMediaType);
  }
  return peek_envelope_header(body, max_bytes);
}

}  // namespace moss::crypto
