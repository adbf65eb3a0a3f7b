#include "keyservice/request_body.h"

#include "common/encoding.h"
#include "common/strict_json.h"
#include "crypto/identity.h"
#include "protocol/ids.h"

namespace moss::keyservice {

Status bad_request(std::string_view message) {
  return refuse(ErrorCode::kInvalidArgument, "bad-request", message);
}

Status as_bad_request(const Status& s) { return s.ok() ? s : bad_request(s.message()); }

Result<nlohmann::ordered_json> parse_body(std::string_view body,
                                          std::initializer_list<std::string_view> required,
                                          std::initializer_list<std::string_view> optional) {
  auto parsed = parse_json_object(body, "request body", required, optional, 4);
  if (!parsed.ok()) return as_bad_request(parsed.status());
  return std::move(parsed).value();
}

Result<SecretBytes> key_field(nlohmann::ordered_json& j, std::string_view name) {
  auto it = j.find(std::string(name));
  if (it == j.end() || !it->is_string()) {
    return bad_request(fmt::format("field '{}' must be a base64 string", name));
  }
  auto key = base64_decode_secret(it->get_ref<const std::string&>(), kKeyBytes);
  secure_wipe(it->get_ref<std::string&>());
  if (!key.ok() || key->size() != kKeyBytes) {
    return bad_request(fmt::format("field '{}' must be base64 of exactly {} bytes", name, kKeyBytes));
  }
  return std::move(key).value();
}

Status validate_measurement(std::string_view hex) {
  if (hex.size() < 2 || hex.size() > kMaxMeasurementHex || hex.size() % 2 != 0) {
    return bad_request(fmt::format("measurement must be 2..{} hex characters", kMaxMeasurementHex));
  }
  for (char c : hex) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return bad_request("measurement must be lowercase hex");
    }
  }
  return Status::Ok();
}

Result<std::string> text_field(const nlohmann::ordered_json& j, std::string_view name) {
  auto s = string_field(j, name, kMaxTextFieldBytes);
  if (!s.ok()) return as_bad_request(s.status());
  return std::move(s).value();
}

Result<bool> flag_field_or(const nlohmann::ordered_json& j, std::string_view name, bool fallback) {
  auto b = bool_field_or(j, name, fallback);
  if (!b.ok()) return as_bad_request(b.status());
  return *b;
}

Result<std::string> measurement_field(const nlohmann::ordered_json& j, std::string_view name) {
  MOSS_ASSIGN_OR_RETURN(std::string m, text_field(j, name));
  MOSS_RETURN_IF_ERROR(validate_measurement(m));
  return m;
}

Result<std::string> principal_field(const nlohmann::ordered_json& j, std::string_view name) {
  MOSS_ASSIGN_OR_RETURN(std::string id, text_field(j, name));
  if (!crypto::is_principal_id(id)) {
    return bad_request(fmt::format("field '{}' is not a principal id", name));
  }
  return id;
}

Result<std::string> model_id_field(const nlohmann::ordered_json& j, std::string_view name) {
  MOSS_ASSIGN_OR_RETURN(std::string id, text_field(j, name));
  MOSS_RETURN_IF_ERROR(as_bad_request(protocol::validate_model_id(id)));
  auto slash = id.find('/');
  if (slash == std::string::npos || id.find('/', slash + 1) != std::string::npos ||
      !crypto::is_principal_id(std::string_view(id).substr(0, slash))) {
    return bad_request("model id must be <owner principal id>/<name> (one '/')");
  }
  return id;
}

}  // namespace moss::keyservice
