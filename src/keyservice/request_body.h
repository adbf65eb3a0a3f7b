// Strict parsing of KeyService request bodies: a JSON object with exactly the listed fields, and
// the value rules (keys, measurements, ids). Every failure is a "bad-request" refusal.
// Stateless: thread-safe.
#pragma once

#include "common/secret_bytes.h"
#include "common/status.h"

#include <nlohmann/json.hpp>

#include <initializer_list>
#include <string>
#include <string_view>

namespace moss::keyservice {

inline constexpr size_t kKeyBytes = 32;
inline constexpr size_t kMaxMeasurementHex = 128;
// Every text field (ids, measurements, public keys) is far shorter; its own rule checks exactly.
inline constexpr size_t kMaxTextFieldBytes = 1024;

Status bad_request(std::string_view message);
// A failed Status as a bad-request refusal with the same message (Ok stays Ok).
Status as_bad_request(const Status& s);

// common/strict_json's parse_json_object and field readers, failing as bad-request refusals.
Result<nlohmann::ordered_json> parse_body(std::string_view body,
                                          std::initializer_list<std::string_view> required,
                                          std::initializer_list<std::string_view> optional = {});

Result<std::string> text_field(const nlohmann::ordered_json& j, std::string_view name);
Result<bool> flag_field_or(const nlohmann::ordered_json& j, std::string_view name, bool fallback);
// A base64 32-byte key; the JSON copy of the text is wiped.
Result<SecretBytes> key_field(nlohmann::ordered_json& j, std::string_view name);
// Lowercase hex, even length, 2..128 characters.
Result<std::string> measurement_field(const nlohmann::ordered_json& j, std::string_view name);
Result<std::string> principal_field(const nlohmann::ordered_json& j, std::string_view name);
Result<std::string> model_id_field(const nlohmann::ordered_json& j, std::string_view name);

Status validate_measurement(std::string_view hex);

}  // namespace moss::keyservice
