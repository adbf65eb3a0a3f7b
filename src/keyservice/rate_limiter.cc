#include "keyservice/rate_limiter.h"

#include <algorithm>

namespace moss::keyservice {

bool RateLimiter::allow(const std::string& key, Clock::time_point now) {
  if (rate_ <= 0) return true;
  std::lock_guard lock(mu_);
  const auto full_after = std::chrono::duration<double>(burst_ / rate_);
  if (now - last_sweep_ > std::chrono::seconds(60)) {
    std::erase_if(buckets_, [&](const auto& kv) { return now - kv.second.last > full_after; });
    last_sweep_ = now;
  }
  auto [it, inserted] = buckets_.try_emplace(key, Bucket{burst_, now});
  Bucket& b = it->second;
  double elapsed = std::chrono::duration<double>(now - b.last).count();
  b.tokens = std::min(burst_, b.tokens + std::max(0.0, elapsed) * rate_);
  b.last = now;
  if (b.tokens < 1.0) return false;
  b.tokens -= 1.0;
  return true;
}

}  // namespace moss::keyservice
