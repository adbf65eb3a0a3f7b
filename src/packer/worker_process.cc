#include "packer/worker_process.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <condition_variable>
#include <cstring>
#include <deque>
#include <fstream>
#include <functional>
#include <future>
#include <mutex>
#include <sstream>
#include <thread>

#include "net/client.h"

extern char** environ;

namespace moss::packer {

namespace {

// PR_SET_PDEATHSIG fires when the *thread* that forked exits, not the process: a worker forked
// from a request or prewarm thread would get SIGTERM as soon as that thread ended. So every fork
// runs on this one thread, which lives until the packer exits (and then the signal is wanted).
class ForkThread {
 public:
  static ForkThread& get() {
    static ForkThread instance;
    return instance;
  }
  pid_t run(const std::function<pid_t()>& fork_child) {
    std::packaged_task<pid_t()> task(fork_child);
    auto result = task.get_future();
    {
      std::lock_guard lock(mu_);
      tasks_.push_back(std::move(task));
    }
    cv_.notify_one();
    return result.get();
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

// Runs `fork_child` (which forks; the child never returns from it) on the lasting thread and
// returns what it returned in the parent: the child's pid, or -1 with errno.
pid_t fork_on_lasting_thread(const std::function<pid_t()>& fork_child) {
  int saved_errno = 0;
  const pid_t pid = ForkThread::get().run([&] {
    const pid_t p = fork_child();
    saved_errno = errno;
    return p;
  });
  errno = saved_errno;
  return pid;
}

// A port the kernel just gave out on 127.0.0.1 and released; the worker binds it right after.
// Another process could take it in between: start() then fails and the pool reports it.
Result<uint16_t> free_loopback_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return internal_error("socket: {}", std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    int e = errno;
    ::close(fd);
    return unavailable("no free loopback port: {}", std::strerror(e));
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

// True when `pid` holds the socket listening on 127.0.0.1:`port` (Linux /proc). The free port
// is released before the worker binds it, so another process may take it in between; then a
// health check would reach that process, not ours.
bool listens_on(pid_t pid, uint16_t port) {
  std::ifstream tcp("/proc/net/tcp");
  std::string line;
  std::getline(tcp, line);  // header
  std::string inode;
  char want[16];
  std::snprintf(want, sizeof(want), "0100007F:%04X", port);
  while (std::getline(tcp, line)) {
    std::istringstream f(line);
    std::string sl, local, remote, state, queues, tr, retr, uid, timeout, ino;
    f >> sl >> local >> remote >> state >> queues >> tr >> retr >> uid >> timeout >> ino;
    if (local == want && state == "0A") {
      inode = ino;
      break;
    }
  }
  if (inode.empty()) return false;
  const std::string target = "socket:[" + inode + "]";
  std::error_code ec;
  for (const auto& fd :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec)) {
    std::error_code lec;
    if (std::filesystem::read_symlink(fd.path(), lec).string() == target) return true;
  }
  return false;
}

}  // namespace

Result<std::unique_ptr<WorkerProcess>> WorkerProcess::start(const WorkerProcessSpec& spec,
                                                            std::chrono::milliseconds timeout) {
  for (int attempt = 0;; ++attempt) {
    bool port_lost = false;
    auto started = start_once(spec, timeout, &port_lost);
    if (started.ok() || !port_lost || attempt == 4) return started;
  }
}

Result<std::unique_ptr<WorkerProcess>> WorkerProcess::start_once(const WorkerProcessSpec& spec,
                                                                 std::chrono::milliseconds timeout,
                                                                 bool* port_lost) {
  if (::access(spec.binary.c_str(), X_OK) != 0) {
    return not_found("worker binary {} is missing or not executable", spec.binary.string());
  }
  MOSS_ASSIGN_OR_RETURN(uint16_t port, free_loopback_port());
  // Everything the child needs is prepared before fork (no allocation after it).
  std::map<std::string, std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string kv(*e);
    auto eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  for (const auto& [k, v] : spec.env) env[k] = v;
  env["PORT"] = std::to_string(port);
  env["MOSS_WORKER_PORT"] = std::to_string(port);
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (std::string& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::string binary = spec.binary.string();
  std::vector<char*> argv = {binary.data(), nullptr};
  int log_fd = -1;
  if (!spec.log_path.empty()) {
    log_fd = ::open(spec.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (log_fd < 0) {
      return internal_error("cannot open worker log {}: {}", spec.log_path.string(),
                            std::strerror(errno));
    }
  }
  const pid_t parent = ::getpid();
  const pid_t pid = fork_on_lasting_thread([&]() -> pid_t {
    const pid_t child = ::fork();
    if (child != 0) return child;
    // The worker must not outlive the packer (it would hold a port and decrypted models).
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(1);
    if (log_fd >= 0) {
      ::dup2(log_fd, STDOUT_FILENO);
      ::dup2(log_fd, STDERR_FILENO);
    }
    ::execve(binary.c_str(), argv.data(), envp.data());
    ::_exit(127);
  });
  if (pid < 0) {
    if (log_fd >= 0) ::close(log_fd);
    return internal_error("fork: {}", std::strerror(errno));
  }
  if (log_fd >= 0) ::close(log_fd);
  std::unique_ptr<WorkerProcess> proc(new WorkerProcess(pid, port));

  net::ClientOptions options;
  options.port = port;
  options.connect_timeout = std::chrono::milliseconds(500);
  options.read_timeout = std::chrono::milliseconds(2'000);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (!proc->alive()) {
      // Also what losing the race for the port looks like (the bind failed): worth another try.
      *port_lost = true;
      return unavailable("worker {} exited during start-up (see {})", binary,
                         spec.log_path.empty() ? std::string("its output") : spec.log_path.string());
    }
    net::Client client(options);
    auto r = client.get("/healthz");
    if (r.ok() && r->status == 200) {
      if (listens_on(pid, port)) return proc;
      // Someone else answered on our port (we lost the race for it): start over on another.
      proc->stop();
      *port_lost = true;
      return unavailable("port {} was taken by another process while worker {} started", port,
                         binary);
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      proc->stop();
      return deadline_exceeded("worker {} on port {} not ready within {} ms", binary, port,
                               timeout.count());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

WorkerProcess::~WorkerProcess() { stop(); }

bool WorkerProcess::alive() {
  if (reaped_) return false;
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_ || (r < 0 && errno == ECHILD)) reaped_ = true;
  return !reaped_;
}

void WorkerProcess::stop() {
  if (!alive()) return;
  ::kill(pid_, SIGTERM);
  for (int i = 0; i < 300 && alive(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (alive()) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    reaped_ = true;
  }
}

}  // namespace moss::packer
