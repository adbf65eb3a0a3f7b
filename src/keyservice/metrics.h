// Counters behind GET /metrics (Prometheus text format 0.0.4). Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>

namespace moss::keyservice {

class Metrics {
 public:
  void count_request(const std::string& endpoint, int status);
  std::atomic<uint64_t> releases{0};
  std::atomic<uint64_t> release_denied{0};
  std::atomic<uint64_t> rate_limited{0};
  std::atomic<uint64_t> integrity_errors{0};
  std::atomic<uint64_t> connection_attestations{0};          // fresh evidence verified
  std::atomic<uint64_t> connection_attestations_refused{0};  // fresh evidence that did not verify  // stored values that did not unseal/authenticate

  std::string render(uint64_t audit_events, size_t connections_open) const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;  // guarded by mu_
};

}  // namespace moss::keyservice
