#include "packer/local_backend.h"

#include <cctype>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "common/logging.h"
#include "net/client.h"
#include "net/error_response.h"
#include "packer/wire.h"
#include "protocol/envelope_frame.h"
#include "packer/worker_process.h"

namespace moss::packer {

namespace {

std::string env_name(std::string_view key) {
  std::string out = "MOSS_WORKER_";
  for (char c : key) out.push_back(c == '-' ? '_' : static_cast<char>(std::toupper(c)));
  return out;
}

class LocalInstance final : public Instance {
 public:
  LocalInstance(std::string id, WorkerProcessSpec spec, std::chrono::milliseconds start_timeout,
                std::unique_ptr<WorkerProcess> process)
      : id_(std::move(id)), spec_(std::move(spec)), start_timeout_(start_timeout) {
    adopt(std::move(process));
  }
  ~LocalInstance() override { stop(); }

  std::string endpoint() const override {
    std::lock_guard lock(mu_);
    return process_ ? "127.0.0.1:" + std::to_string(process_->port()) : std::string("stopped");
  }

  int restarts() const override {
    std::lock_guard lock(mu_);
    return restarts_;
  }

  Result<protocol::InferResult> invoke(std::string_view body, std::chrono::milliseconds timeout) override {
    for (int attempt = 0;; ++attempt) {
      Result<std::shared_ptr<WorkerProcess>> live = live_process();
      if (!live.ok()) return live.status();
      const std::shared_ptr<WorkerProcess>& process = *live;
      net::ClientOptions options;
      options.port = process->port();
      options.connect_timeout = std::chrono::milliseconds(2'000);
      options.read_timeout = timeout;
      // A fresh connection per request (loopback: tens of microseconds): a keep-alive client
      // replays a request whose reused connection failed, and then a refused connect would no
      // longer prove that the request never reached the worker.
      net::Client client(options);
      // A binary envelope goes to the worker as it is (docs/worker-api.md, "Binary requests").
      const bool binary = protocol::envelope_encoding(body) == protocol::EnvelopeEncoding::kBinary;
      Result<net::Response> resp = client.post(
          "/v1/infer", std::string(body), binary ? protocol::kEnvelopeMediaType : "application/json");
      if (resp.ok()) return result_from_worker_answer(*resp);
      // A transport failure usually means the worker is exiting; give it a moment to be reaped
      // so this and the next request see it dead and restart it, rather than reach a dying one.
      // No lock is held while waiting.
      for (int i = 0; resp.status().code() == ErrorCode::kUnavailable && i < 50 && process->alive();
           ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      // Only a dead process is restarted (by live_process on the next attempt); a live one that
      // refused is reported as is.
      if (attempt == 0 && resp.status().request_not_sent() && !process->alive()) continue;
      return resp.status();
    }
  }

  void stop() override {
    std::shared_ptr<WorkerProcess> p;
    {
      std::lock_guard lock(mu_);
      stopped_ = true;
      p = std::move(process_);
    }
    if (p) p->stop();
  }

 private:
  void adopt(std::unique_ptr<WorkerProcess> process) { process_ = std::move(process); }

  // The running process, restarted first if it has exited. A restart (up to the start timeout)
  // holds only restart_mu_: endpoint(), restarts(), stop() and so the pool's status never wait
  // for it; concurrent requests to this instance wait for the one restart.
  Result<std::shared_ptr<WorkerProcess>> live_process() {
    auto current = [&]() -> Result<std::shared_ptr<WorkerProcess>> {
      std::lock_guard lock(mu_);
      if (stopped_ || !process_) return unavailable("instance {} was stopped", id_);
      return process_;
    };
    Result<std::shared_ptr<WorkerProcess>> p = current();
    if (!p.ok() || (*p)->alive()) return p;
    std::lock_guard restart(restart_mu_);
    p = current();
    if (!p.ok() || (*p)->alive()) return p;  // another request restarted it meanwhile
    log::get("packer")->warn("worker restart instance={} pid={} reason=\"it exited\"", id_,
                             (*p)->pid());
    (*p)->stop();
    auto started = WorkerProcess::start(spec_, start_timeout_);
    if (!started.ok()) return started.status().with_context("restarting instance " + id_);
    std::shared_ptr<WorkerProcess> fresh(std::move(*started));
    {
      std::lock_guard lock(mu_);
      if (!stopped_) {
        process_ = fresh;
        ++restarts_;
        return fresh;
      }
    }
    fresh->stop();
    return unavailable("instance {} was stopped", id_);
  }

  const std::string id_;
  const WorkerProcessSpec spec_;
  const std::chrono::milliseconds start_timeout_;
  mutable std::mutex mu_;
  std::mutex restart_mu_;                   // held through a restart only
  std::shared_ptr<WorkerProcess> process_;  // guarded by mu_
  int restarts_ = 0;                        // guarded by mu_
  bool stopped_ = false;                    // guarded by mu_
};

}  // namespace

LocalBackend::LocalBackend(LocalBackendOptions options) : options_(std::move(options)) {}

Result<InstancePtr> LocalBackend::start(const std::string& instance_id) {
  WorkerProcessSpec spec;
  spec.binary = options_.worker_binary;
  // Loopback only unless the pool says otherwise: the packer is the workers' one client.
  spec.env["MOSS_WORKER_HOST"] = "127.0.0.1";
  // oneDNN's OpenMP threads must not spin between kernels: workers share cores with each other
  // (docs/engine.md, "Threads"). An explicit setting in the packer's environment wins.
  if (!std::getenv("OMP_WAIT_POLICY")) spec.env["OMP_WAIT_POLICY"] = "passive";
  // malloc backs large blocks with transparent huge pages (glibc >= 2.35): a worker touches
  // hundreds of MB at a cold start (model file, plaintext, packed weights), and 4 KiB page faults
  // cost ~15 us each under virtualization: ResNet-50's first request 1.85 s -> 0.92 s
  // (docs/worker.md). RSS is unchanged (THP "madvise" mode only affects what is asked for).
  if (!std::getenv("GLIBC_TUNABLES")) spec.env["GLIBC_TUNABLES"] = "glibc.malloc.hugetlb=1";
  for (const auto& [k, v] : options_.worker_config) spec.env[env_name(k)] = v;
  spec.env["MOSS_WORKER_MAX_CONCURRENCY"] = std::to_string(options_.max_concurrency);
  spec.env["MOSS_WORKER_MEMORY_BUDGET_MB"] = std::to_string(options_.memory_budget_mb);
  if (!options_.log_dir.empty()) {
    spec.log_path = options_.log_dir / (options_.pool_name + "-" + instance_id + ".log");
  }
  MOSS_ASSIGN_OR_RETURN(auto process, WorkerProcess::start(spec, options_.start_timeout));
  return InstancePtr(std::make_unique<LocalInstance>(instance_id, std::move(spec),
                                                     options_.start_timeout, std::move(process)));
}

}  // namespace moss::packer
