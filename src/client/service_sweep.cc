#include "client/service_sweep.h"

#include "client/stack_services.h"
#include "common/proc_scan.h"

#include <signal.h>

#include <limits>
#include <thread>

namespace moss::client {

std::vector<pid_t> stack_processes_in_group(pid_t group, const std::filesystem::path& state_dir) {
  return processes_in_group_with_env(group, std::string(kStackDirEnv) + "=" + state_dir.string());
}

size_t sweep_service_groups(const StackInfo& info) {
  auto leftovers = [&] {
    std::vector<pid_t> all;
    for (int64_t g : info.service_groups) {
      if (g <= 1 || g > std::numeric_limits<pid_t>::max()) continue;
      auto members = stack_processes_in_group(static_cast<pid_t>(g), info.state_dir);
      all.insert(all.end(), members.begin(), members.end());
    }
    return all;
  };
  std::vector<pid_t> pids = leftovers();
  const size_t found = pids.size();
  for (pid_t p : pids) kill(p, SIGTERM);
  for (int i = 0; i < 100 && !pids.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    pids = leftovers();
  }
  for (pid_t p : pids) kill(p, SIGKILL);
  return found;
}

}  // namespace moss::client
