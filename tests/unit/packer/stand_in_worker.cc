// A stand-in for moss-worker that speaks contract C3 (/v1/infer, /v1/status, /healthz) without
// crypto or inference, for the packer's backend tests and the trace benchmark. It simulates what
// routing cares about: per-model load time on a miss (cold / switch), service time, resident
// models with their bytes in a memory budget (LRU eviction of idle models), a concurrency limit
// and a number of requests computed at full speed at once (cores).
//
// Configuration (environment, as the local backend sets it): PORT, MOSS_WORKER_MAX_CONCURRENCY,
// MOSS_WORKER_MEMORY_BUDGET_MB; MOSS_WORKER_SIM_PARALLELISM (default 2), MOSS_WORKER_SIM_START_MS
// (delay before listening, a process start cost). A request's "envelope" may be a JSON object
// {"service_ms":N,"load_ms":N,"mb":N} setting the model's costs (defaults 10, 200, 50); it is
// echoed back as the response envelope. Model "test/crash" makes the process exit at once;
// "test/deny" answers 403; "test/sealed" answers like a worker whose opened request failed: 400,
// category bad-input, the request envelope echoed as the sealed error envelope.
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <list>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "crypto/envelope.h"
#include "protocol/infer_result.h"
#include "common/logging.h"
#include "net/error_response.h"
#include "net/server.h"

using json = nlohmann::json;
using namespace moss;
using steady = std::chrono::steady_clock;

namespace {

int64_t env_int(const char* name, int64_t fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoll(v) : fallback;
}

double ms_since(steady::time_point t) {
  return std::chrono::duration<double, std::milli>(steady::now() - t).count();
}

struct Model {
  uint64_t bytes = 0;
  int in_use = 0;
  bool loaded = false;
  steady::time_point last_used;
};

class StandInWorker {
 public:
  StandInWorker()
      : max_concurrency_(static_cast<int>(env_int("MOSS_WORKER_MAX_CONCURRENCY", 10))),
        budget_(static_cast<uint64_t>(env_int("MOSS_WORKER_MEMORY_BUDGET_MB", 1024)) << 20),
        parallelism_(static_cast<int>(env_int("MOSS_WORKER_SIM_PARALLELISM", 2))) {
    id_ = "stand-in-" + std::to_string(::getpid());
  }

  net::Response infer(const net::Request& r) {
    const auto t0 = steady::now();
    // A binary envelope body (docs/worker-api.md) is echoed back in binary, with default costs.
    const bool binary = r.headers.get_or("Content-Type", "") == protocol::kEnvelopeMediaType;
    json req;
    if (binary) {
      auto header = protocol::peek_binary_envelope_header(r.body);
      if (!header.ok()) return net::error_response(header.status());
      req = {{"model_id", header->model_id}, {"envelope", ""}};
    } else {
      req = json::parse(r.body, nullptr, false);
    }
    if (!req.is_object() || !req.contains("model_id") || !req["model_id"].is_string() ||
        !req.contains("envelope") || !req["envelope"].is_string()) {
      return net::error_response(invalid_argument("body must be {{model_id, envelope}}"));
    }
    std::string model_id = req["model_id"];
    if (model_id == "test/crash") ::_exit(3);
    if (model_id == "test/deny")
      return net::error_response(permission_denied("no grant for {}", model_id));
    if (model_id == "test/sealed") {
      net::Response sealed;
      sealed.status = 400;
      if (binary) {
        sealed.headers.set("Content-Type", protocol::kEnvelopeMediaType);
        sealed.headers.set("Moss-Error-Category", "bad-input");
        sealed.body = r.body;
        return sealed;
      }
      protocol::InferResult failed;
      failed.envelope = req["envelope"].get<std::string>();
      failed.error = protocol::SealedError{ErrorCode::kInvalidArgument, "bad-input"};
      return net::Response::json(400, failed.to_json());  // as the worker renders it
    }
    json costs = json::parse(req["envelope"].get<std::string>(), nullptr, false);
    double service_ms = 10, load_ms = 200, mb = 50;
    if (costs.is_object()) {
      service_ms = costs.value("service_ms", service_ms);
      load_ms = costs.value("load_ms", load_ms);
      mb = costs.value("mb", mb);
    }
    std::unique_lock lock(mu_);
    if (in_flight_ >= max_concurrency_) {
      return net::error_response(
          resource_exhausted("instance at its concurrency limit {}", max_concurrency_));
    }
    ++in_flight_;
    std::string run = "warm";
    Model& m = models_[model_id];
    ++m.in_use;
    m.last_used = steady::now();
    double load_spent = 0;
    if (!m.loaded) {
      run = ever_loaded_ ? "switch" : "cold";
      ever_loaded_ = true;
      m.bytes = static_cast<uint64_t>(mb * 1024 * 1024);
      if (!make_room_locked(model_id, m.bytes)) {
        --m.in_use;
        --in_flight_;
        if (m.in_use == 0 && !m.loaded) models_.erase(model_id);
        return net::error_response(
            resource_exhausted("model {} does not fit the memory budget", model_id));
      }
      m.loaded = true;  // reserved now; loading takes load_ms (other requests for it wait too)
      loading_until_[model_id] =
          steady::now() + std::chrono::microseconds(static_cast<int64_t>(load_ms * 1000));
    }
    // Requests for a model being loaded wait for the load to finish.
    auto until = loading_until_[model_id];
    lock.unlock();
    if (steady::now() < until) {
      auto before = steady::now();
      std::this_thread::sleep_until(until);
      load_spent = ms_since(before);
    }
    // Compute: at most `parallelism_` requests at full speed at once.
    lock.lock();
    cv_.wait(lock, [&] { return computing_ < parallelism_; });
    ++computing_;
    lock.unlock();
    auto tc = steady::now();
    std::this_thread::sleep_for(std::chrono::microseconds(static_cast<int64_t>(service_ms * 1000)));
    double inference = ms_since(tc);
    lock.lock();
    --computing_;
    cv_.notify_one();
    --in_flight_;
    --models_[model_id].in_use;
    models_[model_id].last_used = steady::now();
    json status = status_locked();
    lock.unlock();
    json reply = {{"envelope", req["envelope"]},
                  {"run", run},
                  {"timing_ms",
                   {{"key_fetch", 0},
                    {"model_fetch", load_spent * 0.2},
                    {"decrypt", load_spent * 0.3},
                    {"compile", load_spent * 0.5},
                    {"inference", inference},
                    {"encrypt", 0},
                    {"total", ms_since(t0)}}},
                  {"instance", status}};
    if (binary) {
      net::Response out;
      out.body = r.body;
      out.headers.set("Content-Type", protocol::kEnvelopeMediaType);
      out.headers.set("Moss-Run", run);
      out.headers.set("Moss-Timing-Ms", reply["timing_ms"].dump());
      out.headers.set("Moss-Instance", status.dump());
      return out;
    }
    return net::Response::json(200, reply.dump());
  }

