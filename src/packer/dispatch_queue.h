// DispatchQueue: the requests of one pool that wait for an instance, one FIFO per model.
//
// When a request finishes, its slot goes to the next queued request it suits (the oldest one for
// a model the instance holds, else the oldest of all) instead of every waiter routing again: with
// a long queue, waking everyone made each completion cost a decision per waiter (quadratic in a
// burst). The policy prices a queued option by the real backlog ahead (size_for). Ids are given
// in arrival order, so "oldest" is the smallest id; every request of a pool has the same kind of
// deadline (arrival + wait limit), so FIFO order is also close to earliest-deadline order, and
// expired() finds the ones whose deadline passed.
// Shared by Pool (threads waiting) and the simulation bench. Not thread-safe (under the pool lock).
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "packer/clock.h"

namespace moss::packer {

class DispatchQueue {
 public:
  using Id = uint64_t;

  // `id` must be larger than every id pushed before (arrival order).
  void push(Id id, std::string_view model_id, TimeMs deadline_ms);
  void remove(Id id);
  bool contains(Id id) const { return entries_.count(id) > 0; }
  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  // Requests queued for the model (all of them ahead of a newcomer).
  size_t size_for(std::string_view model_id) const;
  // Requests of the same model queued ahead of `id`.
  size_t ahead_of(Id id) const;

  // The request a slot freed on an instance holding `resident` models suits best: the one with
  // the earliest deadline if that is within kUrgentMs of `now`, else the oldest one queued for a
  // resident model, else the oldest of all; nullopt when the queue is empty. Without the first
  // rule a request for a rare model starved behind a hot model's burst (every freed slot went to
  // the hot model's queue) until it failed. `skip`: ids already offered this slot (they chose to
  // keep waiting).
  std::optional<Id> next_for(std::span<const std::string_view> resident,
                             std::span<const Id> skip = {},
                             TimeMs now = -std::numeric_limits<double>::infinity()) const;
  // How close to its deadline a request goes ahead of affinity: room for a model switch (a load)
  // and a service time.
  static constexpr TimeMs kUrgentMs = 2'000;
  // The head (oldest request) of each model's queue, oldest first.
  std::vector<Id> heads() const;
  // Requests whose deadline is at or before `now`, oldest first.
  std::vector<Id> expired(TimeMs now) const;
  // The model a queued request is for ("" if not queued).
  std::string_view model_of(Id id) const;

 private:
  struct Entry {
    std::string model_id;
    TimeMs deadline_ms;
  };
  std::map<Id, Entry> entries_;                           // oldest first
  std::map<std::string, std::set<Id>, std::less<>> per_model_;  // never holds an empty set
  std::set<std::pair<TimeMs, Id>> by_deadline_;
};

}  // namespace moss::packer
