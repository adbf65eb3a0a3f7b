// StatsBook: the decaying statistics one pool keeps, per model and for the pool as a whole.
//
// Per model: the gaps between its arrivals (IdleGapHistogram), arrival rate on two time scales (a short window that sees a burst within seconds, the
// long one that forgets slowly: the rate read is the larger, so capacity grows on a burst and
// shrinks only once the long window agrees), service time (the worker's inference time), load time (what a model
// switch costs on a running instance: key fetch, model fetch, decrypt, compile), last execution
// time (the original rule's claim lapse uses it), and resident size (weights + arena, as the
// worker reports them). Per pool: instance start time (cold start without the model load), the
// arrival rate of all models together and the mean service and load time over all models: a
// model not measured yet is priced with the pool's means, not a fixed prior (with 20 copies of one
// small model, every model's first request was priced at a 500 ms load the pool had never seen,
// and starting another instance looked cheaper than waiting for one already starting); before
// the pool measured any load, optionally, a model of known size (store metadata) is priced at
// the worker's load rate for that size (StatsPriors::load_ms_per_mib).
// Not thread-safe (owned by a policy under its pool's lock).
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "packer/clock.h"
#include "packer/decaying_stats.h"
#include "packer/idle_gap_histogram.h"

namespace moss::packer {

struct StatsPriors {
  double service_ms = 50;       // before the first measurement of a model
  double load_ms = 500;         // model switch before the first measurement, size unknown
  double cold_start_ms = 1000;  // instance start before the first measurement
  TimeMs half_life_ms = 60'000;
  TimeMs short_half_life_ms = 5'000;  // the burst window (at most half_life_ms)
  // A load before the pool measured any, for a model of known size: load_base_ms +
  // load_ms_per_mib x MiB; load_ms_per_mib 0: off (load_ms). moss-worker's cold starts in
  // docs/worker.md give 30 ms + 9.4 ms/MiB (key fetch + model fetch + decrypt + compile:
  // MobileNetV2, 13.3 MiB, 156 ms; ResNet-50, 97.7 MiB, 943 ms). Off by default: measured on,
  // it concentrated the full-stack replay's first requests on one worker and exposed that
  // worker's per-user key-request limit (docs/benchmarks.md, "Through the full stack").
  double load_base_ms = 30;
  double load_ms_per_mib = 0;
};

struct ModelStats {
  explicit ModelStats(const StatsPriors& p)
      : arrivals(p.half_life_ms),
        arrivals_short(std::min(p.short_half_life_ms, p.half_life_ms)),
        service_ms(p.service_ms, p.half_life_ms),
        load_ms(p.load_ms, p.half_life_ms) {}
  DecayingRate arrivals;        // long window
  DecayingRate arrivals_short;  // short window
  TimeMs last_arrival_ms = -1;
  IdleGapHistogram gaps;  // between consecutive arrivals (per-model keep-alive)
  DecayingMean service_ms;
  DecayingMean load_ms;
  // Arrivals per ms: the larger of the two windows.
  double rate_per_ms(TimeMs now) const {
    return std::max(arrivals.per_ms(now), arrivals_short.per_ms(now));
  }
  double last_exec_ms = 0;     // most recent service time (not averaged: the original rule)
  TimeMs last_finish_ms = -1;  // when its latest request finished; -1: never
  uint64_t bytes = 0;          // weights + arena as last reported; 0: unknown
};

class StatsBook {
 public:
  explicit StatsBook(StatsPriors priors = {})
      : priors_(priors),
        cold_start_ms_(priors.cold_start_ms, priors.half_life_ms),
        pool_service_ms_(priors.service_ms, priors.half_life_ms),
        pool_load_ms_(priors.load_ms, priors.half_life_ms),
        pool_arrivals_(priors.half_life_ms) {}

  ModelStats& model(std::string_view model_id);
  // Counts an arrival on both windows (and the pool's).
  void add_arrival(std::string_view model_id, TimeMs now);
  // A measured service (inference) or load time, for the model and the pool's means.
  void add_service(std::string_view model_id, double ms, TimeMs now);
  void add_load(std::string_view model_id, double ms, TimeMs now);
  // Forgets models with no arrival and no finish for `idle_ms` (their statistics have decayed to
  // the priors anyway), so the book holds the models of the last while, not every model ever
  // seen. Returns how many were dropped.
  size_t prune(TimeMs now, TimeMs idle_ms);
  const ModelStats* find(std::string_view model_id) const;

  // Little's law: the average number of this model's requests in service at once.
  double offered_load(std::string_view model_id, TimeMs now) const;
  double service_ms(std::string_view model_id, TimeMs now) const;
  double load_ms(std::string_view model_id, TimeMs now) const;
  // The same for a model whose entry is at hand (null: not tracked).
  double load_ms(const ModelStats* m, TimeMs now) const;
  // What a model not measured yet is expected to load in: the pool's mean over its other
  // models' loads; before the pool measured any, from the model's size (`bytes`, 0: unknown) at
  // the worker's load rate when one is set (StatsPriors::load_ms_per_mib), else the prior.
  double first_load_ms(uint64_t bytes, TimeMs now) const;
  double rate_per_ms(std::string_view model_id, TimeMs now) const;

  DecayingMean& cold_start() { return cold_start_ms_; }
  double cold_start_ms(TimeMs now) const { return cold_start_ms_.mean(now); }
  // All models together, long window, arrivals per ms. Corrected for a short history (a decayed
  // count over less than its time constant reads low: 30 s into a steady stream the long window
  // alone reads 0.29 of the rate); 0 before the first arrival.
  double pool_rate_per_ms(TimeMs now) const;
  // The pool's mean service time over its recent requests, whatever the model.
  double pool_service_ms(TimeMs now) const { return pool_service_ms_.mean(now); }
  // Little's law for the whole pool: requests in service at once, on the long window.
  double pool_offered_load(TimeMs now) const { return pool_rate_per_ms(now) * pool_service_ms(now); }
  // How long the pool has seen arrivals (0 before the first).
  TimeMs history_ms(TimeMs now) const { return first_arrival_ms_ < 0 ? 0 : now - first_arrival_ms_; }
  const StatsPriors& priors() const { return priors_; }
  const std::map<std::string, ModelStats, std::less<>>& models() const { return models_; }

 private:
  StatsPriors priors_;
  DecayingMean cold_start_ms_;
  DecayingMean pool_service_ms_, pool_load_ms_;
  DecayingRate pool_arrivals_;
  TimeMs first_arrival_ms_ = -1;
  std::map<std::string, ModelStats, std::less<>> models_;
};

}  // namespace moss::packer
