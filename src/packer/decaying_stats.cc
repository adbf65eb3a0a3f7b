#include "packer/decaying_stats.h"

#include <algorithm>
#include <cmath>

namespace moss::packer {

namespace {
double decay(double tau_ms, TimeMs from, TimeMs to) {
  return std::exp(-std::max(0.0, to - from) / tau_ms);
}
}  // namespace

DecayingRate::DecayingRate(TimeMs half_life_ms) : tau_ms_(half_life_ms / std::log(2.0)) {}

void DecayingRate::add_event(TimeMs now) {
  level_ = (any_ ? level_ * decay(tau_ms_, last_ms_, now) : 0.0) + 1.0;
  last_ms_ = std::max(now, any_ ? last_ms_ : now);
  any_ = true;
}

double DecayingRate::per_ms(TimeMs now) const {
  if (!any_) return 0;
  return level_ * decay(tau_ms_, last_ms_, now) / tau_ms_;
}

DecayingMean::DecayingMean(double prior, TimeMs half_life_ms)
    : prior_(prior), tau_ms_(half_life_ms / std::log(2.0)) {}

void DecayingMean::add(double value, TimeMs now) {
  double w = weight_ > 0 ? weight_ * decay(tau_ms_, last_ms_, now) : 0.0;
  double old_mean = weight_ > 0 ? mean_ : value;
  weight_ = w + 1.0;
  mean_ = old_mean + (value - old_mean) / weight_;
  last_ms_ = std::max(now, last_ms_);
}

double DecayingMean::weight(TimeMs now) const {
  return weight_ > 0 ? weight_ * decay(tau_ms_, last_ms_, now) : 0.0;
}

double DecayingMean::mean_or(double fallback, TimeMs now) const {
  double w = weight(now);
  if (w <= 0) return fallback;
  // Once the samples have faded below a tenth of one fresh sample (3.3 half-lives), the prior
  // takes over again, smoothly.
  double trust = std::min(1.0, w / 0.1);
  return trust * mean_ + (1 - trust) * fallback;
}

}  // namespace moss::packer
