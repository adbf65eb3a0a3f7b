// Per-principal rate limits: one token bucket per key (principal id, or worker certificate).
// A key refills at `rate_per_s` up to `burst`; a request takes one token or is refused (429).
// Buckets idle long enough to be full are dropped, so memory stays bounded by active callers.
// Thread-safe.
#pragma once

#include <chrono>
#include <mutex>
#include <string>
#include <unordered_map>

namespace moss::keyservice {

class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;
  RateLimiter(double rate_per_s, double burst) : rate_(rate_per_s), burst_(burst) {}

  // True when the request may proceed. A rate of 0 disables limiting.
  bool allow(const std::string& key, Clock::time_point now = Clock::now());

 private:
  struct Bucket {
    double tokens;
    Clock::time_point last;
  };
  const double rate_;
  const double burst_;
  std::mutex mu_;
  std::unordered_map<std::string, Bucket> buckets_;  // guarded by mu_
  Clock::time_point last_sweep_{};                   // guarded by mu_
};

}  // namespace moss::keyservice
