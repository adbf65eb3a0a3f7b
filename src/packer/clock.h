// Clock: the packer's one source of time, injected so routing and statistics are deterministic
// in tests. Times are milliseconds as double from an arbitrary epoch (steady, never wall time).
#pragma once

#include <atomic>
#include <chrono>

namespace moss::packer {

using TimeMs = double;

// Thread-safe implementations only.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimeMs now_ms() const = 0;
};

class SteadyClock final : public Clock {
 public:
  TimeMs now_ms() const override {
    return std::chrono::duration<double, std::milli>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
};

// A clock that moves only when told to (tests). Thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(TimeMs start = 0) : now_(start) {}
  TimeMs now_ms() const override { return now_.load(); }
  void advance(TimeMs ms) { now_.store(now_.load() + ms); }
  void set(TimeMs ms) { now_.store(ms); }

 private:
  std::atomic<double> now_;
};

}  // namespace moss::packer
