#include "packer/routing_policy.h"

#include <algorithm>

#include "packer/moss_policy.h"
#include "packer/original_policy.h"

namespace moss::packer {

const InstanceView* PoolView::find(std::string_view id) const {
  for (const InstanceView& i : instances) {
    if (i.id == id) return &i;
  }
  return nullptr;
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
  ModelStats& m = stats_.model(c.model_id);
  m.service_ms.add(c.inference_ms, c.now);
  m.last_exec_ms = c.inference_ms;
  m.last_finish_ms = c.now;
  if (c.run == "cold" || c.run == "switch") m.load_ms.add(c.load_ms, c.now);
  if (c.model_bytes > 0) m.bytes = c.model_bytes;
}

void RoutingPolicy::on_instance_started(std::string_view, double start_ms, TimeMs now) {
  stats_.cold_start().add(start_ms, now);
}

void RoutingPolicy::on_instance_stopped(std::string_view) {}

TimeMs RoutingPolicy::keep_until(const InstanceView& inst, TimeMs idle_timeout_ms) const {
  return inst.last_used_ms + idle_timeout_ms;
}

Result<RoutingPolicyPtr> make_routing_policy(std::string_view name, StatsPriors priors) {
  if (name == "moss") return RoutingPolicyPtr(std::make_unique<MossPolicy>(priors));
  if (name == "original") return RoutingPolicyPtr(std::make_unique<OriginalPolicy>(priors));
  if (name == "original+queue") {
    return RoutingPolicyPtr(std::make_unique<OriginalPolicy>(priors, /*queue_when_busy=*/true));
  }
  return invalid_argument("unknown routing policy '{}' (expected moss, original or original+queue)",
                          name);
}

}  // namespace moss::packer
