// MossPolicy: MOSS's routing rule (design brief, "FnPacker": where MOSS must do better).
//
// For each request it estimates, from decaying statistics, the latency every option would give and
// picks the cheapest:
//  - warm: an instance that holds the model: queueing behind its running requests + service time;
//  - switch: a running instance that must load the model: load time + queueing + service time +
//    an eviction penalty (the expected reload cost of the idle models it must evict to fit the
//    model's weights and arena in the memory budget; no candidate if even that cannot make room);
//  - starting: an instance already starting: its remaining start time + load + service;
//  - cold: a new instance, when the pool may grow: start time + load + service;
//  - queue: wait for an instance at its concurrency limit (warm, or to switch there once a slot
//    frees): often cheaper than a cold start.
// Affinity falls out of the costs (a warm instance has no load term) and ties go to warm.
// A hot model (arrival rate x service time >= hot_threshold; the rate is the larger of a short and
// a long window, StatsBook) gets ceil(rate x service / parallelism) dedicated instances: other
// models do not switch onto them (which would evict it) unless they would otherwise miss their
// deadline, and when it has fewer than it needs the decision asks the pool to start the missing
// ones at once (prewarm, with the model loaded as they start). Queueing is priced by the backlog
// ahead (the requests queued for the same model for a warm instance, all queued requests for a
// slot to switch on; DispatchQueue).
// When no instance can take the request the decision is to queue (the pool waits up to the
// request's deadline); with admission on, a request whose cheapest option is to queue longer
// than its deadline allows is rejected at once with a retry-after estimate instead of waiting to
// fail.
// Keep-alive: an idle instance is kept for the keep-alive of the models it holds, each from the
// model's own inter-arrival histogram (a model that comes every second is not kept 3 minutes; one
// that comes every 4 minutes is not stopped just before it returns).
// Memory: a placement never plans more model bytes than the instance's budget, nor all instances
// together than the pool's (pool_memory_budget_bytes, the host's EPC share); to make room it
// evicts idle models by value (expected reload cost per byte), cold starts and prewarms only
// where the pool's budget has room, and a model larger than a budget is rejected.
// Cost per decision on an indexed view (PoolView::add/set/erase: Pool and the simulation): the
// model's holders and the `switch_candidates` (16) least loaded other instances are visited, each costing its resident
// models (and, for a resident hot model, its holders), not the whole pool; on a view filled by
// hand, O(instances x models resident on each + hot models x instances). The hot set is kept as
// arrivals come (not found by scanning every model seen), and statistics of models quiet for 20
// half-lives are pruned.
// Not thread-safe (see RoutingPolicy).
#pragma once

#include <map>
#include <optional>
#include <set>
#include <vector>

#include "packer/routing_policy.h"

