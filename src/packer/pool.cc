#include "packer/pool.h"

#include <algorithm>
#include <chrono>

#include "common/logging.h"
#include "common/percentile.h"
#include "protocol/infer_request.h"

namespace moss::packer {

namespace {

using json = nlohmann::json;
using steady = std::chrono::steady_clock;

constexpr size_t kLatencyWindow = 1000;

double number_or(const nlohmann::ordered_json& j, const char* key, double fallback) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : fallback;
}

}  // namespace

json PoolCounters::to_json() const {
  return {{"served", served},
          {"failed", failed},
          {"rejected", rejected},
          {"timed_out", timed_out},
          {"queued", queued},
          {"runs_cold", runs_cold},
          {"runs_switch", runs_switch},
          {"runs_warm", runs_warm},
          {"instance_starts", instance_starts},
          {"instance_stops", instance_stops},
          {"start_failures", start_failures},
          {"worker_refusals", worker_refusals}};
}

Pool::Pool(PoolSpec spec, BackendPtr backend, RoutingPolicyPtr policy, const Clock& clock)
    : spec_(std::move(spec)),
      backend_(std::move(backend)),
      clock_(clock),
      size_hints_(spec_.worker_config.count("model_store") ? spec_.worker_config.at("model_store")
                                                           : std::string()),
      policy_(std::move(policy)) {
  view_.max_instances = static_cast<size_t>(spec_.max_instances);
  view_.max_concurrency = spec_.max_concurrency;
  view_.parallelism = spec_.parallelism;
  view_.memory_budget_bytes = spec_.memory_budget_mb * 1024 * 1024;
  view_.pool_memory_budget_bytes = spec_.pool_memory_budget_mb * 1024 * 1024;
}

Pool::~Pool() { shutdown(); }

Pool::RecordPtr Pool::find_locked(std::string_view id) const {
  for (const RecordPtr& s : instances_) {
    if (s->id == id) return s;
  }
  return nullptr;
}

Pool::RecordPtr Pool::new_instance_locked() {
  auto rec = std::make_shared<InstanceRecord>();
  rec->id = fmt::format("i{}", next_instance_++);
  rec->started_ms = clock_.now_ms();
  rec->last_used_ms = rec->started_ms;
  instances_.push_back(rec);
  view_.add(instance_view_locked(*rec));
  return rec;
}

InstanceView Pool::instance_view_locked(const InstanceRecord& s) const {
  InstanceView iv;
  iv.id = s.id;
  iv.state = s.state == StartState::kReady ? InstanceState::kReady : InstanceState::kStarting;
  iv.in_flight = s.in_flight;
  iv.memory_used_bytes = s.memory_used;
  iv.started_ms = s.started_ms;
  iv.last_used_ms = s.last_used_ms;
  for (ResidentModel m : s.reported) {
    // Our own count of dispatched requests is authoritative; the report may be stale.
    auto d = s.dispatched.find(m.model_id);
    m.in_use = d == s.dispatched.end() ? 0 : d->second;
    iv.models.push_back(std::move(m));
  }
  auto add_unloaded = [&](const std::string& model_id, int in_use) {
    bool known = std::any_of(iv.models.begin(), iv.models.end(),
                             [&](const ResidentModel& m) { return m.model_id == model_id; });
    if (known) return;
    ResidentModel m;
    m.model_id = model_id;
    const ModelStats* st = policy_->stats().find(model_id);
    m.bytes = st ? st->bytes : 0;
    m.in_use = in_use;
    m.loaded = false;
    iv.models.push_back(std::move(m));
  };
  for (const auto& [model_id, n] : s.dispatched) add_unloaded(model_id, n);
  // A prewarm for a hot model counts as holding it (so the policy does not start yet another).
  if (!s.preload.empty() && s.reported.empty()) add_unloaded(s.preload, 0);
  return iv;
}

void Pool::sync_locked(const RecordPtr& rec) {
  auto it = std::find(instances_.begin(), instances_.end(), rec);
  if (it == instances_.end()) return;
  view_.set(static_cast<size_t>(it - instances_.begin()), instance_view_locked(*rec));
}

