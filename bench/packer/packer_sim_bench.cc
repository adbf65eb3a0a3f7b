// packer_sim_bench: the trace bench's simulation mode. Replays a long Azure-Functions-2019-shaped
// trace (trace.h) in simulated time against a simulated pool driven by the real routing policies
// (src/packer: the same RoutingPolicy objects, PoolView snapshots and hooks Pool uses), so tens of
// minutes of traffic and 1,000 models x 100 instances (`--scale`; `--scale 10000x1000`) run in
// seconds on a shared machine.
//
// The simulated pool follows Pool (src/packer/pool.cc): kCold starts an instance (start_ms) and
// sends the request to it; kQueue puts the request in its model's FIFO (DispatchQueue, shared with
// Pool): a finished request or an instance coming up hands its free slot to the next queued
// request it suits (the oldest for a model the instance holds, else the oldest), and every 200 ms
// the head of each model's queue routes again, until the request's deadline; kReject fails at
// once. Prewarmed instances load their hot model as they start. An instance has
// `parallelism` cores (requests beyond them wait for a core, FIFO) and a memory budget (loading a
// model evicts idle ones, least recently used first); a model not resident costs its load time
// before its service time. `--pool-memory MB` caps the model bytes of all instances together (the
// pool's EPC share; the policy plans within it, evicting by value; peak MiB shows what was held).
// "original (one model/worker)": every instance holds one model at a time (the original system's
// worker). Idle instances stop after the policy's keep-alive.
//
// Backend (`--backend openwhisk|local`, default openwhisk). openwhisk: an instance is an
// OpenWhisk action, and a request sent to an action whose containers are all at their
// concurrency limit gets a new container of that action (a cold start: container start + model
// load; its own cores, budget and residency), which OpenWhisk stops after the idle timeout. That
// is how the original rule, with no concurrency limit at the packer for an active model
// (controller.go 213-214), ran; MOSS never sends an instance more than its limit, so it never
// adds a container. local: an instance is one worker process and requests beyond its cores wait
// for one there, however many (on one 2-core worker the original piles a hot model's burst up).
// Extra containers count as starts and instance-seconds like instances.
//
// Figures per policy: failures (rejected + deadline passed while queued) and their rate; cold
// starts (requests that waited for an instance start); switches (loads on a running instance);
// p50/p99 over ALL requests, a failed one counted as the deadline; instance-seconds; decision
// latency (route() on the view the simulation keeps up to date per change, as Pool does; p50/p99,
// wall clock); RSS growth of the process over the run and the policy's statistics (models kept,
// counted bytes). `--csv FILE` writes cold starts and p99 per simulated minute; `--json FILE` the
// figures and those series (bench/packer/policy_json.h) for bench/plot_results.py.
//
// Usage: packer_sim_bench [--models N] [--duration S] [--rate R] [--seed N] [--deadline MS]
//                         [--pools A,B,C] [--pool-memory MB] [--scale [MxI]] [--csv FILE]
//                         [--keep-alive-pct P] [--keep-alive-min S] [--switch-candidates K]
//                         [--backend openwhisk|local] [--json FILE]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <queue>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "bench/common/command_line.h"
#include "bench/common/json_output.h"
#include "common/percentile.h"
#include "packer/dispatch_queue.h"
#include "packer/moss_policy.h"
#include "packer/routing_policy.h"
#include "policy_json.h"
#include "trace.h"

using namespace moss;
using packer::Decision;
using packer::DecisionKind;
using packer::TimeMs;