  net::Response status() {
    std::lock_guard lock(mu_);
    return net::Response::json(200, status_locked().dump());
  }

 private:
  // Evicts idle models, least recently used first, until `bytes` more fit.
  bool make_room_locked(const std::string& keep, uint64_t bytes) {
    while (used_locked() + bytes > budget_) {
      std::string victim;
      steady::time_point oldest = steady::time_point::max();
      for (auto& [id, m] : models_) {
        if (id != keep && m.loaded && m.in_use == 0 && m.last_used < oldest) {
          oldest = m.last_used;
          victim = id;
        }
      }
      if (victim.empty()) return false;
      models_.erase(victim);
      loading_until_.erase(victim);
    }
    return true;
  }

  uint64_t used_locked() const {
    uint64_t used = 0;
    for (const auto& [id, m] : models_) used += m.loaded ? m.bytes : 0;
    return used;
  }

  json status_locked() const {
    json models = json::array();
    for (const auto& [id, m] : models_) {
      if (!m.loaded) continue;
      models.push_back({{"model_id", id},
                        {"weights_bytes", m.bytes * 3 / 4},
                        {"arena_bytes", m.bytes - m.bytes * 3 / 4},
                        {"contexts", 1},
                        {"in_use", m.in_use},
                        {"last_used_ms_ago", static_cast<int64_t>(ms_since(m.last_used))}});
    }
    return {{"instance_id", id_},
            {"in_flight", in_flight_},
            {"max_concurrency", max_concurrency_},
            {"memory_budget_bytes", budget_},
            {"memory_used_bytes", used_locked()},
            {"models", models}};
  }

  const int max_concurrency_;
  const uint64_t budget_;
  const int parallelism_;
  std::string id_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Model> models_;
  std::map<std::string, steady::time_point> loading_until_;
  int in_flight_ = 0;
  int computing_ = 0;
  bool ever_loaded_ = false;
};

}  // namespace

int main() {
  int64_t start_ms = env_int("MOSS_WORKER_SIM_START_MS", 0);
  if (start_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(start_ms));
  moss::log::set_level("warn");
  StandInWorker worker;
  net::Router router;
  router.get("/healthz",
             [](const net::Request&) { return net::Response::json(200, R"({"status":"ok"})"); });
  router.get("/v1/status", [&](const net::Request&) { return worker.status(); });
  router.post("/v1/infer", [&](const net::Request& r) { return worker.infer(r); });
  net::ServerOptions options;
  options.port = static_cast<uint16_t>(env_int("PORT", 8080));
  options.worker_threads = static_cast<size_t>(env_int("MOSS_WORKER_MAX_CONCURRENCY", 10)) + 4;
  options.name = "stand-in-worker";
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  auto server = net::Server::start(std::move(options), std::move(router));
  if (!server.ok()) {
    std::fprintf(stderr, "stand-in worker: %s\n", server.status().to_string().c_str());
    return 1;
  }
  int sig = 0;
  sigwait(&stop, &sig);
  (*server)->stop(std::chrono::milliseconds(500));
  return 0;
}
