// LocalBackend: instances are `moss-worker` processes on loopback ports (the embedded default).
//
// Each instance is one process, started on a free 127.0.0.1 port and considered ready once
// GET /healthz answers 200. Settings reach it as environment variables (C3): PORT and
// MOSS_WORKER_PORT, MOSS_WORKER_HOST=127.0.0.1, MOSS_WORKER_MAX_CONCURRENCY,
// MOSS_WORKER_MEMORY_BUDGET_MB, and
// MOSS_WORKER_<KEY> for each pool worker_config key (keyservice_url -> MOSS_WORKER_KEYSERVICE_URL).
// Workers die with the packer (parent-death signal) and stay in its process group, so `moss down`
// sweeps them too. A crashed worker is restarted on the next request; a request that never
// reached it (the process was gone or the connection was refused) is retried once on the new
// process; a request the worker may have started is not (it could have acted on it).
// Per-instance concurrency and the memory budget are enforced by the worker (its settings) and
// by the pool (routing never sends more than max_concurrency requests to one instance).
// Thread-safe.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <string>

#include "packer/backend.h"

namespace moss::packer {

struct LocalBackendOptions {
  std::filesystem::path worker_binary;
  std::map<std::string, std::string> worker_config;  // C3 keys, see above
  int max_concurrency = 10;
  uint64_t memory_budget_mb = 1024;
  std::filesystem::path log_dir;  // worker logs: <log_dir>/<pool>-<instance>.log; empty: inherit
  std::string pool_name = "pool";
  std::chrono::milliseconds start_timeout{30'000};
};

class LocalBackend final : public Backend {
 public:
  explicit LocalBackend(LocalBackendOptions options);
  std::string_view kind() const override { return "local"; }
  Result<InstancePtr> start(const std::string& instance_id) override;

 private:
  const LocalBackendOptions options_;
};

}  // namespace moss::packer
