#include "packer/stats_book.h"

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

double StatsBook::rate_per_ms(std::string_view model_id, TimeMs now) const {
  const ModelStats* m = find(model_id);
  return m ? m->arrivals.per_ms(now) : 0.0;
}

double StatsBook::service_ms(std::string_view model_id, TimeMs now) const {
  const ModelStats* m = find(model_id);
  return m ? m->service_ms.mean(now) : priors_.service_ms;
}

double StatsBook::load_ms(std::string_view model_id, TimeMs now) const {
  const ModelStats* m = find(model_id);
  return m ? m->load_ms.mean(now) : priors_.load_ms;
}

double StatsBook::offered_load(std::string_view model_id, TimeMs now) const {
  return rate_per_ms(model_id, now) * service_ms(model_id, now);
}

}  // namespace moss::packer
