#include "common/subprocess.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <future>
#include <thread>

extern char** environ;

namespace moss {
namespace {

// PR_SET_PDEATHSIG fires when the *thread* that forked exits, not the process: a child forked
// from a request thread would get SIGTERM as soon as that thread ended. So every fork runs on this
// one thread, which lives until the process exits (and then the signal is wanted). It blocks
// every signal, so a process that takes SIGTERM synchronously (sigtimedwait) still gets it.
class ForkThread {
 public:
  static ForkThread& get() {
    static ForkThread instance;
    return instance;
  }
  // Runs `fork_child` (which forks; the child never returns from it) and returns what it
  // returned in the parent: the child's pid, or -1 with errno.
  pid_t run(const std::function<pid_t()>& fork_child) {
    int saved_errno = 0;
    std::packaged_task<pid_t()> task([&] {
      const pid_t p = fork_child();
      saved_errno = errno;
      return p;
    });
    auto result = task.get_future();
    {
      std::lock_guard lock(mu_);
      tasks_.push_back(std::move(task));
    }
    cv_.notify_one();
    const pid_t pid = result.get();
    errno = saved_errno;
    return pid;
  }
  ~ForkThread() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }

 private:
  ForkThread() : thread_([this] { loop(); }) {}
  void loop() {
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, nullptr);
    std::unique_lock lock(mu_);
    while (true) {
      cv_.wait(lock, [&] { return stopping_ || !tasks_.empty(); });
      if (tasks_.empty()) return;
      auto task = std::move(tasks_.front());
      tasks_.pop_front();
      lock.unlock();
      task();
      lock.lock();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::packaged_task<pid_t()>> tasks_;
  bool stopping_ = false;
  std::thread thread_;  // last: starts after the members it uses
};

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

// Everything the child uses, built before fork: the child of a threaded process may not allocate.
struct ExecPlan {
  ParentTie tie;
  pid_t parent;
  int log_fd;          // -1: inherit stdout and stderr
  const char* dir;     // nullptr: inherit
  char* const* argv;
  char* const* envp;
  const char* exec_failed_line;  // "<name>: cannot execute <path>\n"
};

// Runs in the forked child: only async-signal-safe calls until exec.
[[noreturn]] void exec_child(const ExecPlan& p) {
  switch (p.tie) {
    case ParentTie::kDetached:
      setsid();
      break;
    case ParentTie::kGroupDiesWithParent:
      setpgid(0, 0);
      [[fallthrough]];
    case ParentTie::kDiesWithParent:
      prctl(PR_SET_PDEATHSIG, SIGTERM);
      // The parent may have died before the line above: then nothing would ever signal us.
      if (getppid() != p.parent) _exit(1);
      break;
  }
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  signal(SIGPIPE, SIG_DFL);
  int null_fd = open("/dev/null", O_RDONLY);
  if (null_fd >= 0) dup2(null_fd, STDIN_FILENO);
  if (p.log_fd >= 0) {
    dup2(p.log_fd, STDOUT_FILENO);
    dup2(p.log_fd, STDERR_FILENO);
  }
  if (p.dir == nullptr || chdir(p.dir) == 0) execve(p.argv[0], p.argv, p.envp);
  (void)!write(STDERR_FILENO, p.exec_failed_line, std::strlen(p.exec_failed_line));
  _exit(127);
}

}  // namespace

std::filesystem::path find_executable_on_path(std::string_view name) {
  const char* path = getenv("PATH");
  const std::string dirs = path != nullptr && *path != '\0' ? path : "/usr/bin";
  for (size_t at = 0; at <= dirs.size();) {
    const size_t colon = std::min(dirs.find(':', at), dirs.size());
    const std::filesystem::path p = std::filesystem::path(dirs.substr(at, colon - at)) / name;
    if (!dirs.substr(at, colon - at).empty() && access(p.c_str(), X_OK) == 0) return p;
    at = colon + 1;
  }
  return {};
}

Result<std::unique_ptr<Subprocess>> Subprocess::spawn(const SubprocessSpec& spec) {
  if (spec.argv.empty()) return invalid_argument("{}: no command", spec.name);
  if (access(spec.argv[0].c_str(), X_OK) != 0) {
    return not_found("{}: {} is not an executable file ({})", spec.name, spec.argv[0],
                     std::strerror(errno));
  }
  int log_fd = -1;
  if (!spec.log_path.empty()) {
    log_fd = open(spec.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (log_fd < 0) {
      return internal_error("{}: cannot open log {}: {}", spec.name, spec.log_path.string(),
                            std::strerror(errno));
    }
  }
  std::vector<std::string> argv_strings = spec.argv;
  std::vector<char*> argv = c_strings(argv_strings);
  std::vector<std::string> env_strings = merged_environment(spec.env);
  std::vector<char*> envp = c_strings(env_strings);
  const std::string dir = spec.working_dir.string();
  const std::string failed_line = spec.name + ": cannot execute " + spec.argv[0] +
                                  (dir.empty() ? "" : " in " + dir) + "\n";
  const ExecPlan plan{spec.tie,        getpid(),    log_fd, dir.empty() ? nullptr : dir.c_str(),
                      argv.data(),     envp.data(), failed_line.c_str()};

  const pid_t pid = ForkThread::get().run([&]() -> pid_t {
    const pid_t child = fork();
    if (child == 0) exec_child(plan);
    return child;
  });
  const int fork_errno = errno;
  if (log_fd >= 0) close(log_fd);
  if (pid < 0) return internal_error("{}: fork failed: {}", spec.name, std::strerror(fork_errno));
  // Also in the parent, so the group exists before anyone signals it.
  if (spec.tie == ParentTie::kGroupDiesWithParent) setpgid(pid, pid);
  return std::unique_ptr<Subprocess>(new Subprocess(spec, pid));
}

Subprocess::~Subprocess() {
  if (!released_ && alive()) stop(grace_);
}

std::optional<std::string> Subprocess::poll_exit() {
  std::lock_guard lock(mu_);
  if (exit_) return exit_;
  int status = 0;
  const pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exit_ = describe_wait_status(status);
  } else if (r < 0 && errno == ECHILD) {
    exit_ = "ended (reaped elsewhere)";
  }
  return exit_;
}

std::string Subprocess::stop(std::chrono::milliseconds grace) {
  if (alive()) {
    kill(pid_, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + grace;
    while (alive() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (alive()) {
      kill(pid_, SIGKILL);
      std::lock_guard lock(mu_);
      int status = 0;
      if (!exit_ && waitpid(pid_, &status, 0) == pid_) {
        exit_ = describe_wait_status(status) + " after " + std::to_string(grace.count()) +
                " ms without stopping on SIGTERM";
      } else if (!exit_) {
        exit_ = "killed";
      }
    }
  }
  if (tie_ == ParentTie::kGroupDiesWithParent) sweep_group(grace);
  return *poll_exit();
}

std::string Subprocess::kill_now() {
  std::lock_guard lock(mu_);
  if (!exit_) {
    kill(pid_, SIGKILL);
    int status = 0;
    exit_ = waitpid(pid_, &status, 0) == pid_ ? describe_wait_status(status) : "killed";
  }
  return *exit_;
}

void Subprocess::send_signal(int sig) {
  std::lock_guard lock(mu_);
  if (!exit_) kill(pid_, sig);
}

// Processes the child started and left behind in its group (the local workers of a packer that
// crashed). Their parent is gone: they are reaped here when this process is a child subreaper
// (`moss up` is), else by init.
void Subprocess::sweep_group(std::chrono::milliseconds grace) {
  auto reap = [this] {
    int status = 0;
    while (waitpid(-pid_, &status, WNOHANG) > 0) {
    }
  };
  reap();
  if (kill(-pid_, 0) != 0) return;  // ESRCH: the group is empty
  kill(-pid_, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (std::chrono::steady_clock::now() < deadline) {
    reap();
    if (kill(-pid_, 0) != 0) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  kill(-pid_, SIGKILL);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  reap();
}

}  // namespace moss
