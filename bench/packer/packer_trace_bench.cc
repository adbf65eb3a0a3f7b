// packer_trace_bench: replays one synthetic Azure-Functions-style trace (trace.h) against the
// local backend (real worker processes on loopback) four times: with the MOSS routing policy,
// with the original FnPacker rule, with original+queue, and with one function (pool) per model.
// Prints, per policy: requests served, failures, cold starts, model switches, p50/p99 latency
// over all requests (from the scheduled arrival, open loop; a failure counts as the deadline),
// instance-seconds and peak memory (sum of what the workers report), then MOSS's ratios against
// the original measured in the same run.
//
// Workers: the C3 stand-in (tests/unit/packer/stand_in_worker.cc), which simulates per-model load
// and service times, memory and a 2-way CPU, without crypto or inference, so the comparison
// measures routing and nothing else and runs in a few minutes on a shared 2-core machine.
// Usage: packer_trace_bench [--worker PATH] [--duration S] [--rate R] [--seed N]
//                           [--max-instances N] [--quick] [--json FILE]
// --json FILE: the per-policy figures for bench/plot_results.py (bench/packer/policy_json.h).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench/common/command_line.h"
#include "bench/common/json_output.h"
#include "common/logging.h"
#include "packer/pool_manager.h"
#include "open_loop_replay.h"
#include "policy_json.h"
#include "trace.h"

using json = nlohmann::json;
using namespace moss;
using steady = std::chrono::steady_clock;

namespace {

struct Settings {
  std::string worker = MOSS_BENCH_STAND_IN_WORKER;
  bench::TraceOptions trace;
  int max_instances = 4;
  int max_concurrency = 4;
  int memory_mb = 512;
  int idle_timeout_s = 5;   // the original's 3 minutes, time-compressed with the trace
  int deadline_ms = 5'000;  // a request's longest wait for an instance
  int start_ms = 300;       // worker process start (boot, attestation) in the stand-in
};

struct Outcome {
  std::string name;
  size_t requests = 0, served = 0, failed = 0;
  uint64_t cold = 0, switches = 0, instance_starts = 0;
  double p50 = 0, p99 = 0, instance_seconds = 0;
  uint64_t peak_memory = 0;
  std::string first_error;
};

json pool_json(const Settings& s, const std::string& name, const std::string& policy,
               int max_instances) {
  return {{"name", name},
          {"backend", "local"},
          {"policy", policy},
          {"worker_binary", s.worker},
          {"worker_config", {{"sim_parallelism", 2}, {"sim_start_ms", s.start_ms}}},
          {"max_concurrency", s.max_concurrency},
          {"parallelism", 2},
          {"memory_budget_mb", s.memory_mb},
          {"min_instances", 0},
          {"max_instances", max_instances},
          {"idle_timeout_s", s.idle_timeout_s},
          {"queue_timeout_ms", s.deadline_ms}};
}

// Replays the trace open-loop (open_loop_replay.h) against one pool, or one pool per model.
Outcome replay(const Settings& s, const bench::Trace& trace, const std::string& mode) {
  packer::SteadyClock clock;
  packer::PoolManager manager({.state_dir = {}, .reap_interval = std::chrono::milliseconds(250)},
                              clock);
  std::vector<packer::PoolPtr> pools;
  bool per_model = mode == "per-model";
  if (per_model) {
    for (size_t i = 0; i < trace.models.size(); ++i) {
      pools.push_back(
          manager.create(pool_json(s, fmt::format("m{}", i), "moss", 1)).value_or_die());
    }
  } else {
    pools.push_back(manager.create(pool_json(s, "p", mode, s.max_instances)).value_or_die());
  }
  std::vector<std::string> envelopes;
  for (const auto& m : trace.models) {
    envelopes.push_back(
        json{{"service_ms", m.service_ms}, {"load_ms", m.load_ms}, {"mb", m.mb}}.dump());
  }

  bench::ReplayOptions options;
  options.deadline_ms = s.deadline_ms;
  options.sample_every = std::chrono::milliseconds(100);
  uint64_t peak = 0;  // sampler thread only until the replay returns
  bench::ReplayFigures f = bench::replay_open_loop(
      trace, options,
      [&](size_t idx) -> bench::SendOutcome {
        const bench::TraceRequest& r = trace.requests[idx];
        packer::Pool& pool = *pools[per_model ? static_cast<size_t>(r.model) : 0];
        auto reply = pool.invoke(trace.models[r.model].model_id, envelopes[r.model], s.deadline_ms);
        if (reply.ok()) return {true, {}};
        return {false, reply.status().to_string()};
      },
      [&](double) {
        uint64_t total = 0;
        for (auto& p : pools) {
          json status = p->status();
          for (const json& inst : status["instances"])
            total += inst["memory_used_bytes"].get<uint64_t>();
        }
        peak = std::max(peak, total);
      });

  Outcome res;
  res.name = per_model ? "one function per model" : mode == "moss" ? "MOSS" : mode;
  res.requests = trace.requests.size();
  res.served = res.requests - f.failed;
  res.failed = f.failed;
  for (auto& p : pools) {
    packer::PoolCounters k = p->counters();
    res.cold += k.runs_cold;
    res.switches += k.runs_switch;
    res.instance_starts += k.instance_starts;
    res.instance_seconds += p->instance_seconds();
  }
  res.p50 = f.p50_ms;
  res.p99 = f.p99_ms;
  res.peak_memory = peak;
  res.first_error = f.first_error;
  manager.shutdown();
  return res;
}

void print(const Outcome& r) {
  std::printf("%-24s %8zu %7zu %7zu %6lu %7lu %9lu %9.1f %9.1f %10.1f %9.0f\n", r.name.c_str(),
              r.requests, r.served, r.failed, static_cast<unsigned long>(r.cold),
              static_cast<unsigned long>(r.instance_starts), static_cast<unsigned long>(r.switches),
              r.p50, r.p99, r.instance_seconds, static_cast<double>(r.peak_memory) / (1 << 20));
  if (!r.first_error.empty())
    std::printf("    first failure: %s\n", r.first_error.substr(0, 200).c_str());
}

}  // namespace

