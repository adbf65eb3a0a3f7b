// Subprocess: one child program started by fork/exec and owned by the object that started it
// (stopped when that object goes). The one place that forks a program: the packer's local workers
// and the services of `moss up` are both started here.
// Thread-safe: poll_exit(), alive() and stop() may be called from several threads.
#pragma once

#include "common/status.h"

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace moss {

// How the child is tied to this process.
enum class ParentTie {
  // SIGTERM when this process ends (a child must not outlive its owner: it would hold a port and
  // decrypted models); stays in this process group.
  kDiesWithParent,
  // The same, in a process group of its own (a terminal's Ctrl-C reaches only this process, which
  // stops its children in order); stop() also ends what the child left in that group.
  kGroupDiesWithParent,
  // Its own session: outlives this process and the terminal (a background supervisor).
  kDetached,
};

struct SubprocessSpec {
  std::string name;                        // for messages: "keyservice", "worker"
  std::vector<std::string> argv;           // argv[0] is the executable path
  std::map<std::string, std::string> env;  // added to (or replacing) the inherited environment
  std::filesystem::path log_path;          // stdout and stderr appended, created 0600; empty: inherit
  std::filesystem::path working_dir;       // empty: inherit
  ParentTie tie = ParentTie::kDiesWithParent;
  std::chrono::milliseconds stop_grace{3'000};  // SIGTERM to SIGKILL when destroyed
};

// The executable `name` in a directory of $PATH (else /usr/bin), or an empty path.
std::filesystem::path find_executable_on_path(std::string_view name);

class Subprocess {
 public:
  // Forks and execs `spec` with stdin from /dev/null, a clear signal mask and default SIGINT,
  // SIGTERM, SIGPIPE handling. Fails when the executable is missing or the log cannot be opened;
  // an exec failure in the child shows as exit code 127 and a line in the log.
  static Result<std::unique_ptr<Subprocess>> spawn(const SubprocessSpec& spec);

  // Stops the process (stop(spec.stop_grace)) unless it has ended or was released.
  ~Subprocess();
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& name() const { return name_; }
  const std::filesystem::path& log_path() const { return log_path_; }

  // Non-blocking: how the process ended ("exited with code 1", "killed by signal 9"), nullopt
  // while it runs. Reaps it.
  std::optional<std::string> poll_exit();
  bool alive() { return !poll_exit().has_value(); }

  // SIGTERM, up to `grace`, then SIGKILL; for kGroupDiesWithParent, then the same to whatever is
  // left in its process group. Returns how the process ended. Idempotent.
  std::string stop(std::chrono::milliseconds grace);

  // SIGKILL now, as if the machine died (no chance to clean up), and reaps the process; returns
  // how it ended. Idempotent. For fault tests; stop() is the orderly way.
  std::string kill_now();
  // Sends `sig` and returns at once (SIGSTOP / SIGCONT freeze and thaw the process: a partition
  // as its peers see it). No effect once the process has ended.
  void send_signal(int sig);

  // Gives the process up: the destructor leaves it running (a detached supervisor).
  void release() { released_ = true; }

 private:
  Subprocess(const SubprocessSpec& spec, pid_t pid)
      : name_(spec.name), log_path_(spec.log_path), tie_(spec.tie), grace_(spec.stop_grace),
        pid_(pid) {}
  void sweep_group(std::chrono::milliseconds grace);

  const std::string name_;
  const std::filesystem::path log_path_;
  const ParentTie tie_;
  const std::chrono::milliseconds grace_;
  const pid_t pid_;
  bool released_ = false;
  std::mutex mu_;                    // guards exit_ and the reaping waitpid
  std::optional<std::string> exit_;  // set once the process has been reaped
};

}  // namespace moss
