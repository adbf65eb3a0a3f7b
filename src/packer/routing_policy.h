// RoutingPolicy: decides which instance of a pool serves a request for a model.
//
// A policy is a pure decision unit: it sees a snapshot of the pool (PoolView, built by Pool from
// what the workers report) and the time, keeps its own statistics, and returns a Decision. It
// starts nothing and sends nothing; Pool carries the decision out. Two policies exist:
//  - "moss" (moss_policy.h): affinity, cost estimates from decaying statistics, dedicated
//    instances for hot models, queueing instead of failing;
//  - "original" (original_policy.h): the seed FnPacker's rule, reproduced as a baseline, and
//    "original+queue", the same rule waiting instead of failing when no function is free.
// Not thread-safe: its Pool calls it under the pool's lock.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "common/status.h"
#include "protocol/run_kind.h"
#include "packer/clock.h"
#include "packer/pool_kinds.h"
#include "packer/stats_book.h"

namespace moss::packer {

struct ResidentModel {
  std::string model_id;
  uint64_t bytes = 0;  // weights + arena as the worker reported; 0: not yet known
  int in_use = 0;      // requests for it running on the instance (reported or dispatched)
  bool loaded = true;  // false: a dispatched request is loading it now
};

enum class InstanceState { kStarting, kReady };

struct InstanceView {
  std::string id;
  InstanceState state = InstanceState::kReady;
  int in_flight = 0;                  // dispatched and not finished
  uint64_t memory_used_bytes = 0;     // as the worker reported
  std::vector<ResidentModel> models;  // least recently used first
  TimeMs started_ms = 0;              // when the start began
  TimeMs last_used_ms = 0;
};

// The bytes an instance is planned to hold: its models (resident, loading or dispatched) at their
// known sizes, or what the worker reported if that is more.
uint64_t planned_bytes(const InstanceView& inst);

struct PoolView {
  std::vector<InstanceView> instances;  // in creation order
  size_t max_instances = 1;
  int max_concurrency = 1;           // per instance (the worker enforces it too)
  int parallelism = 1;               // requests an instance runs at full speed at once (cores)
  uint64_t memory_budget_bytes = 0;  // per instance; 0: unlimited
  // All instances together (the host's EPC share for this pool); 0: unlimited. Planned bytes:
  // models resident, loading or dispatched, at their reported (or store-metadata) size.
  uint64_t pool_memory_budget_bytes = 0;
  int queued = 0;                    // requests waiting in the pool's queue (not dispatched)
  // About the request being routed (set by the caller per decision; the rest of the view is kept
  // up to date incrementally, not copied per decision):
  int queued_for_model = 0;  // requests for the same model queued ahead of it (DispatchQueue)
  TimeMs deadline_ms = std::numeric_limits<double>::infinity();  // its wait limit, pool clock
  bool can_grow() const { return instances.size() < max_instances; }
  const InstanceView* find(std::string_view id) const;

  // Pool and the simulation change `instances` only through add/set/erase, which keep an index
  // (the instances holding each model, the instances by load, the planned bytes), so a decision
  // visits the holders of its model and a few of the least loaded instances instead of all of
  // them (10,000 models x 1,000 instances). A view whose `instances` were assigned directly
  // (policy tests) has no index and is scanned whole.
  void add(InstanceView v);
  void set(size_t pos, InstanceView v);
  void erase(size_t pos);
  void clear();
  bool indexed() const { return indexed_ && planned_.size() == instances.size(); }
  // Positions of the instances listing `model_id` (null: none). Indexed views only.
  const std::vector<uint32_t>* holders(std::string_view model_id) const;
  // (requests in flight, planned bytes, position), least loaded first. Indexed views only.
  using LoadKey = std::tuple<int, uint64_t, uint32_t>;
  const std::set<LoadKey>& by_load() const { return by_load_; }
  // Sum of planned_bytes over the instances: kept by the index, summed on the spot for a view
  // without one.
  uint64_t planned_total() const;

