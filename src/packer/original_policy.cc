#include "packer/original_policy.h"

namespace moss::packer {

namespace {

int in_use_of(const InstanceView& inst, std::string_view model_id) {
  for (const ResidentModel& m : inst.models) {
    if (m.model_id == model_id) return m.in_use;
  }
  return 0;
}

bool holds(const InstanceView& inst, std::string_view model_id) {
  for (const ResidentModel& m : inst.models) {
    if (m.model_id == model_id) return true;
  }
  return false;
}

}  // namespace

std::string OriginalPolicy::claim_of(std::string_view model_id) const {
  auto it = claims_.find(model_id);
  return it == claims_.end() ? std::string() : it->second;
}

bool OriginalPolicy::claim_holds(std::string_view model_id, const PoolView& pool,
                                 TimeMs now) const {
  auto it = claims_.find(model_id);
  if (it == claims_.end()) return false;
  const InstanceView* inst = pool.find(it->second);
  if (!inst) return false;
  if (in_use_of(*inst, model_id) > 0) return true;
  const ModelStats* m = stats_.find(model_id);
  if (!m || m->last_finish_ms < 0) return false;
  return now - m->last_finish_ms <= 2.0 * m->last_exec_ms;
}

Decision OriginalPolicy::route(std::string_view model_id, const PoolView& pool, TimeMs now) {
  auto on = [&](const InstanceView& inst, std::string reason) {
    Decision d;
    d.instance_id = inst.id;
    d.kind = inst.state == InstanceState::kStarting ? DecisionKind::kStarting
             : holds(inst, model_id)                ? DecisionKind::kWarm
                                                    : DecisionKind::kSwitch;
    d.reason = std::move(reason);
    return d;
  };
  if (claim_holds(model_id, pool, now)) {
    const InstanceView& inst = *pool.find(claims_.find(model_id)->second);
    bool active = in_use_of(inst, model_id) > 0;
    if (inst.in_flight < pool.max_concurrency && (active || inst.in_flight == 0)) {
      return on(inst, "claimed function");
    }
    Decision d;
    d.kind = DecisionKind::kReject;
    d.reason = "the model's claimed function is at its concurrency limit";
    return d;
  }
  for (const InstanceView& inst : pool.instances) {
    if (inst.in_flight > 0) continue;
    bool claimed_by_other = false;
    for (const auto& [other, instance] : claims_) {
      if (other != model_id && instance == inst.id && claim_holds(other, pool, now)) {
        claimed_by_other = true;
        break;
      }
    }
    if (!claimed_by_other) return on(inst, "first free function");
  }
  Decision d;
  if (pool.can_grow()) {
    d.kind = DecisionKind::kCold;
    d.reason = "first free function (not started)";
    return d;
  }
  d.kind = DecisionKind::kReject;
  d.reason = "no free function: every function is busy or claimed";
  return d;
}

void OriginalPolicy::on_dispatch(std::string_view model_id, std::string_view instance_id, TimeMs) {
  claims_[std::string(model_id)] = std::string(instance_id);
}

void OriginalPolicy::on_instance_stopped(std::string_view instance_id) {
  for (auto it = claims_.begin(); it != claims_.end();) {
    it = it->second == instance_id ? claims_.erase(it) : std::next(it);
  }
}

}  // namespace moss::packer
