// packer_stack_bench: the trace replay of packer_trace_bench against the full local stack
// (`moss up`: KeyService + FnPacker + real moss-worker processes, simulated TEE), with real
// encrypted requests: every request is a fresh envelope sealed under the user's request key for
// its model, sent through FnPacker's invoke API, and its response envelope is opened and checked.
// bench/packer/stack_bench.sh prepares the stack (owner, N encrypted copies of the digits model,
// grants, request keys) and runs this. Per policy it creates a pool with the default pool's worker
// settings (MOSS, original, original+queue, one pool per model), replays the trace open-loop
// (open_loop_replay.h, shared with packer_trace_bench), reads the pools' status, deletes the
// pools (stopping their workers). Percentiles are over all requests, a failure counted as the
// deadline. `--rounds N` repeats the replays (the policies taking turns within a round) and
// reports each figure's median with its range over the rounds, and MOSS's ratios per round;
// `--log FILE` writes one CSV line per request (run kind, the packer's decision and reason, time
// queued, its estimate, the load phases), to see where a policy loses time.
// Usage: packer_stack_bench --stack DIR --user-config FILE --user ID --owner ID --input NPY
//                           [--models N] [--duration S] [--rate R] [--max-instances N]
//                           [--rounds N] [--policies moss,original,original+queue,per-model]
//                           [--log FILE]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>

#include "client/client_config.h"
#include "client/infer_client.h"
#include "client/request_key_file.h"
#include "common/encoding.h"
#include "common/file_util.h"
#include "common/logging.h"
#include "common/safetensors.h"
#include "common/tensor_file.h"
#include "crypto/envelope.h"
#include "crypto/random.h"
#include "net/client_pool.h"
#include "open_loop_replay.h"
#include "trace.h"

using json = nlohmann::json;
using namespace moss;

namespace {

struct Args {
  std::string stack, user_config, user, owner, input, log;
  bench::TraceOptions trace;
  int max_instances = 4;
  int rounds = 3;
  std::vector<std::string> policies = {"moss", "original", "original+queue", "per-model"};
};

// A request's longest wait for an instance, and a failed request's latency in the percentiles.
constexpr int kDeadlineMs = 5000;

std::string pool_name(const std::string& policy) {
  std::string name = "bench-" + policy;
  std::replace(name.begin(), name.end(), '+', '-');  // pool names: [a-z0-9-]
  return name;
}

struct Row {
  std::string name;
  size_t requests = 0, served = 0, failed = 0, wrong = 0;
  uint64_t cold = 0, switches = 0;
  double p50 = 0, p99 = 0, instance_seconds = 0;
  uint64_t peak = 0;
  std::string first_error;
};

// What one request came to, for the per-request log (--log): where FnPacker sent it and why,
// what the worker did, how long it waited.
struct RequestRecord {
  std::string run, decision, instance, reason;
  double queued_ms = 0, estimated_ms = 0, load_ms = 0, packer_ms = 0;
};

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "packer_stack_bench: %s\n", what.c_str());
  std::exit(1);
}

class Packer {
 public:
  Packer(uint16_t port, std::string token) : token_(std::move(token)) {
    net::ClientOptions o;
    o.port = port;
    o.read_timeout = std::chrono::seconds(60);
    clients_ = std::make_unique<net::ClientPool>(o, 200);
  }
  Result<net::Response> call(std::string method, std::string target, std::string body = {},
                             std::string_view content_type = "application/json") {
    net::Request r = net::Request::make(std::move(method), std::move(target), std::move(body), content_type);
    r.headers.set("Authorization", "Bearer " + token_);
    return clients_->request(r);
  }

 private:
  std::string token_;
  std::unique_ptr<net::ClientPool> clients_;
};

