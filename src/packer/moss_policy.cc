#include "packer/moss_policy.h"

#include <algorithm>
#include <cmath>
#include <tuple>

#include "packer/dispatch_queue.h"

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
  std::string_view instance_id;
  double cost;
  const char* reason;
  double queue_ms = 0;  // kQueue: expected wait before it is dispatched
  const InstanceView* inst = nullptr;  // a switch there: where to evict
  uint64_t evict_bytes = 0;            // how much it must free
  bool adds = false;                   // loads the model somewhere: its bytes join the pool's
};

// Statistics of models quiet this many half-lives are forgotten; checked every kPruneEvery
// arrivals (amortised: the scan is O(models seen)).
constexpr double kPruneHalfLives = 20;
constexpr uint64_t kPruneEvery = 4096;

}  // namespace

MossPolicy::MossPolicy(StatsPriors priors, MossPolicyOptions options)
    : RoutingPolicy(priors), options_(options) {}

void MossPolicy::note_if_hot(std::string_view model_id, TimeMs now) {
  if (stats_.offered_load(model_id, now) >= options_.hot_threshold && !hot_.count(model_id)) {
    hot_.emplace(model_id);
  }
}

void MossPolicy::on_arrival(std::string_view model_id, TimeMs now) {
  RoutingPolicy::on_arrival(model_id, now);
  note_if_hot(model_id, now);
  if (++arrivals_since_prune_ < kPruneEvery) return;
  arrivals_since_prune_ = 0;
  stats_.prune(now, kPruneHalfLives * stats_.priors().half_life_ms);
  for (auto it = hot_.begin(); it != hot_.end();) {
    if (stats_.offered_load(*it, now) < options_.hot_threshold) {
      it = hot_.erase(it);
    } else {
      ++it;
    }
  }
}

void MossPolicy::on_complete(const Completion& c) {
  RoutingPolicy::on_complete(c);
  note_if_hot(c.model_id, c.now);  // a longer service time can make a model hot too
}

TimeMs MossPolicy::keep_alive_ms(std::string_view model_id, TimeMs idle_timeout_ms) const {
  if (!options_.adaptive_keep_alive) return idle_timeout_ms;
  const ModelStats* st = stats_.find(model_id);
  if (!st) return idle_timeout_ms;
  std::optional<TimeMs> gap =
      st->gaps.percentile(options_.keep_alive_percentile, options_.keep_alive_min_gaps);
  if (!gap) return idle_timeout_ms;
  // The floor never exceeds the pool's own idle timeout: a model arriving every second is kept no
  // longer than any other (in the time-compressed benches, 5 s, the 10 s floor kept MOSS's
  // instances twice as long as the baselines').
  return std::clamp(*gap * options_.keep_alive_margin,
                    std::min(options_.keep_alive_min_ms, idle_timeout_ms),
                    options_.keep_alive_max_ms);
}

void MossPolicy::on_instance_stopped(std::string_view instance_id) {
  RoutingPolicy::on_instance_stopped(instance_id);
  if (auto it = draining_.find(instance_id); it != draining_.end()) draining_.erase(it);
}

TimeMs MossPolicy::keep_until(const InstanceView& inst, TimeMs idle_timeout_ms) const {
  // A draining instance is not needed: once idle it goes (nothing is routed to it any more
  // unless nothing else beats a cold start, so waiting for its models' keep-alive would only
  // keep it).
  if (draining_.find(inst.id) != draining_.end()) {
    return inst.last_used_ms + std::min(options_.drain_grace_ms, idle_timeout_ms);
  }
  if (!options_.adaptive_keep_alive || inst.models.empty()) {
    return RoutingPolicy::keep_until(inst, idle_timeout_ms);
  }
  // From the instance's own last use: of several instances holding a busy model, those it no
  // longer sends requests to go after its (short) keep-alive.
  TimeMs keep = 0;
  for (const ResidentModel& m : inst.models) {
    keep = std::max(keep, keep_alive_ms(m.model_id, idle_timeout_ms));
  }
  return inst.last_used_ms + keep;
}

