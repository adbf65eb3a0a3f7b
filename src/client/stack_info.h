// StackInfo: what `moss up` reports about a running stack, kept in STATE/stack.json from the
// moment every service is ready until the stack stops. `moss down` reads it back to find what to
// sweep, so it is checked field by field like any file. Stateless functions; thread-safe.
#pragma once

#include "common/status.h"

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace moss::client {

struct StackInfo {
  int64_t supervisor_pid = 0;
  std::string keyservice_url;      // https://127.0.0.1:P
  std::string packer_url;          // http://127.0.0.1:P
  std::string invoke_url;          // packer_url + /v1/pools/<pool>/invoke
  std::string pool;
  std::string worker_measurement;  // hex: what owners grant users for
  std::vector<int64_t> service_groups;  // process groups of the services (swept by `moss down`)
  std::filesystem::path state_dir, client_config, token_file, log_dir;
};

// Writes stack.json (0600, atomically) into `state_dir`.
Status write_stack_info(const std::filesystem::path& state_dir, const StackInfo& info);

// Reads stack.json; not-found when there is none, data-loss when it is malformed.
Result<StackInfo> read_stack_info(const std::filesystem::path& state_dir);

// A human-readable summary of a running stack (what `moss up` prints).
std::string describe_stack(const StackInfo& info);

}  // namespace moss::client