void Pool::hand_off_locked(const InstanceRecord& rec) {
  if (queue_.empty() || rec.state != StartState::kReady) return;
  std::vector<std::string_view> resident;
  for (const ResidentModel& m : rec.reported) resident.push_back(m.model_id);
  for (const auto& [model_id, n] : rec.dispatched) resident.push_back(model_id);
  // Waiters already offered a slot and not yet back are not offered another.
  std::vector<DispatchQueue::Id> skip;
  for (const auto& [id, w] : waiters_) {
    if (w->handed) skip.push_back(id);
  }
  for (int free = spec_.max_concurrency - rec.in_flight; free > 0; --free) {
    auto next = queue_.next_for(resident, skip, clock_.now_ms());
    if (!next) return;
    auto w = waiters_.find(*next);
    if (w == waiters_.end()) return;
    w->second->handed = true;
    w->second->cv.notify_one();
    skip.push_back(*next);
  }
}

void Pool::start_instance(const RecordPtr& rec) {
  TimeMs t0 = clock_.now_ms();
  Result<InstancePtr> started = backend_->start(rec->id);
  std::lock_guard lock(mu_);
  if (started.ok()) {
    rec->instance = std::shared_ptr<Instance>(std::move(*started));
    rec->state = StartState::kReady;
    rec->ready_ms = clock_.now_ms();
    rec->last_used_ms = rec->ready_ms;
    ++counters_.instance_starts;
    policy_->on_instance_started(rec->id, rec->ready_ms - t0, rec->ready_ms);
    sync_locked(rec);
    hand_off_locked(*rec);
    log::get("packer")->info("instance started pool={} instance={} endpoint={} ms={:.0f}",
                             spec_.name, rec->id, rec->instance->endpoint(), rec->ready_ms - t0);
  } else {
    rec->state = StartState::kFailed;
    rec->start_error = started.status().message();
    ++counters_.start_failures;
    log::get("packer")->error("instance start failed pool={} instance={} error={}", spec_.name,
                              rec->id, started.status().to_string());
    remove_instance_locked(rec);
  }
  cv_.notify_all();
}

void Pool::remove_instance_locked(const RecordPtr& rec) {
  auto it = std::find(instances_.begin(), instances_.end(), rec);
  if (it == instances_.end()) return;
  view_.erase(static_cast<size_t>(it - instances_.begin()));
  instances_.erase(it);
  if (rec->state == StartState::kReady) {
    stopped_instance_ms_ += clock_.now_ms() - rec->ready_ms;
  }
  policy_->on_instance_stopped(rec->id);
}

void Pool::start_in_background_locked(std::string preload) {
  if (shutting_down_) return;
  // Join starts that have finished, so a long-lived pool does not collect thread handles.
  for (auto it = background_.begin(); it != background_.end();) {
    if (it->done->load()) {
      it->thread.join();
      it = background_.erase(it);
    } else {
      ++it;
    }
  }
  RecordPtr rec = new_instance_locked();
  if (!preload.empty()) {
    rec->preload = std::move(preload);
    sync_locked(rec);
  }
  auto done = std::make_shared<std::atomic<bool>>(false);
  background_.push_back({std::thread([this, rec, done] {
                           start_instance(rec);
                           done->store(true);
                         }),
                         done});
}

void Pool::account_memory_locked() {
  uint64_t total = 0;
  for (const RecordPtr& s : instances_) total += s->memory_used;
  peak_memory_ = std::max(peak_memory_, total);
}

