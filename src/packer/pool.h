// Pool: one function pool. Routes each request with its RoutingPolicy and carries the decision
// out on its Backend: starts instances (for a request, or ahead of demand for a hot model), waits
// in a queue with the request's deadline, forwards the request, learns from the worker's reply
// (run kind, timings, resident models with their weights and arena) and stops idle instances.
// Thread-safe: invoke() is called concurrently by the API server's handler threads. The pool lock
// guards routing state only: no I/O and no wait on an instance happens under it (invoke is
// acquire under the lock, send without it, complete under it again), so one slow or restarting
// worker never stalls routing or status(). Time comes from the injected clock.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "packer/backend.h"
#include "packer/clock.h"
#include "packer/dispatch_queue.h"
#include "packer/model_size_hints.h"
#include "packer/pool_spec.h"
#include "packer/routing_policy.h"

namespace moss::packer {

struct PoolCounters {
  uint64_t served = 0;     // answered by a worker with 200
  uint64_t failed = 0;     // worker or transport error
  uint64_t rejected = 0;   // refused by the policy (original rule: all busy)
  uint64_t timed_out = 0;  // queued past the deadline
  uint64_t queued = 0;     // had to wait at least once
  uint64_t runs_cold = 0;  // worker-reported run kinds
  uint64_t runs_switch = 0;
  uint64_t runs_warm = 0;
  uint64_t instance_starts = 0;  // instances started (cold starts of the pool)
  uint64_t instance_stops = 0;   // stopped for idleness or on delete
  uint64_t start_failures = 0;
  uint64_t worker_refusals = 0;  // 429 from a worker: routed again
  nlohmann::json to_json() const;
};

class Pool {
 public:
  Pool(PoolSpec spec, BackendPtr backend, RoutingPolicyPtr policy, const Clock& clock);
  ~Pool();  // shutdown()
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  const PoolSpec& spec() const { return spec_; }

  // Serves one request: `envelope` is the request envelope (JSON text or binary form), passed on
  // untouched.
  // `max_wait_ms`: how long the request may wait for an instance (default spec.queue_timeout_ms).
  // Returns the worker's C3 result as it answered (its envelope unconverted) with FnPacker's
  // annotation added, or its sealed error.
  // `retry_after_ms` (optional): set when the request is refused at once because no instance can
  // take it within its deadline (resource-exhausted; the API answers 429 with Retry-After).
  Result<protocol::InferResult> invoke(std::string_view model_id, std::string_view envelope,
                                       std::optional<int64_t> max_wait_ms = std::nullopt,
                                       double* retry_after_ms = nullptr);

  // Instances, resident models, in-flight requests, counters, recent latencies, model statistics.
  nlohmann::json status() const;
  PoolCounters counters() const;
  // Peak of the sum of reported memory over instances, bytes (bench).
  uint64_t peak_memory_bytes() const;
  // Sum over instances of their running time so far, seconds (bench: instance-seconds).
  double instance_seconds() const;

  // Stops instances idle for idle_timeout_s (keeping min_instances); the manager calls it
  // periodically.
  void reap_idle();
  // Wakes every queued request to route again now (tests on a manual clock, after advancing it).
  void wake();
  // Starts instances in the background up to min_instances.
  void ensure_min_instances();
  // Fails queued requests, waits for background starts and (up to 10 s) for requests already
  // sent, then stops every instance. Idempotent.
  void shutdown();

 private:
  enum class StartState { kStarting, kReady, kFailed };
  // The pool's record of one instance: the backend's running Instance (once started) and the
  // routing state the policy sees as its InstanceView.
  struct InstanceRecord {
    std::string id;
    StartState state = StartState::kStarting;
    std::shared_ptr<Instance> instance;
    std::string start_error;
    int in_flight = 0;
    std::map<std::string, int> dispatched;  // model -> requests sent and not answered
    std::vector<ResidentModel> reported;    // least recently used first
    uint64_t memory_used = 0;
    TimeMs started_ms = 0;
    TimeMs ready_ms = 0;
    TimeMs last_used_ms = 0;
    std::string preload;  // a prewarm for this hot model: listed (not loaded) until a report
  };
  using RecordPtr = std::shared_ptr<InstanceRecord>;

  // The view the policy reads is kept up to date per change of an instance (sync_locked), never
  // rebuilt from the whole pool per decision.
  InstanceView instance_view_locked(const InstanceRecord& s) const;
  void sync_locked(const RecordPtr& rec);
  RecordPtr find_locked(std::string_view id) const;
  RecordPtr new_instance_locked();
  void start_in_background_locked(std::string preload = {});
  // A concurrency slot freed on `rec` (or it came up): hand it to the queued requests it suits,
  // one each.
  void hand_off_locked(const InstanceRecord& rec);
  void start_instance(const RecordPtr& rec);  // without the lock held
  void remove_instance_locked(const RecordPtr& rec);
  // What a worker's reply says, parsed without the lock.
  struct WorkerReport {
    std::optional<protocol::RunKind> run;
    double inference_ms = 0, load_ms = 0, activation_ms = 0;
    uint64_t model_bytes = 0;
    bool has_instance = false;
    uint64_t memory_used = 0;
    std::vector<ResidentModel> resident;  // least recently used first
  };
  static WorkerReport parse_report(std::string_view model_id, const protocol::InferResult& reply);
  // A request's place on an instance, from acquire() to release_locked().
  struct Ticket {
    RecordPtr rec;
    Decision decision;
    std::shared_ptr<Instance> instance;
    TimeMs sent_ms = 0;
    double queued_ms = 0;
  };
  // Routes under the lock, queueing up to `deadline_ms` (pool clock), and reserves a place; a
  // cold decision's instance is started without the lock. Returns once the instance is up (or
  // its start failed).
  Result<Ticket> acquire(std::string_view model_id, TimeMs t0, TimeMs deadline_ms, bool* queued,
                         double* retry_after_ms);
  // Gives the place back and tells the policy how the request ended (`report` null: not run).
  void release_locked(const Ticket& t, std::string_view model_id, const WorkerReport* report);
  void account_memory_locked();

  const PoolSpec spec_;
  const BackendPtr backend_;
  const Clock& clock_;
  ModelSizeHints size_hints_;  // its own lock: asked before taking mu_

  mutable std::mutex mu_;
  std::condition_variable cv_;
  RoutingPolicyPtr policy_;          // guarded by mu_
  std::vector<RecordPtr> instances_;  // guarded by mu_; creation order
  uint64_t next_instance_ = 0;        // guarded by mu_
  PoolCounters counters_;            // guarded by mu_
  std::deque<double> latencies_ms_;  // guarded by mu_; most recent last
  uint64_t peak_memory_ = 0;         // guarded by mu_
  PoolView view_;                    // guarded by mu_; one entry per instance, same order
  DispatchQueue queue_;              // guarded by mu_: requests waiting for an instance
  struct Waiter {
    std::condition_variable cv;
    bool handed = false;  // offered a freed slot (or woken): route again now
  };
  std::map<DispatchQueue::Id, Waiter*> waiters_;  // guarded by mu_; the queued ones
  DispatchQueue::Id next_request_ = 0;             // guarded by mu_
  double stopped_instance_ms_ = 0;   // guarded by mu_: running time of stopped instances
  bool shutting_down_ = false;       // guarded by mu_
  struct Background {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  std::vector<Background> background_;  // guarded by mu_; finished ones joined on the next start
};

using PoolPtr = std::shared_ptr<Pool>;

}  // namespace moss::packer
