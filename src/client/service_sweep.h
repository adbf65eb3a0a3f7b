// The last resort after a supervisor died without stopping its services (SIGKILL, OOM): whatever
// is left in the services' process groups is stopped. Only processes that carry the stack's
// marker (kStackDirEnv=<state dir>, which every service gets and passes on to what it starts) are
// touched, so a recycled group id never points this at an unrelated process.
// Stateless; thread-safe.
#pragma once

#include "client/stack_info.h"

#include <sys/types.h>

#include <cstddef>
#include <filesystem>
#include <vector>

namespace moss::client {

// The stack's processes (those with the marker of `state_dir`) in process group `group`.
std::vector<pid_t> stack_processes_in_group(pid_t group, const std::filesystem::path& state_dir);

// SIGTERM to the stack's processes left in `info.service_groups`, SIGKILL to those still there
// after 5 s. Returns how many were found.
size_t sweep_service_groups(const StackInfo& info);

}  // namespace moss::client
