// ReplayCache: request envelopes this worker has already opened, so a replayed one (the same
// user, model and request id: the envelope's authenticated header) is refused instead of being run
// again, within a window and up to a bound (docs/worker.md, "Replayed requests").
//
// What it cannot see, and why: a replay older than the window or pushed out by `max_entries`
// newer requests, and a replay sent to another worker instance. Instances are ephemeral and share
// no state, and the envelope carries no time the worker could check (the request key is
// long-lived), so replay protection is best-effort per instance; a response to a replay is still
// sealed for the user only. Thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace moss::worker {

class ReplayCache {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;
  ReplayCache(std::chrono::milliseconds window, size_t max_entries, Clock clock = nullptr);

  // Records (user, model, request id); false when it is already recorded within the window.
  bool first_use(std::string_view user_id, std::string_view model_id, std::string_view request_id);
  // Forgets it (the request failed before it ran, so the client may retry with the same envelope).
  void forget(std::string_view user_id, std::string_view model_id, std::string_view request_id);
  size_t size() const;

 private:
  std::chrono::steady_clock::time_point now() const;
  const std::chrono::milliseconds window_;
  const size_t max_entries_;
  const Clock clock_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, std::chrono::steady_clock::time_point> seen_;  // guarded by mu_
  std::deque<std::pair<std::string, std::chrono::steady_clock::time_point>> order_;  // guarded by mu_
};

}  // namespace moss::worker