namespace moss::packer {

struct MossPolicyOptions {
  double hot_threshold = 0.5;        // offered load (requests in service at once) to be "hot"
  TimeMs reuse_horizon_ms = 10'000;  // how far ahead an evicted model's reload cost counts
  bool admission = true;             // reject at once when queueing cannot meet the deadline
  // An indexed view: how many of the least loaded instances not holding the model a decision
  // prices as switch (or queue-then-switch) candidates.
  size_t switch_candidates = 16;
  // Per-model keep-alive (IdleGapHistogram): an idle instance stays up for the longest keep-alive
  // of the models it holds, each `keep_alive_percentile` of that model's gaps between arrivals
  // (x keep_alive_margin), within [min(keep_alive_min_ms, the pool's fixed idle timeout),
  // keep_alive_max_ms]; a model with fewer than keep_alive_min_gaps gaps (or mostly beyond the
  // histogram) keeps the pool's fixed idle timeout.
  bool adaptive_keep_alive = true;
  double keep_alive_percentile = 0.99;
  double keep_alive_margin = 1.1;
  TimeMs keep_alive_min_ms = 10'000;
  TimeMs keep_alive_max_ms = 600'000;
  double keep_alive_min_gaps = 10;
  // Deliberate shrink: when the pool runs more instances than its load needs (the pool's offered
  // load on the long window at `target_utilization` of each instance's cores, at least its
  // planned model bytes at `target_utilization` of the per-instance budget, at least what its hot
  // models need), the
  // surplus instances drain: new requests go elsewhere unless nothing else beats a cold start,
  // and once idle a draining instance stops after `drain_grace_ms` instead of its keep-alive.
  // Only after `shrink_history_ms` of arrivals (the rates mean something by then).
  bool shrink = true;
  double target_utilization = 0.5;
  TimeMs drain_grace_ms = 1'000;
  TimeMs shrink_history_ms = 5'000;
  TimeMs shrink_every_ms = 1'000;  // how often the draining set is reconsidered
};

class MossPolicy final : public RoutingPolicy {
 public:
  explicit MossPolicy(StatsPriors priors = {}, MossPolicyOptions options = {});
  std::string_view name() const override { return "moss"; }
  Decision route(std::string_view model_id, const PoolView& pool, TimeMs now) override;
  void on_arrival(std::string_view model_id, TimeMs now) override;
  void on_complete(const Completion& completion) override;
  TimeMs keep_until(const InstanceView& inst, TimeMs idle_timeout_ms) const override;
  // A model's own keep-alive (adaptive_keep_alive), or `idle_timeout_ms` without enough history.
  TimeMs keep_alive_ms(std::string_view model_id, TimeMs idle_timeout_ms) const;

  // Instance id -> the hot model it is dedicated to, for this pool snapshot (exposed for tests
  // and the status endpoint).
  std::map<std::string, std::string> dedicated_instances(const PoolView& pool, TimeMs now) const;
  // How many instances a model needs for itself now (0 when it is not hot).
  int instances_needed(std::string_view model_id, const PoolView& pool, TimeMs now) const;
  // How many instances the whole pool needs now (deliberate shrink; at least 1).
  int pool_instances_needed(const PoolView& pool, TimeMs now) const;
  // Instances draining (deliberate shrink) as of the last decision.
  const std::set<std::string, std::less<>>& draining() const { return draining_; }
  void on_instance_stopped(std::string_view instance_id) override;

 private:
  // Expected cost of evicting idle models from `inst` to free `need` bytes, lowest value
  // (expected reload cost per byte) first; nullopt if its idle models cannot free that much.
  // `victims` (optional) receives the models chosen.
  std::optional<double> eviction_penalty(const InstanceView& inst, uint64_t need, TimeMs now,
                                         std::vector<std::string>* victims = nullptr) const;
  // Per instance of `pool` (same index): the hot model it is dedicated to, or null.
  std::vector<const std::string*> dedicated_by_index(const PoolView& pool, TimeMs now) const;
  // Indexed views: the hot model instance `i` is dedicated to, from that instance alone (among
  // its resident hot models, hottest first, one for which it is among the most recently used
  // holders it needs). Unlike dedicated_by_index it does not pass a holder a hotter model claims
  // on to the next one, so two hot models sharing instances may keep one fewer each.
  const std::string* dedicated_to(const PoolView& pool, size_t i, TimeMs now) const;
  void note_if_hot(std::string_view model_id, TimeMs now);
  // Recomputes draining_ (at most every shrink_every_ms): keeps the instances already draining
  // while the surplus lasts, adds the least useful ready ones (fewest requests in flight, fewest
  // models, least recently used, newest) up to the surplus.
  void update_draining(const PoolView& pool, TimeMs now);

  MossPolicyOptions options_;
  std::set<std::string, std::less<>> hot_;  // models that were hot when last seen; may be stale
  uint64_t arrivals_since_prune_ = 0;
  std::set<std::string, std::less<>> draining_;
  TimeMs draining_checked_ms_ = -1;
  struct Candidate {
    const ResidentModel* model;
    double value;  // expected reload cost within the reuse horizon, ms
  };
  mutable std::vector<Candidate> scratch_;  // eviction_penalty's, kept to avoid an allocation
};

}  // namespace moss::packer
