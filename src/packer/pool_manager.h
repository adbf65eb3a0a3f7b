// PoolManager: the packer's pools by name (create, list, describe, delete), their backends, the
// idle reaper, and the pool definitions saved in the state directory so a restarted packer
// serves the same pools.
// Thread-safe.
#pragma once

#include <condition_variable>
#include <filesystem>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "common/status.h"
#include "packer/clock.h"
#include "packer/pool.h"

namespace moss::packer {

struct PoolManagerOptions {
  std::filesystem::path state_dir;  // pools.json and workers/*.log; empty: nothing persisted
  std::chrono::milliseconds reap_interval{1'000};
};

// The backend a spec asks for (local worker logs go to `log_dir` when not empty).
Result<BackendPtr> make_backend(const PoolSpec& spec, const std::filesystem::path& log_dir);

class PoolManager {
 public:
  PoolManager(PoolManagerOptions options, const Clock& clock);
  ~PoolManager();  // shutdown()
  PoolManager(const PoolManager&) = delete;
  PoolManager& operator=(const PoolManager&) = delete;

  // Recreates the pools saved in state_dir/pools.json (instances start on demand).
  Status load_state();
  // `body` is a pool definition (pool_spec.h). already-exists when the name is taken.
  Result<PoolPtr> create(const nlohmann::ordered_json& body);
  Result<PoolPtr> get(std::string_view name) const;
  std::vector<PoolPtr> list() const;
  // Stops the pool's instances (in-flight requests finish first) and forgets it.
  Status remove(std::string_view name);
  // Stops the reaper and every pool. Idempotent.
  void shutdown();

 private:
  Status save_locked() const;
  void reap_loop();

  const PoolManagerOptions options_;
  const Clock& clock_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, PoolPtr, std::less<>> pools_;  // guarded by mu_
  bool stopping_ = false;                              // guarded by mu_
  std::thread reaper_;
};

}  // namespace moss::packer