// One replay of the trace with one policy (`mode`: a policy name, or "per-model": one pool of at
// most one instance per model); with `log`, one CSV line per request.
Row replay(Packer& packer, const Args& a, const bench::Trace& trace, const json& base_spec,
           const std::string& mode, const std::vector<std::string>& model_ids,
           const std::map<std::string, client::RequestKeyFile>& keys,
           const std::vector<uint8_t>& plaintext, int round, std::FILE* log) {
  bool per_model = mode == "per-model";
  std::vector<std::string> pools;
  auto make_pool = [&](const std::string& name, const std::string& policy, int max_instances) {
    json spec = base_spec;
    spec["name"] = name;
    spec["policy"] = policy;
    spec["max_instances"] = max_instances;
    spec["min_instances"] = 0;
    spec["max_concurrency"] = 4;
    spec["idle_timeout_s"] = 5;
    spec["queue_timeout_ms"] = kDeadlineMs;
    packer.call("DELETE", "/v1/pools/" + name).value_or_die();
    auto r = packer.call("POST", "/v1/pools", spec.dump()).value_or_die();
    if (r.status != 201) die("creating pool " + name + ": " + r.body);
    pools.push_back(name);
  };
  if (per_model) {
    for (size_t i = 0; i < model_ids.size(); ++i)
      make_pool("bench-m" + std::to_string(i), "moss", 1);
  } else {
    make_pool(pool_name(mode), mode, a.max_instances);
  }
  Row row;
  row.name = per_model ? "one function per model" : mode == "moss" ? "MOSS" : mode;
  row.requests = trace.requests.size();
  std::vector<RequestRecord> records(trace.requests.size());
  std::atomic<size_t> wrong{0};
  std::mutex mu;  // the sampler's figures
  bench::ReplayOptions options;
  options.deadline_ms = kDeadlineMs;
  bench::ReplayFigures f = bench::replay_open_loop(
      trace, options,
      [&](size_t idx) -> bench::SendOutcome {
        const auto& req = trace.requests[idx];
        const std::string& model = model_ids[static_cast<size_t>(req.model)];
        const client::RequestKeyFile& key = keys.at(model);
        protocol::EnvelopeHeader h;
        h.model_id = model;
        h.user_id = a.user;
        std::vector<uint8_t> rid(16);
        crypto::random_bytes(rid).check();
        h.request_id = hex_encode(rid);
        // Both invoke wires, alternately (docs/packer-api.md): the JSON request, the binary body.
        const bool binary = idx % 2 == 0;
        std::string envelope =
            crypto::seal_envelope(key.key.span(), h, plaintext, {},
                                  binary ? protocol::EnvelopeEncoding::kBinary
                                         : protocol::EnvelopeEncoding::kJson)
                .value_or_die();
        std::string pool = per_model ? "bench-m" + std::to_string(req.model) : pool_name(mode);
        auto r = binary ? packer.call("POST", "/v1/pools/" + pool + "/invoke", std::move(envelope),
                                      protocol::kEnvelopeMediaType)
                        : packer.call("POST", "/v1/pools/" + pool + "/invoke",
                                      json{{"model_id", model},
                                           {"envelope", envelope},
                                           {"deadline_ms", kDeadlineMs}}
                                          .dump());
        if (!r.ok()) return {false, r.status().to_string()};
        if (r->status != 200) return {false, r->body.substr(0, 200)};
        auto reply = client::open_infer_response(key.key.span(), h, *r);
        if (!reply.ok()) {
          ++wrong;
          return {false, "response did not open: " + reply.status().to_string()};
        }
        RequestRecord& rec = records[idx];  // this thread's alone
        rec.run = reply->run;
        const json& p = reply->packer;
        if (p.is_object()) {
          rec.decision = p.value("decision", "");
          rec.instance = p.value("instance", "");
          rec.reason = p.value("reason", "");
          rec.queued_ms = p.value("queued_ms", 0.0);
          rec.estimated_ms = p.value("estimated_ms", 0.0);
          rec.packer_ms = p.value("total_ms", 0.0);
        }
        if (reply->timing_ms.is_object()) {
          for (const char* k : {"key_fetch", "model_fetch", "decrypt", "compile"}) {
            rec.load_ms += reply->timing_ms.value(k, 0.0);
          }
        }
        return {true, {}};
      },
      [&](double dt) {
        uint64_t mem = 0;
        size_t instances = 0;
        for (const std::string& p : pools) {
          auto r = packer.call("GET", "/v1/pools/" + p + "/status");
          if (!r.ok() || r->status != 200) continue;
          json s = json::parse(r->body, nullptr, false);
          for (const json& inst : s["instances"]) {
            mem += inst.value("memory_used_bytes", uint64_t{0});
            instances += inst.value("state", "") == "ready";
          }
        }
        std::lock_guard lock(mu);
        row.instance_seconds += static_cast<double>(instances) * dt;
        row.peak = std::max(row.peak, mem);
      });
  for (const std::string& p : pools) (void)packer.call("DELETE", "/v1/pools/" + p);
  row.failed = f.failed - wrong;
  row.wrong = wrong;
  row.served = row.requests - f.failed;
  row.first_error = f.first_error;
  row.p50 = f.p50_ms;
  row.p99 = f.p99_ms;
  for (size_t i = 0; i < records.size(); ++i) {
    if (!f.ok[i]) continue;
    row.cold += records[i].run == "cold";
    row.switches += records[i].run == "switch";
  }
  if (log) {
    for (size_t i = 0; i < records.size(); ++i) {
      const RequestRecord& r = records[i];
      std::fprintf(log, "%d,%s,%zu,%.1f,%d,%.1f,%d,%s,%s,%s,%.1f,%.1f,%.1f,%.1f,\"%s\"\n", round,
                   row.name.c_str(), i, trace.requests[i].at_ms, trace.requests[i].model,
                   f.latency_ms[i], f.ok[i] ? 1 : 0, r.run.c_str(), r.decision.c_str(),
                   r.instance.c_str(), r.queued_ms, r.estimated_ms, r.load_ms, r.packer_ms,
                   r.reason.c_str());
    }
  }
  return row;
}

