#include "packer/routing_policy.h"

#include <algorithm>
#include <cstdlib>

#include "packer/moss_policy.h"
#include "packer/original_policy.h"

namespace moss::packer {

const InstanceView* PoolView::find(std::string_view id) const {
  for (const InstanceView& i : instances) {
    if (i.id == id) return &i;
  }
  return nullptr;
}

void PoolView::index(uint32_t pos) {
  const InstanceView& v = instances[pos];
  for (const ResidentModel& m : v.models) {
    auto it = holders_.find(m.model_id);
    if (it == holders_.end()) it = holders_.emplace(m.model_id, std::vector<uint32_t>()).first;
    if (std::find(it->second.begin(), it->second.end(), pos) == it->second.end()) {
      it->second.push_back(pos);
    }
  }
  planned_[pos] = planned_bytes(v);
  planned_total_ += planned_[pos];
  by_load_.emplace(v.in_flight, planned_[pos], pos);
}

void PoolView::unindex(uint32_t pos) {
  const InstanceView& v = instances[pos];
  for (const ResidentModel& m : v.models) {
    auto it = holders_.find(m.model_id);
    if (it == holders_.end()) continue;
    std::erase(it->second, pos);
    if (it->second.empty()) holders_.erase(it);
  }
  by_load_.erase({v.in_flight, planned_[pos], pos});
  planned_total_ -= planned_[pos];
  planned_[pos] = 0;
}

void PoolView::reindex() {
  holders_.clear();
  by_load_.clear();
  planned_.assign(instances.size(), 0);
  planned_total_ = 0;
  for (size_t i = 0; i < instances.size(); ++i) index(static_cast<uint32_t>(i));
  indexed_ = true;
}

void PoolView::add(InstanceView v) {
  if (!indexed()) reindex();
  instances.push_back(std::move(v));
  planned_.push_back(0);
  index(static_cast<uint32_t>(instances.size() - 1));
}

void PoolView::set(size_t pos, InstanceView v) {
  if (!indexed()) reindex();
  unindex(static_cast<uint32_t>(pos));
  instances[pos] = std::move(v);
  index(static_cast<uint32_t>(pos));
}

void PoolView::erase(size_t pos) {
  // Positions after it shift: rebuilt (an instance stopping is rare next to decisions).
  instances.erase(instances.begin() + static_cast<std::ptrdiff_t>(pos));
  reindex();
}

void PoolView::clear() {
  instances.clear();
  reindex();
}

const std::vector<uint32_t>* PoolView::holders(std::string_view model_id) const {
  auto it = holders_.find(model_id);
  return it == holders_.end() ? nullptr : &it->second;
}

uint64_t PoolView::planned_total() const {
  if (indexed()) return planned_total_;
  uint64_t sum = 0;
  for (const InstanceView& inst : instances) sum += planned_bytes(inst);
  return sum;
}

uint64_t planned_bytes(const InstanceView& inst) {
  uint64_t sum = 0;
  for (const ResidentModel& m : inst.models) sum += m.bytes;
  return std::max(sum, inst.memory_used_bytes);
}

std::string_view decision_name(DecisionKind kind) {
  switch (kind) {
    case DecisionKind::kWarm:
      return "warm";
    case DecisionKind::kSwitch:
      return "switch";
    case DecisionKind::kStarting:
      return "starting";
    case DecisionKind::kCold:
      return "cold";
    case DecisionKind::kQueue:
      return "queue";
    case DecisionKind::kReject:
      return "reject";
  }
  return "?";
}

void RoutingPolicy::on_arrival(std::string_view model_id, TimeMs now) {
  stats_.add_arrival(model_id, now);
}

void RoutingPolicy::learn_size(std::string_view model_id, uint64_t bytes) {
  ModelStats& m = stats_.model(model_id);
  if (m.bytes == 0) m.bytes = bytes;
}

void RoutingPolicy::on_dispatch(std::string_view, std::string_view, TimeMs) {}

void RoutingPolicy::on_complete(const Completion& c) {
  if (!c.ok) return;
  stats_.add_service(c.model_id, c.inference_ms, c.now);
  if (c.run == protocol::RunKind::kCold || c.run == protocol::RunKind::kSwitch) {
    stats_.add_load(c.model_id, c.load_ms, c.now);
  }
  ModelStats& m = stats_.model(c.model_id);
  m.last_exec_ms = c.inference_ms;
  m.last_finish_ms = c.now;
  if (c.model_bytes > 0) m.bytes = c.model_bytes;
}

void RoutingPolicy::on_instance_started(std::string_view, double start_ms, TimeMs now) {
  stats_.cold_start().add(start_ms, now);
}

void RoutingPolicy::on_instance_stopped(std::string_view) {}

TimeMs RoutingPolicy::keep_until(const InstanceView& inst, TimeMs idle_timeout_ms) const {
  return inst.last_used_ms + idle_timeout_ms;
}

RoutingPolicyPtr make_routing_policy(PolicyKind kind, StatsPriors priors) {
  switch (kind) {
    case PolicyKind::kMoss:
      return std::make_unique<MossPolicy>(priors);
    case PolicyKind::kOriginal:
      return std::make_unique<OriginalPolicy>(priors);
    case PolicyKind::kOriginalQueue:
      return std::make_unique<OriginalPolicy>(priors, /*queue_when_busy=*/true);
  }
  std::abort();  // every PolicyKind is handled above

}

}  // namespace moss::packer