Pool::WorkerReport Pool::parse_report(std::string_view model_id, const protocol::InferResult& reply) {
  WorkerReport r;
  r.run = reply.run;
  if (const auto& t = reply.timing_ms; t.is_object()) {
    r.inference_ms = number_or(t, "inference", number_or(t, "total", 0));
    r.load_ms = number_or(t, "key_fetch", 0) + number_or(t, "model_fetch", 0) +
                number_or(t, "decrypt", 0) + number_or(t, "compile", 0);
    r.activation_ms = number_or(t, "total", r.inference_ms + r.load_ms);
  }
  if (const auto* inst = &reply.instance; inst->is_object()) {
    r.has_instance = true;
    r.memory_used = static_cast<uint64_t>(number_or(*inst, "memory_used_bytes", 0));
    std::vector<std::pair<double, ResidentModel>> models;
    if (auto ms = inst->find("models"); ms != inst->end() && ms->is_array()) {
      for (const auto& m : *ms) {
        if (!m.is_object() || !m.contains("model_id") || !m["model_id"].is_string()) continue;
        ResidentModel rm;
        rm.model_id = m["model_id"].get<std::string>();
        rm.bytes = static_cast<uint64_t>(number_or(m, "weights_bytes", 0) +
                                         number_or(m, "arena_bytes", 0));
        rm.in_use = static_cast<int>(number_or(m, "in_use", 0));
        if (rm.model_id == model_id) r.model_bytes = rm.bytes;
        models.emplace_back(number_or(m, "last_used_ms_ago", 0), std::move(rm));
      }
    }
    // Least recently used first: the order in which the worker evicts.
    std::stable_sort(models.begin(), models.end(),
                     [](const auto& a, const auto& b) { return a.first > b.first; });
    for (auto& [ago, rm] : models) r.resident.push_back(std::move(rm));
  }
  return r;
}

Result<Pool::Ticket> Pool::acquire(std::string_view model_id, TimeMs t0, TimeMs deadline_ms,
                                   bool* queued, double* retry_after_ms) {
  std::unique_lock lock(mu_);
  const DispatchQueue::Id id = next_request_++;
  // While it waits, the request is in its model's FIFO (the backlog policies see, and the order
  // freed slots are handed out in); it leaves it however this call ends.
  Waiter waiter;
  struct LeaveQueue {
    Pool& pool;
    DispatchQueue::Id id;
    ~LeaveQueue() {
      pool.queue_.remove(id);
      pool.waiters_.erase(id);
    }
  } leave{*this, id};  // runs with the lock held: declared after it
  bool routed_once = false;
  while (true) {
    if (shutting_down_) return unavailable("pool '{}' is shutting down", spec_.name);
    const TimeMs now = clock_.now_ms();
    const bool in_queue = queue_.contains(id);
    // A queued request routes again when handed a slot (or woken), and on its time slice only if
    // it is its model's oldest: the others could not go ahead of it anyway.
    if (routed_once && in_queue && !waiter.handed && queue_.ahead_of(id) > 0) {
      if (now >= deadline_ms) {
        ++counters_.timed_out;
        return deadline_exceeded("no instance of pool '{}' could take a request for {} within "
                                 "{:.0f} ms (queued behind older requests)",
                                 spec_.name, model_id, deadline_ms - t0);
      }
    } else {
      waiter.handed = false;
      routed_once = true;
      view_.queued = static_cast<int>(queue_.size()) - (in_queue ? 1 : 0);
      view_.queued_for_model =
          static_cast<int>(in_queue ? queue_.ahead_of(id) : queue_.size_for(model_id));
      view_.deadline_ms = deadline_ms;
      Decision d = policy_->route(model_id, view_, now);
      for (int k = 0; k < d.prewarm && instances_.size() < static_cast<size_t>(spec_.max_instances);
           ++k) {
        start_in_background_locked(d.prewarm_model);
      }
      if (d.kind == DecisionKind::kReject) {
        ++counters_.rejected;
        if (retry_after_ms) *retry_after_ms = d.retry_after_ms;
        return resource_exhausted("pool '{}' has no free instance for {}: {}", spec_.name,
                                  model_id, d.reason);
      }
      if (d.kind != DecisionKind::kQueue) {
        RecordPtr rec =
            d.kind == DecisionKind::kCold ? new_instance_locked() : find_locked(d.instance_id);
        if (rec) {
          queue_.remove(id);
          ++rec->in_flight;
          ++rec->dispatched[std::string(model_id)];
          sync_locked(rec);
          Ticket t;
          t.rec = rec;
          t.sent_ms = clock_.now_ms();
          t.queued_ms = t.sent_ms - t0;
          policy_->on_dispatch(model_id, rec->id, t.sent_ms);
          t.decision = std::move(d);
          if (t.decision.kind == DecisionKind::kCold) {
            lock.unlock();
            start_instance(rec);  // takes the lock itself to record the outcome
            lock.lock();
          }
          cv_.wait(lock, [&] { return rec->state != StartState::kStarting; });
          t.instance = rec->instance;
          return t;
        }
      }
      if (!*queued) ++counters_.queued;
      *queued = true;
      if (!in_queue) {
        queue_.push(id, model_id, deadline_ms);
        waiters_[id] = &waiter;
      }
      if (now >= deadline_ms) {
        ++counters_.timed_out;
        return deadline_exceeded(
            "no instance of pool '{}' could take a request for {} within {:.0f} ms ({})",
            spec_.name, model_id, deadline_ms - t0, d.reason);
      }
    }
    // Woken when handed a freed slot (or by wake()); the slice re-routes the model's oldest
    // request regardless, so statistics moving on alone (decay) are seen too. The deadline is on
    // the pool's clock; the slice is real time (a manual clock does not move while we wait).
    auto slice = std::chrono::duration<double, std::milli>(
        std::clamp(deadline_ms - clock_.now_ms(), 0.0, 200.0));
    waiter.cv.wait_for(lock, slice, [&] { return waiter.handed || shutting_down_; });
  }
}

