#include "protocol/envelope_frame.h"

#include "common/encoding.h"
#include "common/strict_json.h"
#include "protocol/ids.h"

#include <nlohmann/json.hpp>

#include <cstring>

namespace moss::protocol {

namespace {

constexpr uint8_t kMagic[8] = {0x89, 'M', 'O', 'S', 'S', 'E', 'N', 'V'};
constexpr uint8_t kDirRequest = 1, kDirResponse = 2;

Result<std::string> string_field(const nlohmann::ordered_json& j, const char* name) {
  auto it = j.find(name);
  if (it == j.end() || !it->is_string()) {
    return invalid_argument("envelope: missing or non-string field '{}'", name);
  }
  return it->get<std::string>();
}

Result<Direction> direction_from(std::string_view name) {
  if (name == "request") return Direction::kRequest;
  if (name == "response") return Direction::kResponse;
  return invalid_argument("envelope: direction must be 'request' or 'response'");
}

void put_u16_field(std::string& out, std::string_view s) {
  out.push_back(static_cast<char>(s.size() >> 8));
  out.push_back(static_cast<char>(s.size() & 0xff));
  out.append(s);
}

}  // namespace

std::string_view direction_name(Direction d) {
  return d == Direction::kRequest ? "request" : "response";
}

Status validate_envelope_header(const EnvelopeHeader& h) {
  MOSS_RETURN_IF_ERROR(validate_model_id(h.model_id));
  MOSS_RETURN_IF_ERROR(validate_label(h.user_id, "user id"));
  return validate_label(h.request_id, "request id");
}

EnvelopeEncoding envelope_encoding(std::string_view message) {
  return !message.empty() && static_cast<uint8_t>(message[0]) == kMagic[0] ? EnvelopeEncoding::kBinary
                                                                            : EnvelopeEncoding::kJson;
}

// The one framing check behind peek, convert and open, so that they accept exactly the same
// messages (the JSON form's base64 is decoded even to peek: a peek that passed what conversion
// refuses let a relay route a message it could then not forward).
Result<EnvelopeFrame> EnvelopeFrame::parse(std::string_view msg, size_t max_bytes) {
  if (msg.size() > max_bytes) {
    return resource_exhausted("envelope of {} bytes exceeds the limit of {}", msg.size(), max_bytes);
  }
  EnvelopeFrame f;
  f.encoding_ = envelope_encoding(msg);
  EnvelopeHeader& h = f.header_;
  if (f.encoding_ == EnvelopeEncoding::kJson) {
    MOSS_ASSIGN_OR_RETURN(auto j, parse_json_strict(msg, "envelope", 4));
    if (!j.is_object()) return invalid_argument("envelope: not a JSON object");
    static const char* const kFields[] = {"v",         "model_id", "user_id",   "request_id",
                                          "direction", "nonce",    "ciphertext"};
    for (auto it = j.begin(); it != j.end(); ++it) {
      bool known = false;
      for (const char* name : kFields) known = known || it.key() == name;
      if (!known) return invalid_argument("envelope: unknown field {}", quote_input_name(it.key()));
    }
    auto v = j.find("v");
    if (v == j.end() || !v->is_number_integer() || v->get<int64_t>() != kEnvelopeVersion) {
      return unimplemented("envelope: unsupported or missing version (expected {})", kEnvelopeVersion);
    }
    MOSS_ASSIGN_OR_RETURN(h.model_id, string_field(j, "model_id"));
    MOSS_ASSIGN_OR_RETURN(h.user_id, string_field(j, "user_id"));
    MOSS_ASSIGN_OR_RETURN(h.request_id, string_field(j, "request_id"));
    MOSS_ASSIGN_OR_RETURN(std::string dir, string_field(j, "direction"));
    MOSS_ASSIGN_OR_RETURN(h.direction, direction_from(dir));
    MOSS_RETURN_IF_ERROR(validate_envelope_header(h));
    MOSS_ASSIGN_OR_RETURN(std::string nonce_text, string_field(j, "nonce"));
    MOSS_ASSIGN_OR_RETURN(std::string ct_text, string_field(j, "ciphertext"));
    MOSS_ASSIGN_OR_RETURN(auto nonce, base64_decode(nonce_text, kEnvelopeNonceBytes));
    if (nonce.size() != kEnvelopeNonceBytes) {
      return invalid_argument("envelope: nonce must be {} bytes", kEnvelopeNonceBytes);
    }
    std::memcpy(f.nonce_.data(), nonce.data(), kEnvelopeNonceBytes);
    MOSS_ASSIGN_OR_RETURN(f.decoded_, base64_decode(ct_text, max_bytes));
  } else {
    // Every length checked against what is left, nothing copied but the ids.
    const auto* p = reinterpret_cast<const uint8_t*>(msg.data());
    const size_t n = msg.size();
    if (n < sizeof(kMagic) + 2 || std::memcmp(p, kMagic, sizeof(kMagic)) != 0) {
      return invalid_argument("envelope: not a binary envelope (bad magic)");
    }
    size_t pos = sizeof(kMagic);
    if (p[pos] != kEnvelopeVersion) {
      return unimplemented("envelope: unsupported version {} (expected {})", p[pos], kEnvelopeVersion);
    }
    const uint8_t dir = p[pos + 1];
    if (dir != kDirRequest && dir != kDirResponse) {
      return invalid_argument("envelope: direction byte must be 1 (request) or 2 (response)");
    }
    h.direction = dir == kDirRequest ? Direction::kRequest : Direction::kResponse;
    pos += 2;
    for (std::string* field : {&h.model_id, &h.user_id, &h.request_id}) {
      if (n - pos < 2) return invalid_argument("envelope: truncated header");
      const size_t len = size_t{p[pos]} << 8 | p[pos + 1];
      pos += 2;
      if (n - pos < len) return invalid_argument("envelope: truncated header");
      field->assign(msg.substr(pos, len));
      pos += len;
    }
    MOSS_RETURN_IF_ERROR(validate_envelope_header(h));
    if (n - pos < kEnvelopeNonceBytes) return invalid_argument("envelope: truncated nonce");
    std::memcpy(f.nonce_.data(), p + pos, kEnvelopeNonceBytes);
    pos += kEnvelopeNonceBytes;
    f.binary_sealed_ = std::span<const uint8_t>(p + pos, n - pos);
  }
  if (f.sealed().size() < kEnvelopeTagBytes) return invalid_argument("envelope: ciphertext too short");
  return f;
}

std::span<const uint8_t> EnvelopeFrame::sealed() const {
  return encoding_ == EnvelopeEncoding::kJson ? std::span<const uint8_t>(decoded_) : binary_sealed_;
}

std::string EnvelopeFrame::encode(EnvelopeEncoding to) const {
  if (to == EnvelopeEncoding::kJson) return envelope_json_text(header_, nonce_, sealed());
  std::string out = envelope_binary_prefix(header_, nonce_, sealed().size());
  out.append(reinterpret_cast<const char*>(sealed().data()), sealed().size());
  return out;
}

std::string envelope_binary_prefix(const EnvelopeHeader& h, std::span<const uint8_t> nonce,
                                   size_t sealed_bytes) {
  std::string out;
  out.reserve(sizeof(kMagic) + 2 + 6 + h.model_id.size() + h.user_id.size() + h.request_id.size() +
              kEnvelopeNonceBytes + sealed_bytes);
  out.append(reinterpret_cast<const char*>(kMagic), sizeof(kMagic));
  out.push_back(static_cast<char>(kEnvelopeVersion));
  out.push_back(static_cast<char>(h.direction == Direction::kRequest ? kDirRequest : kDirResponse));
  put_u16_field(out, h.model_id);
  put_u16_field(out, h.user_id);
  put_u16_field(out, h.request_id);
  out.append(reinterpret_cast<const char*>(nonce.data()), nonce.size());
  return out;
}

// Written directly: ids are validated to [A-Za-z0-9._:/-] and base64 needs no escaping, so this
// equals nlohmann's dump of the same ordered object without its per-character escaping pass over
// a long ciphertext.
std::string envelope_json_text(const EnvelopeHeader& h, std::span<const uint8_t> nonce,
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

Result<EnvelopeHeader> peek_envelope_header(std::string_view message, size_t max_bytes) {
  MOSS_ASSIGN_OR_RETURN(EnvelopeFrame f, EnvelopeFrame::parse(message, max_bytes));
  return f.header();
}

Result<EnvelopeHeader> peek_binary_envelope_header(std::string_view body, size_t max_bytes) {
  if (envelope_encoding(body) != EnvelopeEncoding::kBinary) {
    return invalid_argument("a {} body must be a binary envelope", kEnvelopeMediaType);
  }
  return peek_envelope_header(body, max_bytes);
}

Result<std::string> convert_envelope(std::string_view message, EnvelopeEncoding to, size_t max_bytes) {
  MOSS_ASSIGN_OR_RETURN(EnvelopeFrame f, EnvelopeFrame::parse(message, max_bytes));
  return f.encode(to);
}

}  // namespace moss::protocol
