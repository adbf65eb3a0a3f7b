#include "packer/original_policy.h"

#include <limits>

namespace moss::packer {

std::string OriginalPolicy::claim_on(std::string_view instance_id) const {
  auto it = fns_.find(instance_id);
  return it == fns_.end() ? std::string() : it->second.claim;
}

bool OriginalPolicy::busy(std::string_view instance_id) const {
  auto it = fns_.find(instance_id);
  return it != fns_.end() && it->second.busy;
}

int OriginalPolicy::in_use(std::string_view model_id) const {
  auto it = models_.find(model_id);
  return it == models_.end() ? 0 : it->second.in_use;
}

std::string OriginalPolicy::mapping(std::string_view model_id) const {
  auto it = models_.find(model_id);
  return it == models_.end() ? std::string() : it->second.mapping;
}

bool OriginalPolicy::busy_or_exclusive(std::string_view instance_id, std::string_view candidate,
                                       TimeMs now) const {
  auto fn = fns_.find(instance_id);
  if (fn == fns_.end()) return false;  // never used: free and unclaimed
  if (fn->second.busy) return true;    // controller.go 137-139
  const std::string& claimant = fn->second.claim;
  if (claimant.empty() || claimant == candidate) return false;  // 140-143
  auto m = models_.find(claimant);
  if (m == models_.end()) return false;
  // 144-150: GenTimeSinceLastCall() < 2 * GenCost(). A claimant that never finished a request
  // has last_call 0 in Go: the time since is the whole epoch, so the claim does not hold.
  if (!m->second.last_call) return false;
  return now - *m->second.last_call < 2.0 * m->second.exec_ms;
}

Decision OriginalPolicy::route(std::string_view model_id, const PoolView& pool, TimeMs now) {
  auto on = [&](const InstanceView& inst, std::string reason) {
    Decision d;
    d.instance_id = inst.id;
    bool holds = false;
    for (const ResidentModel& m : inst.models) holds = holds || m.model_id == model_id;
    d.kind = inst.state == InstanceState::kStarting ? DecisionKind::kStarting
             : holds                                ? DecisionKind::kWarm
                                                    : DecisionKind::kSwitch;
    d.reason = std::move(reason);
    return d;
  };
  // controller.go 208-214: the model is active (in-use >= 1 before this request): this request
  // goes to its mapped function, whatever is running there.
  if (auto m = models_.find(model_id); m != models_.end() && m->second.in_use >= 1) {
    if (const InstanceView* inst = pool.find(m->second.mapping)) {
      return on(*inst, m->second.in_use == 1 ? "second in flight: claims its function"
                                             : "active model: its claimed function");
    }
  }
  // 215-225 (and 190-191 for a model seen for the first time): steal_func, the first function
  // neither busy nor exclusively claimed by another model.
  for (const InstanceView& inst : pool.instances) {
    if (!busy_or_exclusive(inst.id, model_id, now)) return on(inst, "first free function");
  }
  Decision d;
  if (pool.can_grow()) {
    d.kind = DecisionKind::kCold;
    d.reason = "first free function (not started)";
    return d;
  }
  d.kind = queue_when_busy_ ? DecisionKind::kQueue : DecisionKind::kReject;
  d.reason = "no free function: every function is busy or claimed";
  return d;
}

void OriginalPolicy::on_dispatch(std::string_view model_id, std::string_view instance_id, TimeMs) {
  Model& m = models_[std::string(model_id)];
  int now_in_use = ++m.in_use;  // 208
  if (now_in_use == 1) {
    // steal_func 161-162: take the function, clear its claim, mark it busy.
    Fn& fn = fns_[std::string(instance_id)];
    fn.claim.clear();
    fn.busy = true;
    m.mapping = std::string(instance_id);
  } else if (now_in_use == 2) {
    fns_[m.mapping].claim = std::string(model_id);  // 209-211: claim ownership
  }
}

void OriginalPolicy::on_complete(const Completion& c) {
  RoutingPolicy::on_complete(c);
  auto it = models_.find(c.model_id);
  if (it == models_.end() || it->second.in_use == 0) return;
  Model& m = it->second;
  --m.in_use;  // 250 (and on failure too: see the header)
  if (c.ok) {
    // stats.go 50-64: exec_time is the latest activation's duration; last_call moves to this
    // request's end only if it started after the previous last_call (not overlapping).
    m.exec_ms = c.activation_ms > 0 ? c.activation_ms : c.inference_ms + c.load_ms;
    TimeMs start = c.sent_ms >= 0 ? c.sent_ms : c.now - m.exec_ms;
    if (!m.last_call || start > *m.last_call) m.last_call = c.now;
  }
  if (m.in_use == 0) {
    auto fn = fns_.find(m.mapping);
    if (fn != fns_.end()) fn->second.busy = false;  // 265-269
  }
}

void OriginalPolicy::on_instance_stopped(std::string_view instance_id) {
  fns_.erase(std::string(instance_id));
}

}  // namespace moss::packer
