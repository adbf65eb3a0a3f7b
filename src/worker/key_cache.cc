#include "worker/key_cache.h"

#include <algorithm>

namespace moss::worker {

KeyCache::KeyCache(KeySource& source, std::chrono::milliseconds ttl, size_t max_entries, Clock clock,
                   Limits limits)
    : source_(source),
      ttl_(ttl),
      max_entries_(std::max<size_t>(1, max_entries)),
      clock_(std::move(clock)),
      limits_(limits) {}

bool KeyCache::take_user_token(const std::string& user_id) {
  const auto t = now();
  auto it = buckets_.find(user_id);
  if (it == buckets_.end()) {
    if (buckets_.size() >= max_entries_) {
      auto tokens_now = [&](const Bucket& b) {
        return b.tokens + std::chrono::duration<double>(t - b.at).count() * limits_.user_refill_per_s;
      };
      // Full buckets carry no state worth keeping: forget them first.
      std::erase_if(buckets_, [&](const auto& b) { return tokens_now(b.second) >= limits_.user_burst; });
      // Then the fullest: a drained bucket (a user being limited) is dropped last, so a flood of
      // fresh names, each of which leaves a nearly full bucket, cannot reset it.
      if (buckets_.size() >= max_entries_) {
        buckets_.erase(std::max_element(buckets_.begin(), buckets_.end(), [&](const auto& a, const auto& b) {
          return tokens_now(a.second) < tokens_now(b.second);
        }));
      }
    }
    it = buckets_.emplace(user_id, Bucket{limits_.user_burst, t}).first;
  }
  Bucket& b = it->second;
  b.tokens = std::min(limits_.user_burst,
                      b.tokens + std::chrono::duration<double>(t - b.at).count() * limits_.user_refill_per_s);
  b.at = t;
  if (b.tokens < 1) return false;
  b.tokens -= 1;
  return true;
}

std::chrono::steady_clock::time_point KeyCache::now() const {
  return clock_ ? clock_() : std::chrono::steady_clock::now();
}

Result<KeyCache::Lookup> KeyCache::get(std::string_view model_id, std::string_view user_id,
                                       const std::function<Status()>& before_fetch) {
  Key key{std::string(model_id), std::string(user_id)};
  std::promise<Result<std::shared_ptr<const ReleasedKeys>>> promise;
  Pending wait_on;
  for (bool checked = !before_fetch;; checked = true) {
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
        break;
      }
      if (auto r = refusals_.find(key); r != refusals_.end()) {
        if (now() < r->second.until) return r->second.status;
        refusals_.erase(r);
      }
      if (checked) {
        if (!take_user_token(key.second)) {
          return resource_exhausted("too many key requests for user {} at this worker; retry shortly",
                                    user_id);
        }
        pending_.emplace(key, promise.get_future().share());
        break;
      }
    }
    // Outside the lock (it may read a whole envelope); then look again.
    MOSS_RETURN_IF_ERROR(before_fetch());
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
    if (!result.ok() && (result.status().code() == ErrorCode::kPermissionDenied ||
                         result.status().code() == ErrorCode::kNotFound) &&
        limits_.refusal_ttl.count() > 0) {
      if (refusals_.size() >= max_entries_) {
        const auto t = now();
        std::erase_if(refusals_, [&](const auto& r) { return r.second.until <= t; });
        if (refusals_.size() >= max_entries_) refusals_.erase(refusals_.begin());
      }
      refusals_[key] = Refusal{result.status(), now() + limits_.refusal_ttl};
    }
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

size_t KeyCache::size() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

}  // namespace moss::worker
