// KeyCache: released keys per (model, user) for a bounded lifetime, so a revoked grant stops
// working within `ttl` (the design's revocation bound) while warm requests skip the KeyService.
//
// Concurrent misses for one (model, user) share a single release call. The user id of a request is
// only claimed (nothing is authenticated before the keys are here), so a miss is guarded:
//  - the caller checks what it can first (InferenceService parses the whole envelope before it
//    asks; `before_fetch` runs a check only on a miss), so junk never reaches the KeyService;
//  - refusals (permission-denied, not-found) are remembered per (model, user) for `refusal_ttl`;
//  - KeyService calls per claimed user are rate-limited (a token bucket of `user_burst`, refilled
//    at `user_refill_per_s`), so junk naming a victim cannot make the worker flood the KeyService
//    on the victim's behalf nor crowd out other users; beyond it: resource-exhausted.
// Other errors (KeyService unreachable) are not cached. Entries are wiped when they expire or are
// evicted. Thread-safe.
#pragma once

#include "worker/released_keys.h"

#include <chrono>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>

namespace moss::worker {

// Out of the class so it can be a default argument of KeyCache's constructor.
struct KeyCacheLimits {
  std::chrono::milliseconds refusal_ttl{5'000};
  double user_burst = 10;
  double user_refill_per_s = 1;
};

class KeyCache {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;

  using Limits = KeyCacheLimits;
  // `max_entries` bounds memory: the entry closest to expiry is dropped first.
  KeyCache(KeySource& source, std::chrono::milliseconds ttl, size_t max_entries = 4096,
           Clock clock = nullptr, Limits limits = {});

  struct Lookup {
    std::shared_ptr<const ReleasedKeys> keys;
    bool hit = false;  // false: fetched (or waited for another request's fetch) now
  };
  // `before_fetch` runs only when the KeyService would be asked; its error is returned as is.
  Result<Lookup> get(std::string_view model_id, std::string_view user_id,
                     const std::function<Status()>& before_fetch = nullptr);

  size_t size() const;

 private:
  using Key = std::pair<std::string, std::string>;  // model, user
  struct Entry {
    std::shared_ptr<const ReleasedKeys> keys;
    std::chrono::steady_clock::time_point expires;
  };
  using Pending = std::shared_future<Result<std::shared_ptr<const ReleasedKeys>>>;

  std::chrono::steady_clock::time_point now() const;
  // Lock held: takes one KeyService call from `user_id`'s bucket; false when it is empty.
  bool take_user_token(const std::string& user_id);

  KeySource& source_;
  const std::chrono::milliseconds ttl_;
  const size_t max_entries_;
  const Clock clock_;
  const Limits limits_;
  mutable std::mutex mu_;
  std::map<Key, Entry> entries_;     // guarded by mu_
  std::map<Key, Pending> pending_;   // guarded by mu_: releases in flight
  struct Refusal {
    Status status;
    std::chrono::steady_clock::time_point until;
  };
  std::map<Key, Refusal> refusals_;  // guarded by mu_
  struct Bucket {
    double tokens = 0;
    std::chrono::steady_clock::time_point at;
  };
  std::map<std::string, Bucket> buckets_;  // guarded by mu_: per claimed user
};

}  // namespace moss::worker