int MossPolicy::instances_needed(std::string_view model_id, const PoolView& pool,
                                 TimeMs now) const {
  double load = stats_.offered_load(model_id, now);
  if (load < options_.hot_threshold) return 0;
  return std::max(1, static_cast<int>(std::ceil(load / std::max(1, pool.parallelism))));
}

int MossPolicy::pool_instances_needed(const PoolView& pool, TimeMs now) const {
  const int par = std::max(1, pool.parallelism);
  double want = std::ceil(stats_.pool_offered_load(now) / (par * options_.target_utilization));
  if (pool.memory_budget_bytes > 0) {
    // The models planned now must fit with room to spare: shrinking below that would trade
    // instances for switches.
    const uint64_t planned = pool.planned_total();
    // At the same utilization: at 60 requests/s on 20 models of 80 MiB the planned bytes filled
    // 3.8 of 5 instances, and draining the fifth cost 2,000 switches and 5x the p99.
    want = std::max(want, std::ceil(static_cast<double>(planned) /
                                    (static_cast<double>(pool.memory_budget_bytes) *
                                     options_.target_utilization)));
  }
  int hot_need = 0;
  for (const std::string& id : hot_) hot_need += instances_needed(id, pool, now);
  return std::max({1, static_cast<int>(want), hot_need});
}

void MossPolicy::update_draining(const PoolView& pool, TimeMs now) {
  if (draining_checked_ms_ >= 0 && now - draining_checked_ms_ < options_.shrink_every_ms &&
      now >= draining_checked_ms_) {
    return;
  }
  draining_checked_ms_ = now;
  const int surplus = options_.shrink && stats_.history_ms(now) >= options_.shrink_history_ms
                          ? static_cast<int>(pool.instances.size()) - pool_instances_needed(pool, now)
                          : 0;
  if (surplus <= 0) {
    draining_.clear();
    return;
  }
  std::vector<const std::string*> owner_all;
  if (!pool.indexed()) owner_all = dedicated_by_index(pool, now);
  std::set<std::string, std::less<>> chosen;
  struct Candidate {
    int in_flight;
    size_t models;
    TimeMs last_used_ms;
    size_t pos;
  };
  std::vector<Candidate> candidates;
  for (size_t i = 0; i < pool.instances.size(); ++i) {
    const InstanceView& inst = pool.instances[i];
    if (inst.state != InstanceState::kReady) continue;
    // Those already draining stay so (while the surplus lasts): a choice that moved every second
    // would never let one idle.
    if (draining_.find(inst.id) != draining_.end()) {
      if (static_cast<int>(chosen.size()) < surplus) chosen.insert(inst.id);
      continue;
    }
    // An instance kept for a hot model stays (its needs are in the count).
    if (pool.indexed() ? dedicated_to(pool, i, now) != nullptr : owner_all[i] != nullptr) continue;
    candidates.push_back({inst.in_flight, inst.models.size(), inst.last_used_ms, i});
  }
  // The least useful first: fewest requests in flight, fewest models to move, least recently used,
  // newest.
  std::sort(candidates.begin(), candidates.end(), [](const Candidate& a, const Candidate& b) {
    return std::tie(a.in_flight, a.models, a.last_used_ms, b.pos) <
           std::tie(b.in_flight, b.models, b.last_used_ms, a.pos);
  });
  for (const Candidate& c : candidates) {
    if (static_cast<int>(chosen.size()) >= surplus) break;
    chosen.insert(pool.instances[c.pos].id);
  }
  draining_ = std::move(chosen);
}

