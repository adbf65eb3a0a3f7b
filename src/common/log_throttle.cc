#include "common/log_throttle.h"

namespace moss::log {

std::optional<std::uint64_t> LogThrottle::admit_at(Clock::time_point now) {
  std::lock_guard lock(mutex_);
  if (!started_ || now - window_start_ >= interval_) {
    started_ = true;
    window_start_ = now;
    passed_in_window_ = 0;
  }
  if (passed_in_window_ >= burst_) {
    ++suppressed_;
    return std::nullopt;
  }
  ++passed_in_window_;
  std::uint64_t dropped = suppressed_;
  suppressed_ = 0;
  return dropped;
}

}  // namespace moss::log
