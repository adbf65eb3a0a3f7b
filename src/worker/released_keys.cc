#include "worker/released_keys.h"

#include "common/encoding.h"
#include "common/strict_json.h"
#include "crypto/hash.h"

#include <nlohmann/json.hpp>

#include <set>

namespace moss::worker {

namespace {

Result<VersionedKey> parse_key(const nlohmann::ordered_json& j, std::string_view what) {
  if (!j.is_object() || !j.contains("version") || !j.contains("key") ||
      !j["version"].is_number_unsigned() || !j["key"].is_string()) {
    return invalid_argument("release response: {} needs a positive 'version' and a base64 'key'", what);
  }
  VersionedKey k;
  const uint64_t v = j["version"].get<uint64_t>();
  if (v == 0 || v > UINT32_MAX) return invalid_argument("release response: {} version {}", what, v);
  k.version = static_cast<uint32_t>(v);
  MOSS_ASSIGN_OR_RETURN(k.key, base64_decode_secret(j["key"].get<std::string>(), 64));
  if (k.key.size() != 32) return invalid_argument("release response: {} is not 32 bytes", what);
  return k;
}

}  // namespace

Result<ReleasedKeys> parse_release_response(std::string_view body, std::string_view model_id,
                                            std::string_view user_id) {
  MOSS_ASSIGN_OR_RETURN(auto j, parse_json_strict(body, "release response", 8));
  if (!j.is_object()) return invalid_argument("release response: not a JSON object");
  for (const char* f : {"model_id", "user_id", "measurement"}) {
    if (!j.contains(f) || !j[f].is_string()) return invalid_argument("release response: no '{}'", f);
  }
  ReleasedKeys out;
  out.model_id = j["model_id"].get<std::string>();
  out.user_id = j["user_id"].get<std::string>();
  out.measurement = j["measurement"].get<std::string>();
  if (out.model_id != model_id || out.user_id != user_id) {
    return invalid_argument("release response is for {} / {}, not the requested {} / {}", out.model_id,
                            out.user_id, model_id, user_id);
  }
  if (!j.contains("model_keys") || !j["model_keys"].is_array() || j["model_keys"].empty() ||
      j["model_keys"].size() > 64) {
    return invalid_argument("release response: 'model_keys' must list 1..64 keys");
  }
  std::set<uint32_t> versions;
  for (const auto& k : j["model_keys"]) {
    MOSS_ASSIGN_OR_RETURN(VersionedKey key, parse_key(k, "model key"));
    if (!versions.insert(key.version).second) {
      return invalid_argument("release response: model key version {} twice", key.version);
    }
    out.model_keys.push_back(std::move(key));
  }
  if (!j.contains("request_key")) return invalid_argument("release response: no 'request_key'");
  MOSS_ASSIGN_OR_RETURN(out.request_key, parse_key(j["request_key"], "request key"));
  return out;
}

std::string model_key_generation(const ReleasedKeys& keys) {
  constexpr std::string_view kLabel = "moss worker model key generation v1";
  std::vector<uint8_t> material(kLabel.begin(), kLabel.end());
  for (const VersionedKey& k : keys.model_keys) {
    for (int shift = 24; shift >= 0; shift -= 8) material.push_back(static_cast<uint8_t>(k.version >> shift));
    auto key = k.key.span();
    material.insert(material.end(), key.begin(), key.end());
  }
  auto digest = sha256(material);
  secure_wipe(material);
  return hex_encode(std::span<const uint8_t>(digest.data(), 16));
}

}  // namespace moss::worker
