// Worker configuration (contract C3): what a moss-worker needs to serve requests.
//
// One scoped Config (docs/configuration.md, scope "worker"). Layers, highest first: an OpenWhisk
// `/init` value, command-line flags (--keyservice-url), MOSS_WORKER_* environment (PORT too), a
// JSON config file (--config, else MOSS_WORKER_CONFIG), built-in defaults. Files and /init write
// the snake_case names of docs/worker-api.md ("keyservice_url"); the environment name is
// MOSS_WORKER_ + upper case (MOSS_WORKER_KEYSERVICE_URL). Unknown names are errors, so a typo
// never passes silently.
#pragma once

#include "common/config.h"
#include "common/status.h"

#include <nlohmann/json_fwd.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace moss::worker {

struct WorkerConfig {
  std::string keyservice_url;     // https://host:port
  std::string keyservice_policy;  // path to a policy JSON file, or the JSON text itself
  std::string model_store;        // directory, or http(s) URL; <store>/<owner>/<name>.moss
  uint64_t memory_budget_bytes = 0;
  std::chrono::milliseconds key_ttl{300'000};
  size_t max_concurrency = 8;
  std::string tee = "auto";       // sim | sgx-gramine | tsm | auto
  std::string sim_key_file;       // simulated platform key (sim TEE, and to verify a sim KeyService)
  std::string sim_identity = "moss-worker";
  bool allow_simulated = false;   // accept a KeyService with simulated evidence
  std::string host = "0.0.0.0";
  uint16_t port = 8080;
  int intra_op_threads = 1;       // engine threads per request
  // Compiled-plan cache directory (worker/plan_cache.h); empty: off. The setting's default is
  // $TMPDIR/moss-worker-plan-cache (else /tmp/...); "off" turns it off.
  std::string plan_cache_dir;
  uint64_t max_model_bytes = uint64_t{4} << 30;
  // The worker's attested TLS certificate (renewed at half); same bounds as the KeyService's.
  std::chrono::seconds certificate_lifetime{6 * 3600};

  // True when the worker can serve: KeyService, its policy and the model store are known.
  bool complete() const;
  // The first missing setting, for "not configured" errors.
  std::string missing() const;
};

// The worker's settings with their defaults (keys "worker.keyservice-url", ...).
Result<Config> make_worker_config();

// The layered configuration without a command line (tests): defaults, then an optional JSON file,
// then the environment (via `env`, the process environment when null), then flags by name
// ("max_concurrency" or "max-concurrency" -> value). moss-worker uses ConfigCommandLine.
Result<Config> load_worker_settings(const std::string& config_file,
                                    const std::map<std::string, std::string>& flags,
                                    const EnvLookup& env = nullptr);

// Applies an OpenWhisk /init `value` on top (the highest layer). OpenWhisk's own fields (name,
// main, code, binary, env) are ignored; unknown names are refused (invalid-argument), and so are
// settings /init may not set (permission-denied): host, port, tee, sim_key_file, sim_identity,
// allow_simulated, certificate_lifetime. Values may be JSON strings, numbers or booleans.
Status apply_init_value(Config& settings, const nlohmann::json& value);
// OpenWhisk's own /init fields, which carry no worker setting.
bool is_openwhisk_init_field(std::string_view name);

// The typed configuration; the memory budget defaults to 3/4 of the container's memory limit
// (cgroup v2 memory.max or v1 limit_in_bytes), else 4 GiB.
Result<WorkerConfig> worker_config_from(const Config& settings);

}  // namespace moss::worker
