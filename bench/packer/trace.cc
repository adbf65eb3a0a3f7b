#include "trace.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <random>

namespace moss::bench {

Trace generate_trace(const TraceOptions& o) {
  std::mt19937_64 rng(o.seed);
  Trace t;
  double norm = 0;
  for (int i = 1; i <= o.models; ++i) norm += 1.0 / std::pow(i, o.zipf_s);
  // Per-model costs: log-normal-ish spreads, independent of popularity.
  std::lognormal_distribution<double> service(std::log(12.0), 0.6);
  std::lognormal_distribution<double> load(std::log(250.0), 0.4);
  std::lognormal_distribution<double> size(std::log(80.0), 0.6);
  for (int i = 0; i < o.models; ++i) {
    TraceModel m;
    m.model_id = "owner/model-" + std::to_string(i);
    m.share = (1.0 / std::pow(i + 1, o.zipf_s)) / norm;
    m.service_ms = std::clamp(service(rng), 3.0, 60.0);
    m.load_ms = std::clamp(load(rng), 80.0, 800.0);
    m.mb = std::clamp(size(rng), 15.0, 250.0);
    t.models.push_back(m);
  }
  const double duration_ms = o.duration_s * 1000;
  const double busy_rate_scale = o.burst_factor;
  // Quiet periods carry what busy periods do not, so each model keeps its mean rate.
  const double quiet_rate_scale =
      std::max(0.0, (1.0 - o.busy_fraction * busy_rate_scale) / (1.0 - o.busy_fraction));
  // Diurnal swing by thinning: draw at the peak rate, keep an arrival with the swing's share.
  const double peak = 1.0 + o.diurnal_amplitude;
  auto keep = [&](double at_ms) {
    if (o.diurnal_amplitude <= 0) return true;
    const double phase = 2 * M_PI * at_ms / (o.diurnal_period_s * 1000);
    return std::uniform_real_distribution<double>(0, peak)(rng) <
           1.0 + o.diurnal_amplitude * std::sin(phase);
  };
  for (int i = 0; i < o.models; ++i) {
    const double mean_per_ms = o.mean_rate_per_s * t.models[i].share / 1000.0;
    std::exponential_distribution<double> busy_len(1.0 /
                                                   (o.mean_period_s * 1000 * o.busy_fraction));
    std::exponential_distribution<double> quiet_len(
        1.0 / (o.mean_period_s * 1000 * (1 - o.busy_fraction)));
    std::uniform_real_distribution<double> coin(0, 1);
    bool busy = coin(rng) < o.busy_fraction;
    double now = 0;
    while (now < duration_ms) {
      double len = busy ? busy_len(rng) : quiet_len(rng);
      double end = std::min(duration_ms, now + len);
      double rate = mean_per_ms * (busy ? busy_rate_scale : quiet_rate_scale) * peak;
      if (rate > 0) {
        std::exponential_distribution<double> gap(rate);
        for (double at = now + gap(rng); at < end; at += gap(rng)) {
          if (keep(at)) t.requests.push_back({at, i});
        }
      }
      now = end;
      busy = !busy;
    }
  }
  std::sort(t.requests.begin(), t.requests.end(),
            [](const TraceRequest& a, const TraceRequest& b) { return a.at_ms < b.at_ms; });
  return t;
}

bool is_trace_option(std::string_view flag) {
  return flag == "--models" || flag == "--duration" || flag == "--rate" || flag == "--seed";
}

void set_trace_option(TraceOptions& options, std::string_view flag, const char* value) {
  if (flag == "--models") options.models = std::atoi(value);
  if (flag == "--duration") options.duration_s = std::atof(value);
  if (flag == "--rate") options.mean_rate_per_s = std::atof(value);
  if (flag == "--seed") options.seed = std::strtoull(value, nullptr, 10);
}

}  // namespace moss::bench
