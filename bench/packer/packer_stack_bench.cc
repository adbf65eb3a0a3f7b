// packer_stack_bench: the trace replay of packer_trace_bench against the full local stack
// (`moss up`: KeyService + FnPacker + real moss-worker processes, simulated TEE), with real
// encrypted requests: every request is a fresh envelope sealed under the user's request key for
// its model, sent through FnPacker's invoke API, and its response envelope is opened and checked.
// bench/packer/stack_bench.sh prepares the stack (owner, N encrypted copies of the digits model,
// grants, request keys) and runs this. Per policy it creates a pool with the default pool's worker
// settings (MOSS, original rule, one pool per model), replays, reads the pools' status, deletes
// the pools (stopping their workers).
// Usage: packer_stack_bench --stack DIR --user-config FILE --user ID --owner ID --input NPY
//                           [--models N] [--duration S] [--rate R] [--max-instances N]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

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
#include "trace.h"

using json = nlohmann::json;
using namespace moss;
using steady = std::chrono::steady_clock;

namespace {

struct Args {
  std::string stack, user_config, user, owner, input;
  bench::TraceOptions trace;
  int max_instances = 4;
};

struct Row {
  std::string name;
  size_t requests = 0, served = 0, failed = 0, wrong = 0;
  uint64_t cold = 0, switches = 0;
  double p50 = 0, p99 = 0, instance_seconds = 0;
  uint64_t peak = 0;
  std::string first_error;
};

double pct(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1,
                    static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5))];
}

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

Row replay(Packer& packer, const Args& a, const bench::Trace& trace, const json& base_spec,
           const std::string& mode, const std::vector<std::string>& model_ids,
           const std::map<std::string, client::RequestKeyFile>& keys,
           const std::vector<uint8_t>& plaintext) {
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
    spec["queue_timeout_ms"] = 5000;
    packer.call("DELETE", "/v1/pools/" + name).value_or_die();
    auto r = packer.call("POST", "/v1/pools", spec.dump()).value_or_die();
    if (r.status != 201) die("creating pool " + name + ": " + r.body);
    pools.push_back(name);
  };
  if (per_model) {
    for (size_t i = 0; i < model_ids.size(); ++i)
      make_pool("bench-m" + std::to_string(i), "moss", 1);
  } else {
    make_pool("bench-" + mode, mode, a.max_instances);
  }
  std::mutex mu;
  std::condition_variable cv;
  std::deque<size_t> queue;
  bool done = false;
  std::vector<double> latencies;
  Row row;
  row.name = per_model ? "one function per model" : mode == "moss" ? "MOSS" : "original rule";
  row.requests = trace.requests.size();
  auto t0 = steady::now();
  auto sender = [&] {
    while (true) {
      size_t idx;
      {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return done || !queue.empty(); });
        if (queue.empty()) return;
        idx = queue.front();
        queue.pop_front();
      }
      const auto& req = trace.requests[idx];
      const std::string& model = model_ids[static_cast<size_t>(req.model)];
      const client::RequestKeyFile& key = keys.at(model);
      protocol::EnvelopeHeader h;
      h.model_id = model;
      h.user_id = a.user;
      std::vector<uint8_t> rid(16);
      crypto::random_bytes(rid).check();
      h.request_id = hex_encode(rid);
      // Both invoke wires, alternately (docs/packer-api.md): the JSON request and the binary body.
      const bool binary = idx % 2 == 0;
      std::string envelope =
          crypto::seal_envelope(key.key.span(), h, plaintext, {},
                                binary ? protocol::EnvelopeEncoding::kBinary : protocol::EnvelopeEncoding::kJson)
              .value_or_die();
      std::string pool = per_model ? "bench-m" + std::to_string(req.model) : "bench-" + mode;
      auto r = binary ? packer.call("POST", "/v1/pools/" + pool + "/invoke", std::move(envelope),
                                    protocol::kEnvelopeMediaType)
                      : packer.call("POST", "/v1/pools/" + pool + "/invoke",
                                    json{{"model_id", model}, {"envelope", envelope}, {"deadline_ms", 5000}}.dump());
      double ms = std::chrono::duration<double, std::milli>(steady::now() - t0).count() - req.at_ms;
      std::lock_guard lock(mu);
      if (!r.ok() || r->status != 200) {
        ++row.failed;
        if (row.first_error.empty())
          row.first_error = r.ok() ? r->body.substr(0, 200) : r.status().to_string();
        continue;
      }
      auto reply = client::open_infer_response(key.key.span(), h, *r);
      if (!reply.ok()) {
        ++row.wrong;
        if (row.first_error.empty()) row.first_error = reply.status().to_string();
        continue;
      }
      const std::string& run = reply->run;
      row.cold += run == "cold";
      row.switches += run == "switch";
      latencies.push_back(ms);
    }
  };
  std::vector<std::thread> senders;
  for (int i = 0; i < 160; ++i) senders.emplace_back(sender);
  std::atomic<bool> sampling{true};
  std::thread sampler([&] {
    auto last = steady::now();
    while (sampling) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      double dt = std::chrono::duration<double>(steady::now() - last).count();
      last = steady::now();
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
    }
  });
  for (size_t i = 0; i < trace.requests.size(); ++i) {
    std::this_thread::sleep_until(
        t0 + std::chrono::microseconds(static_cast<int64_t>(trace.requests[i].at_ms * 1000)));
    std::lock_guard lock(mu);
    queue.push_back(i);
    cv.notify_one();
  }
  {
    std::lock_guard lock(mu);
    done = true;
    cv.notify_all();
  }
  for (auto& t : senders) t.join();
  sampling = false;
  sampler.join();
  for (const std::string& p : pools) (void)packer.call("DELETE", "/v1/pools/" + p);
  row.served = latencies.size();
  row.p50 = pct(latencies, 0.5);
  row.p99 = pct(latencies, 0.99);
  return row;
}

