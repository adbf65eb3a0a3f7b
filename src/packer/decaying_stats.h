// Time-decaying statistics: recent behaviour counts, old behaviour fades with a half-life.
//
// The original FnPacker kept the last value of each measurement; one slow outlier then steered
// routing until the next sample, and a model that was hot an hour ago still looked hot. Here every
// sample's weight halves every `half_life_ms`, measured on the injected clock, so estimates follow
// load shifts and return to their prior when a model goes quiet.
// Not thread-safe (owned by one policy under its pool's lock).
#pragma once

#include "packer/clock.h"

namespace moss::packer {

// Event rate (events per millisecond) as an exponentially decayed count divided by the decay
// time constant: a steady stream of rate r converges to r; no events decays the estimate to 0.
class DecayingRate {
 public:
  explicit DecayingRate(TimeMs half_life_ms = 60'000);
  void add_event(TimeMs now);
  double per_ms(TimeMs now) const;
  double per_second(TimeMs now) const { return per_ms(now) * 1000.0; }

 private:
  double tau_ms_;     // half_life / ln 2
  double level_ = 0;  // decayed event count at last_ms_
  TimeMs last_ms_ = 0;
  bool any_ = false;
};

// Mean of samples weighted by age; before the first sample (or once every sample has decayed to
// almost nothing) it returns the prior.
class DecayingMean {
 public:
  explicit DecayingMean(double prior, TimeMs half_life_ms = 60'000);
  void add(double value, TimeMs now);
  double mean(TimeMs now) const { return mean_or(prior_, now); }
  // The mean with `fallback` in place of the prior (StatsBook: a model not measured yet is priced
  // with what the pool measured on its other models).
  double mean_or(double fallback, TimeMs now) const;
  // Decayed total weight of the samples (1 per fresh sample).
  double weight(TimeMs now) const;
  bool has_samples() const { return weight_ > 0; }

 private:
  double prior_;
  double tau_ms_;
  double weight_ = 0;
  double mean_ = 0;
  TimeMs last_ms_ = 0;
};

}  // namespace moss::packer