std::vector<const std::string*> MossPolicy::dedicated_by_index(const PoolView& pool,
                                                               TimeMs now) const {
  std::vector<const std::string*> owner(pool.instances.size(), nullptr);
  // Hottest model first, so a model twice as hot keeps its instances when two compete. Only the
  // hot set is scanned (hot_ may hold models that cooled down since: skipped here).
  std::vector<std::pair<double, const std::string*>> hot;
  for (const std::string& id : hot_) {
    double load = stats_.offered_load(id, now);
    if (load >= options_.hot_threshold) hot.emplace_back(load, &id);
  }
  std::sort(hot.begin(), hot.end(),
            [](const auto& a, const auto& b) { return a.first > b.first; });
  if (hot.empty()) return owner;
  // An indexed view lists every hot model's holders; otherwise one pass over the instances finds
  // them (a binary search per resident model over the few hot names).
  std::vector<std::pair<std::string_view, size_t>> rank;  // hot model -> index in `hot`
  for (size_t k = 0; k < hot.size(); ++k) rank.emplace_back(*hot[k].second, k);
  std::sort(rank.begin(), rank.end());
  std::vector<std::vector<size_t>> holders(hot.size());
  if (pool.indexed()) {
    for (size_t k = 0; k < hot.size(); ++k) {
      if (const std::vector<uint32_t>* h = pool.holders(*hot[k].second)) {
        holders[k].assign(h->begin(), h->end());
      }
    }
  } else {
    for (size_t i = 0; i < pool.instances.size(); ++i) {
      for (const ResidentModel& m : pool.instances[i].models) {
        auto it = std::lower_bound(rank.begin(), rank.end(), std::string_view(m.model_id),
                                   [](const auto& a, std::string_view b) { return a.first < b; });
        if (it != rank.end() && it->first == m.model_id) holders[it->second].push_back(i);
      }
    }
  }
  for (size_t k = 0; k < hot.size(); ++k) {
    const std::string* model_id = hot[k].second;
    int need = instances_needed(*model_id, pool, now);
    std::vector<size_t>& mine = holders[k];
    std::erase_if(mine, [&](size_t i) { return owner[i] != nullptr; });
    std::stable_sort(mine.begin(), mine.end(), [&](size_t a, size_t b) {
      return pool.instances[a].last_used_ms > pool.instances[b].last_used_ms;
    });
    for (int j = 0; j < need && j < static_cast<int>(mine.size()); ++j) {
      owner[mine[static_cast<size_t>(j)]] = model_id;
    }
  }
  return owner;
}

const std::string* MossPolicy::dedicated_to(const PoolView& pool, size_t i, TimeMs now) const {
  const InstanceView& inst = pool.instances[i];
  const std::string* owner = nullptr;
  double owner_load = 0;
  for (const ResidentModel& m : inst.models) {
    auto h = hot_.find(m.model_id);
    if (h == hot_.end()) continue;
    const double load = stats_.offered_load(*h, now);
    if (load < options_.hot_threshold || load <= owner_load) continue;
    const std::vector<uint32_t>* holders = pool.holders(*h);
    if (!holders) continue;
    const int need = std::max(1, static_cast<int>(std::ceil(load / std::max(1, pool.parallelism))));
    // Its rank among the holders, most recently used first (ties: creation order), as in
    // dedicated_by_index.
    int ahead = 0;
    for (uint32_t j : *holders) {
      const InstanceView& o = pool.instances[j];
      if (j != i && (o.last_used_ms > inst.last_used_ms ||
                     (o.last_used_ms == inst.last_used_ms && j < i))) {
        ++ahead;
      }
    }
    if (ahead < need) {
      owner = &*h;
      owner_load = load;
    }
  }
  return owner;
}

std::map<std::string, std::string> MossPolicy::dedicated_instances(const PoolView& pool,
                                                                   TimeMs now) const {
  std::map<std::string, std::string> dedicated;
  auto owner = dedicated_by_index(pool, now);
  for (size_t i = 0; i < owner.size(); ++i) {
    if (owner[i]) dedicated[pool.instances[i].id] = *owner[i];
  }
  return dedicated;
}

