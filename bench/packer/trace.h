// A synthetic invocation trace in the style of the Azure Functions 2019 trace (Shahrad et al.,
// "Serverless in the Wild", ATC'20): many functions (here: models) whose popularity is heavy-tailed
// (a few models take most requests, most are rare) and whose arrivals are bursty (each model
// alternates between quiet and busy periods, Poisson within each), time-compressed so a replay
// takes about a minute. Deterministic for a seed.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace moss::bench {

struct TraceModel {
  std::string model_id;
  double share = 0;       // fraction of all requests (heavy-tailed)
  double service_ms = 0;  // inference time on a warm instance
  double load_ms = 0;     // fetch + decrypt + compile on a miss
  double mb = 0;          // weights + arena
};

struct TraceRequest {
  double at_ms = 0;
  int model = 0;  // index into Trace::models
};

struct TraceOptions {
  int models = 20;
  double duration_s = 45;
  double mean_rate_per_s = 30;  // over all models
  double zipf_s = 1.1;          // popularity exponent
  double burst_factor = 6;      // a busy period's rate over the model's mean
  double busy_fraction = 0.15;  // share of time a model is busy
  double mean_period_s = 4;     // mean length of one busy+quiet cycle
  // Diurnal swing: the rate follows 1 + amplitude * sin(2 pi t / period) (0: none). 1/3 gives a
  // peak twice the trough.
  double diurnal_amplitude = 0;
  double diurnal_period_s = 86'400;
  uint64_t seed = 2019;
};

struct Trace {
  std::vector<TraceModel> models;
  std::vector<TraceRequest> requests;  // sorted by at_ms
};

Trace generate_trace(const TraceOptions& options);

// The trace's command-line options, the same in every packer bench: --models N, --duration S,
// --rate R (requests/s over all models), --seed N.
bool is_trace_option(std::string_view flag);
// Sets the option `flag` (is_trace_option) from `value`.
void set_trace_option(TraceOptions& options, std::string_view flag, const char* value);

}  // namespace moss::bench
