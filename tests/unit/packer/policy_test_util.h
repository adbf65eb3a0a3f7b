// Builders for pool snapshots in routing policy tests.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "packer/routing_policy.h"

namespace moss::packer::testing {

inline InstanceView instance(std::string id, int in_flight = 0,
                             std::vector<ResidentModel> models = {}) {
  InstanceView v;
  v.id = std::move(id);
  v.in_flight = in_flight;
  v.models = std::move(models);
  return v;
}

inline ResidentModel resident(std::string model, uint64_t bytes = 0, int in_use = 0) {
  ResidentModel m;
  m.model_id = std::move(model);
  m.bytes = bytes;
  m.in_use = in_use;
  return m;
}

inline PoolView pool(std::vector<InstanceView> instances, size_t max_instances,
                     int max_concurrency = 4, int parallelism = 1, uint64_t budget = 0) {
  PoolView p;
  p.instances = std::move(instances);
  p.max_instances = max_instances;
  p.max_concurrency = max_concurrency;
  p.parallelism = parallelism;
  p.memory_budget_bytes = budget;
  return p;
}

// One instance at its concurrency limit (4, 2-way) running `model` (4 requests), in a pool that
// may grow to `max_instances`.
inline PoolView one_full_instance_running(const std::string& model, size_t max_instances) {
  return pool({instance("i0", 4, {resident(model, 0, 4)})}, max_instances, /*max_concurrency=*/4,
              /*parallelism=*/2);
}

// Teaches a policy that `model` runs in `service_ms` and loads in `load_ms`.
inline void teach(RoutingPolicy& p, const std::string& model, double service_ms, double load_ms,
                  TimeMs now, uint64_t bytes = 0) {
  // Designated initialisers: GCC 12 warns falsely (-Wrestrict) on assigning short literals here.
  Completion c{.model_id = model,
               .instance_id = std::string(1, 'x'),
               .ok = true,
               .run = protocol::RunKind::kSwitch};
  c.inference_ms = service_ms;
  c.load_ms = load_ms;
  c.model_bytes = bytes;
  c.now = now;
  p.on_complete(c);
}

}  // namespace moss::packer::testing
