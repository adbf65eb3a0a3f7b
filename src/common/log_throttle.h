// Rate limit for one kind of log line (a refusal, a failed request), so a flood of bad requests
// cannot turn into a flood of log output: at most `burst` lines pass per `interval`; the rest are
// counted, and the next line that passes reports how many were dropped (`suppressed=N`). Per-request
// outcomes belong in metrics; a throttled line is only the operator's hint that something repeats.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>

namespace moss::log {

class LogThrottle {
 public:
  using Clock = std::chrono::steady_clock;

  LogThrottle(int burst, std::chrono::milliseconds interval) : burst_(burst), interval_(interval) {}

  // Returns the count of lines suppressed since the last admitted one when this line may be
  // written, nullopt when it must be dropped (it is then counted). Thread-safe.
  std::optional<std::uint64_t> admit() { return admit_at(Clock::now()); }
  std::optional<std::uint64_t> admit_at(Clock::time_point now);

 private:
  const int burst_;
  const std::chrono::milliseconds interval_;
  std::mutex mutex_;
  Clock::time_point window_start_{};
  bool started_ = false;
  int passed_in_window_ = 0;
  std::uint64_t suppressed_ = 0;
};

}  // namespace moss::log
