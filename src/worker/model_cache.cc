#include "worker/model_cache.h"

#include "common/logging.h"

#include <algorithm>

namespace moss::worker {

using Clock = std::chrono::steady_clock;

namespace {
std::string cache_key(std::string_view model_id, std::string_view generation) {
  std::string k(model_id);
  k.push_back('\n');
  k.append(generation);
  return k;
}
}  // namespace

struct ModelCache::Entry {
  std::string key;  // cache_key(model_id, generation)
  std::string model_id;
  std::shared_ptr<const engine::CompiledModel> model;  // null while loading
  std::shared_future<Status> loading;                  // valid while loading
  protocol::RunKind load_kind = protocol::RunKind::kSwitch;
  LoadTiming load_timing;
  uint64_t weights_bytes = 0;
  uint64_t arena_bytes = 0;
  std::vector<std::unique_ptr<engine::ExecutionContext>> idle;
  size_t contexts = 0;
  size_t in_use = 0;
  Clock::time_point last_used;
};

namespace {

// Binds declared static input shapes so the first context's arena (and so the model's memory)
// is known before admission. Models with symbolic or value-bound inputs bind on first run.
void bind_static_shapes(engine::ExecutionContext& ctx, const engine::CompiledModel& model) {
  std::vector<std::vector<int64_t>> shapes;
  for (const auto& in : model.inputs()) {
    if (!in.has_shape) return;
    for (int64_t d : in.dims) {
      if (d < 0) return;
    }
    shapes.push_back(in.dims);
  }
  (void)ctx.bind(shapes);
}

}  // namespace

ModelCache::ModelCache(Options options) : options_(options) {}
ModelCache::~ModelCache() = default;

ModelCache::Lease::Lease(ModelCache* cache, std::shared_ptr<Entry> entry,
                         std::unique_ptr<engine::ExecutionContext> ctx)
    : cache_(cache), entry_(std::move(entry)), context_(std::move(ctx)),
      arena_at_acquire_(context_->arena_bytes()) {}

ModelCache::Lease::Lease(Lease&& o) noexcept
    : cache_(o.cache_), entry_(std::move(o.entry_)), context_(std::move(o.context_)),
      arena_at_acquire_(o.arena_at_acquire_) {
  o.cache_ = nullptr;
}

ModelCache::Lease::~Lease() {
  if (cache_ && entry_) cache_->release(*this);
}

Result<ModelCache::Acquired> ModelCache::acquire(const std::string& model_id, const Loader& loader,
                                                 std::string_view generation) {
  const std::string key = cache_key(model_id, generation);
  std::unique_lock lock(mu_);
  if (auto f = failures_.find(key); f != failures_.end()) {
    if (Clock::now() < f->second.retry_at) {
      ++failures_remembered_;
      return f->second.status;
    }
    failures_.erase(f);
  }
  bool waited = false;
  protocol::RunKind waited_kind = protocol::RunKind::kWarm;
  LoadTiming waited_timing;
  while (true) {
    auto it = entries_.find(key);
    if (it == entries_.end()) break;
    std::shared_ptr<Entry> e = it->second;
    if (e->model) {
      std::unique_ptr<engine::ExecutionContext> ctx;
      if (!e->idle.empty()) {
        ctx = std::move(e->idle.back());
        e->idle.pop_back();
      } else {
        ctx = std::make_unique<engine::ExecutionContext>(e->model);
        ++e->contexts;
      }
      ++e->in_use;
      e->last_used = Clock::now();
      if (!waited) ++hits_;
      return Acquired{Lease(this, e, std::move(ctx)), waited ? waited_kind : protocol::RunKind::kWarm,
                      waited ? waited_timing : LoadTiming{}};
    }
    // Another request is loading this model: wait for it instead of loading twice.
    auto loading = e->loading;
    waited_kind = e->load_kind;
    lock.unlock();
    Status s = loading.get();
    lock.lock();
    if (!s.ok()) return s;
    waited = true;
    waited_timing = e->load_timing;
    ++misses_;
  }

  // This request loads the model.
  ++misses_;
  auto e = std::make_shared<Entry>();
  e->key = key;
  e->model_id = model_id;
  // Only a load that succeeded counts: after a failed first load the next success is cold.
  e->load_kind = loads_ == 0 ? protocol::RunKind::kCold : protocol::RunKind::kSwitch;
  std::promise<Status> done;
  e->loading = done.get_future().share();
  entries_[key] = e;
  lock.unlock();

  LoadTiming timing;
  auto compiled = loader(timing);
  std::unique_ptr<engine::ExecutionContext> ctx;
  Status admitted;
  if (compiled.ok()) {
    ctx = std::make_unique<engine::ExecutionContext>(*compiled);
    bind_static_shapes(*ctx, **compiled);
  }
  lock.lock();
  if (compiled.ok()) {
    const uint64_t need = (*compiled)->weights_bytes() + ctx->arena_bytes();
    // Other generations of this model were loaded under keys the KeyService no longer releases
    // (deleted, retired, re-keyed): never serve them again, and make room with them first.
    for (auto it = entries_.begin(); it != entries_.end();) {
      auto next = std::next(it);
      if (it->second->model_id == model_id && it->first != key && it->second->model) drop_locked(it->first);
      it = next;
    }
    admitted = make_room(need, key, lock);
    if (admitted.ok()) {
      ++loads_;
      e->model = *compiled;
      e->weights_bytes = (*compiled)->weights_bytes();
      e->arena_bytes = ctx->arena_bytes();
      e->contexts = 1;
      e->in_use = 1;
      e->load_timing = timing;
      e->last_used = Clock::now();
      used_ += need;
    }
  } else {
    admitted = compiled.status();
  }
  if (!admitted.ok()) {
    ++load_failures_;
    entries_.erase(key);
    if (admitted.code() != ErrorCode::kResourceExhausted && options_.failure_backoff.count() > 0) {
      const auto now = Clock::now();
      if (failures_.size() >= 1024) std::erase_if(failures_, [&](const auto& f) { return f.second.retry_at <= now; });
      if (failures_.size() < 1024) failures_[key] = Failure{admitted, now + options_.failure_backoff};
    }
    lock.unlock();
    done.set_value(admitted);
    return admitted;
  }
  e->loading = {};
  lock.unlock();
  done.set_value(Status::Ok());
  log::get("worker")->info("model loaded model={} kind={} weights={} arena={}", model_id,
                           protocol::run_kind_name(e->load_kind), e->weights_bytes, e->arena_bytes);
  return Acquired{Lease(this, e, std::move(ctx)), e->load_kind, timing};
}

Status ModelCache::make_room(uint64_t need, const std::string& keep, std::unique_lock<std::mutex>& lock) {
  const std::string_view model_id = std::string_view(keep).substr(0, keep.find('\n'));
  if (need > options_.budget_bytes) {
    return resource_exhausted("model {} needs {} bytes, more than the whole memory budget of {} bytes",
                              model_id, need, options_.budget_bytes);
  }
  const auto deadline = Clock::now() + options_.wait_for_room;
  while (used_ + need > options_.budget_bytes) {
    std::shared_ptr<Entry> victim;
    for (auto& [id, e] : entries_) {
      if (id == keep || !e->model || e->in_use > 0) continue;
      if (!victim || e->last_used < victim->last_used) victim = e;
    }
    if (victim) {
      used_ -= victim->weights_bytes + victim->arena_bytes;
      ++evictions_;
      log::get("worker")->info("model evicted model={} freed={}", victim->model_id,
                               victim->weights_bytes + victim->arena_bytes);
      entries_.erase(victim->key);
      continue;
    }
    if (room_.wait_until(lock, deadline) == std::cv_status::timeout &&
        used_ + need > options_.budget_bytes) {
      return resource_exhausted(
          "memory budget full: model {} needs {} bytes, {} of {} held by models in use", model_id, need,
          used_, options_.budget_bytes);
    }
  }
  return Status::Ok();
}

void ModelCache::evict_over_budget() {
  while (used_ > options_.budget_bytes) {
    std::shared_ptr<Entry> victim;
    for (auto& [id, e] : entries_) {
      if (!e->model || e->in_use > 0) continue;
      if (!victim || e->last_used < victim->last_used) victim = e;
    }
    if (!victim) return;
    used_ -= victim->weights_bytes + victim->arena_bytes;
    ++evictions_;
    entries_.erase(victim->key);
  }
}

void ModelCache::drop_locked(const std::string& key) {
  auto it = entries_.find(key);
  if (it == entries_.end()) return;
  used_ -= it->second->weights_bytes + it->second->arena_bytes;
  log::get("worker")->info("model dropped model={} reason=keys-changed", it->second->model_id);
  entries_.erase(it);
}

void ModelCache::release(Lease& lease) {
  std::lock_guard lock(mu_);
  Entry& e = *lease.entry_;
  const uint64_t now_arena = lease.context_->arena_bytes();
  auto it = entries_.find(e.key);
  const bool resident = it != entries_.end() && it->second == lease.entry_;
  e.arena_bytes = e.arena_bytes + now_arena - lease.arena_at_acquire_;
  if (resident) used_ = used_ + now_arena - lease.arena_at_acquire_;
  --e.in_use;
  e.last_used = Clock::now();
  if (e.idle.size() < options_.max_idle_contexts) {
    e.idle.push_back(std::move(lease.context_));
  } else {
    e.arena_bytes -= now_arena;
    if (resident) used_ -= now_arena;
    --e.contexts;
    lease.context_.reset();
  }
  evict_over_budget();
  room_.notify_all();
}

ModelCache::Snapshot ModelCache::snapshot() const {
  std::lock_guard lock(mu_);
  Snapshot s;
  s.budget_bytes = options_.budget_bytes;
  s.used_bytes = used_;
  s.hits = hits_;
  s.misses = misses_;
  s.loads = loads_;
  s.load_failures = load_failures_;
  s.evictions = evictions_;
  s.failures_remembered = failures_remembered_;
  const auto now = Clock::now();
  std::vector<const Entry*> resident;
  for (const auto& [id, e] : entries_) {
    if (e->model) resident.push_back(e.get());
  }
  std::sort(resident.begin(), resident.end(),
            [](const Entry* a, const Entry* b) { return a->last_used > b->last_used; });
  for (const Entry* e : resident) {
    s.models.push_back({e->model_id, e->weights_bytes, e->arena_bytes, e->contexts, e->in_use,
                        std::chrono::duration_cast<std::chrono::milliseconds>(now - e->last_used).count()});
  }
  return s;
}

}  // namespace moss::worker
