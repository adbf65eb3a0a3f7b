// Shared helpers for pool, local backend and API tests: the stand-in worker's path and pool specs.
#pragma once

#include "protocol/infer_result.h"

#include <nlohmann/json.hpp>
#include <string>

#include "packer/pool_spec.h"

namespace moss::packer::testing {

inline std::string stand_in_worker() { return MOSS_PACKER_STAND_IN_WORKER; }

// A local pool definition over the stand-in worker.
inline nlohmann::json local_pool_json(std::string name, int max_instances, int max_concurrency,
                                      std::string policy = "moss") {
  return {{"name", std::move(name)},
          {"backend", "local"},
          {"policy", std::move(policy)},
          {"worker_binary", stand_in_worker()},
          {"worker_config", {{"sim_parallelism", 2}}},
          {"max_concurrency", max_concurrency},
          {"parallelism", 2},
          {"memory_budget_mb", 512},
          {"min_instances", 0},
          {"max_instances", max_instances}};
}

// An envelope the stand-in worker reads as the model's simulated costs.
inline std::string costs(double service_ms, double load_ms = 50, double mb = 50) {
  return nlohmann::json{{"service_ms", service_ms}, {"load_ms", load_ms}, {"mb", mb}}.dump();
}

// A worker's result as the JSON body FnPacker answers a JSON client with.
inline nlohmann::json result_json(const protocol::InferResult& r) { return nlohmann::json::parse(r.to_json()); }

}  // namespace moss::packer::testing
