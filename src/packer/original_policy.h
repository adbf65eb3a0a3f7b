// OriginalPolicy: the seed system's FnPacker rule, reproduced exactly as a baseline.
//
// Source: SeSeMI, fnpacker/fnpack/controller.go (PickFnInstance 174-227, steal_func 156-171,
// check_busy_or_exclusive 136-153, ReleaseAndUpdateStats 230-271) and stats.go (UpdateStats
// 50-64, GenTimeSinceLastCall 73-77, GenCost 92-96). Per function (our instance) it keeps a
// claimant model and a busy flag; per model an in-use count and the function it was mapped to.
//  - An idle model (in-use 0 -> 1) takes the FIRST function that is neither busy nor exclusively
//    claimed by another model (steal_func 158-159). Its own claim only means "not blocked for me"
//    (141): it does not send the model back to its claimed function. Taking a function clears
//    that function's claim (161) and marks it busy (162).
//  - The second concurrent request (in-use 1 -> 2) claims the mapped function (208-212); further
//    ones (> 2) go there too (213-214). No concurrency limit at the packer: OpenWhisk adds
//    containers to the action.
//  - A claim blocks other models while now - last_call < 2 x exec_time of the claimant (147),
//    where last_call is the end of its latest non-overlapping request (stats.go 54-59) and
//    exec_time the whole activation time OpenWhisk reports (packer.go 136, scli/svlcli.go 122),
//    model switch included.
//  - The function stops being busy when the model's in-use count returns to 0 (254-269).
//  - No free function: the request fails (197-200, 221-223). The "original+queue" variant waits
//    and routes again instead (the obvious fix a reviewer would ask for).
// A function not started yet is free and unclaimed (in Go every function of the pool exists; here
// the pool starts it for the request). It never looks at residency, switch cost or arrival rate.
// Deviations, both in the baseline's favour: a failed request releases its in-use count (Go
// returns before ReleaseAndUpdateStats, packer.go 126-133, so one failure would pin the model
// for good); a stopped instance's claim and busy flag go with it.
// Not thread-safe (see RoutingPolicy).
#pragma once

#include <map>
#include <optional>

#include "packer/routing_policy.h"

namespace moss::packer {

class OriginalPolicy final : public RoutingPolicy {
 public:
  explicit OriginalPolicy(StatsPriors priors = {}, bool queue_when_busy = false)
      : RoutingPolicy(priors), queue_when_busy_(queue_when_busy) {}
  std::string_view name() const override {
    return queue_when_busy_ ? "original+queue" : "original";
  }
  Decision route(std::string_view model_id, const PoolView& pool, TimeMs now) override;
  void on_dispatch(std::string_view model_id, std::string_view instance_id, TimeMs now) override;
  void on_complete(const Completion& completion) override;
  void on_instance_stopped(std::string_view instance_id) override;

  // State as Go names it (tests): the claimant of a function (funcs[i]), its busy flag (busy[i]),
  // a model's in-use count (in_use[m]) and mapped function (mapping[m]).
  std::string claim_on(std::string_view instance_id) const;
  bool busy(std::string_view instance_id) const;
  int in_use(std::string_view model_id) const;
  std::string mapping(std::string_view model_id) const;
  // Whether `instance_id` is busy or exclusively claimed by a model other than `candidate`
  // (check_busy_or_exclusive, controller.go 136-153).
  bool busy_or_exclusive(std::string_view instance_id, std::string_view candidate,
                         TimeMs now) const;

 private:
  struct Fn {
    std::string claim;  // "" : unclaimed
    bool busy = false;
  };
  struct Model {
    int in_use = 0;
    std::string mapping;
    std::optional<TimeMs> last_call;  // stats.go last_call; nullopt: 0 in Go (never)
    double exec_ms = 0;               // stats.go exec_time: the latest activation's duration
  };

  const bool queue_when_busy_;
  std::map<std::string, Fn, std::less<>> fns_;
  std::map<std::string, Model, std::less<>> models_;
};

}  // namespace moss::packer
