// Worker metrics in the Prometheus text format (GET /metrics): requests, errors by code, latency
// histograms per phase, key and model cache hits and misses, resident models and bytes.
// Thread-safe; recording is a few atomic adds or one short lock.
#pragma once

#include "worker/model_cache.h"

#include <array>
#include <atomic>
#include <map>
#include <mutex>
#include <string>

namespace moss::worker {

class Histogram {
 public:
  static constexpr std::array<double, 14> kBoundsMs = {1,   2.5, 5,    10,   25,   50,    100,
                                                       250, 500, 1000, 2500, 5000, 10000, 30000};
  void observe(double ms);
  // Appends the series `name` (seconds, as Prometheus expects) with `labels` ("" or `a="b"`).
  void render(std::string& out, const std::string& name, const std::string& labels) const;

 private:
  std::array<std::atomic<uint64_t>, kBoundsMs.size() + 1> buckets_{};
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_us_{0};
};

struct Timing {
  double key_fetch_ms = 0, model_fetch_ms = 0, decrypt_ms = 0, compile_ms = 0, inference_ms = 0,
         encrypt_ms = 0, total_ms = 0;
};

class Metrics {
 public:
  // One finished request on `endpoint` ("infer" or "run"): ok with its timing and kind, or the
  // error code name.
  void record_success(const std::string& endpoint, protocol::RunKind kind, const Timing& timing);
  // `category`: set for an opened request whose error was sealed (protocol/error_category.h).
  void record_error(const std::string& endpoint, std::string_view code, double total_ms,
                    std::string_view category = {});
  // Log lines a LogThrottle dropped (the failures themselves are counted above).
  void record_log_suppressed(uint64_t n) { log_suppressed_.fetch_add(n); }
  void record_key_lookup(bool hit);

  std::string render(const ModelCache::Snapshot& cache, size_t in_flight) const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, std::string>, uint64_t> requests_;  // (endpoint, outcome)
  std::map<std::string, uint64_t> errors_;                            // by code
  std::map<std::string, uint64_t> sealed_errors_;                     // by category
  std::array<uint64_t, 3> runs_{};                                    // by protocol::RunKind
  std::atomic<uint64_t> key_hits_{0}, key_misses_{0}, log_suppressed_{0};
  Histogram total_, key_fetch_, model_fetch_, decrypt_, compile_, inference_, encrypt_;
};

}  // namespace moss::worker
