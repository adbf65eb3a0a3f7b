// PoolSpec: what an operator asks for when creating a pool (docs/packer-api.md, "Create a pool").
// Parsed strictly from JSON: unknown keys and out-of-range values are errors.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "common/status.h"
#include "packer/pool_kinds.h"

namespace moss::packer {

struct OpenWhiskSpec {
  std::string api_host;       // "https://openwhisk.example:443"
  std::string ns = "_";       // namespace; "_" is the credentials' default namespace
  std::string auth;           // "uuid:key" (basic auth); or auth_file
  std::string auth_file;      // a file holding "uuid:key"
  std::string image;          // the worker's Docker image (blackbox action)
  std::string action_prefix;  // default "moss-<pool>"
  int timeout_ms = 60'000;    // action time limit
  std::string ca_file;        // PEM CA bundle for an https api_host; empty: system store
};

struct PoolSpec {
  std::string name;
  BackendKind backend = BackendKind::kLocal;
  PolicyKind policy = PolicyKind::kMoss;
  std::string worker_binary;  // local: path to moss-worker
  // Worker settings (C3: keyservice_url, keyservice_policy, model_store, tee, ...): local workers
  // get them as MOSS_WORKER_<KEY> environment variables, OpenWhisk actions as parameters.
  std::map<std::string, std::string> worker_config;
  OpenWhiskSpec openwhisk;
  int max_concurrency = 10;          // per instance
  int parallelism = 2;               // requests an instance runs at full speed (its cores)
  uint64_t memory_budget_mb = 1024;  // per instance
  uint64_t pool_memory_budget_mb = 0;  // all instances together (the host's EPC share); 0: none
  int min_instances = 0;
  int max_instances = 4;
  // Stop an instance idle this long (3 minutes, as the original); the MOSS policy keeps one for
  // its models' own keep-alives instead once it has seen enough of their arrivals.
  int idle_timeout_s = 180;
  int queue_timeout_ms = 30'000;     // longest wait for an instance when the request names none
  int stats_half_life_s = 60;        // routing statistics lose half their weight this often
  int request_timeout_ms = 120'000;  // one request on one instance

  // Secrets (openwhisk.auth) only with `include_secrets` (the 0600 state file), never in replies.
  nlohmann::json to_json(bool include_secrets = false) const;
};

// A definition nests no deeper than worker_config / openwhisk's values.
inline constexpr int kPoolSpecMaxDepth = 4;

// Validates keys (unknown ones refused), types, names (pool: [a-z0-9][a-z0-9-]{0,62}), ranges
// and backend-specific requirements; errors as values naming the field, never its value.
Result<PoolSpec> parse_pool_spec(const nlohmann::ordered_json& j);

}  // namespace moss::packer