namespace {

struct PoolSettings {
  int max_instances = 4;
  int max_concurrency = 4;
  int parallelism = 2;
  uint64_t memory_mb = 512;          // per instance
  uint64_t pool_memory_mb = 0;       // all instances together (EPC share); 0: unlimited
  double start_ms = 1'000;           // instance start (process, attestation) before any model load
  double idle_timeout_ms = 180'000;  // the original deployment's 3 minutes
  double deadline_ms = 5'000;        // longest wait for an instance
  bool one_model = false;            // one model per instance (the original worker)
  bool action_scaling = true;        // openwhisk backend: a full action gets another container
};

struct SimModel {
  std::string id;
  double service_ms, load_ms;
  uint64_t bytes;
};

struct Resident {
  int model;
  TimeMs loaded_at;  // usable from then on
  int in_use = 0;
  TimeMs last_used = 0;
};

struct SimInstance {
  std::string id;
  TimeMs started_at = 0, ready_at = 0, last_used = 0;
  int in_flight = 0;
  std::vector<Resident> models;  // least recently used first
  std::vector<TimeMs> core_free;
  bool stopped = false;
  TimeMs stopped_at = 0;
  bool announced = false;  // on_instance_started called
  // openwhisk backend: an instance is an action; `extra` are its containers beyond the first
  // (indices into the simulation's instances, not in the policy's view), `function` the action an
  // extra container belongs to (-1: this is an action's first container).
  std::vector<int> extra;
  int function = -1;
};

struct SimResult {
  std::string name;
  size_t requests = 0, failed = 0, rejected = 0, timed_out = 0;
  uint64_t cold = 0, switches = 0, instance_starts = 0;
  uint64_t extra_containers = 0;  // of instance_starts: containers OpenWhisk added to a full action
  uint64_t prewarms = 0;          // of instance_starts: started by Decision::prewarm (hot models)
  double max_offered_load = 0;    // MOSS: the highest offered load a routed model had
  size_t hot_decisions = 0;       // MOSS: decisions for a model hot at that moment
  double p50 = 0, p99 = 0, instance_seconds = 0;
  double decide_p50_us = 0, decide_p99_us = 0;
  size_t decisions = 0;
  long rss_growth_kb = 0;
  size_t stats_models = 0;     // models the policy keeps statistics for at the end
  size_t stats_bytes = 0;      // their counted size
  size_t early_rejected = 0;   // of `rejected`: refused at once by deadline admission (MOSS)
  uint64_t peak_pool_bytes = 0;  // most model bytes resident or loading in the pool at once
  std::vector<uint64_t> cold_per_min;
  std::vector<double> p99_per_min;
};

long rss_kb() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return 0;
}

class Simulation {
 public:
  using PolicyFactory = std::function<packer::RoutingPolicyPtr()>;
  Simulation(const bench::Trace& trace, PoolSettings s, PolicyFactory make_policy)
      : trace_(trace), s_(s), make_policy_(std::move(make_policy)) {
    for (const auto& m : trace.models) {
      models_.push_back(
          {m.model_id, m.service_ms, m.load_ms, static_cast<uint64_t>(m.mb * 1048576)});
      model_index_[m.model_id] = static_cast<int>(models_.size()) - 1;
    }
  }

