#include "packer/pool_manager.h"

#include "common/file_util.h"
#include "common/logging.h"
#include "common/strict_json.h"
#include "packer/local_backend.h"
#include "packer/openwhisk_backend.h"

namespace moss::packer {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {
constexpr size_t kMaxStateFileBytes = 16 * 1024 * 1024;
constexpr size_t kMaxPools = 4096;

// The pool definitions of a pools.json text: {"version":1,"pools":[...]}.
Result<std::vector<nlohmann::ordered_json>> saved_pools(std::string_view text) {
  MOSS_ASSIGN_OR_RETURN(auto j, parse_json_object(text, "pools.json", {"version", "pools"}, {},
                                                  kPoolSpecMaxDepth + 2));
  MOSS_RETURN_IF_ERROR(integer_field(j, "version", 1, 1).status());
  MOSS_ASSIGN_OR_RETURN(const nlohmann::ordered_json* pools, array_field(j, "pools", kMaxPools));
  return std::vector<nlohmann::ordered_json>(pools->begin(), pools->end());
}
}  // namespace

Result<BackendPtr> make_backend(const PoolSpec& spec, const fs::path& log_dir) {
  if (spec.backend == BackendKind::kLocal) {
    LocalBackendOptions o;
    o.worker_binary = spec.worker_binary;
    o.worker_config = spec.worker_config;
    o.max_concurrency = spec.max_concurrency;
    o.memory_budget_mb = spec.memory_budget_mb;
    o.log_dir = log_dir;
    o.pool_name = spec.name;
    return BackendPtr(std::make_unique<LocalBackend>(std::move(o)));
  }
  // BackendKind::kOpenWhisk, the only other kind.
  OpenWhiskBackendOptions o;
  o.spec = spec.openwhisk;
  if (!spec.openwhisk.auth_file.empty()) {
    MOSS_ASSIGN_OR_RETURN(std::string auth, read_text_file(spec.openwhisk.auth_file, 4096));
    while (!auth.empty() && (auth.back() == '\n' || auth.back() == '\r' || auth.back() == ' ')) {
      auth.pop_back();
    }
    o.auth = std::move(auth);
  } else {
    o.auth = spec.openwhisk.auth;
  }
  o.max_concurrency = spec.max_concurrency;
  o.memory_mb = spec.memory_budget_mb;
  o.worker_config = spec.worker_config;
  o.request_timeout = std::chrono::milliseconds(spec.request_timeout_ms);
  MOSS_ASSIGN_OR_RETURN(auto backend, OpenWhiskBackend::create(std::move(o)));
  return BackendPtr(std::move(backend));
}

PoolManager::PoolManager(PoolManagerOptions options, const Clock& clock)
    : options_(std::move(options)), clock_(clock) {
  reaper_ = std::thread([this] { reap_loop(); });
}

PoolManager::~PoolManager() { shutdown(); }

void PoolManager::reap_loop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    cv_.wait_for(lock, options_.reap_interval);
    if (stopping_) break;
    std::vector<PoolPtr> pools;
    for (const auto& [name, p] : pools_) pools.push_back(p);
    lock.unlock();
    for (const PoolPtr& p : pools) p->reap_idle();
    lock.lock();
  }
}

Result<PoolPtr> PoolManager::create(const nlohmann::ordered_json& body) {
  MOSS_ASSIGN_OR_RETURN(PoolSpec spec, parse_pool_spec(body));
  {
    std::lock_guard lock(mu_);
    if (stopping_) return unavailable("the packer is shutting down");
    if (pools_.count(spec.name)) return already_exists("pool '{}' already exists", spec.name);
  }
  fs::path log_dir;
  if (!options_.state_dir.empty()) {
    log_dir = options_.state_dir / "workers";
    std::error_code ec;
    fs::create_directories(log_dir, ec);
    if (ec) return internal_error("cannot create {}: {}", log_dir.string(), ec.message());
  }
  MOSS_ASSIGN_OR_RETURN(BackendPtr backend, make_backend(spec, log_dir));
  StatsPriors priors;
  priors.half_life_ms = spec.stats_half_life_s * 1000.0;
  RoutingPolicyPtr policy = make_routing_policy(spec.policy, priors);
  auto pool = std::make_shared<Pool>(spec, std::move(backend), std::move(policy), clock_);
  std::lock_guard lock(mu_);
  if (pools_.count(spec.name)) return already_exists("pool '{}' already exists", spec.name);
  pools_[spec.name] = pool;
  MOSS_RETURN_IF_ERROR(save_locked());
  pool->ensure_min_instances();
  log::get("packer")->info("pool created name={} backend={} policy={} max_instances={}", spec.name,
                           backend_kind_name(spec.backend), policy_kind_name(spec.policy),
                           spec.max_instances);
  return pool;
}

Result<PoolPtr> PoolManager::get(std::string_view name) const {
  std::lock_guard lock(mu_);
  auto it = pools_.find(name);
  if (it == pools_.end()) return not_found("no pool named '{}'", name);
  return it->second;
}

std::vector<PoolPtr> PoolManager::list() const {
  std::lock_guard lock(mu_);
  std::vector<PoolPtr> out;
  for (const auto& [name, p] : pools_) out.push_back(p);
  return out;
}

Status PoolManager::remove(std::string_view name) {
  PoolPtr pool;
  {
    std::lock_guard lock(mu_);
    auto it = pools_.find(name);
    if (it == pools_.end()) return not_found("no pool named '{}'", name);
    pool = it->second;
    pools_.erase(it);
    MOSS_RETURN_IF_ERROR(save_locked());
  }
  pool->shutdown();
  log::get("packer")->info("pool deleted name={}", name);
  return Status::Ok();
}

Status PoolManager::save_locked() const {
  if (options_.state_dir.empty()) return Status::Ok();
  json pools = json::array();
  for (const auto& [name, p] : pools_) pools.push_back(p->spec().to_json(true));
  return write_text_file(options_.state_dir / "pools.json",
                         json{{"version", 1}, {"pools", pools}}.dump(2) + "\n", 0600);
}

Status PoolManager::load_state() {
  if (options_.state_dir.empty()) return Status::Ok();
  fs::path path = options_.state_dir / "pools.json";
  if (!fs::exists(path)) return Status::Ok();
  MOSS_ASSIGN_OR_RETURN(std::string text, read_text_file(path, kMaxStateFileBytes));
  // The file is the packer's own, but it sits on the operator's disk: read it as strictly as a
  // request (a duplicate key could say two things about one pool).
  auto pools = saved_pools(text);
  if (!pools.ok()) return data_loss("{} is not a pool list: {}", path.string(), pools.status().message());
  for (const auto& p : *pools) {
    auto created = create(p);
    if (!created.ok())
      return created.status().with_context("restoring pools from " + path.string());
  }
  return Status::Ok();
}

void PoolManager::shutdown() {
  std::map<std::string, PoolPtr, std::less<>> pools;
  {
    std::lock_guard lock(mu_);
    if (stopping_ && !reaper_.joinable()) return;
    stopping_ = true;
    pools.swap(pools_);
    cv_.notify_all();
  }
  if (reaper_.joinable()) reaper_.join();
  for (auto& [name, p] : pools) p->shutdown();
}

}  // namespace moss::packer
