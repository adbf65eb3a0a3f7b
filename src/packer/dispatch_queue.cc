#include "packer/dispatch_queue.h"

#include <algorithm>
#include <iterator>

namespace moss::packer {

void DispatchQueue::push(Id id, std::string_view model_id, TimeMs deadline_ms) {
  auto [it, fresh] = entries_.emplace(id, Entry{std::string(model_id), deadline_ms});
  if (!fresh) return;
  auto m = per_model_.find(model_id);
  if (m == per_model_.end()) m = per_model_.emplace(std::string(model_id), std::set<Id>()).first;
  m->second.insert(id);
  by_deadline_.emplace(deadline_ms, id);
}

void DispatchQueue::remove(Id id) {
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  auto m = per_model_.find(it->second.model_id);
  if (m != per_model_.end()) {
    m->second.erase(id);
    if (m->second.empty()) per_model_.erase(m);
  }
  by_deadline_.erase({it->second.deadline_ms, id});
  entries_.erase(it);
}

size_t DispatchQueue::size_for(std::string_view model_id) const {
  auto m = per_model_.find(model_id);
  return m == per_model_.end() ? 0 : m->second.size();
}

size_t DispatchQueue::ahead_of(Id id) const {
  auto it = entries_.find(id);
  if (it == entries_.end()) return 0;
  auto m = per_model_.find(it->second.model_id);
  if (m == per_model_.end()) return 0;
  return static_cast<size_t>(std::distance(m->second.begin(), m->second.lower_bound(id)));
}

std::optional<DispatchQueue::Id> DispatchQueue::next_for(std::span<const std::string_view> resident,
                                                         std::span<const Id> skip,
                                                         TimeMs now) const {
  auto skipped = [&](Id id) { return std::find(skip.begin(), skip.end(), id) != skip.end(); };
  for (const auto& [deadline, id] : by_deadline_) {
    if (deadline > now + kUrgentMs) break;
    if (!skipped(id)) return id;
  }
  std::optional<Id> best;
  for (std::string_view model : resident) {
    auto m = per_model_.find(model);
    if (m == per_model_.end()) continue;
    for (Id id : m->second) {
      if (skipped(id)) continue;
      if (!best || id < *best) best = id;
      break;
    }
  }
  if (best) return best;
  for (const auto& [id, e] : entries_) {
    if (!skipped(id)) return id;
  }
  return std::nullopt;
}

std::vector<DispatchQueue::Id> DispatchQueue::heads() const {
  std::vector<Id> out;
  out.reserve(per_model_.size());
  for (const auto& [model, ids] : per_model_) out.push_back(*ids.begin());
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<DispatchQueue::Id> DispatchQueue::expired(TimeMs now) const {
  std::vector<Id> out;
  for (const auto& [deadline, id] : by_deadline_) {
    if (deadline > now) break;
    out.push_back(id);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string_view DispatchQueue::model_of(Id id) const {
  auto it = entries_.find(id);
  return it == entries_.end() ? std::string_view() : std::string_view(it->second.model_id);
}

}  // namespace moss::packer