void Pool::release_locked(const Ticket& t, std::string_view model_id, const WorkerReport* report) {
  const RecordPtr& rec = t.rec;
  --rec->in_flight;
  if (--rec->dispatched[std::string(model_id)] <= 0) rec->dispatched.erase(std::string(model_id));
  rec->last_used_ms = clock_.now_ms();
  Completion c;
  c.model_id = std::string(model_id);
  c.instance_id = rec->id;
  c.sent_ms = t.sent_ms;
  c.now = clock_.now_ms();
  c.ok = report != nullptr;
  if (report) {
    c.run = report->run;
    c.inference_ms = report->inference_ms;
    c.load_ms = report->load_ms;
    c.activation_ms = report->activation_ms;
    c.model_bytes = report->model_bytes;
    if (c.run == protocol::RunKind::kCold) ++counters_.runs_cold;
    if (c.run == protocol::RunKind::kSwitch) ++counters_.runs_switch;
    if (c.run == protocol::RunKind::kWarm) ++counters_.runs_warm;
    if (report->has_instance) {
      rec->memory_used = report->memory_used;
      rec->reported = report->resident;
      account_memory_locked();
    }
  }
  // A request that did not run ends for the policy too (the original rule counts it in use).
  policy_->on_complete(c);
  sync_locked(rec);
  hand_off_locked(*rec);
  cv_.notify_all();  // shutdown waits for in-flight requests on it
}

void Pool::wake() {
  std::lock_guard lock(mu_);
  for (auto& [id, w] : waiters_) {
    w->handed = true;
    w->cv.notify_one();
  }
}

