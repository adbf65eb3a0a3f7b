// The client configuration (contract C2): where the KeyService is, what it must attest to, and
// which identity and state directory the `moss` commands use.
//
//   {"keyservice_url":"https://127.0.0.1:7443" (or a list: ["https://a:7443","https://b:7443"]),
//    "keyservice_policy":"<policy JSON path>",
//    "identity":"<identity.pem path>","state_dir":"<dir>","allow_simulated":false,
//    "sim_key_file":"<optional: simulated platform key, only read when allow_simulated>"}
//
// Found via an explicit path (each command's --config), else $MOSS_CLIENT_CONFIG, else
// ~/.config/moss/client.json. Relative paths inside are relative to the config file's directory.
// Unknown keys are errors, so a typo cannot silently change which KeyService is trusted.
// A value type; immutable once loaded.
#pragma once

#include "common/status.h"

#include <filesystem>
#include <optional>
#include <string>

namespace moss::client {

inline constexpr char kClientConfigEnv[] = "MOSS_CLIENT_CONFIG";
inline constexpr size_t kMaxClientConfigBytes = 64 * 1024;

struct ClientConfig {
  std::filesystem::path config_path;        // the file it was read from (absolute)
  // https://host:port; replicas: several, comma-separated (the file may give a JSON array), tried
  // in order with failover (net/failover_client.h)
  std::string keyservice_url;
  std::filesystem::path keyservice_policy;  // attestation policy the KeyService must satisfy
  std::filesystem::path identity;           // the principal's Ed25519 private key (PKCS#8 PEM)
  std::filesystem::path state_dir;          // request keys and other local state
  bool allow_simulated = false;             // accept a simulated-TEE KeyService (never in production)
  // Simulated platform key to verify a simulated KeyService with (only used with
  // allow_simulated); empty: $MOSS_SIM_KEY, else ~/.moss/sim-platform.key.
  std::filesystem::path sim_key_file;
};

// Where the config is looked for when no explicit path is given.
std::filesystem::path default_client_config_path();

// Loads and validates the config. `explicit_path` wins over the environment and the default.
Result<ClientConfig> load_client_config(std::optional<std::filesystem::path> explicit_path);

// Parses config text; `config_path` anchors relative paths (exposed for tests).
Result<ClientConfig> parse_client_config(std::string_view text,
                                         const std::filesystem::path& config_path);

// The simulated platform key file to use for `config` (see ClientConfig::sim_key_file).
std::filesystem::path effective_sim_key_file(const ClientConfig& config);

}  // namespace moss::client