int main(int argc, char** argv) {
  Settings s;
  std::string json_path;
  bench::CommandLine args(argc, argv);
  for (std::string a; args.next_flag(a);) {
    auto next = [&] { return args.value(); };
    if (a == "--worker")
      s.worker = next();
    else if (bench::is_trace_option(a))
      bench::set_trace_option(s.trace, a, next());
    else if (a == "--max-instances")
      s.max_instances = std::atoi(next());
    else if (a == "--quick")
      s.trace.duration_s = 15;
    else if (a == "--json")
      json_path = next();
    else {
      std::fprintf(stderr, "unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  if (!std::filesystem::exists(s.worker)) {
    std::fprintf(stderr, "worker binary %s not found (build packer_stand_in_worker)\n",
                 s.worker.c_str());
    return 1;
  }
  moss::log::set_level("warn");
  bench::Trace trace = bench::generate_trace(s.trace);
  double top = trace.models.empty() ? 0 : trace.models[0].share;
  std::printf(
      "trace: %zu requests, %d models (most popular %.0f%% of requests), %.0f s, mean %.0f req/s, "
      "bursts x%.0f; pool: max %d instances x %d concurrent, %d MiB, idle stop %d s, "
      "worker start %d ms, deadline %d ms\n",
      trace.requests.size(), s.trace.models, top * 100, s.trace.duration_s, s.trace.mean_rate_per_s,
      s.trace.burst_factor, s.max_instances, s.max_concurrency, s.memory_mb, s.idle_timeout_s,
      s.start_ms, s.deadline_ms);
  std::printf("%-24s %8s %7s %7s %6s %7s %9s %9s %9s %10s %9s\n", "policy", "requests", "served",
              "failed", "cold", "starts", "switches", "p50 ms", "p99 ms", "inst-s", "peak MiB");
  Outcome moss_r = replay(s, trace, "moss");
  print(moss_r);
  Outcome orig = replay(s, trace, "original");
  print(orig);
  Outcome orig_queue = replay(s, trace, "original+queue");
  print(orig_queue);
  Outcome per_model = replay(s, trace, "per-model");
  print(per_model);
  auto ratio = [](double a, double b) { return b > 0 ? a / b : 0.0; };
  std::printf(
      "MOSS vs original (same run): failures %zu vs %zu, cold starts %lu vs %lu (x%.2f), "
      "p99 x%.2f, instance-seconds x%.2f, switches x%.2f\n",
      moss_r.failed, orig.failed, static_cast<unsigned long>(moss_r.cold),
      static_cast<unsigned long>(orig.cold), ratio(moss_r.cold, orig.cold),
      ratio(moss_r.p99, orig.p99), ratio(moss_r.instance_seconds, orig.instance_seconds),
      ratio(moss_r.switches, orig.switches));
  bool better = moss_r.failed <= orig.failed && moss_r.cold <= orig.cold && moss_r.p99 < orig.p99 &&
                moss_r.instance_seconds <= orig.instance_seconds * 1.0001;
  std::printf(
      "MOSS beats the original on failures, cold starts and p99 at equal or lower "
      "instance-seconds: %s\n",
      better ? "yes" : "NO");
  nlohmann::ordered_json policies = nlohmann::ordered_json::array();
  for (const Outcome* o : {&moss_r, &orig, &orig_queue, &per_model}) {
    policies.push_back(bench::policy_result_json(*o));
  }
  nlohmann::ordered_json doc = {{"trace",
                                 {{"requests", trace.requests.size()},
                                  {"models", s.trace.models},
                                  {"duration_s", s.trace.duration_s},
                                  {"max_instances", s.max_instances}}},
                                {"policies", std::move(policies)}};
  return bench::write_json_output(json_path, "packer_trace_bench", std::move(doc)) ? 0 : 1;
}
