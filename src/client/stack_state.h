// The state directory of one `moss up` stack (layout in stack.h): its file names, and the one-time
// preparation of what the services need (directories, simulated platform key, operator token,
// policies, client config). Everything secret is 0600 inside 0700 directories.
// Stateless functions; thread-compatible (one supervisor per directory, stack_lock.h).
#pragma once

#include "common/status.h"

#include <cstdint>
#include <filesystem>
#include <string>

namespace moss::client {

inline std::filesystem::path stack_pid_file(const std::filesystem::path& state_dir) {
  return state_dir / "stack.pid";
}
inline std::filesystem::path stack_info_file(const std::filesystem::path& state_dir) {
  return state_dir / "stack.json";
}
inline std::filesystem::path stack_lock_file(const std::filesystem::path& state_dir) {
  return state_dir / "stack.lock";
}

// Absolute paths and ports of one stack (all under the state directory).
struct StackLayout {
  std::filesystem::path state_dir, bin_dir, log_dir, keyservice_dir, packer_dir, model_store,
      policy_dir, sim_key_file, token_file, client_config;
  uint16_t port_keyservice = 0, port_packer = 0;
  std::string worker_measurement, keyservice_measurement;  // simulated, hex

  std::string keyservice_url() const {
    return "https://127.0.0.1:" + std::to_string(port_keyservice);
  }
  std::string packer_url() const { return "http://127.0.0.1:" + std::to_string(port_packer); }
  std::filesystem::path worker_policy() const {
    return policy_dir / "keyservice-accepts-workers.json";
  }
  std::filesystem::path keyservice_policy() const { return policy_dir / "trust-keyservice.json"; }
};

// Creates `dir` (and its parents) and makes it 0700.
Status make_private_dir(const std::filesystem::path& dir);

// Creates the layout under `state_dir` for services from `bin_dir` on the given ports. Keeps an
// existing simulated platform key and operator token (a restarted stack keeps its identity).
Result<StackLayout> prepare_stack_state(const std::filesystem::path& state_dir,
                                        const std::filesystem::path& bin_dir,
                                        uint16_t port_keyservice, uint16_t port_packer);

}  // namespace moss::client