  SimResult run(const std::string& label) {
    long rss0 = rss_kb();
    policy_ = make_policy_();
    view_.max_instances = static_cast<size_t>(s_.max_instances);
    view_.max_concurrency = s_.max_concurrency;
    view_.parallelism = s_.parallelism;
    view_.memory_budget_bytes = s_.memory_mb << 20;
    view_.pool_memory_budget_bytes = s_.pool_memory_mb << 20;
    const size_t n = trace_.requests.size();
    latency_.assign(n, -1);
    arrive_.resize(n);
    run_.assign(n, std::nullopt);
    load_.assign(n, 0);
    sent_.assign(n, 0);
    for (size_t i = 0; i < n; ++i) {
      arrive_[i] = trace_.requests[i].at_ms;
      push(arrive_[i], kArrive, static_cast<int>(i));
    }
    push(1'000, kReap, 0);
    while (!events_.empty()) {
      Event e = events_.top();
      events_.pop();
      now_ = e.at;
      switch (e.kind) {
        case kArrive:
          policy_->on_arrival(models_[model_of(e.req)].id, now_);
          // The model store's metadata gives its size before the first load (ModelSizeHints).
          policy_->learn_size(models_[model_of(e.req)].id, models_[model_of(e.req)].bytes);
          if (try_route(e.req) == kWait) {
            queue_.push(static_cast<uint64_t>(e.req), models_[model_of(e.req)].id,
                        arrive_[static_cast<size_t>(e.req)] + s_.deadline_ms);
          }
          break;
        case kFinish:
          finish(e.req, e.inst);
          hand_off(function_of(e.inst));
          break;
        case kReady:
          ready(e.inst);
          hand_off(e.inst);
          break;
        case kLoaded:
          sync(function_of(e.inst));
          break;
        case kTick:
          tick_pending_ = false;
          tick();
          break;
        case kReap:
          reap();
          if (!events_.empty() || !queue_.empty()) push(now_ + 1'000, kReap, 0);
          break;
      }
      if (!queue_.empty() && !tick_pending_) {
        tick_pending_ = true;
        push(now_ + 200, kTick, 0);
      }
    }
    SimResult r;
    r.name = label;
    r.requests = n;
    r.rejected = rejected_;
    r.early_rejected = early_rejected_;
    r.timed_out = timed_out_;
    r.failed = rejected_ + timed_out_;
    r.cold = cold_;
    r.switches = switches_;
    r.instance_starts = instances_.size();
    r.extra_containers = extra_containers_;
    r.prewarms = prewarms_;
    r.max_offered_load = max_load_;
    r.hot_decisions = hot_decisions_;
    r.peak_pool_bytes = peak_pool_bytes_;
    for (const SimInstance& i : instances_) {
      r.instance_seconds += ((i.stopped ? i.stopped_at : now_) - i.started_at) / 1000.0;
    }
    std::vector<double> all;
    all.reserve(n);
    size_t minutes = static_cast<size_t>(now_ / 60'000) + 1;
    std::vector<std::vector<double>> per_min(minutes);
    for (size_t i = 0; i < n; ++i) {
      double l =
          latency_[i] < 0 ? s_.deadline_ms : latency_[i];  // a failure counts as the deadline
      all.push_back(l);
      per_min[static_cast<size_t>(arrive_[i] / 60'000)].push_back(l);
    }
    r.p50 = percentile_in_place(all, 0.5);
    r.p99 = percentile_in_place(all, 0.99);
    for (auto& v : per_min) r.p99_per_min.push_back(percentile_in_place(v, 0.99));
    r.cold_per_min.assign(minutes, 0);
    for (TimeMs t : cold_times_) ++r.cold_per_min[static_cast<size_t>(t / 60'000)];
    r.decisions = decide_ns_.size();
    r.decide_p50_us = percentile_in_place(decide_ns_, 0.5) / 1000;
    r.decide_p99_us = percentile_in_place(decide_ns_, 0.99) / 1000;
    r.rss_growth_kb = rss_kb() - rss0;
    r.stats_models = policy_->stats().models().size();
    // Per entry: the statistics, the key (id + string header) and a red-black tree node.
    for (const auto& [id, m] : policy_->stats().models()) {
      r.stats_bytes += sizeof(m) + sizeof(std::string) + id.capacity() + 4 * sizeof(void*);
    }
    return r;
  }

 private:
  enum Kind { kArrive, kFinish, kReady, kLoaded, kTick, kReap };
  enum Outcome { kDone, kWait };
  struct Event {
    TimeMs at;
    uint64_t seq;
    Kind kind;
    int req, inst;
    bool operator>(const Event& o) const { return at != o.at ? at > o.at : seq > o.seq; }
  };
  void push(TimeMs at, Kind k, int req, int inst = -1) { events_.push({at, seq_++, k, req, inst}); }
  size_t model_of(int req) const {
    return static_cast<size_t>(trace_.requests[static_cast<size_t>(req)].model);
  }
  // The instance (action) a container belongs to: itself unless it is an extra container.
  int function_of(int idx) const {
    const int f = instances_[static_cast<size_t>(idx)].function;
    return f < 0 ? idx : f;
  }

  // Rewrites the view's entry of one instance after it changed (as Pool does per change): the
  // policy reads a view kept current, never a copy of the whole pool per decision.
  void sync(int idx) {
    auto pos = std::find(live_.begin(), live_.end(), idx);
    if (pos == live_.end()) return;
    const SimInstance& i = instances_[static_cast<size_t>(idx)];
    const auto at = static_cast<size_t>(pos - live_.begin());
    packer::InstanceView iv = view_.instances[at];  // a copy: set() unindexes the old entry
    iv.id = i.id;
    iv.state = now_ < i.ready_at ? packer::InstanceState::kStarting : packer::InstanceState::kReady;
    iv.in_flight = i.in_flight;
    iv.started_ms = i.started_at;
    iv.last_used_ms = i.last_used;
    iv.models.resize(i.models.size());
    uint64_t used = 0;
    for (size_t k = 0; k < i.models.size(); ++k) {
      const Resident& r = i.models[k];
      packer::ResidentModel& m = iv.models[k];
      m.model_id = models_[static_cast<size_t>(r.model)].id;
      m.bytes = models_[static_cast<size_t>(r.model)].bytes;
      m.in_use = r.in_use;
      m.loaded = r.loaded_at <= now_;
      used += m.bytes;
    }
    iv.memory_used_bytes = used;
    view_.set(at, std::move(iv));
  }

  // A worker (an instance, or a container OpenWhisk adds to one) starting now.
  SimInstance new_worker() const {
    SimInstance i;
    i.id = std::string(1, 'i');  // not "i" + ...: GCC 12 warns falsely (-Wrestrict)
    i.id += std::to_string(instances_.size());
    i.started_at = now_;
    i.ready_at = now_ + s_.start_ms;
    i.last_used = now_;
    i.core_free.assign(static_cast<size_t>(s_.parallelism), i.ready_at);
    return i;
  }

  // openwhisk backend: the container of action `f` a request goes to: the first one below its
  // concurrency limit (OpenWhisk's container pool does not know which models a container holds),
  // else a new one.
  int container_for(int f) {
    if (!s_.action_scaling) return f;
    auto has_room = [&](int c) {
      const SimInstance& i = instances_[static_cast<size_t>(c)];
      return !i.stopped && i.in_flight < s_.max_concurrency;
    };
    if (has_room(f)) return f;
    for (int c : instances_[static_cast<size_t>(f)].extra) {
      if (has_room(c)) return c;
    }
    SimInstance c = new_worker();
    c.function = f;
    const int idx = static_cast<int>(instances_.size());
    instances_.push_back(std::move(c));
    instances_[static_cast<size_t>(f)].extra.push_back(idx);
    ++extra_containers_;
    return idx;
  }

  // `preload`: the model a prewarmed instance loads as it starts (-1: none).
  int new_instance(int preload = -1) {
    SimInstance i = new_worker();
    const int idx = static_cast<int>(instances_.size());
    if (preload >= 0) {
      const TimeMs loaded = i.ready_at + models_[static_cast<size_t>(preload)].load_ms;
      i.models.push_back({preload, loaded, 0, now_});
      add_pool_bytes(models_[static_cast<size_t>(preload)].bytes);
      push(loaded, kLoaded, -1, idx);
    }
    instances_.push_back(std::move(i));
    live_.push_back(idx);
    by_id_[instances_.back().id] = idx;
    view_.add({});
    sync(idx);
    push(instances_.back().ready_at, kReady, -1, idx);
    return idx;
  }

  int find(const std::string& id) const {
    auto it = by_id_.find(id);
    return it == by_id_.end() ? -1 : it->second;
  }

  // Routes one request (new, or queued in queue_): kWait when it must (keep) wait(ing).
  Outcome try_route(int req) {
    const SimModel& m = models_[model_of(req)];
    const auto id = static_cast<uint64_t>(req);
    const bool queued = queue_.contains(id);
    view_.queued = static_cast<int>(queue_.size()) - (queued ? 1 : 0);
    view_.queued_for_model =
        static_cast<int>(queued ? queue_.ahead_of(id) : queue_.size_for(m.id));
    view_.deadline_ms = arrive_[static_cast<size_t>(req)] + s_.deadline_ms;
    auto t0 = std::chrono::steady_clock::now();
    Decision d = policy_->route(m.id, view_, now_);
    decide_ns_.push_back(
        std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count());
    // Whether MOSS's hot-model logic acts on this trace (outside the timed decision).
    if (const auto* moss = dynamic_cast<const packer::MossPolicy*>(policy_.get())) {
      max_load_ = std::max(max_load_, moss->stats().offered_load(m.id, now_));
      if (moss->instances_needed(m.id, view_, now_) > 0) ++hot_decisions_;
    }
    for (int k = 0; k < d.prewarm && static_cast<int>(live_.size()) < s_.max_instances; ++k) {
      auto pm = model_index_.find(d.prewarm_model);
      new_instance(pm == model_index_.end() ? -1 : pm->second);
      ++prewarms_;
    }
    if (d.kind == DecisionKind::kReject) {
      ++rejected_;
      if (d.retry_after_ms > 0) ++early_rejected_;
      return kDone;  // failed: latency stays -1
    }
    if (d.kind == DecisionKind::kQueue) {
      if (now_ - arrive_[static_cast<size_t>(req)] >= s_.deadline_ms) {
        ++timed_out_;
        return kDone;
      }
      return kWait;
    }
    int idx = d.kind == DecisionKind::kCold ? new_instance() : find(d.instance_id);
    if (idx < 0) return kWait;
    dispatch(req, idx, d.evict);
    return kDone;
  }

  // A slot freed on (or an instance came up as) `idx`: offer it to the queued requests it suits,
  // one decision each, instead of every queued request routing again.
  void hand_off(int idx) {
    std::vector<uint64_t> declined;
    std::vector<std::string_view> resident;
    while (!queue_.empty() && declined.size() < 2) {
      const SimInstance& i = instances_[static_cast<size_t>(idx)];
      if (i.stopped || i.in_flight >= s_.max_concurrency) return;
      resident.clear();
      for (const Resident& r : i.models) resident.push_back(models_[static_cast<size_t>(r.model)].id);
      auto next = queue_.next_for(resident, declined, now_);
      if (!next) return;
      if (try_route(static_cast<int>(*next)) == kWait) {
        declined.push_back(*next);
      } else {
        queue_.remove(*next);
      }
    }
  }

  // Every 200 ms: fail what passed its deadline, and let each model's oldest request route again
  // (statistics moved, the pool may grow).
  void tick() {
    for (uint64_t id : queue_.expired(now_)) {
      ++timed_out_;
      queue_.remove(id);
    }
    for (uint64_t id : queue_.heads()) {
      if (try_route(static_cast<int>(id)) == kDone) queue_.remove(id);
    }
  }

  void add_pool_bytes(uint64_t b) {
    pool_bytes_ += b;
    peak_pool_bytes_ = std::max(peak_pool_bytes_, pool_bytes_);
  }

  // `evict`: the idle models the policy chose to make room (by value); the instance then evicts
  // least recently used idle ones as far as its own budget still needs (as the worker does).
  // `fn`: the instance the policy chose; on the openwhisk backend the request may run on another
  // container of it (one the policy does not see: its `evict` does not apply there).
  void dispatch(int req, int fn, const std::vector<std::string>& policy_evict = {}) {
    const int mi = static_cast<int>(model_of(req));
    const SimModel& m = models_[static_cast<size_t>(mi)];
    policy_->on_dispatch(m.id, instances_[static_cast<size_t>(fn)].id, now_);
    const int idx = container_for(fn);
    static const std::vector<std::string> kNone;
    const std::vector<std::string>& evict = idx == fn ? policy_evict : kNone;
    SimInstance& i = instances_[static_cast<size_t>(idx)];
    ++i.in_flight;
    sent_[static_cast<size_t>(req)] = now_;
    // The earliest free core, not before the instance is up.
    auto core = std::min_element(i.core_free.begin(), i.core_free.end());
    TimeMs begin = std::max({now_, i.ready_at, *core});
    const bool cold = now_ < i.ready_at;
    double load = 0;
    auto res = std::find_if(i.models.begin(), i.models.end(),
                            [&](const Resident& r) { return r.model == mi; });
    if (res != i.models.end()) {
      begin = std::max(begin, res->loaded_at);  // loaded, or being loaded by another request
      Resident keep = *res;
      i.models.erase(res);
      i.models.push_back(keep);
    } else {
      load = m.load_ms;
      std::erase_if(i.models, [&](const Resident& r) {
        const SimModel& v = models_[static_cast<size_t>(r.model)];
        if (r.in_use > 0 || std::find(evict.begin(), evict.end(), v.id) == evict.end()) {
          return false;
        }
        pool_bytes_ -= v.bytes;
        return true;
      });
      // Make room: one model per instance, or the memory budget (idle models, LRU first).
      uint64_t used = 0;
      for (const Resident& r : i.models) used += models_[static_cast<size_t>(r.model)].bytes;
      for (auto it = i.models.begin(); it != i.models.end();) {
        bool over = s_.one_model || used + m.bytes > (s_.memory_mb << 20);
        if (!over) break;
        if (it->in_use > 0 && !s_.one_model) {
          ++it;
          continue;
        }
        used -= models_[static_cast<size_t>(it->model)].bytes;
        pool_bytes_ -= models_[static_cast<size_t>(it->model)].bytes;
        it = i.models.erase(it);
      }
      i.models.push_back({mi, begin + load, 0, now_});
      add_pool_bytes(m.bytes);
      push(begin + load, kLoaded, -1, idx);
      if (!cold) {
        ++switches_;
      }
    }
    if (cold) {
      ++cold_;
      cold_times_.push_back(now_);
    }
    Resident& r = *std::find_if(i.models.begin(), i.models.end(),
                                [&](const Resident& x) { return x.model == mi; });
    ++r.in_use;
    const TimeMs end = begin + load + m.service_ms;
    *core = end;
    run_[static_cast<size_t>(req)] = cold ? protocol::RunKind::kCold : load > 0 ? protocol::RunKind::kSwitch : protocol::RunKind::kWarm;
    load_[static_cast<size_t>(req)] = load;
    push(end, kFinish, req, idx);
    sync(fn);
  }

  void finish(int req, int idx) {
    SimInstance& i = instances_[static_cast<size_t>(idx)];
    const int mi = static_cast<int>(model_of(req));
    const SimModel& m = models_[static_cast<size_t>(mi)];
    const auto rq = static_cast<size_t>(req);
    --i.in_flight;
    i.last_used = now_;
    for (Resident& r : i.models) {
      if (r.model == mi && r.in_use > 0) --r.in_use;
    }
    latency_[rq] = now_ - arrive_[rq];
    const int fn = function_of(idx);
    packer::Completion c{.model_id = m.id,
                         .instance_id = instances_[static_cast<size_t>(fn)].id,
                         .ok = true,
                         .run = run_[rq]};
    c.inference_ms = m.service_ms;
    c.load_ms = load_[rq];
    c.activation_ms = m.service_ms + load_[rq];
    c.model_bytes = m.bytes;
    c.sent_ms = sent_[rq];
    c.now = now_;
    policy_->on_complete(c);
    sync(fn);
  }

  void ready(int idx) {
    SimInstance& i = instances_[static_cast<size_t>(idx)];
    if (i.stopped || i.announced) return;
    i.announced = true;
    policy_->on_instance_started(i.id, s_.start_ms, now_);
    sync(idx);
  }

  void stop(SimInstance& i) {
    i.stopped = true;
    i.stopped_at = now_;
    for (const Resident& r : i.models) pool_bytes_ -= models_[static_cast<size_t>(r.model)].bytes;
  }

  void reap() {
    for (size_t pos = 0; pos < live_.size();) {
      SimInstance& i = instances_[static_cast<size_t>(live_[pos])];
      // OpenWhisk stops an action's extra containers after its idle timeout; the action goes
      // (with them) when the policy stops the instance and none of them runs a request.
      bool extra_busy = false;
      std::erase_if(i.extra, [&](int c) {
        SimInstance& x = instances_[static_cast<size_t>(c)];
        extra_busy = extra_busy || x.in_flight > 0;
        if (x.in_flight > 0 || now_ < x.ready_at || now_ < x.last_used + s_.idle_timeout_ms) {
          return false;
        }
        stop(x);
        return true;
      });
      if (i.in_flight == 0 && !extra_busy && now_ >= i.ready_at &&
          now_ >= policy_->keep_until(view_.instances[pos], s_.idle_timeout_ms)) {
        for (int c : i.extra) stop(instances_[static_cast<size_t>(c)]);
        i.extra.clear();
        stop(i);
        policy_->on_instance_stopped(i.id);
        live_.erase(live_.begin() + static_cast<long>(pos));
        by_id_.erase(i.id);
        view_.erase(pos);
      } else {
        ++pos;
      }
    }
  }

  const bench::Trace& trace_;
  const PoolSettings s_;
  const PolicyFactory make_policy_;
  std::vector<SimModel> models_;
  std::unordered_map<std::string, int> model_index_;
  packer::RoutingPolicyPtr policy_;
  std::priority_queue<Event, std::vector<Event>, std::greater<>> events_;
  uint64_t seq_ = 0;
  TimeMs now_ = 0;
  std::vector<SimInstance> instances_;
  std::vector<int> live_;       // creation order; view_.instances has the same order
  std::unordered_map<std::string, int> by_id_;  // the live ones
  packer::PoolView view_;
  packer::DispatchQueue queue_;  // request index = id (arrival order)
  bool tick_pending_ = false;
  std::vector<double> latency_, arrive_, decide_ns_;
  std::vector<TimeMs> cold_times_;
  std::vector<std::optional<protocol::RunKind>> run_;
  std::vector<double> load_, sent_;
  size_t rejected_ = 0, early_rejected_ = 0, timed_out_ = 0;
  uint64_t cold_ = 0, switches_ = 0, extra_containers_ = 0, prewarms_ = 0;
  double max_load_ = 0;
  size_t hot_decisions_ = 0;
  uint64_t pool_bytes_ = 0, peak_pool_bytes_ = 0;
};

void print_header() {
  std::printf("%-30s %8s %7s %7s %6s %8s %6s %7s %8s %9s %9s %10s %9s %9s %8s\n", "policy",
              "requests", "failed", "fail %", "cold", "starts", "extra", "prewarm", "switches",
              "p50 ms", "p99 ms", "inst-s", "dec p50us", "dec p99us", "peak MiB");
}

void print(const SimResult& r) {
  std::printf(
      "%-30s %8zu %7zu %7.2f %6lu %8lu %6lu %7lu %8lu %9.1f %9.1f %10.0f %9.2f %9.2f %8lu\n",
      r.name.c_str(), r.requests, r.failed,
      100.0 * static_cast<double>(r.failed) / static_cast<double>(std::max<size_t>(1, r.requests)),
      static_cast<unsigned long>(r.cold), static_cast<unsigned long>(r.instance_starts),
      static_cast<unsigned long>(r.extra_containers), static_cast<unsigned long>(r.prewarms),
      static_cast<unsigned long>(r.switches), r.p50, r.p99, r.instance_seconds, r.decide_p50_us,
      r.decide_p99_us, static_cast<unsigned long>(r.peak_pool_bytes >> 20));
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // each row as it is measured (long runs)
  bench::TraceOptions t;
  t.models = 20;
  t.duration_s = 1'800;  // 30 simulated minutes
  t.mean_rate_per_s = 20;
  t.mean_period_s = 120;          // busy/quiet cycles of minutes
  t.diurnal_amplitude = 1.0 / 3;  // peak twice the trough
  t.diurnal_period_s = 1'800;     // one compressed "day" over the trace
  PoolSettings base;
  std::vector<int> pools;
  bool scale = false;
  packer::MossPolicyOptions moss_options;  // MOSS's keep-alive and candidate settings
  int scale_models = 1'000, scale_instances = 100;
  std::string csv, json_path;
  bench::CommandLine args(argc, argv);
  for (std::string a; args.next_flag(a);) {
    auto next = [&] { return args.value(); };
    if (bench::is_trace_option(a))
      bench::set_trace_option(t, a, next());
    else if (a == "--deadline")
      base.deadline_ms = std::atof(next());
    else if (a == "--keep-alive-pct")
      moss_options.keep_alive_percentile = std::atof(next());
    else if (a == "--keep-alive-min")
      moss_options.keep_alive_min_ms = 1000 * std::atof(next());
    else if (a == "--switch-candidates")
      moss_options.switch_candidates = std::strtoull(next(), nullptr, 10);
    else if (a == "--backend") {
      const std::string b = next();
      if (b != "openwhisk" && b != "local") {
        std::fprintf(stderr, "--backend takes openwhisk or local\n");
        return 2;
      }
      base.action_scaling = b == "openwhisk";
    } else if (a == "--pool-memory")
      base.pool_memory_mb = std::strtoull(next(), nullptr, 10);
    else if (a == "--csv")
      csv = next();
    else if (a == "--json")
      json_path = next();
    else if (a == "--scale") {
      scale = true;
      // Optional MODELSxINSTANCES (default 1000x100).
      if (args.value_follows()) {
        const char* v = args.value();
        char* end = nullptr;
        scale_models = static_cast<int>(std::strtol(v, &end, 10));
        scale_instances = *end == 'x' ? static_cast<int>(std::strtol(end + 1, &end, 10)) : 0;
        if (scale_models <= 0 || scale_instances <= 0 || *end != 0) {
          std::fprintf(stderr, "--scale takes MODELSxINSTANCES, e.g. 10000x1000\n");
          return 2;
        }
      }
    }
    else if (a == "--pools") {
      std::stringstream ss(next());
      std::string part;
      while (std::getline(ss, part, ',')) pools.push_back(std::atoi(part.c_str()));
    } else {
      std::fprintf(stderr, "unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  if (scale) {
    // One request per model per second on average (heavy-tailed over the models), one minute.
    t.models = scale_models;
    t.mean_rate_per_s = scale_models;
    t.duration_s = std::min(t.duration_s, 60.0);
    t.diurnal_period_s = t.duration_s;
    pools = {scale_instances};
  }
  if (pools.empty()) pools = {t.models / 4, t.models, t.models * 2};
  bench::Trace trace = bench::generate_trace(t);
  std::printf(
      "trace: %zu requests, %d models (most popular %.1f%%), %.0f simulated s, mean %.0f req/s, "
      "bursts x%.0f %.0f%% of the time (cycles ~%.0f s), diurnal +-%.0f%%; instances x%d "
      "concurrent, %d cores, %lu MiB, start %.0f ms, idle stop %.0f s, deadline %.0f ms; "
      "backend %s\n",
      trace.requests.size(), t.models, trace.models.empty() ? 0 : 100 * trace.models[0].share,
      t.duration_s, t.mean_rate_per_s, t.burst_factor, 100 * t.busy_fraction, t.mean_period_s,
      100 * t.diurnal_amplitude, base.max_concurrency, base.parallelism,
      static_cast<unsigned long>(base.memory_mb), base.start_ms, base.idle_timeout_ms / 1000,
      base.deadline_ms,
      base.action_scaling ? "openwhisk (a full action gets another container)"
                          : "local (one worker per instance)");
  struct Run {
    std::string label;
    Simulation::PolicyFactory make;
    bool one_model;
  };
  auto named = [](const char* name) -> Simulation::PolicyFactory {
    return [name] { return packer::make_routing_policy(packer::parse_policy_kind(name).value_or_die()); };
  };
  // MOSS with the fixed keep-alive every other policy uses: the per-model keep-alive's effect.
  auto moss_fixed_keep_alive = [moss_options] {
    packer::MossPolicyOptions o = moss_options;
    o.adaptive_keep_alive = false;
    return packer::RoutingPolicyPtr(
        std::make_unique<packer::MossPolicy>(packer::StatsPriors{}, o));
  };
  auto moss = [moss_options] {
    return packer::RoutingPolicyPtr(
        std::make_unique<packer::MossPolicy>(packer::StatsPriors{}, moss_options));
  };
  const std::vector<Run> runs = {{"MOSS", moss, false},
                                 {"MOSS (fixed keep-alive)", moss_fixed_keep_alive, false},
                                 {"original (one model/worker)", named("original"), true},
                                 {"original", named("original"), false},
                                 {"original+queue", named("original+queue"), false}};
  std::ofstream out;
  if (!csv.empty()) {
    out.open(csv);
    out << "pool,policy,minute,cold_starts,p99_ms\n";
  }
  nlohmann::ordered_json json_runs = nlohmann::ordered_json::array();
  for (int size : pools) {
    std::printf("\n-- pool of %d instances, %d models (%s)\n", size, t.models,
                size < t.models    ? "smaller than the models"
                : size == t.models ? "equal"
                                   : "larger");
    print_header();
    for (const Run &run : runs) {
      PoolSettings s = base;
      s.max_instances = size;
      s.one_model = run.one_model;
      Simulation sim(trace, s, run.make);
      SimResult r = sim.run(run.label);
      print(r);
      if (r.hot_decisions > 0 || r.max_offered_load > 0) {
        std::printf(
            "    hot models: highest offered load %.2f (threshold %.2f), %.1f %% of decisions for "
            "a hot model; failed: %zu refused at once (admission), %zu timed out\n",
            r.max_offered_load, packer::MossPolicyOptions{}.hot_threshold,
            100.0 * static_cast<double>(r.hot_decisions) /
                static_cast<double>(std::max<size_t>(1, r.decisions)),
            r.early_rejected, r.timed_out);
      }
      if (scale) {
        std::printf(
            "    decisions %zu, RSS growth over the run %ld KiB, policy statistics %zu models "
            "(%zu KiB counted), early rejections %zu\n",
            r.decisions, r.rss_growth_kb, r.stats_models, r.stats_bytes / 1024, r.early_rejected);
      }
      nlohmann::ordered_json row = bench::sim_run_json(size, r);
      row["peak_pool_mib"] = r.peak_pool_bytes >> 20;
      row["extra_containers"] = r.extra_containers;
      row["prewarms"] = r.prewarms;
      row["hot_decisions"] = r.hot_decisions;
      json_runs.push_back(std::move(row));
      if (out.is_open()) {
        for (size_t m = 0; m < r.p99_per_min.size(); ++m) {
          out << size << ',' << run.label << ',' << m << ',' << r.cold_per_min[m] << ','
              << r.p99_per_min[m] << '\n';
        }
      }
    }
  }
  nlohmann::ordered_json doc = {{"trace",
                                 {{"requests", trace.requests.size()},
                                  {"models", t.models},
                                  {"duration_s", t.duration_s},
                                  {"mean_rate_per_s", t.mean_rate_per_s},
                                  {"deadline_ms", base.deadline_ms},
                                  {"backend", base.action_scaling ? "openwhisk" : "local"}}},
                                {"runs", std::move(json_runs)}};
  return bench::write_json_output(json_path, "packer_sim_bench", std::move(doc)) ? 0 : 1;
}
