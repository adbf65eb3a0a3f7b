// OriginalPolicy: the first FnPacker's routing rule, kept as a baseline for comparison.
//
// As the design brief documents it:
//  - a model with requests in flight has claimed a function exclusively and all its requests go
//    there (the original relied on the platform's in-container concurrency); when that function
//    is at its concurrency limit the request fails;
//  - a model with no request in flight reuses its claimed function if the claim still holds
//    (the claim lapses once the model has been idle for twice its last execution time), else
//    takes the first idle function not claimed by another model (a function the pool has not
//    started yet counts as idle: it is started for the request);
//  - when no function is free the request fails (kReject): no queueing.
// It never looks at which models an instance holds, the switch cost or the arrival rate (the
// original estimated switch cost and next arrival but never used them).
// Not thread-safe (see RoutingPolicy).
#pragma once

#include <map>

#include "packer/routing_policy.h"

namespace moss::packer {

class OriginalPolicy final : public RoutingPolicy {
 public:
  explicit OriginalPolicy(StatsPriors priors = {}) : RoutingPolicy(priors) {}
  std::string_view name() const override { return "original"; }
  Decision route(std::string_view model_id, const PoolView& pool, TimeMs now) override;
  void on_dispatch(std::string_view model_id, std::string_view instance_id, TimeMs now) override;
  void on_instance_stopped(std::string_view instance_id) override;

  // The instance a model has claimed (held or lapsed), or "" (tests).
  std::string claim_of(std::string_view model_id) const;
  bool claim_holds(std::string_view model_id, const PoolView& pool, TimeMs now) const;

 private:
  std::map<std::string, std::string, std::less<>> claims_;  // model -> instance
};

}  // namespace moss::packer
