#include "client/child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <thread>

extern char** environ;

namespace moss::client {
namespace {

std::string describe_wait_status(int status) {
  if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  return "ended (status " + std::to_string(status) + ")";
}

// The inherited environment with `extra` added or replacing same-named entries.
std::vector<std::string> merged_environment(const std::map<std::string, std::string>& extra) {
  std::vector<std::string> out;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view entry(*e);
    std::string_view name = entry.substr(0, entry.find('='));
    if (extra.count(std::string(name)) == 0) out.emplace_back(entry);
  }
  for (const auto& [k, v] : extra) out.push_back(k + "=" + v);
  return out;
}

std::vector<char*> c_strings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// Runs in the forked child: only async-signal-safe calls until exec.
[[noreturn]] void exec_child(pid_t parent, int log_fd, const char* dir, char* const* argv,
                             char* const* envp) {
  setpgid(0, 0);
  // If the supervisor dies, the service gets SIGTERM; the check closes the race with its early
  // death.
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() != parent) _exit(1);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  signal(SIGPIPE, SIG_DFL);
  int null_fd = open("/dev/null", O_RDONLY);
  if (null_fd >= 0) dup2(null_fd, STDIN_FILENO);
  dup2(log_fd, STDOUT_FILENO);
  dup2(log_fd, STDERR_FILENO);
  if (dir != nullptr && chdir(dir) != 0) {
    static const char kMsg[] = "moss up: cannot enter the working directory\n";
    (void)!write(STDERR_FILENO, kMsg, sizeof(kMsg) - 1);
    _exit(127);
  }
  execve(argv[0], argv, envp);
  static const char kMsg[] = "moss up: exec failed\n";
  (void)!write(STDERR_FILENO, kMsg, sizeof(kMsg) - 1);
  _exit(127);
}

}  // namespace

Result<std::unique_ptr<ChildProcess>> ChildProcess::spawn(const ChildSpec& spec) {
  if (spec.argv.empty()) return invalid_argument("{}: no command", spec.name);
  if (access(spec.argv[0].c_str(), X_OK) != 0) {
    return not_found("{}: {} is not an executable file ({})", spec.name, spec.argv[0],
                     std::strerror(errno));
  }
  int log_fd = open(spec.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (log_fd < 0) {
    return internal_error("{}: cannot open log {}: {}", spec.name, spec.log_path.string(),
                          std::strerror(errno));
  }
  // Everything the child needs is built before fork: the child may not allocate.
  std::vector<std::string> argv_strings = spec.argv;
  std::vector<char*> argv = c_strings(argv_strings);
  std::vector<std::string> env_strings = merged_environment(spec.env);
  std::vector<char*> envp = c_strings(env_strings);
  std::string dir = spec.working_dir.string();
  pid_t parent = getpid();

  pid_t pid = fork();
  if (pid < 0) {
    int err = errno;
    close(log_fd);
    return internal_error("{}: fork failed: {}", spec.name, std::strerror(err));
  }
  if (pid == 0) {
    exec_child(parent, log_fd, dir.empty() ? nullptr : dir.c_str(), argv.data(), envp.data());
  }
  setpgid(pid, pid);  // also in the parent, so the group exists before anyone signals it
  close(log_fd);
  return std::unique_ptr<ChildProcess>(new ChildProcess(spec.name, pid, spec.log_path));
}

ChildProcess::~ChildProcess() {
  if (!exit_) stop(std::chrono::seconds(5));
}

std::optional<std::string> ChildProcess::poll_exit() {
  if (exit_) return exit_;
  int status = 0;
  pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exit_ = describe_wait_status(status);
  } else if (r < 0 && errno == ECHILD) {
    exit_ = "ended (reaped elsewhere)";
  }
  return exit_;
}

std::string ChildProcess::stop(std::chrono::milliseconds grace) {
  if (!poll_exit()) {
    kill(pid_, SIGTERM);
    auto deadline = std::chrono::steady_clock::now() + grace;
    while (!poll_exit() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (!exit_) {
      kill(pid_, SIGKILL);
      int status = 0;
      if (waitpid(pid_, &status, 0) == pid_) {
        exit_ = describe_wait_status(status) + " after " + std::to_string(grace.count()) +
                " ms without stopping on SIGTERM";
      } else {
        exit_ = "killed";
      }
    }
  }
  sweep_group(grace);
  return *exit_;
}

// Processes the service started and left behind (e.g. local workers of a packer that crashed).
// The supervisor is a child subreaper (see stack.cc), so they are reaped here, not by init.
void ChildProcess::sweep_group(std::chrono::milliseconds grace) {
  auto reap = [this] {
    int status = 0;
    while (waitpid(-pid_, &status, WNOHANG) > 0) {
    }
  };
  reap();
  if (kill(-pid_, 0) != 0) return;  // ESRCH: the group is empty
  kill(-pid_, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + grace;
  while (std::chrono::steady_clock::now() < deadline) {
    reap();
    if (kill(-pid_, 0) != 0) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  kill(-pid_, SIGKILL);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  reap();
}

std::string log_tail(const std::filesystem::path& path, size_t max_lines) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  constexpr std::streamoff kWindow = 64 * 1024;
  in.seekg(0, std::ios::end);
  std::streamoff size = in.tellg();
  in.seekg(size > kWindow ? size - kWindow : 0);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!text.empty() && text.back() == '\n') text.pop_back();
  size_t pos = text.size();
  for (size_t lines = 0; lines < max_lines && pos != std::string::npos && pos > 0; ++lines) {
    pos = text.rfind('\n', pos - 1);
  }
  return pos == std::string::npos ? text : text.substr(pos + 1);
}

}  // namespace moss::client
