#include "client/stack.h"

#include "attest/simulated.h"
#include "client/child_process.h"
#include "client/stack_services.h"
#include "common/encoding.h"
#include "common/file_util.h"
#include "crypto/random.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <optional>
#include <thread>

namespace moss::client {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

constexpr size_t kMaxStateFile = 1 << 20;

// A line in the supervisor's output (logs/stack.log when detached), with a UTC timestamp.
void say(const std::string& line) {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
  std::fprintf(stderr, "[%s] moss up: %s\n", stamp, line.c_str());
  std::fflush(stderr);
}

Status make_private_dir(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return internal_error("cannot create {}: {}", dir.string(), ec.message());
  if (chmod(dir.c_str(), 0700) != 0) {
    return internal_error("cannot chmod {}: {}", dir.string(), std::strerror(errno));
  }
  return Status::Ok();
}

Result<uint16_t> pick_free_port() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return internal_error("socket: {}", std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    int err = errno;
    close(fd);
    return internal_error("cannot find a free loopback port: {}", std::strerror(err));
  }
  close(fd);
  return ntohs(addr.sin_port);
}

bool port_accepts(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

// Waits until the service listens on `port`; fails early, with the log's tail, if it exits.
Status wait_listening(ChildProcess& child, uint16_t port, Clock::time_point deadline) {
  while (Clock::now() < deadline) {
    if (auto exit = child.poll_exit()) {
      return unavailable("{} {} before it was ready; last lines of {}:\n{}", child.name(), *exit,
                         child.log_path().string(), log_tail(child.log_path(), 15));
    }
    if (port_accepts(port)) return Status::Ok();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return deadline_exceeded("{} did not listen on 127.0.0.1:{} in time; last lines of {}:\n{}",
                           child.name(), port, child.log_path().string(),
                           log_tail(child.log_path(), 15));
}

// The state-directory lock: held (flock) for the supervisor's whole life. O_CLOEXEC keeps it
// out of the services, so it is released exactly when the supervisor ends.
class StackLock {
 public:
  static Result<StackLock> acquire(const fs::path& state_dir) {
    fs::path path = state_dir / "stack.lock";
    int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return internal_error("cannot open {}: {}", path.string(), std::strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
      close(fd);
      std::string pid = "?";
      if (auto text = read_text_file(state_dir / "stack.pid", 64); text.ok()) pid = *text;
      while (!pid.empty() && pid.back() == '\n') pid.pop_back();
      return already_exists(
          "a stack is already running in {} (supervisor pid {}); stop it with `moss down "
          "--state-dir {}`",
          state_dir.string(), pid, state_dir.string());
    }
    return StackLock(fd);
  }
  StackLock(StackLock&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  StackLock& operator=(StackLock&&) = delete;
  ~StackLock() {
    if (fd_ >= 0) close(fd_);
  }

 private:
  explicit StackLock(int fd) : fd_(fd) {}
  int fd_;
};

bool lock_is_held(const fs::path& state_dir) {
  int fd = open((state_dir / "stack.lock").c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return false;
  bool held = flock(fd, LOCK_EX | LOCK_NB) != 0;
  close(fd);
  return held;
}

// /proc files report size 0, so they are read by streaming (bounded), not by file size.
std::optional<std::string> read_proc_file(const fs::path& path, size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::string out(max_bytes, '\0');
  in.read(out.data(), static_cast<std::streamsize>(max_bytes));
  out.resize(static_cast<size_t>(in.gcount()));
  return out;
}

// Processes in process group `group` that carry MOSS_STACK_DIR=<state_dir> in their environment
// (every service gets it and passes it on to what it starts). Checking the environment, not just
// the group id, keeps a recycled id from ever pointing this at an unrelated process.
std::vector<pid_t> stack_processes_in_group(pid_t group, const fs::path& state_dir) {
  std::vector<pid_t> out;
  std::string marker = std::string(kStackDirEnv) + "=" + state_dir.string();
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    auto stat = read_proc_file(entry.path() / "stat", 4096);
    if (!stat) continue;
    // pid (comm) state ppid pgrp ...: comm may hold spaces, so parse after the last ')'.
    size_t close_paren = stat->rfind(')');
    if (close_paren == std::string::npos) continue;
    int ppid = 0, pgrp = 0;
    char state = 0;
    if (std::sscanf(stat->c_str() + close_paren + 1, " %c %d %d", &state, &ppid, &pgrp) != 3 ||
        pgrp != group) {
      continue;
    }
    auto environ_text = read_proc_file(entry.path() / "environ", 1 << 20);
    if (!environ_text) continue;
    std::string_view env(*environ_text);
    for (size_t pos = 0; pos < env.size();) {
      size_t end = env.find('\0', pos);
      if (end == std::string_view::npos) end = env.size();
      if (env.substr(pos, end - pos) == marker) {
        out.push_back(static_cast<pid_t>(std::stol(name)));
        break;
      }
      pos = end + 1;
    }
  }
  return out;
}

// Last resort after a supervisor died without stopping its services (SIGKILL, OOM): whatever is
// left of the services' process groups gets SIGTERM, then SIGKILL.
size_t sweep_service_groups(const fs::path& state_dir) {
  auto info = read_stack_info(state_dir);
  if (!info.ok()) return 0;
  fs::path dir = info->state_dir;
  auto leftovers = [&] {
    std::vector<pid_t> all;
    for (int64_t g : info->service_groups) {
      if (g <= 1) continue;
      auto members = stack_processes_in_group(static_cast<pid_t>(g), dir);
      all.insert(all.end(), members.begin(), members.end());
    }
    return all;
  };
  std::vector<pid_t> pids = leftovers();
  size_t found = pids.size();
  if (pids.empty()) return 0;
  for (pid_t p : pids) kill(p, SIGTERM);
  for (int i = 0; i < 100 && !pids.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    pids = leftovers();
  }
  for (pid_t p : pids) kill(p, SIGKILL);
  return found;
}

nlohmann::json info_to_json(const StackInfo& info) {
  return {{"supervisor_pid", info.supervisor_pid},
          {"keyservice_url", info.keyservice_url},
          {"packer_url", info.packer_url},
          {"invoke_url", info.invoke_url},
          {"pool", info.pool},
          {"worker_measurement", info.worker_measurement},
          {"service_groups", info.service_groups},
          {"state_dir", info.state_dir.string()},
          {"client_config", info.client_config.string()},
          {"token_file", info.token_file.string()},
          {"log_dir", info.log_dir.string()}};
}

// Creates the layout, the simulated platform key, the operator token, the policies and the
// client config. Everything secret is 0600 inside 0700 directories.
Result<StackLayout> prepare_state(const StackOptions& options, uint16_t port_keyservice,
                                  uint16_t port_packer) {
  StackLayout l;
  l.state_dir = fs::absolute(options.state_dir).lexically_normal();
  l.bin_dir = fs::absolute(options.bin_dir).lexically_normal();
  l.log_dir = l.state_dir / "logs";
  l.keyservice_dir = l.state_dir / "keyservice";
  l.packer_dir = l.state_dir / "packer";
  l.model_store = l.state_dir / "models";
  l.policy_dir = l.state_dir / "policies";
  l.sim_key_file = l.state_dir / "sim" / "platform.key";
  l.token_file = l.state_dir / "packer-token";
  l.client_config = l.state_dir / "client.json";
  l.port_keyservice = port_keyservice;
  l.port_packer = port_packer;
  for (const fs::path& d : {l.log_dir, l.keyservice_dir, l.packer_dir, l.model_store,
                            l.policy_dir, l.sim_key_file.parent_path()}) {
    MOSS_RETURN_IF_ERROR(make_private_dir(d));
  }
  MOSS_RETURN_IF_ERROR(attest::SimPlatformKey::load_or_create(l.sim_key_file).status());
  if (!fs::exists(l.token_file)) {
    MOSS_ASSIGN_OR_RETURN(SecretBytes token, crypto::random_secret(32));
    MOSS_RETURN_IF_ERROR(write_text_file(l.token_file, hex_encode(token.span()), 0600));
  }
  MOSS_ASSIGN_OR_RETURN(auto worker_m, attest::simulated_measurement(
                                           l.bin_dir / kWorkerBinary, kWorkerSimIdentity));
  MOSS_ASSIGN_OR_RETURN(auto keyservice_m,
                        attest::simulated_measurement(l.bin_dir / kKeyServiceBinary,
                                                      kKeyServiceSimIdentity));
  l.worker_measurement = hex_encode(worker_m);
  l.keyservice_measurement = hex_encode(keyservice_m);
  MOSS_RETURN_IF_ERROR(write_stack_policies(l));
  MOSS_RETURN_IF_ERROR(write_client_config(l));
  return l;
}

}  // namespace

fs::path default_stack_dir() {
  if (const char* d = std::getenv("MOSS_STACK_DIR"); d != nullptr && *d != '\0') return d;
  if (const char* x = std::getenv("XDG_STATE_HOME"); x != nullptr && *x != '\0') {
    return fs::path(x) / "moss" / "stack";
  }
  const char* home = std::getenv("HOME");
  return fs::path(home != nullptr ? home : ".") / ".local" / "state" / "moss" / "stack";
}

fs::path self_bin_dir() {
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::current_path() : exe.parent_path();
}

Status run_stack(const StackOptions& options,
                 const std::function<void(const StackInfo&)>& on_ready) {
  MOSS_RETURN_IF_ERROR(make_private_dir(options.state_dir));
  MOSS_ASSIGN_OR_RETURN(StackLock lock, StackLock::acquire(options.state_dir));
  fs::path pid_file = options.state_dir / "stack.pid";
  fs::path info_file = options.state_dir / "stack.json";
  std::error_code ec;
  sweep_service_groups(options.state_dir);  // left behind by a supervisor that was killed
  fs::remove(info_file, ec);
  MOSS_RETURN_IF_ERROR(write_text_file(pid_file, std::to_string(getpid()) + "\n", 0600));
  // Whatever way this function ends, the pid file and stack.json go with it.
  struct RemoveOnExit {
    fs::path a, b;
    ~RemoveOnExit() {
      std::error_code ignored;
      fs::remove(a, ignored);
      fs::remove(b, ignored);
    }
  } remove_on_exit{pid_file, info_file};

  // Orphans of the services (workers of a crashed packer) are re-parented here and reaped.
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  // Signals are taken synchronously in the loop below; services restore the defaults.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGHUP);
  sigprocmask(SIG_BLOCK, &stop_signals, nullptr);

  uint16_t pk = options.port_keyservice, pp = options.port_packer;
  if (pk == 0) {
    MOSS_ASSIGN_OR_RETURN(pk, pick_free_port());
  }
  if (pp == 0) {
    MOSS_ASSIGN_OR_RETURN(pp, pick_free_port());
  }
  MOSS_ASSIGN_OR_RETURN(StackLayout layout, prepare_state(options, pk, pp));

  // Services in start order; they are stopped in reverse (packer and its workers first).
  std::vector<std::unique_ptr<ChildProcess>> services;
  auto stop_all = [&services] {
    for (auto it = services.rbegin(); it != services.rend(); ++it) {
      auto t0 = Clock::now();
      std::string how = (*it)->stop(std::chrono::seconds(10));
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
      say((*it)->name() + " (pid " + std::to_string((*it)->pid()) + ") " + how + " in " +
          std::to_string(ms) + " ms");
    }
    services.clear();
  };
  auto fail = [&](Status s) {
    stop_all();
    std::error_code ignored;
    fs::remove(pid_file, ignored);
    return s;
  };

  Clock::time_point deadline = Clock::now() + options.ready_timeout;
  for (const ChildSpec& spec : {keyservice_spec(layout), packer_spec(layout)}) {
    auto child = ChildProcess::spawn(spec);
    if (!child.ok()) return fail(child.status());
    say(spec.name + " started (pid " + std::to_string((*child)->pid()) + "), log " +
        spec.log_path.string());
    services.push_back(std::move(*child));
    uint16_t port = spec.name == "keyservice" ? pk : pp;
    if (Status s = wait_listening(*services.back(), port, deadline); !s.ok()) return fail(s);
  }
  auto pool = create_stack_pool(layout, deadline);
  if (!pool.ok()) return fail(pool.status());

  StackInfo info;
  info.supervisor_pid = getpid();
  info.keyservice_url = layout.keyservice_url();
  info.packer_url = layout.packer_url();
  info.pool = *pool;
  info.invoke_url = layout.packer_url() + "/v1/pools/" + *pool + "/invoke";
  info.worker_measurement = layout.worker_measurement;
  info.state_dir = layout.state_dir;
  info.client_config = layout.client_config;
  info.token_file = layout.token_file;
  info.log_dir = layout.log_dir;
  for (const auto& s : services) info.service_groups.push_back(s->pid());
  if (Status s = write_text_file(info_file, info_to_json(info).dump(2) + "\n", 0600); !s.ok()) {
    return fail(s);
  }
  say("ready: keyservice " + info.keyservice_url + ", packer " + info.packer_url);
  if (on_ready) on_ready(info);

  // Supervise: a stop signal stops everything cleanly; a service that dies takes the stack down.
  Status result = Status::Ok();
  while (true) {
    timespec tick{0, 200 * 1000 * 1000};
    int sig = sigtimedwait(&stop_signals, nullptr, &tick);
    if (sig > 0) {
      say(std::string("received ") + strsignal(sig) + ": stopping");
      break;
    }
    bool died = false;
    for (auto& s : services) {
      if (auto exit = s->poll_exit()) {
        result = unavailable("{} {}; last lines of {}:\n{}", s->name(), *exit,
                             s->log_path().string(), log_tail(s->log_path(), 15));
        say(s->name() + " " + *exit + ": stopping the stack");
        died = true;
      }
    }
    if (died) break;
  }
  stop_all();
  fs::remove(info_file, ec);
  fs::remove(pid_file, ec);
  say("stopped");
  return result;
}

Result<StackInfo> start_stack_detached(const StackOptions& options, const fs::path& moss_binary) {
  MOSS_RETURN_IF_ERROR(make_private_dir(options.state_dir / "logs"));
  if (lock_is_held(options.state_dir)) {
    return already_exists("a stack is already running in {}; stop it with `moss down "
                          "--state-dir {}`",
                          options.state_dir.string(), options.state_dir.string());
  }
  fs::path log = options.state_dir / "logs" / "stack.log";
  std::vector<std::string> args = {moss_binary.string(),
                                   "up",
                                   "--foreground",
                                   "--state-dir",
                                   fs::absolute(options.state_dir).string(),
                                   "--port-keyservice",
                                   std::to_string(options.port_keyservice),
                                   "--port-packer",
                                   std::to_string(options.port_packer),
                                   "--bin-dir",
                                   fs::absolute(options.bin_dir).string()};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int log_fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (log_fd < 0) return internal_error("cannot open {}: {}", log.string(), std::strerror(errno));

  pid_t pid = fork();
  if (pid < 0) {
    close(log_fd);
    return internal_error("fork failed: {}", std::strerror(errno));
  }
  if (pid == 0) {
    // The supervisor gets its own session: closing the terminal does not stop the stack.
    setsid();
    int null_fd = open("/dev/null", O_RDONLY);
    if (null_fd >= 0) dup2(null_fd, STDIN_FILENO);
    dup2(log_fd, STDOUT_FILENO);
    dup2(log_fd, STDERR_FILENO);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(log_fd);

  Clock::time_point deadline = Clock::now() + options.ready_timeout + std::chrono::seconds(5);
  while (Clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      return unavailable("the stack did not start; last lines of {}:\n{}", log.string(),
                         log_tail(log, 20));
    }
    if (auto info = read_stack_info(options.state_dir); info.ok() && info->supervisor_pid == pid) {
      return info;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  kill(pid, SIGTERM);
  return deadline_exceeded("the stack was not ready in time; last lines of {}:\n{}", log.string(),
                           log_tail(log, 20));
}

Result<std::string> stop_stack(const fs::path& state_dir, std::chrono::seconds timeout) {
  fs::path pid_file = state_dir / "stack.pid";
  if (!lock_is_held(state_dir)) {
    size_t swept = sweep_service_groups(state_dir);  // a stale stack.json: supervisor was killed
    std::error_code ec;
    fs::remove(pid_file, ec);
    fs::remove(state_dir / "stack.json", ec);
    std::string what = "not running (state directory " + state_dir.string() + ")";
    if (swept > 0) what += "; stopped " + std::to_string(swept) + " leftover process(es)";
    return what;
  }
  MOSS_ASSIGN_OR_RETURN(std::string text, read_text_file(pid_file, 64));
  char* end = nullptr;
  long pid = std::strtol(text.c_str(), &end, 10);
  if (pid <= 1 || end == text.c_str()) {
    return data_loss("{} does not hold a process id", pid_file.string());
  }
  auto t0 = Clock::now();
  if (kill(static_cast<pid_t>(pid), SIGTERM) != 0) {
    return internal_error("cannot signal supervisor pid {}: {}", pid, std::strerror(errno));
  }
  auto ms = [&t0] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
  };
  while (Clock::now() - t0 < timeout) {
    if (!lock_is_held(state_dir)) {
      return "stopped (supervisor pid " + std::to_string(pid) + ", " + std::to_string(ms()) +
             " ms)";
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  // The services have SIGTERM as parent-death signal, so they follow the supervisor down;
  // what they started is swept by process group.
  kill(static_cast<pid_t>(pid), SIGKILL);
  for (int i = 0; i < 100 && lock_is_held(state_dir); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  sweep_service_groups(state_dir);
  return "killed (supervisor pid " + std::to_string(pid) + " did not stop within " +
         std::to_string(timeout.count()) + " s)";
}

Result<StackInfo> read_stack_info(const fs::path& state_dir) {
  MOSS_ASSIGN_OR_RETURN(std::string text, read_text_file(state_dir / "stack.json", kMaxStateFile));
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object()) return data_loss("{}/stack.json is not a JSON object", state_dir.string());
  StackInfo info;
  try {
    info.supervisor_pid = j.at("supervisor_pid").get<int64_t>();
    info.keyservice_url = j.at("keyservice_url").get<std::string>();
    info.packer_url = j.at("packer_url").get<std::string>();
    info.invoke_url = j.at("invoke_url").get<std::string>();
    info.pool = j.at("pool").get<std::string>();
    info.worker_measurement = j.at("worker_measurement").get<std::string>();
    info.state_dir = j.at("state_dir").get<std::string>();
    info.client_config = j.at("client_config").get<std::string>();
    info.token_file = j.at("token_file").get<std::string>();
    info.log_dir = j.at("log_dir").get<std::string>();
    info.service_groups = j.at("service_groups").get<std::vector<int64_t>>();
  } catch (const nlohmann::json::exception& e) {
    return data_loss("{}/stack.json: {}", state_dir.string(), e.what());
  }
  return info;
}

std::string describe_stack(const StackInfo& i) {
  return "MOSS stack running (simulated TEE: a local trial, no hardware protection)\n"
         "  keyservice          " + i.keyservice_url + "\n"
         "  packer              " + i.packer_url + "   (pool '" + i.pool + "')\n"
         "  invoke URL          " + i.invoke_url + "\n"
         "  worker measurement  " + i.worker_measurement + "\n"
         "  client config       " + i.client_config.string() + "\n"
         "  operator token      " + i.token_file.string() + "\n"
         "  logs                " + i.log_dir.string() + "/\n"
         "  stop with           moss down --state-dir " + i.state_dir.string() + "\n";
}

}  // namespace moss::client
