#include "client/request_key_file.h"

#include "common/encoding.h"
#include "common/file_util.h"
#include "common/strict_json.h"
#include "protocol/ids.h"

#include <nlohmann/json.hpp>

#include <sys/stat.h>

namespace moss::client {
namespace fs = std::filesystem;

namespace {
constexpr char kKind[] = "moss-request-key";
constexpr int kVersion = 1;
constexpr size_t kMaxMeasurementHex = 128;  // 48-byte TDX MRTD is 96 hex characters

Status validate_measurement(std::string_view hex) {
  if (hex.empty() || hex.size() > kMaxMeasurementHex || hex.size() % 2 != 0) {
    return invalid_argument("measurement must be 2..{} hex characters", kMaxMeasurementHex);
  }
  for (char c : hex) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return invalid_argument("measurement must be lowercase hex");
    }
  }
  return Status::Ok();
}

Status make_private_dir(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return internal_error("creating {}: {}", dir.string(), ec.message());
  ::chmod(dir.c_str(), 0700);
  return Status::Ok();
}
}  // namespace

Result<fs::path> request_key_file_path(const ClientConfig& config, std::string_view model_id) {
  MOSS_RETURN_IF_ERROR(protocol::validate_model_id(model_id));
  std::string name;
  for (char c : model_id) {
    if (c == '/') {
      name += "__";
    } else {
      name += c;
    }
  }
  return config.state_dir / "request-keys" / (name + ".json");
}

Status write_request_key_file(const ClientConfig& config, const RequestKeyFile& file) {
  MOSS_ASSIGN_OR_RETURN(fs::path path, request_key_file_path(config, file.model_id));
  MOSS_RETURN_IF_ERROR(validate_measurement(file.measurement));
  if (file.key.size() != kRequestKeyBytes) {
    return invalid_argument("request key must be {} bytes", kRequestKeyBytes);
  }
  if (file.key_version == 0) return invalid_argument("request key version must be >= 1");
  MOSS_RETURN_IF_ERROR(make_private_dir(path.parent_path()));
  std::string b64 = base64_encode(file.key.span());
  // Built by hand so every copy of the key is ours to wipe; model id and measurement are
  // validated to need no JSON escaping.
  std::string text = std::string("{\"kind\":\"") + kKind + "\",\"version\":" +
                     std::to_string(kVersion) + ",\"model_id\":\"" + file.model_id +
                     "\",\"measurement\":\"" + file.measurement +
                     "\",\"key_version\":" + std::to_string(file.key_version) + ",\"key\":\"" +
                     b64 + "\"}\n";
  Status s = write_file(path, as_bytes(text), 0600);
  secure_wipe(b64);
  secure_wipe(text);
  return s;
}

Result<RequestKeyFile> read_request_key_file(const ClientConfig& config, std::string_view model_id) {
  MOSS_ASSIGN_OR_RETURN(fs::path path, request_key_file_path(config, model_id));
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    return not_found("no request key for model {} ({}); run `moss request-key add` first",
                     model_id, path.string());
  }
  MOSS_ASSIGN_OR_RETURN(SecretBytes text, read_secret_file(path, kMaxRequestKeyFileBytes));
  auto parsed = parse_json_strict(as_chars(text.span()), "request key file", 2);
  if (!parsed.ok()) return parsed.status().with_context(path.string());
  auto& j = *parsed;
  auto wipe_key = [&j] {
    auto it = j.find("key");
    if (it != j.end() && it->is_string()) secure_wipe(it->get_ref<std::string&>());
  };
  auto fail = [&](Status s) {
    wipe_key();
    return std::move(s).with_context(path.string());
  };
  if (!j.is_object() || j.size() != 6) {
    return fail(invalid_argument(
        "request key file must have exactly kind, version, model_id, measurement, key_version, key"));
  }
  for (const char* k : {"kind", "version", "model_id", "measurement", "key_version", "key"}) {
    if (!j.contains(k)) return fail(invalid_argument("request key file: '{}' missing", k));
  }
  if (!j["kind"].is_string() || j["kind"].get<std::string>() != kKind) {
    return fail(invalid_argument("not a request key file (kind is not '{}')", kKind));
  }
  if (!j["version"].is_number_integer() || j["version"].get<int64_t>() != kVersion) {
    return fail(unimplemented("request key file version is not {}", kVersion));
  }
  if (!j["model_id"].is_string() || !j["measurement"].is_string() || !j["key"].is_string() ||
      !j["key_version"].is_number_unsigned()) {
    return fail(invalid_argument("request key file: field of the wrong type"));
  }
  RequestKeyFile out;
  out.model_id = j["model_id"].get<std::string>();
  if (out.model_id != model_id) {
    return fail(invalid_argument("request key file names model {}, not {}", out.model_id, model_id));
  }
  out.measurement = j["measurement"].get<std::string>();
  Status s = validate_measurement(out.measurement);
  if (!s.ok()) return fail(std::move(s));
  uint64_t version = j["key_version"].get<uint64_t>();
  if (version == 0 || version > UINT32_MAX) return fail(invalid_argument("bad key_version"));
  out.key_version = static_cast<uint32_t>(version);
  auto key = base64_decode_secret(j["key"].get_ref<const std::string&>(), kRequestKeyBytes);
  wipe_key();
  if (!key.ok()) return key.status().with_context(path.string() + ": key");
  if (key->size() != kRequestKeyBytes) {
    return invalid_argument("{}: key must be {} bytes", path.string(), kRequestKeyBytes);
  }
  out.key = std::move(key).value();
  return out;
}

}  // namespace moss::client
