// KeyCache: released keys per (model, user) for a bounded lifetime, so a revoked grant stops
// working within `ttl` (the design's revocation bound) while warm requests skip the KeyService.
//
// Concurrent misses for one (model, user) share a single release call; errors are never cached
// (the next request asks again). Entries are wiped when they expire or are evicted. Thread-safe.
#pragma once

#include "worker/released_keys.h"

#include <chrono>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>

namespace moss::worker {

class KeyCache {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;

  // `max_entries` bounds memory: the entry closest to expiry is dropped first.
  KeyCache(KeySource& source, std::chrono::milliseconds ttl, size_t max_entries = 4096,
           Clock clock = nullptr);

  struct Lookup {
    std::shared_ptr<const ReleasedKeys> keys;
    bool hit = false;  // false: fetched (or waited for another request's fetch) now
  };
  Result<Lookup> get(std::string_view model_id, std::string_view user_id);

  // Drops every entry for `model_id` (e.g. its model file no longer decrypts: the key rotated).
  void invalidate_model(std::string_view model_id);
  size_t size() const;

 private:
  using Key = std::pair<std::string, std::string>;  // model, user
  struct Entry {
    std::shared_ptr<const ReleasedKeys> keys;
    std::chrono::steady_clock::time_point expires;
  };
  using Pending = std::shared_future<Result<std::shared_ptr<const ReleasedKeys>>>;

  std::chrono::steady_clock::time_point now() const;

  KeySource& source_;
  const std::chrono::milliseconds ttl_;
  const size_t max_entries_;
  const Clock clock_;
  mutable std::mutex mu_;
  std::map<Key, Entry> entries_;     // guarded by mu_
  std::map<Key, Pending> pending_;   // guarded by mu_: releases in flight
};

}  // namespace moss::worker
