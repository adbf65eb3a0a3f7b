// Questions about other processes answered from Linux /proc: who listens on a loopback port, which
// processes of a group carry an environment entry. Used to tell our own children from unrelated
// processes that took a port or a recycled id. Stateless: thread-safe.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace moss {

// A /proc file, read by streaming up to `max_bytes` (they report size 0); nullopt when unreadable.
std::optional<std::string> read_proc_file(const std::filesystem::path& path, size_t max_bytes);

// True when process `pid` holds the socket listening on 127.0.0.1:`port`.
bool process_listens_on_loopback(pid_t pid, uint16_t port);

// The process group of `pid`; nullopt when it is gone or unreadable.
std::optional<pid_t> process_group_of(pid_t pid);

// The processes of process group `group` whose environment holds exactly the entry `env_entry`
// ("NAME=value"). Processes of other users (unreadable environment) are never listed.
std::vector<pid_t> processes_in_group_with_env(pid_t group, std::string_view env_entry);

}  // namespace moss