void print(const Row& r) {
  std::printf("%-24s %8zu %7zu %7zu %6lu %9lu %9.1f %9.1f %10.1f %9.1f\n", r.name.c_str(),
              r.requests, r.served, r.failed + r.wrong, static_cast<unsigned long>(r.cold),
              static_cast<unsigned long>(r.switches), r.p50, r.p99, r.instance_seconds,
              static_cast<double>(r.peak) / (1 << 20));
  if (!r.first_error.empty()) std::printf("    first failure: %s\n", r.first_error.c_str());
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
    else if (k == "--models")
      a.trace.models = std::stoi(v);
    else if (k == "--duration")
      a.trace.duration_s = std::stod(v);
    else if (k == "--rate")
      a.trace.mean_rate_per_s = std::stod(v);
    else if (k == "--max-instances")
      a.max_instances = std::stoi(v);
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
      "instances x 4 concurrent, idle stop 5 s, deadline 5000 ms\n",
      a.trace.models, trace.requests.size(), a.trace.duration_s, a.trace.mean_rate_per_s,
      a.max_instances);
  std::printf("%-24s %8s %7s %7s %6s %9s %9s %9s %10s %9s\n", "policy", "requests", "served",
              "failed", "cold", "switches", "p50 ms", "p99 ms", "inst-s", "peak MiB");
  Row m = replay(packer, a, trace, base_spec, "moss", model_ids, keys, plaintext);
  print(m);
  Row o = replay(packer, a, trace, base_spec, "original", model_ids, keys, plaintext);
  print(o);
  Row p = replay(packer, a, trace, base_spec, "per-model", model_ids, keys, plaintext);
  print(p);
  auto ratio = [](double x, double y) { return y > 0 ? x / y : 0.0; };
  std::printf(
      "MOSS vs original (same run): failures %zu vs %zu, cold starts %lu vs %lu, p99 x%.2f, "
      "instance-seconds x%.2f\n",
      m.failed + m.wrong, o.failed + o.wrong, static_cast<unsigned long>(m.cold),
      static_cast<unsigned long>(o.cold), ratio(m.p99, o.p99),
      ratio(m.instance_seconds, o.instance_seconds));
  return 0;
}
