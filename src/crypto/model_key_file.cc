#include "crypto/model_key_file.h"

#include "common/encoding.h"
#include "common/file_util.h"
#include "common/strict_json.h"
#include "protocol/ids.h"
#include "crypto/model_file.h"

#include <nlohmann/json.hpp>

namespace moss::crypto {
namespace {
constexpr char kKind[] = "moss-model-key";
constexpr int kVersion = 1;
constexpr size_t kMaxKeyFileBytes = 4096;
}  // namespace

Result<SecretBytes> encode_model_key(std::string_view model_id, std::span<const uint8_t> key) {
  MOSS_RETURN_IF_ERROR(protocol::validate_model_id(model_id));
  if (key.size() != kModelKeySize) {
    return invalid_argument("model key must be {} bytes, got {}", kModelKeySize, key.size());
  }
  std::string b64 = base64_encode(key);
  // Built by hand rather than through nlohmann so every copy of the key is ours to wipe; the
  // model id is validated to contain nothing that needs JSON escaping.
  std::string text = std::string("{\"kind\":\"") + kKind + "\",\"version\":" +
                     std::to_string(kVersion) + ",\"model_id\":\"" + std::string(model_id) +
                     "\",\"key\":\"" + b64 + "\"}\n";
  SecretBytes out(as_bytes(text));
  secure_wipe(b64);
  secure_wipe(text);
  return out;
}

Result<ModelKey> decode_model_key(std::span<const uint8_t> text) {
  if (text.size() > kMaxKeyFileBytes) return invalid_argument("model key file too large");
  MOSS_ASSIGN_OR_RETURN(auto j, parse_json_strict(as_chars(text), "model key file", 2));
  auto wipe_key = [&j] {
    auto it = j.find("key");
    if (it != j.end() && it->is_string()) secure_wipe(it->get_ref<std::string&>());
  };
  auto fail = [&](Status s) {
    wipe_key();
    return s;
  };
  if (!j.is_object() || j.size() != 4 || !j.contains("kind") || !j.contains("version") ||
      !j.contains("model_id") || !j.contains("key")) {
    return fail(invalid_argument("model key file must have exactly kind, version, model_id, key"));
  }
  if (!j["kind"].is_string() || j["kind"].get<std::string>() != kKind) {
    return fail(invalid_argument("not a model key file (kind is not '{}')", kKind));
  }
  if (!j["version"].is_number_integer() || j["version"].get<int64_t>() != kVersion) {
    return fail(unimplemented("model key file version is not {}", kVersion));
  }
  if (!j["model_id"].is_string() || !j["key"].is_string()) {
    return fail(invalid_argument("model key file: model_id and key must be strings"));
  }
  ModelKey out;
  out.model_id = j["model_id"].get<std::string>();
  Status s = protocol::validate_model_id(out.model_id);
  if (!s.ok()) return fail(std::move(s).with_context("model key file"));
  auto key = base64_decode_secret(j["key"].get_ref<const std::string&>(), kModelKeySize);
  wipe_key();
  if (!key.ok()) return key.status().with_context("model key file key");
  if (key->size() != kModelKeySize) {
    return invalid_argument("model key file: key must be {} bytes", kModelKeySize);
  }
  out.key = std::move(key).value();
  return out;
}

Status write_model_key_file(const std::filesystem::path& path, std::string_view model_id,
                            std::span<const uint8_t> key) {
  MOSS_ASSIGN_OR_RETURN(SecretBytes text, encode_model_key(model_id, key));
  return write_file(path, text.span(), 0600);
}

Result<ModelKey> read_model_key_file(const std::filesystem::path& path) {
  MOSS_ASSIGN_OR_RETURN(SecretBytes text, read_secret_file(path, kMaxKeyFileBytes));
  auto key = decode_model_key(text.span());
  if (!key.ok()) return key.status().with_context(path.string());
  return key;
}

}  // namespace moss::crypto
