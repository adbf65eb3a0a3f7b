// A service process started and supervised by `moss up`: spawned with its output appended to a
// log file, in its own process group (so the terminal's Ctrl-C reaches only the supervisor, which
// stops services in order), and with SIGTERM as its parent-death signal (so a killed supervisor
// leaves nothing behind). Everything the service itself starts (the packer's local workers)
// inherits its process group, which `stop()` sweeps after the service has exited.
// Not thread-safe: one supervisor thread owns each ChildProcess.
#pragma once

#include "common/status.h"

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace moss::client {

struct ChildSpec {
  std::string name;                            // for messages: "keyservice"
  std::vector<std::string> argv;               // argv[0] is the executable path
  std::map<std::string, std::string> env;      // added to (or replacing) the inherited environment
  std::filesystem::path log_path;              // stdout and stderr, appended; created 0600
  std::filesystem::path working_dir;           // empty: inherit
};

class ChildProcess {
 public:
  // Forks and execs `spec`. Fails when the executable is missing or the log cannot be opened;
  // an exec failure in the child shows as exit code 127 and a line in the log.
  static Result<std::unique_ptr<ChildProcess>> spawn(const ChildSpec& spec);

  ~ChildProcess();  // stops the process (SIGTERM, then SIGKILL) if it still runs
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& name() const { return name_; }
  const std::filesystem::path& log_path() const { return log_path_; }

  // Non-blocking: the exit description ("exited with code 1", "killed by signal 9") once the
  // process has ended, nullopt while it runs.
  std::optional<std::string> poll_exit();

  // SIGTERM, wait up to `grace`, then SIGKILL; afterwards SIGTERM/SIGKILL to whatever is left in
  // the process group. Returns how the process ended.
  std::string stop(std::chrono::milliseconds grace);

 private:
  ChildProcess(std::string name, pid_t pid, std::filesystem::path log_path)
      : name_(std::move(name)), pid_(pid), log_path_(std::move(log_path)) {}
  void sweep_group(std::chrono::milliseconds grace);

  std::string name_;
  pid_t pid_;
  std::filesystem::path log_path_;
  std::optional<std::string> exit_;
};

// The last `max_lines` lines of a log file (for error messages); empty when unreadable.
std::string log_tail(const std::filesystem::path& path, size_t max_lines);

}  // namespace moss::client