std::optional<double> MossPolicy::eviction_penalty(const InstanceView& inst, uint64_t need,
                                                   TimeMs now,
                                                   std::vector<std::string>* victims) const {
  if (need == 0) return 0.0;
  // By value, not recency: an idle model's value is its expected reload cost within the reuse
  // horizon (a model likely to return soon and slow to load is worth keeping), per byte it frees.
  scratch_.clear();
  for (const ResidentModel& m : inst.models) {
    if (m.in_use > 0 || !m.loaded || m.bytes == 0) continue;
    double value = 0;
    // One lookup per candidate (statistics of a model no longer tracked: never reused soon).
    if (const ModelStats* st = stats_.find(m.model_id)) {
      double p_reuse = 1.0 - std::exp(-st->rate_per_ms(now) * options_.reuse_horizon_ms);
      value = p_reuse * stats_.load_ms(st, now);
    }
    scratch_.push_back({&m, value});
  }
  // Stable: equal value per byte goes least recently used first (the list's order).
  std::stable_sort(scratch_.begin(), scratch_.end(), [](const Candidate& a, const Candidate& b) {
    return a.value / static_cast<double>(a.model->bytes) <
           b.value / static_cast<double>(b.model->bytes);
  });
  double penalty = 0;
  uint64_t freed = 0;
  for (const Candidate& c : scratch_) {
    penalty += c.value;
    freed += c.model->bytes;
    if (victims) victims->push_back(c.model->model_id);
    if (freed >= need) return penalty;
  }
  if (victims) victims->clear();
  return std::nullopt;
}