Result<protocol::InferResult> Pool::invoke(std::string_view model_id, std::string_view envelope,
                                           std::optional<int64_t> max_wait_ms, double* retry_after_ms) {
  const TimeMs t0 = clock_.now_ms();
  const TimeMs deadline_ms = t0 + static_cast<double>(max_wait_ms.value_or(spec_.queue_timeout_ms));
  // A binary envelope is its own C3 request body (docs/worker-api.md).
  const std::string body =
      protocol::envelope_encoding(envelope) == protocol::EnvelopeEncoding::kBinary
          ? std::string(envelope)
          : protocol::InferRequest{std::string(model_id), std::string(envelope), std::nullopt}.to_json();
  const std::optional<uint64_t> size_hint = size_hints_.get(model_id);  // a stat, not under mu_
  {
    std::lock_guard lock(mu_);
    policy_->on_arrival(model_id, t0);
    if (size_hint) policy_->learn_size(model_id, *size_hint);
  }
  bool queued = false;
  // A worker that refuses a request (429: at its limit, or the model does not fit next to busy
  // ones) never ran it: route it again, within the deadline.
  for (int attempt = 0;; ++attempt) {
    // acquire: route (and queue) under the lock; a cold start runs outside it.
    Result<Ticket> ticket = acquire(model_id, t0, deadline_ms, &queued, retry_after_ms);
    if (!ticket.ok()) return ticket.status();
    Ticket& t = *ticket;
    if (t.rec->state == StartState::kFailed) {
      std::lock_guard lock(mu_);
      release_locked(t, model_id, nullptr);
      ++counters_.failed;
      return unavailable("instance {} of pool '{}' failed to start: {}", t.rec->id, spec_.name,
                         t.rec->start_error);
    }
    // send: no pool lock held (the worker's answer, a crash restart, a slow network).
    Result<protocol::InferResult> reply =
        t.instance->invoke(body, std::chrono::milliseconds(spec_.request_timeout_ms));
    // complete: read the report outside the lock, then record under it.
    WorkerReport report;
    if (reply.ok()) report = parse_report(model_id, *reply);
    std::unique_lock lock(mu_);
    // The worker opened the request and sealed its error for the user: a failed request for the
    // policy, passed on unchanged (docs/worker-api.md, "Errors").
    const bool sealed_error = reply.ok() && reply->error.has_value();
    release_locked(t, model_id, reply.ok() && !sealed_error ? &report : nullptr);
    if (!reply.ok() && reply.status().code() == ErrorCode::kResourceExhausted && attempt < 50 &&
        clock_.now_ms() < deadline_ms) {
      ++counters_.worker_refusals;
      cv_.wait_for(lock, std::chrono::milliseconds(20));
      continue;
    }
    if (!reply.ok() || sealed_error) {
      ++counters_.failed;
      return reply;  // the worker's status and message as it gave them, or its sealed error
    }
    ++counters_.served;
    const double total_ms = clock_.now_ms() - t0;
    latencies_ms_.push_back(total_ms);
    if (latencies_ms_.size() > kLatencyWindow) latencies_ms_.pop_front();
    const std::string_view policy_name = policy_->name();
    lock.unlock();
    reply->packer = {{"instance", t.rec->id},
                     {"queued_ms", t.queued_ms},
                     {"decision", decision_name(t.decision.kind)},
                     {"reason", t.decision.reason},
                     {"policy", policy_name},
                     {"estimated_ms", t.decision.estimated_ms},
                     {"total_ms", total_ms}};
    return reply;
  }
}

PoolCounters Pool::counters() const {
  std::lock_guard lock(mu_);
  return counters_;
}

uint64_t Pool::peak_memory_bytes() const {
  std::lock_guard lock(mu_);
  return peak_memory_;
}

double Pool::instance_seconds() const {
  std::lock_guard lock(mu_);
  double ms = stopped_instance_ms_;
  TimeMs now = clock_.now_ms();
  for (const RecordPtr& s : instances_) {
    if (s->state == StartState::kReady) ms += now - s->ready_ms;
  }
  return ms / 1000.0;
}

