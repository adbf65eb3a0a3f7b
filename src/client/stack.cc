#include "client/stack.h"

#include "client/service_sweep.h"
#include "client/stack_lock.h"
#include "client/stack_services.h"
#include "client/stack_state.h"
#include "common/file_util.h"
#include "common/loopback_port.h"
#include "common/subprocess.h"

#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <thread>

namespace moss::client {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

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

std::string log_lines(const Subprocess& p, size_t lines) {
  return "last lines of " + p.log_path().string() + ":\n" + file_tail_lines(p.log_path(), lines);
}

// Waits until the service listens on `port`; fails early, with the log's tail, if it exits.
Status wait_listening(Subprocess& service, uint16_t port, Clock::time_point deadline) {
  while (Clock::now() < deadline) {
    if (auto exit = service.poll_exit()) {
      return unavailable("{} {} before it was ready; {}", service.name(), *exit,
                         log_lines(service, 15));
    }
    if (loopback_port_accepts(port)) return Status::Ok();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return deadline_exceeded("{} did not listen on 127.0.0.1:{} in time; {}", service.name(), port,
                           log_lines(service, 15));
}

// What a killed supervisor left behind, found through its stack.json; how many processes.
size_t sweep_leftovers(const fs::path& state_dir) {
  auto info = read_stack_info(state_dir);
  return info.ok() ? sweep_service_groups(*info) : 0;
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
  const fs::path pid_file = stack_pid_file(options.state_dir);
  const fs::path info_file = stack_info_file(options.state_dir);
  std::error_code ec;
  sweep_leftovers(options.state_dir);  // left behind by a supervisor that was killed
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

  const int replicas = std::max(1, options.keyservice_replicas);
  uint16_t pk = options.port_keyservice, pp = options.port_packer;
  // Replicas keep the ports of their first start (prepare_stack_state): 0 lets them.
  if (pk == 0 && replicas == 1) {
    MOSS_ASSIGN_OR_RETURN(pk, free_loopback_port());
  }
  if (pp == 0) {
    MOSS_ASSIGN_OR_RETURN(pp, free_loopback_port());
  }
  MOSS_ASSIGN_OR_RETURN(StackLayout layout,
                        prepare_stack_state(options.state_dir, options.bin_dir, pk, pp, replicas));
  pk = layout.port_keyservice;

  // Services in start order; they are stopped in reverse (packer and its workers first, then the
  // KeyService replicas, then etcd). specs[i] started services[i].
  std::vector<std::unique_ptr<Subprocess>> services;
  std::vector<SubprocessSpec> specs;
  auto stop_all = [&services, &specs] {
    for (auto it = services.rbegin(); it != services.rend(); ++it) {
      auto t0 = Clock::now();
      std::string how = (*it)->stop(std::chrono::seconds(10));
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
      say((*it)->name() + " (pid " + std::to_string((*it)->pid()) + ") " + how + " in " +
          std::to_string(ms) + " ms");
    }
    services.clear();
    specs.clear();
  };
  auto fail = [&](Status s) {
    stop_all();
    return s;
  };

  Clock::time_point deadline = Clock::now() + options.ready_timeout;
  auto spawn = [&](SubprocessSpec spec) -> Status {
    MOSS_ASSIGN_OR_RETURN(auto child, Subprocess::spawn(spec));
    say(spec.name + " started (pid " + std::to_string(child->pid()) + "), log " + spec.log_path.string());
    services.push_back(std::move(child));
    specs.push_back(std::move(spec));
    return Status::Ok();
  };
  if (replicas > 1) {
    // All members before waiting: none serves until a majority runs.
    for (size_t m = 0; m < kStackEtcdMembers; ++m) {
      auto spec = etcd_member_spec(layout, m);
      if (!spec.ok()) return fail(spec.status());
      if (Status s = spawn(std::move(*spec)); !s.ok()) return fail(s);
    }
    for (size_t m = 0; m < kStackEtcdMembers; ++m) {
      if (Status s = wait_etcd_serving(layout, m, deadline); !s.ok()) {
        return fail(Status(s.code(), s.message() + "; " + log_lines(*services[m], 15)));
      }
    }
    // Replica 0 first: the others join it for the state key.
    for (size_t i = 0; i < static_cast<size_t>(replicas); ++i) {
      if (Status s = spawn(keyservice_replica_spec(layout, i)); !s.ok()) return fail(s);
      Status s = wait_listening(*services.back(), layout.replica_ports.https[i], deadline);
      if (!s.ok()) return fail(s);
    }
  } else {
    if (Status s = spawn(keyservice_spec(layout)); !s.ok()) return fail(s);
    if (Status s = wait_listening(*services.back(), pk, deadline); !s.ok()) return fail(s);
  }
  if (Status s = spawn(packer_spec(layout)); !s.ok()) return fail(s);
  if (Status s = wait_listening(*services.back(), pp, deadline); !s.ok()) return fail(s);
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
  auto record_groups = [&] {
    info.service_groups.clear();
    for (const auto& s : services) info.service_groups.push_back(s->pid());
    return write_stack_info(options.state_dir, info);
  };
  if (Status s = record_groups(); !s.ok()) return fail(s);
  say("ready: keyservice " + info.keyservice_url + ", packer " + info.packer_url);
  if (on_ready) on_ready(info);

  // Supervise: a stop signal stops everything cleanly; a service that dies takes the stack down,
  // except, with replicas, a KeyService replica or an etcd member: the others serve meanwhile and
  // it is started again (on its own state), a few times at most.
  constexpr int kMaxRestarts = 10;
  int restarts = 0;
  Status result = Status::Ok();
  while (true) {
    timespec tick{0, 200 * 1000 * 1000};
    int sig = sigtimedwait(&stop_signals, nullptr, &tick);
    if (sig > 0) {
      say(std::string("received ") + strsignal(sig) + ": stopping");
      break;
    }
    bool died = false;
    for (size_t i = 0; i < services.size(); ++i) {
      Subprocess& s = *services[i];
      auto exit = s.poll_exit();
      if (!exit) continue;
      if (replicas > 1 && s.name() != "packer" && restarts < kMaxRestarts) {
        ++restarts;
        say(s.name() + " " + *exit + ": the others serve; starting it again");
        auto child = Subprocess::spawn(specs[i]);
        if (child.ok()) {
          services[i] = std::move(*child);
          say(specs[i].name + " started (pid " + std::to_string(services[i]->pid()) + ")");
          if (Status w = record_groups(); !w.ok()) say("cannot update stack.json: " + w.to_string());
          continue;
        }
        result = child.status();
      } else {
        result = unavailable("{} {}; {}", s.name(), *exit, log_lines(s, 15));
      }
      say(s.name() + " " + *exit + ": stopping the stack");
      died = true;
      break;
    }
    if (died) break;
  }
  stop_all();
  say("stopped");
  return result;
}

Result<StackInfo> start_stack_detached(const StackOptions& options, const fs::path& moss_binary) {
  MOSS_RETURN_IF_ERROR(make_private_dir(options.state_dir / "logs"));
  if (stack_lock_is_held(options.state_dir)) {
    return already_exists("a stack is already running in {}; stop it with `moss down "
                          "--state-dir {}`",
                          options.state_dir.string(), options.state_dir.string());
  }
  SubprocessSpec spec;
  spec.name = "moss up";
  spec.argv = {moss_binary.string(),
               "up",
               "--foreground",
               "--state-dir",
               fs::absolute(options.state_dir).string(),
               "--port-keyservice",
               std::to_string(options.port_keyservice),
               "--port-packer",
               std::to_string(options.port_packer),
               "--bin-dir",
               fs::absolute(options.bin_dir).string(),
               "--keyservice-replicas",
               std::to_string(options.keyservice_replicas)};
  spec.log_path = options.state_dir / "logs" / "stack.log";
  // Its own session: closing the terminal does not stop the stack.
  spec.tie = ParentTie::kDetached;
  MOSS_ASSIGN_OR_RETURN(std::unique_ptr<Subprocess> supervisor, Subprocess::spawn(spec));

  Clock::time_point deadline = Clock::now() + options.ready_timeout + std::chrono::seconds(5);
  while (Clock::now() < deadline) {
    if (supervisor->poll_exit()) {
      return unavailable("the stack did not start; {}", log_lines(*supervisor, 20));
    }
    if (auto info = read_stack_info(options.state_dir);
        info.ok() && info->supervisor_pid == supervisor->pid()) {
      supervisor->release();
      return info;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  kill(supervisor->pid(), SIGTERM);
  supervisor->release();  // it stops its services in its own time
  return deadline_exceeded("the stack was not ready in time; {}", log_lines(*supervisor, 20));
}

Result<std::string> stop_stack(const fs::path& state_dir, std::chrono::seconds timeout) {
  const fs::path pid_file = stack_pid_file(state_dir);
  if (!stack_lock_is_held(state_dir)) {
    size_t swept = sweep_leftovers(state_dir);  // a stale stack.json: supervisor was killed
    std::error_code ec;
    fs::remove(pid_file, ec);
    fs::remove(stack_info_file(state_dir), ec);
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
    if (!stack_lock_is_held(state_dir)) {
      return "stopped (supervisor pid " + std::to_string(pid) + ", " + std::to_string(ms()) +
             " ms)";
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  // The services have SIGTERM as parent-death signal, so they follow the supervisor down;
  // what they started is swept by process group.
  kill(static_cast<pid_t>(pid), SIGKILL);
  for (int i = 0; i < 100 && stack_lock_is_held(state_dir); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  sweep_leftovers(state_dir);
  return "killed (supervisor pid " + std::to_string(pid) + " did not stop within " +
         std::to_string(timeout.count()) + " s)";
}

}  // namespace moss::client