Decision MossPolicy::route(std::string_view model_id, const PoolView& pool, TimeMs now) {
  update_draining(pool, now);
  const double service = stats_.service_ms(model_id, now);
  const double load = stats_.load_ms(model_id, now);
  const double cold = stats_.cold_start_ms(now);
  const int par = std::max(1, pool.parallelism);
  const ModelStats* ms = stats_.find(model_id);
  const uint64_t bytes = ms ? ms->bytes : 0;
  // The hot model each instance is dedicated to: for the whole pool at once when it must be
  // scanned anyway, per visited instance when the view is indexed.
  std::vector<const std::string*> owner_all;
  if (!pool.indexed()) owner_all = dedicated_by_index(pool, now);
  auto kept_for_another = [&](size_t i) {
    const std::string* o = pool.indexed() ? dedicated_to(pool, i, now) : owner_all[i];
    return o != nullptr && *o != model_id;
  };
  // Memory: a placement may not plan more bytes than the instance's budget nor, all instances
  // together, than the pool's; a model larger than either can be placed nowhere.
  const uint64_t inst_budget = pool.memory_budget_bytes;
  const uint64_t pool_budget = pool.pool_memory_budget_bytes;
  const bool fits_at_all =
      (inst_budget == 0 || bytes <= inst_budget) && (pool_budget == 0 || bytes <= pool_budget);
  const uint64_t pool_used = pool_budget > 0 ? pool.planned_total() : 0;
  const uint64_t pool_excess =
      pool_budget > 0 && pool_used + bytes > pool_budget ? pool_used + bytes - pool_budget : 0;

  std::optional<Option> best;
  auto consider = [&](Option o) {
    if (!best || o.cost < best->cost - 1e-9) best = o;
  };
  // Waiting in the queue means waiting behind the requests queued before this one. A freed slot
  // goes first to a request for a model the instance holds (DispatchQueue::next_for), so for a
  // warm instance the backlog ahead is this model's queue, spread over the instances holding it;
  // for a slot to switch on it is every queued request, spread over the instances.
  const double backlog_switch_ms = static_cast<double>(pool.queued) /
                                   static_cast<double>(std::max<size_t>(1, pool.instances.size())) *
                                   service / par;
  int holders = 0;
  std::vector<std::pair<const InstanceView*, double>> full_holders;  // with their cost
  std::vector<size_t> kept;  // visited instances kept for another (hot) model
  bool rescue = false;       // pricing `kept` too (see below)
  std::vector<size_t> drained;  // visited instances draining (deliberate shrink)
  bool undrain = false;         // pricing `drained` too (see below)
  // Prices instance `i`'s options; false if it is kept for another (hot) model.
  auto visit = [&](size_t i) -> bool {
    const InstanceView& inst = pool.instances[i];
    if (!undrain && !draining_.empty() && draining_.find(inst.id) != draining_.end()) {
      drained.push_back(i);
      return false;
    }
    // Requests beyond the instance's parallel slots wait for a slot, about one service time per
    // `par` requests ahead.
    double wait = std::max(0, inst.in_flight - par + 1) * service / par;
    // Requests ahead that are loading a model hold their core for the load too (with 1,000 rare
    // models most requests switch: pricing them at a service time sent a burst of switches to one
    // instance).
    // Only when every core is taken: with a core free the request starts at once.
    if (inst.in_flight >= par) {
      for (const ResidentModel& m : inst.models) {
        if (!m.loaded && m.in_use > 0) wait += stats_.load_ms(m.model_id, now) / par;
      }
    }
    double starting = inst.state == InstanceState::kStarting
                          ? std::max(0.0, cold - (now - inst.started_ms))
                          : 0.0;
    bool full = inst.in_flight >= pool.max_concurrency;
    const ResidentModel* resident = find_model(inst, model_id);
    if (resident) {
      ++holders;
      double cost = starting + (resident->loaded ? 0.0 : load * 0.5) + wait + service;
      if (full) {
        full_holders.emplace_back(&inst, cost);  // priced below, once the holders are counted
      } else {
        consider(
            {inst.state == InstanceState::kStarting ? DecisionKind::kStarting : DecisionKind::kWarm,
             inst.id, cost, "holds model"});
      }
      return true;
    }
    if (!rescue && kept_for_another(i)) {
      kept.push_back(i);
      return false;
    }
    if (!fits_at_all) return true;
    const double extra = full ? service + backlog_switch_ms : 0;  // queueing for a slot first
    double cost = starting + load + wait + service + extra;
    if (best && cost >= best->cost - 1e-9) return true;  // cannot win, whatever it evicts
    uint64_t need = pool_excess;
    if (inst_budget > 0) {
      const uint64_t used = planned_bytes(inst);
      if (used + bytes > inst_budget) need = std::max(need, used + bytes - inst_budget);
    }
    std::optional<double> evict = eviction_penalty(inst, need, now);
    if (!evict) return true;
    cost += *evict;
    if (full) {
      // Waiting for a slot on a busy instance and switching there can still beat a cold start.
      // (Its evictions are planned when it routes again, on what is idle then.)
      consider({DecisionKind::kQueue, inst.id, cost, "wait for a slot, then switch", extra});
      return true;
    }
    consider(
        {inst.state == InstanceState::kStarting ? DecisionKind::kStarting : DecisionKind::kSwitch,
         inst.id, cost, need > 0 ? "switch with eviction" : "switch", 0, &inst, need, true});
    return true;
  };
  if (pool.indexed()) {
    // The holders of the model, then the least loaded other instances (fewest requests in
    // flight, then fewest planned bytes: a switch there waits least and evicts least); further
    // down that order a switch waits longer or evicts more, so they are not visited.
    const std::vector<uint32_t>* mine = pool.holders(model_id);
    if (mine) {
      for (uint32_t i : *mine) visit(i);
    }
    size_t visited = 0;
    for (const auto& [in_flight, planned, i] : pool.by_load()) {
      if (visited >= options_.switch_candidates) break;
      if (mine && std::find(mine->begin(), mine->end(), i) != mine->end()) continue;
      if (visit(i)) ++visited;
    }
  } else {
    for (size_t i = 0; i < pool.instances.size(); ++i) visit(i);
  }
  size_t full_priced = 0;
  auto price_full_holders = [&] {
    const double backlog_warm_ms = static_cast<double>(pool.queued_for_model) /
                                   static_cast<double>(std::max(1, holders)) * service / par;
    for (; full_priced < full_holders.size(); ++full_priced) {
      const auto& [inst, cost] = full_holders[full_priced];
      // Waiting here for a running request to finish is often cheaper than a cold start.
      consider({DecisionKind::kQueue, inst->id, cost + service + backlog_warm_ms,
                "wait for warm instance", service + backlog_warm_ms});
    }
  };
  price_full_holders();
  // A draining instance is used again rather than starting another: when nothing else beats a
  // cold start (or there is nothing else), it is priced like any other.
  const double cold_cost = cold + load + service;
  if (!drained.empty() && (!best || best->cost > cold_cost - 1e-9)) {
    undrain = true;
    for (size_t i : drained) visit(i);
    price_full_holders();
  }
  if (pool.can_grow() && fits_at_all && pool_excess == 0) {
    consider({DecisionKind::kCold, "", cold_cost, "grow pool", 0, nullptr, 0, true});
  }
  // Instances are kept for a hot model, but not at the price of a request that can go nowhere
  // else: in an overload every instance can be full and kept for the hottest models, and a rare
  // model waited until it failed. When the cheapest option would pass the deadline, or there is
  // none and the deadline is near (as near as DispatchQueue hands such a request a slot first),
  // switching onto them is priced too.
  const bool misses =
      best ? best->kind == DecisionKind::kQueue && now + best->queue_ms > pool.deadline_ms
           : now + DispatchQueue::kUrgentMs >= pool.deadline_ms;
  if (misses && !kept.empty()) {
    rescue = true;
    for (size_t i : kept) visit(i);
  }

  Decision d;
  if (!best && !fits_at_all) {
    d.kind = DecisionKind::kReject;  // no retry helps: nothing to wait for
    d.reason = "the model is larger than the memory budget";
    return d;
  }
  if (!best) {
    d.kind = DecisionKind::kQueue;
    d.reason = "every instance is at its limit and the pool is at its maximum";
    d.estimated_ms = service;
    return d;
  }
  d.kind = best->kind;
  d.instance_id = std::string(best->instance_id);
  d.estimated_ms = best->cost;
  d.reason = best->reason;
  uint64_t freed = 0;
  if (best->evict_bytes > 0) {
    eviction_penalty(*best->inst, best->evict_bytes, now, &d.evict);
    for (const std::string& victim : d.evict) {
      for (const ResidentModel& m : best->inst->models) {
        if (m.model_id == victim) freed += m.bytes;
      }
    }
  }
  // Admission: the cheapest option is to wait, and the wait alone passes the deadline. Failing
  // now (with when to retry) beats holding the request until it fails, and frees the queue.
  // (Once the deadline has passed the pool times the request out itself.)
  if (options_.admission && d.kind == DecisionKind::kQueue && now < pool.deadline_ms &&
      now + best->queue_ms > pool.deadline_ms) {
    d.kind = DecisionKind::kReject;
    d.retry_after_ms = best->queue_ms;
    d.reason = "no instance can take the request within its deadline";
    return d;
  }
  // A hot model with fewer instances than its load needs: start the missing ones in the
  // background now (several at once on a burst), each loading the model as it starts, so the
  // next requests find them warm instead of queueing or paying a start.
  const int need = instances_needed(model_id, pool, now);
  const int grown = d.kind == DecisionKind::kCold ? 1 : 0;
  const int have = holders + grown;
  const int room = static_cast<int>(pool.max_instances) -
                   static_cast<int>(pool.instances.size()) - grown;
  int prewarm = std::min(need - have, room);
  // Each prewarmed instance holds the model: only as many as the pool's budget has room for
  // after this decision (which adds the model unless it is warm, minus what it evicts).
  if (pool_budget > 0 && bytes > 0 && prewarm > 0) {
    const uint64_t added = pool_used + (best->adds ? bytes : 0);
    const uint64_t after = added - std::min(added, freed);
    const uint64_t left = after < pool_budget ? pool_budget - after : 0;
    prewarm = std::min<int>(prewarm, static_cast<int>(left / bytes));
  }
  if (prewarm > 0 && fits_at_all) {
    d.prewarm = prewarm;
    d.prewarm_model = std::string(model_id);
  }
  return d;
}

}  // namespace moss::packer