json Pool::status() const {
  std::vector<std::shared_ptr<Instance>> backing;  // per entry of "instances", asked after unlock
  json out;
  {
    std::lock_guard lock(mu_);
    TimeMs now = clock_.now_ms();
    const PoolView& view = view_;
    json instances = json::array();
    for (const RecordPtr& s : instances_) {
      const InstanceView* iv = view.find(s->id);
      if (!iv) continue;
      json models = json::array();
      for (const ResidentModel& m : iv->models) {
        models.push_back({{"model_id", m.model_id},
                          {"bytes", m.bytes},
                          {"in_flight", m.in_use},
                          {"loaded", m.loaded}});
      }
      instances.push_back({{"id", s->id},
                           {"state", s->state == StartState::kReady ? "ready" : "starting"},
                           {"in_flight", s->in_flight},
                           {"memory_used_bytes", s->memory_used},
                           {"idle_ms", s->in_flight > 0 ? 0.0 : now - s->last_used_ms},
                           {"models", models}});
      backing.push_back(s->instance);
    }
    json model_stats = json::array();
    for (const auto& [id, m] : policy_->stats().models()) {
      model_stats.push_back({{"model_id", id},
                             {"rate_per_s", policy_->stats().rate_per_ms(id, now) * 1000.0},
                             {"service_ms", policy_->stats().service_ms(id, now)},
                             {"load_ms", policy_->stats().load_ms(id, now)},
                             {"bytes", m.bytes}});
    }
    std::vector<double> lat(latencies_ms_.begin(), latencies_ms_.end());
    std::vector<double> recent(lat.end() - std::min<size_t>(lat.size(), 20), lat.end());
    out = {{"name", spec_.name},
           {"backend", backend_kind_name(spec_.backend)},
           {"policy", policy_->name()},
           {"instances", instances},
           {"counters", counters_.to_json()},
           {"latency_ms",
            {{"count", lat.size()},
             {"p50", percentile_in_place(lat, 0.5)},
             {"p99", percentile_in_place(lat, 0.99)},
             {"recent", recent}}},
           {"models", model_stats},
           {"cold_start_ms", policy_->stats().cold_start_ms(now)}};
  }
  // An instance may hold its own lock for a while (a crash restart): never ask it under ours.
  json& instances = out["instances"];
  for (size_t i = 0; i < backing.size(); ++i) {
    instances[i]["endpoint"] = backing[i] ? backing[i]->endpoint() : std::string();
    instances[i]["restarts"] = backing[i] ? backing[i]->restarts() : 0;
  }
  return out;
}

void Pool::reap_idle() {
  std::vector<std::shared_ptr<Instance>> to_stop;
  {
    std::lock_guard lock(mu_);
    TimeMs now = clock_.now_ms();
    const double idle_ms = spec_.idle_timeout_s * 1000.0;
    size_t live = 0;
    for (const RecordPtr& s : instances_) live += s->state != StartState::kFailed;
    for (const RecordPtr& s : std::vector<RecordPtr>(instances_)) {
      if (live <= static_cast<size_t>(spec_.min_instances)) break;
      if (s->state != StartState::kReady || s->in_flight > 0) continue;
      const InstanceView* iv = view_.find(s->id);
      if (!iv || now < policy_->keep_until(*iv, idle_ms)) continue;
      log::get("packer")->info("instance idle, stopping pool={} instance={} idle_ms={:.0f}",
                               spec_.name, s->id, now - s->last_used_ms);
      to_stop.push_back(s->instance);
      remove_instance_locked(s);
      ++counters_.instance_stops;
      --live;
    }
    account_memory_locked();
  }
  for (auto& i : to_stop) i->stop();
}

void Pool::ensure_min_instances() {
  std::lock_guard lock(mu_);
  while (instances_.size() < static_cast<size_t>(spec_.min_instances)) start_in_background_locked();
}

void Pool::shutdown() {
  std::vector<Background> threads;
  {
    std::lock_guard lock(mu_);
    shutting_down_ = true;
    threads.swap(background_);
    cv_.notify_all();
    for (auto& [id, w] : waiters_) w->cv.notify_one();
  }
  for (Background& b : threads) b.thread.join();
  std::vector<RecordPtr> records;
  {
    std::unique_lock lock(mu_);
    // Requests already sent finish first (bounded: a stuck worker must not block shutdown).
    cv_.wait_for(lock, std::chrono::seconds(10), [&] {
      return std::all_of(instances_.begin(), instances_.end(),
                         [](const RecordPtr& s) { return s->in_flight == 0; });
    });
    records = instances_;
    for (const RecordPtr& s : records) {
      if (s->state == StartState::kReady) {
        stopped_instance_ms_ += clock_.now_ms() - s->ready_ms;
        ++counters_.instance_stops;
      }
    }
    instances_.clear();
    view_.clear();
  }
  for (const RecordPtr& s : records) {
    if (s->instance) s->instance->stop();
  }
}

}  // namespace moss::packer