 private:
  void index(uint32_t pos);
  void unindex(uint32_t pos);
  void reindex();
  bool indexed_ = false;
  std::map<std::string, std::vector<uint32_t>, std::less<>> holders_;  // no empty vectors
  std::set<LoadKey> by_load_;
  std::vector<uint64_t> planned_;  // per position
  uint64_t planned_total_ = 0;
};

enum class DecisionKind {
  kWarm,      // the instance holds the model
  kSwitch,    // the instance runs and loads the model (maybe evicting others)
  kStarting,  // an instance already starting; it will load the model
  kCold,      // start a new instance for this request
  kQueue,     // wait (until something finishes, or the deadline) and route again
  kReject,    // fail now (original rule: all busy; MOSS: no option meets the deadline)
};
std::string_view decision_name(DecisionKind kind);

struct Decision {
  DecisionKind kind = DecisionKind::kQueue;
  std::string instance_id;  // kWarm/kSwitch/kStarting; kQueue: the instance waited for, if any
  double estimated_ms = 0;  // the policy's estimate of this request's latency
  std::string reason;       // for logs and the invoke response
  int prewarm = 0;          // also start this many instances now (a hot model needs more)
  std::string prewarm_model;  // the model the prewarmed instances are for (loaded as they start)
  double retry_after_ms = 0;  // kReject: when a retry may find room (the Retry-After header)
  // kSwitch/kStarting: idle models on that instance to evict first to make room, lowest value
  // (expected reload cost per byte) first. The simulation carries it out; the worker has no unload
  // call yet and evicts least recently used within its own budget (docs/packer.md).
  std::vector<std::string> evict;
};

// What a finished request taught: fed back into the statistics.
struct Completion {
  std::string model_id;
  std::string instance_id;
  bool ok = true;
  std::optional<protocol::RunKind> run;  // as the worker said; unset when it did not
  double inference_ms = 0;   // the worker's service time
  double load_ms = 0;        // key fetch + model fetch + decrypt + compile (switch/cold)
  uint64_t model_bytes = 0;  // weights + arena, 0 when not reported
  double activation_ms = 0;  // the worker's whole time for the request (load included); 0: unknown
  TimeMs sent_ms = -1;       // when the pool dispatched it; -1: unknown
  TimeMs now = 0;
};

class RoutingPolicy {
 public:
  virtual ~RoutingPolicy() = default;
  virtual std::string_view name() const = 0;
  // Once per request, when it arrives (before its first route()).
  virtual void on_arrival(std::string_view model_id, TimeMs now);
  virtual Decision route(std::string_view model_id, const PoolView& pool, TimeMs now) = 0;
  // The request was sent to `instance_id` (for kCold: the instance just created for it).
  virtual void on_dispatch(std::string_view model_id, std::string_view instance_id, TimeMs now);
  virtual void on_complete(const Completion& completion);
  // An instance finished starting (how long the start took) or went away.
  virtual void on_instance_started(std::string_view instance_id, double start_ms, TimeMs now);
  virtual void on_instance_stopped(std::string_view instance_id);
  // When an idle instance may be stopped (pool clock). By default `idle_timeout_ms` after its last
  // use: one keep-alive for every model (the original's 3 minutes).
  virtual TimeMs keep_until(const InstanceView& inst, TimeMs idle_timeout_ms) const;

  // A model's size (weights + arena, or a lower bound) before the worker reported it: from the
  // model store's metadata (ModelSizeHints). Kept only while nothing better is known.
  void learn_size(std::string_view model_id, uint64_t bytes);

  const StatsBook& stats() const { return stats_; }

 protected:
  explicit RoutingPolicy(StatsPriors priors) : stats_(priors) {}
  StatsBook stats_;
};

using RoutingPolicyPtr = std::unique_ptr<RoutingPolicy>;

// The policy of that kind (names: pool_kinds.h).
RoutingPolicyPtr make_routing_policy(PolicyKind kind, StatsPriors priors = {});

}  // namespace moss::packer
