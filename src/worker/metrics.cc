#include "worker/metrics.h"

#include <fmt/format.h>

namespace moss::worker {

void Histogram::observe(double ms) {
  size_t i = 0;
  while (i < kBoundsMs.size() && ms > kBoundsMs[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_us_.fetch_add(static_cast<uint64_t>(ms * 1000.0), std::memory_order_relaxed);
}

void Histogram::render(std::string& out, const std::string& name, const std::string& labels) const {
  const std::string sep = labels.empty() ? "" : ",";
  uint64_t cumulative = 0;
  for (size_t i = 0; i < kBoundsMs.size(); ++i) {
    cumulative += buckets_[i].load(std::memory_order_relaxed);
    out += fmt::format("{}_bucket{{{}{}le=\"{}\"}} {}\n", name, labels, sep, kBoundsMs[i] / 1000.0,
                       cumulative);
  }
  cumulative += buckets_[kBoundsMs.size()].load(std::memory_order_relaxed);
  out += fmt::format("{}_bucket{{{}{}le=\"+Inf\"}} {}\n", name, labels, sep, cumulative);
  const std::string braces = labels.empty() ? "" : "{" + labels + "}";
  out += fmt::format("{}_sum{} {}\n", name, braces, sum_us_.load(std::memory_order_relaxed) / 1e6);
  out += fmt::format("{}_count{} {}\n", name, braces, count_.load(std::memory_order_relaxed));
}

void Metrics::record_success(const std::string& endpoint, protocol::RunKind kind, const Timing& t) {
  {
    std::lock_guard lock(mu_);
    ++requests_[{endpoint, "ok"}];
    ++runs_[static_cast<size_t>(kind)];
  }
  total_.observe(t.total_ms);
  key_fetch_.observe(t.key_fetch_ms);
  model_fetch_.observe(t.model_fetch_ms);
  decrypt_.observe(t.decrypt_ms);
  compile_.observe(t.compile_ms);
  inference_.observe(t.inference_ms);
  encrypt_.observe(t.encrypt_ms);
}

void Metrics::record_error(const std::string& endpoint, std::string_view code, double total_ms,
                           std::string_view category) {
  std::lock_guard lock(mu_);
  ++requests_[{endpoint, "error"}];
  ++errors_[std::string(code)];
  if (!category.empty()) ++sealed_errors_[std::string(category)];
  (void)total_ms;
}

void Metrics::record_key_lookup(bool hit) { (hit ? key_hits_ : key_misses_).fetch_add(1); }

std::string Metrics::render(const ModelCache::Snapshot& cache, size_t in_flight) const {
  std::string out;
  {
    std::lock_guard lock(mu_);
    out += "# HELP moss_worker_requests_total Inference requests by endpoint and outcome.\n";
    out += "# TYPE moss_worker_requests_total counter\n";
    for (const auto& [k, v] : requests_) {
      out += fmt::format("moss_worker_requests_total{{endpoint=\"{}\",outcome=\"{}\"}} {}\n", k.first,
                         k.second, v);
    }
    out += "# HELP moss_worker_errors_total Failed requests by error code.\n";
    out += "# TYPE moss_worker_errors_total counter\n";
    for (const auto& [code, v] : errors_) {
      out += fmt::format("moss_worker_errors_total{{code=\"{}\"}} {}\n", code, v);
    }
    out += "# HELP moss_worker_sealed_errors_total Failed opened requests (detail sealed for the user) by category.\n";
    out += "# TYPE moss_worker_sealed_errors_total counter\n";
    for (const auto& [category, v] : sealed_errors_) {
      out += fmt::format("moss_worker_sealed_errors_total{{category=\"{}\"}} {}\n", category, v);
    }
    out += "# HELP moss_worker_runs_total Successful requests by run kind.\n";
    out += "# TYPE moss_worker_runs_total counter\n";
    for (protocol::RunKind k : {protocol::RunKind::kCold, protocol::RunKind::kSwitch, protocol::RunKind::kWarm}) {
      out += fmt::format("moss_worker_runs_total{{kind=\"{}\"}} {}\n", protocol::run_kind_name(k),
                         runs_[static_cast<size_t>(k)]);
    }
  }
  out += "# HELP moss_worker_request_duration_seconds Request latency by phase.\n";
  out += "# TYPE moss_worker_request_duration_seconds histogram\n";
  const std::string h = "moss_worker_request_duration_seconds";
  total_.render(out, h, "phase=\"total\"");
  key_fetch_.render(out, h, "phase=\"key_fetch\"");
  model_fetch_.render(out, h, "phase=\"model_fetch\"");
  decrypt_.render(out, h, "phase=\"decrypt\"");
  compile_.render(out, h, "phase=\"compile\"");
  inference_.render(out, h, "phase=\"inference\"");
  encrypt_.render(out, h, "phase=\"encrypt\"");
  out += "# TYPE moss_worker_key_cache_hits_total counter\n";
  out += fmt::format("moss_worker_key_cache_hits_total {}\n", key_hits_.load());
  out += "# TYPE moss_worker_key_cache_misses_total counter\n";
  out += fmt::format("moss_worker_key_cache_misses_total {}\n", key_misses_.load());
  out += "# TYPE moss_worker_model_cache_hits_total counter\n";
  out += fmt::format("moss_worker_model_cache_hits_total {}\n", cache.hits);
  out += "# TYPE moss_worker_model_cache_misses_total counter\n";
  out += fmt::format("moss_worker_model_cache_misses_total {}\n", cache.misses);
  out += "# TYPE moss_worker_model_loads_total counter\n";
  out += fmt::format("moss_worker_model_loads_total {}\n", cache.loads);
  out += "# TYPE moss_worker_model_load_failures_total counter\n";
  out += fmt::format("moss_worker_model_load_failures_total {}\n", cache.load_failures);
  out += "# HELP moss_worker_model_load_failures_remembered_total Requests answered by a recent failed load (no reload).\n";
  out += "# TYPE moss_worker_model_load_failures_remembered_total counter\n";
  out += fmt::format("moss_worker_model_load_failures_remembered_total {}\n", cache.failures_remembered);
  out += "# HELP moss_worker_log_lines_suppressed_total Repeated log lines dropped by rate limiting.\n";
  out += "# TYPE moss_worker_log_lines_suppressed_total counter\n";
  out += fmt::format("moss_worker_log_lines_suppressed_total {}\n", log_suppressed_.load());
  out += "# TYPE moss_worker_model_evictions_total counter\n";
  out += fmt::format("moss_worker_model_evictions_total {}\n", cache.evictions);
  out += "# HELP moss_worker_resident_models Models compiled and resident.\n";
  out += "# TYPE moss_worker_resident_models gauge\n";
  out += fmt::format("moss_worker_resident_models {}\n", cache.models.size());
  out += "# HELP moss_worker_resident_bytes Weights plus execution-context arenas.\n";
  out += "# TYPE moss_worker_resident_bytes gauge\n";
  out += fmt::format("moss_worker_resident_bytes {}\n", cache.used_bytes);
  out += "# TYPE moss_worker_memory_budget_bytes gauge\n";
  out += fmt::format("moss_worker_memory_budget_bytes {}\n", cache.budget_bytes);
  out += "# TYPE moss_worker_in_flight gauge\n";
  out += fmt::format("moss_worker_in_flight {}\n", in_flight);
  return out;
}

}  // namespace moss::worker
