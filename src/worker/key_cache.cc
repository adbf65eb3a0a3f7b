#include "worker/key_cache.h"

namespace moss::worker {

KeyCache::KeyCache(KeySource& source, std::chrono::milliseconds ttl, size_t max_entries, Clock clock)
    : source_(source), ttl_(ttl), max_entries_(std::max<size_t>(1, max_entries)), clock_(std::move(clock)) {}

std::chrono::steady_clock::time_point KeyCache::now() const {
  return clock_ ? clock_() : std::chrono::steady_clock::now();
}

Result<KeyCache::Lookup> KeyCache::get(std::string_view model_id, std::string_view user_id) {
  Key key{std::string(model_id), std::string(user_id)};
  std::promise<Result<std::shared_ptr<const ReleasedKeys>>> promise;
  Pending wait_on;
  {
    std::lock_guard lock(mu_);
    auto it = entries_.find(key);
    if (it != entries_.end()) {
      if (now() < it->second.expires) return Lookup{it->second.keys, true};
      entries_.erase(it);  // expired: the keys are freed (and wiped) with the last reference
    }
    auto p = pending_.find(key);
    if (p != pending_.end()) {
      wait_on = p->second;
    } else {
      pending_.emplace(key, promise.get_future().share());
    }
  }
  if (wait_on.valid()) {
    auto r = wait_on.get();
    if (!r.ok()) return r.status();
    return Lookup{*r, false};
  }

  auto released = source_.release(model_id, user_id);
  Result<std::shared_ptr<const ReleasedKeys>> result =
      released.ok() ? Result<std::shared_ptr<const ReleasedKeys>>(
                          std::make_shared<const ReleasedKeys>(std::move(released).value()))
                    : Result<std::shared_ptr<const ReleasedKeys>>(released.status());
  {
    std::lock_guard lock(mu_);
    if (result.ok() && ttl_.count() > 0) {
      if (entries_.size() >= max_entries_) {
        auto victim = entries_.begin();
        for (auto it = entries_.begin(); it != entries_.end(); ++it) {
          if (it->second.expires < victim->second.expires) victim = it;
        }
        entries_.erase(victim);
      }
      entries_[key] = Entry{*result, now() + ttl_};
    }
    pending_.erase(key);
  }
  promise.set_value(result);
  if (!result.ok()) return result.status();
  return Lookup{*result, false};
}

void KeyCache::invalidate_model(std::string_view model_id) {
  std::lock_guard lock(mu_);
  for (auto it = entries_.begin(); it != entries_.end();) {
    it = it->first.first == model_id ? entries_.erase(it) : std::next(it);
  }
}

size_t KeyCache::size() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

}  // namespace moss::worker
