#include "packer/moss_policy.h"

#include <algorithm>
#include <cmath>

namespace moss::packer {

namespace {

const ResidentModel* find_model(const InstanceView& inst, std::string_view model_id) {
  for (const ResidentModel& m : inst.models) {
    if (m.model_id == model_id) return &m;
  }
  return nullptr;
}

struct Option {
  DecisionKind kind;
  std::string instance_id;
  double cost;
  std::string reason;
};

}  // namespace

MossPolicy::MossPolicy(StatsPriors priors, MossPolicyOptions options)
    : RoutingPolicy(priors), options_(options) {}

int MossPolicy::instances_needed(std::string_view model_id, const PoolView& pool,
                                 TimeMs now) const {
  double load = stats_.offered_load(model_id, now);
  if (load < options_.hot_threshold) return 0;
  return std::max(1, static_cast<int>(std::ceil(load / std::max(1, pool.parallelism))));
}

std::map<std::string, std::string> MossPolicy::dedicated_instances(const PoolView& pool,
                                                                   TimeMs now) const {
  // Hottest model first, so a model twice as hot keeps its instances when two compete.
  std::vector<std::pair<double, std::string>> hot;
  for (const auto& [id, m] : stats_.models()) {
    double load = stats_.offered_load(id, now);
    if (load >= options_.hot_threshold) hot.emplace_back(load, id);
  }
  std::sort(hot.begin(), hot.end(), std::greater<>());
  std::map<std::string, std::string> dedicated;
  for (const auto& [load, model_id] : hot) {
    int need = instances_needed(model_id, pool, now);
    std::vector<const InstanceView*> holders;
    for (const InstanceView& inst : pool.instances) {
      if (find_model(inst, model_id) && !dedicated.count(inst.id)) holders.push_back(&inst);
    }
    std::stable_sort(holders.begin(), holders.end(), [&](const auto* a, const auto* b) {
      return a->last_used_ms > b->last_used_ms;
    });
    for (int i = 0; i < need && i < static_cast<int>(holders.size()); ++i) {
      dedicated[holders[i]->id] = model_id;
    }
  }
  return dedicated;
}

std::optional<double> MossPolicy::eviction_penalty(const InstanceView& inst, const PoolView& pool,
                                                   uint64_t bytes, TimeMs now) const {
  if (pool.memory_budget_bytes == 0) return 0.0;
  uint64_t used = 0;
  for (const ResidentModel& m : inst.models) used += m.bytes;
  used = std::max(used, inst.memory_used_bytes);
  if (used + bytes <= pool.memory_budget_bytes) return 0.0;
  // The worker evicts least recently used idle models first; models are listed in that order.
  double penalty = 0;
  for (const ResidentModel& m : inst.models) {
    if (m.in_use > 0 || !m.loaded) continue;
    double p_reuse =
        1.0 - std::exp(-stats_.rate_per_ms(m.model_id, now) * options_.reuse_horizon_ms);
    penalty += p_reuse * stats_.load_ms(m.model_id, now);
    used -= std::min(used, m.bytes);
    if (used + bytes <= pool.memory_budget_bytes) return penalty;
  }
  return std::nullopt;
}

Decision MossPolicy::route(std::string_view model_id, const PoolView& pool, TimeMs now) {
  const double service = stats_.service_ms(model_id, now);
  const double load = stats_.load_ms(model_id, now);
  const double cold = stats_.cold_start_ms(now);
  const int par = std::max(1, pool.parallelism);
  const ModelStats* ms = stats_.find(model_id);
  const uint64_t bytes = ms ? ms->bytes : 0;
  const auto dedicated = dedicated_instances(pool, now);

  std::optional<Option> best;
  auto consider = [&](Option o) {
    if (!best || o.cost < best->cost - 1e-9) best = std::move(o);
  };
  int holders = 0;
  // Waiting in the queue also means waiting behind the requests queued before this one: spread
  // over the instances, each takes about a service time per parallel slot. Without this term a
  // burst queues hundreds of requests, each priced at one service time, and the pool never grows.
  const double backlog_ms = static_cast<double>(pool.queued) /
                            static_cast<double>(std::max<size_t>(1, pool.instances.size())) *
                            service / par;
  for (const InstanceView& inst : pool.instances) {
    // Requests beyond the instance's parallel slots wait for a slot, about one service time per
    // `par` requests ahead.
    double wait = std::max(0, inst.in_flight - par + 1) * service / par;
    double starting = inst.state == InstanceState::kStarting
                          ? std::max(0.0, cold - (now - inst.started_ms))
                          : 0.0;
    bool full = inst.in_flight >= pool.max_concurrency;
    const ResidentModel* resident = find_model(inst, model_id);
    if (resident) {
      ++holders;
      double cost = starting + (resident->loaded ? 0.0 : load * 0.5) + wait + service;
      if (full) {
        // Waiting here for a running request to finish is often cheaper than a cold start.
        consider({DecisionKind::kQueue, inst.id, cost + service + backlog_ms,
                  "wait for warm instance"});
      } else {
        consider(
            {inst.state == InstanceState::kStarting ? DecisionKind::kStarting : DecisionKind::kWarm,
             inst.id, cost, "holds model"});
      }
      continue;
    }
    auto owner = dedicated.find(inst.id);
    if (owner != dedicated.end() && owner->second != model_id) continue;
    std::optional<double> evict = eviction_penalty(inst, pool, bytes, now);
    if (!evict) continue;
    double cost = starting + load + wait + service + *evict;
    if (full) {
      // Waiting for a slot on a busy instance and switching there can still beat a cold start.
      consider({DecisionKind::kQueue, inst.id, cost + service + backlog_ms,
                "wait for a slot, then switch"});
      continue;
    }
    consider(
        {inst.state == InstanceState::kStarting ? DecisionKind::kStarting : DecisionKind::kSwitch,
         inst.id, cost, *evict > 0 ? "switch with eviction" : "switch"});
  }
  if (pool.can_grow()) consider({DecisionKind::kCold, "", cold + load + service, "grow pool"});

  Decision d;
  if (!best) {
    d.kind = DecisionKind::kQueue;
    d.reason = "every instance is at its limit and the pool is at its maximum";
    d.estimated_ms = service;
    return d;
  }
  d.kind = best->kind;
  d.instance_id = best->instance_id;
  d.estimated_ms = best->cost;
  d.reason = best->reason;
  // A hot model with fewer instances than its load needs: start one more in the background, so
  // the next burst finds it running instead of queueing or paying a start.
  int need = instances_needed(model_id, pool, now);
  int have = holders + (d.kind == DecisionKind::kCold ? 1 : 0);
  bool can_grow_more =
      pool.instances.size() + (d.kind == DecisionKind::kCold ? 1 : 0) < pool.max_instances;
  bool empty_starting = std::any_of(pool.instances.begin(), pool.instances.end(), [](auto& i) {
    return i.state == InstanceState::kStarting && i.models.empty();
  });
  if (need > have && can_grow_more && !empty_starting) d.prewarm = true;
  return d;
}

}  // namespace moss::packer
