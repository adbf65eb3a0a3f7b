// The lock of a stack's state directory (stack.lock, flock): held by the supervisor for its whole
// life, so there is one stack per directory and "is a stack running here" has a reliable answer
// (a pid file alone could name a recycled process id). Move-only; thread-compatible.
#pragma once

#include "common/status.h"

#include <filesystem>

namespace moss::client {

class StackLock {
 public:
  // Takes the lock without waiting; fails with already-exists (naming the supervisor's pid from
  // stack.pid and how to stop it) when another process holds it.
  static Result<StackLock> acquire(const std::filesystem::path& state_dir);
  StackLock(StackLock&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  StackLock& operator=(StackLock&&) = delete;
  ~StackLock();  // releases the lock

 private:
  explicit StackLock(int fd) : fd_(fd) {}
  int fd_;  // O_CLOEXEC: the services never inherit it, so it ends exactly with the supervisor
};

// True when some process holds the lock of `state_dir` now.
bool stack_lock_is_held(const std::filesystem::path& state_dir);

}  // namespace moss::client
