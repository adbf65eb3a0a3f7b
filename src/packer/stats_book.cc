#include "packer/stats_book.h"

#include <cmath>

namespace moss::packer {

ModelStats& StatsBook::model(std::string_view model_id) {
  auto it = models_.find(model_id);
  if (it == models_.end()) it = models_.emplace(std::string(model_id), ModelStats(priors_)).first;
  return it->second;
}

const ModelStats* StatsBook::find(std::string_view model_id) const {
  auto it = models_.find(model_id);
  return it == models_.end() ? nullptr : &it->second;
}

void StatsBook::add_arrival(std::string_view model_id, TimeMs now) {
  ModelStats& m = model(model_id);
  m.arrivals.add_event(now);
  m.arrivals_short.add_event(now);
  if (m.last_arrival_ms >= 0 && now >= m.last_arrival_ms) m.gaps.add(now - m.last_arrival_ms);
  m.last_arrival_ms = std::max(m.last_arrival_ms, now);
  pool_arrivals_.add_event(now);
  if (first_arrival_ms_ < 0) first_arrival_ms_ = now;
}

void StatsBook::add_service(std::string_view model_id, double ms, TimeMs now) {
  model(model_id).service_ms.add(ms, now);
  pool_service_ms_.add(ms, now);
}

void StatsBook::add_load(std::string_view model_id, double ms, TimeMs now) {
  model(model_id).load_ms.add(ms, now);
  pool_load_ms_.add(ms, now);
}

double StatsBook::pool_rate_per_ms(TimeMs now) const {
  const TimeMs seen = history_ms(now);
  if (seen <= 0) return 0;
  // A steady stream of rate r, counted for t, reads r (1 - e^(-t/tau)).
  const double tau = priors_.half_life_ms / std::log(2.0);
  return pool_arrivals_.per_ms(now) / (1.0 - std::exp(-seen / tau));
}

size_t StatsBook::prune(TimeMs now, TimeMs idle_ms) {
  size_t dropped = 0;
  for (auto it = models_.begin(); it != models_.end();) {
    const ModelStats& m = it->second;
    if (std::max(m.last_arrival_ms, m.last_finish_ms) < now - idle_ms) {
      it = models_.erase(it);
      ++dropped;
    } else {
      ++it;
    }
  }
  return dropped;
}

double StatsBook::rate_per_ms(std::string_view model_id, TimeMs now) const {
  const ModelStats* m = find(model_id);
  return m ? m->rate_per_ms(now) : 0.0;
}

double StatsBook::service_ms(std::string_view model_id, TimeMs now) const {
  const ModelStats* m = find(model_id);
  const double pool = pool_service_ms_.mean(now);
  return m ? m->service_ms.mean_or(pool, now) : pool;
}

double StatsBook::load_ms(std::string_view model_id, TimeMs now) const {
  return load_ms(find(model_id), now);
}

double StatsBook::load_ms(const ModelStats* m, TimeMs now) const {
  const double first = first_load_ms(m ? m->bytes : 0, now);
  return m ? m->load_ms.mean_or(first, now) : first;
}

double StatsBook::first_load_ms(uint64_t bytes, TimeMs now) const {
  const double by_size =
      bytes > 0 && priors_.load_ms_per_mib > 0
          ? priors_.load_base_ms +
                priors_.load_ms_per_mib * static_cast<double>(bytes) / static_cast<double>(1u << 20)
          : priors_.load_ms;
  return pool_load_ms_.mean_or(by_size, now);
}

double StatsBook::offered_load(std::string_view model_id, TimeMs now) const {
  return rate_per_ms(model_id, now) * service_ms(model_id, now);
}

}  // namespace moss::packer