void print(const Row& r, const char* prefix = "") {
  std::printf("%s%-24s %8zu %7zu %7zu %6lu %9lu %9.1f %9.1f %10.1f %9.1f\n", prefix,
              r.name.c_str(), r.requests, r.served, r.failed + r.wrong,
              static_cast<unsigned long>(r.cold), static_cast<unsigned long>(r.switches), r.p50,
              r.p99, r.instance_seconds, static_cast<double>(r.peak) / (1 << 20));
  if (!r.first_error.empty()) std::printf("    first failure: %s\n", r.first_error.c_str());
}

// "median [min-max]" of one figure over the rounds.
std::string spread(std::vector<double> v, const char* fmt) {
  std::sort(v.begin(), v.end());
  const double median =
      v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
  auto f = [&](double x) {
    char buf[32];
    std::snprintf(buf, sizeof buf, fmt, x);
    return std::string(buf);
  };
  return f(median) + " [" + f(v.front()) + "-" + f(v.back()) + "]";
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  a.trace.duration_s = 30;
  a.trace.mean_rate_per_s = 20;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    if (i + 1 >= argc) die("missing value for " + k);
    std::string v = argv[++i];
    if (k == "--stack")
      a.stack = v;
    else if (k == "--user-config")
      a.user_config = v;
    else if (k == "--user")
      a.user = v;
    else if (k == "--owner")
      a.owner = v;
    else if (k == "--input")
      a.input = v;
    else if (bench::is_trace_option(k))
      bench::set_trace_option(a.trace, k, v.c_str());
    else if (k == "--max-instances")
      a.max_instances = std::stoi(v);
    else if (k == "--rounds")
      a.rounds = std::max(1, std::stoi(v));
    else if (k == "--log")
      a.log = v;
    else if (k == "--policies") {
      a.policies.clear();
      std::stringstream ss(v);
      for (std::string p; std::getline(ss, p, ',');) a.policies.push_back(p);
    }
    else
      die("unknown argument " + k);
  }
  log::set_level("warn");
  json stack = json::parse(read_text_file(a.stack + "/stack.json", 1 << 20).value_or_die());
  std::string packer_url = stack["packer_url"];
  uint16_t port = static_cast<uint16_t>(std::stoi(packer_url.substr(packer_url.rfind(':') + 1)));
  std::string token = read_text_file(stack["token_file"].get<std::string>(), 4096).value_or_die();
  while (!token.empty() && (token.back() == '\n' || token.back() == ' ')) token.pop_back();
  Packer packer(port, token);
  auto def =
      packer.call("GET", "/v1/pools/" + stack.value("pool", std::string("default"))).value_or_die();
  if (def.status != 200) die("reading the default pool: " + def.body);
  json base_spec = json::parse(def.body)["spec"];

  client::ClientConfig config = client::load_client_config(a.user_config).value_or_die();
  std::map<std::string, client::RequestKeyFile> keys;
  std::vector<std::string> model_ids;
  for (int i = 0; i < a.trace.models; ++i) {
    std::string id = a.owner + "/digits-" + std::to_string(i);
    model_ids.push_back(id);
    keys.emplace(id, client::read_request_key_file(config, id).value_or_die());
  }
  TensorBundle inputs;
  inputs.add("image", read_tensor_file(a.input).value_or_die()).check();
  std::vector<uint8_t> plaintext = write_safetensors(inputs).value_or_die();

  bench::Trace trace = bench::generate_trace(a.trace);
  std::printf(
      "full stack (KeyService + FnPacker + moss-worker, simulated TEE), %d encrypted copies "
      "of the digits model; trace: %zu requests, %.0f s, mean %.0f req/s; pool max %d "
      "instances x 4 concurrent, idle stop 5 s, deadline %d ms; %d rounds\n",
      a.trace.models, trace.requests.size(), a.trace.duration_s, a.trace.mean_rate_per_s,
      a.max_instances, kDeadlineMs, a.rounds);
  std::printf("%-24s %8s %7s %7s %6s %9s %9s %9s %10s %9s\n", "round policy", "requests",
              "served", "failed", "cold", "switches", "p50 ms", "p99 ms", "inst-s", "peak MiB");
  std::FILE* log = nullptr;
  if (!a.log.empty()) {
    log = std::fopen(a.log.c_str(), "w");
    if (!log) die("cannot write " + a.log);
    std::fprintf(log, "round,policy,request,at_ms,model,latency_ms,ok,run,decision,instance,"
                      "queued_ms,estimated_ms,load_ms,packer_ms,reason\n");
  }
  // rows[policy][round]. The policies take turns within a round, so a slow phase of the shared
  // machine falls on all of them.
  std::vector<std::vector<Row>> rows(a.policies.size());
  for (int round = 0; round < a.rounds; ++round) {
    for (size_t k = 0; k < a.policies.size(); ++k) {
      rows[k].push_back(replay(packer, a, trace, base_spec, a.policies[k], model_ids, keys,
                               plaintext, round, log));
      print(rows[k].back(), (std::to_string(round + 1) + " ").c_str());
    }
  }
  if (log) std::fclose(log);
  std::printf("\nmedian [min-max] over %d rounds; p50/p99 over all requests, a failure counted as "
              "the deadline (%d ms)\n",
              a.rounds, kDeadlineMs);
  std::printf("%-24s %16s %16s %22s %22s %22s\n", "policy", "failed", "cold", "p50 ms", "p99 ms",
              "inst-s");
  auto figure = [&](size_t k, auto get) {
    std::vector<double> v;
    for (const Row& r : rows[k]) v.push_back(get(r));
    return v;
  };
  for (size_t k = 0; k < a.policies.size(); ++k) {
    std::printf(
        "%-24s %16s %16s %22s %22s %22s\n", rows[k].front().name.c_str(),
        spread(figure(k, [](const Row& r) { return double(r.failed + r.wrong); }), "%.0f").c_str(),
        spread(figure(k, [](const Row& r) { return double(r.cold); }), "%.0f").c_str(),
        spread(figure(k, [](const Row& r) { return r.p50; }), "%.1f").c_str(),
        spread(figure(k, [](const Row& r) { return r.p99; }), "%.1f").c_str(),
        spread(figure(k, [](const Row& r) { return r.instance_seconds; }), "%.1f").c_str());
  }
  // MOSS against each baseline, round by round (same trace, same minute of the machine).
  const auto moss = std::find(a.policies.begin(), a.policies.end(), "moss");
  if (moss == a.policies.end()) return 0;
  const size_t m = static_cast<size_t>(moss - a.policies.begin());
  for (size_t k = 0; k < a.policies.size(); ++k) {
    if (k == m || a.policies[k] == "per-model") continue;
    std::vector<double> p99, inst;
    for (int r = 0; r < a.rounds; ++r) {
      const Row& x = rows[m][static_cast<size_t>(r)];
      const Row& y = rows[k][static_cast<size_t>(r)];
      p99.push_back(y.p99 > 0 ? x.p99 / y.p99 : 0);
      inst.push_back(y.instance_seconds > 0 ? x.instance_seconds / y.instance_seconds : 0);
    }
    std::printf("MOSS vs %s, per round: p99 x%s, instance-seconds x%s\n", a.policies[k].c_str(),
                spread(p99, "%.2f").c_str(), spread(inst, "%.2f").c_str());
  }
  return 0;
}
