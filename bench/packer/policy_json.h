// The packer benches' per-policy results as JSON (bench/common/json_output.h), kept apart from the
// benches so their simulation code and this output change independently. Templates over the
// result type: packer_trace_bench's Outcome and packer_sim_bench's SimResult share these fields.
#pragma once

#include <nlohmann/json.hpp>

namespace moss::bench {

// Totals of one policy's run: failures, cold starts, latency over all requests, instance-seconds.
template <class Result>
nlohmann::ordered_json policy_result_json(const Result& r) {
  return {{"policy", r.name},
          {"requests", r.requests},
          {"failed", r.failed},
          {"cold", r.cold},
          {"instance_starts", r.instance_starts},
          {"switches", r.switches},
          {"p50_ms", r.p50},
          {"p99_ms", r.p99},
          {"instance_s", r.instance_seconds}};
}

// packer_sim_bench: the totals plus cold starts and p99 per simulated minute, for one pool size.
template <class SimResult>
nlohmann::ordered_json sim_run_json(int pool, const SimResult& r) {
  nlohmann::ordered_json j = {{"pool", pool}};
  nlohmann::ordered_json totals = policy_result_json(r);  // named: items() does not extend it
  for (auto& [k, v] : totals.items()) j[k] = v;
  j["cold_per_min"] = r.cold_per_min;
  j["p99_per_min"] = r.p99_per_min;
  return j;
}

}  // namespace moss::bench
