#include "worker/replay_cache.h"

#include <algorithm>

namespace moss::worker {

namespace {
std::string key_of(std::string_view user_id, std::string_view model_id, std::string_view request_id) {
  std::string k;
  k.reserve(user_id.size() + model_id.size() + request_id.size() + 2);
  k.append(user_id).push_back('\n');
  k.append(model_id).push_back('\n');
  k.append(request_id);
  return k;
}
}  // namespace

ReplayCache::ReplayCache(std::chrono::milliseconds window, size_t max_entries, Clock clock)
    : window_(window), max_entries_(std::max<size_t>(1, max_entries)), clock_(std::move(clock)) {}

std::chrono::steady_clock::time_point ReplayCache::now() const {
  return clock_ ? clock_() : std::chrono::steady_clock::now();
}

bool ReplayCache::first_use(std::string_view user_id, std::string_view model_id, std::string_view request_id) {
  if (window_.count() <= 0) return true;
  std::string key = key_of(user_id, model_id, request_id);
  const auto t = now();
  std::lock_guard lock(mu_);
  // Expired or over the bound, oldest first. A queue entry whose key was forgotten or recorded
  // again later is stale: only the map's time counts.
  while (!order_.empty() && (order_.front().second + window_ <= t || seen_.size() >= max_entries_ ||
                             order_.size() >= 2 * max_entries_)) {
    auto it = seen_.find(order_.front().first);
    if (it != seen_.end() && it->second == order_.front().second) seen_.erase(it);
    order_.pop_front();
  }
  auto [it, inserted] = seen_.try_emplace(key, t);
  if (!inserted) {
    if (it->second + window_ > t) return false;
    it->second = t;
  }
  order_.emplace_back(std::move(key), t);
  return true;
}

void ReplayCache::forget(std::string_view user_id, std::string_view model_id, std::string_view request_id) {
  std::lock_guard lock(mu_);
  seen_.erase(key_of(user_id, model_id, request_id));
}

size_t ReplayCache::size() const {
  std::lock_guard lock(mu_);
  return seen_.size();
}

}  // namespace moss::worker
