// WorkerProcess: one `moss-worker` child process on a loopback port (LocalBackend's unit): a
// Subprocess that dies with the packer, plus the port it serves and the start-up handshake.
// alive() is thread-safe; start and stop are serialised by LocalInstance.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/subprocess.h"

namespace moss::packer {

struct WorkerProcessSpec {
  std::filesystem::path binary;
  std::map<std::string, std::string> env;  // added to the inherited environment
  std::filesystem::path log_path;          // appended; empty: inherit stdout/stderr
};

class WorkerProcess {
 public:
  // Picks a free loopback port, starts the process and waits until GET /healthz answers 200 from
  // this process (checked in /proc; a port taken by someone else meanwhile means another try).
  static Result<std::unique_ptr<WorkerProcess>> start(const WorkerProcessSpec& spec,
                                                      std::chrono::milliseconds timeout);
  ~WorkerProcess();  // stop()
  WorkerProcess(const WorkerProcess&) = delete;
  WorkerProcess& operator=(const WorkerProcess&) = delete;

  uint16_t port() const { return port_; }
  pid_t pid() const { return process_->pid(); }
  // False once the process has exited (reaped without blocking). Thread-safe.
  bool alive() { return process_->alive(); }
  // SIGTERM, up to 3 s grace, then SIGKILL. Idempotent.
  void stop();

 private:
  WorkerProcess(std::unique_ptr<Subprocess> process, uint16_t port)
      : process_(std::move(process)), port_(port) {}
  // One attempt on one port; `port_lost` is set when another process took the port.
  static Result<std::unique_ptr<WorkerProcess>> start_once(const WorkerProcessSpec& spec,
                                                           std::chrono::milliseconds timeout,
                                                           bool* port_lost);
  std::unique_ptr<Subprocess> process_;
  uint16_t port_;
};

}  // namespace moss::packer
