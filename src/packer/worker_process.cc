#include "packer/worker_process.h"

#include <thread>

#include "common/loopback_port.h"
#include "common/proc_scan.h"
#include "net/client.h"

namespace moss::packer {

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
  MOSS_ASSIGN_OR_RETURN(uint16_t port, free_loopback_port());
  SubprocessSpec sub;
  sub.name = "worker";
  sub.argv = {spec.binary.string()};
  sub.env = spec.env;
  sub.env["PORT"] = std::to_string(port);
  sub.env["MOSS_WORKER_PORT"] = std::to_string(port);
  sub.log_path = spec.log_path;
  // The worker must not outlive the packer (it would hold a port and decrypted models); it stays
  // in the packer's process group, so `moss down` sweeps it with the packer.
  sub.tie = ParentTie::kDiesWithParent;
  MOSS_ASSIGN_OR_RETURN(std::unique_ptr<Subprocess> process, Subprocess::spawn(sub));
  std::unique_ptr<WorkerProcess> proc(new WorkerProcess(std::move(process), port));
  const std::string& binary = sub.argv[0];

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
      // The free port was released before the worker bound it: whoever answered may be another
      // process that took it in between.
      if (process_listens_on_loopback(proc->pid(), port)) return proc;
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

void WorkerProcess::stop() { process_->stop(std::chrono::seconds(3)); }

}  // namespace moss::packer
