// worker_bench: the worker's figures, with real moss-keyservice and moss-worker processes on
// loopback (simulated TEE) and the exported models (tools/export_models.py -> models/<name>/).
//
//   worker_bench [--bin-dir build/bin] [--models models] [--iters 30] [--seconds 4]
//                [--cold-rounds N] [--json FILE]
//
// 1. Warm latency: encrypted request through the worker (seal, HTTP, open envelope, run in a
//    pooled context, seal, HTTP, open) over the in-process run of the same compiled model, same
//    thread count (1), interleaved in rounds in the same run; p50 ratio, goal < 1.10. Both wires:
//    the binary envelope body (what `moss infer` sends a worker) and the JSON request (FnPacker,
//    OpenWhisk). Anchor: the same payloads through a raw-socket encrypted call around a busy wait
//    as long as the in-process run, i.e. the floor any encrypted remote call has on this machine.
// 2. Cold start of a fresh instance: process start to listening (includes attestation), then the
//    first request's breakdown (key fetch, model fetch, decrypt, compile, inference), without the
//    compiled-plan cache and with it (a first instance writes the entry, the next one hits it),
//    each beside the warm binary round trip of phase 1 (cold / warm); --cold-rounds N repeats
//    the three and adds a median line per model and mode.
// 3. Throughput with 1, 2, 4, 8 concurrent clients on one instance (MobileNetV2).
// 4. RSS with 1 and with 8 concurrent requests on ResNet-50 beside its weights and arena sizes.
// --json FILE: the cold-start breakdown per model for bench/plot_results.py
// (bench/common/json_output.h).
#include "attest/simulated.h"
#include "bench/common/json_output.h"
#include "client/client_config.h"
#include "client/infer_client.h"
#include "client/request_key_file.h"
#include "common/encoding.h"
#include "common/file_util.h"
#include "common/npy.h"
#include "common/percentile.h"
#include "common/safetensors.h"
#include "crypto/envelope.h"
#include "crypto/identity.h"
#include "crypto/random.h"
#include "engine/runtime/compiled_model.h"
#include "engine/runtime/execution_context.h"
#include "net/client.h"
#include "support/service_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <nlohmann/json.hpp>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

// GCC 12 reports a false -Wrestrict inside std::string concatenation here (GCC bug 105329).
#pragma GCC diagnostic ignored "-Wrestrict"

namespace {

using namespace moss;
namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

fs::path g_bin = "build/bin", g_models = "models", g_dir;
int g_iters = 30, g_cold_rounds = 1;
double g_seconds = 4;
std::map<std::string, double> g_warm_ms;  // per model: warm binary client round trip p50
nlohmann::ordered_json g_cold_rows = nlohmann::ordered_json::array();  // for --json

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }
double p50(const std::vector<double>& v) { return percentile(v, 0.5); }

std::string sh(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  if (::pclose(p) != 0) {
    std::fprintf(stderr, "worker_bench: command failed: %s\n%s", cmd.c_str(), out.c_str());
    std::exit(1);
  }
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

using Proc = test_support::ServiceProcess;

Proc spawn(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env, const fs::path& log) {
  Proc p = test_support::spawn_service(argv, env, log);
  if (p.port == 0) {
    std::fprintf(stderr, "worker_bench: %s did not start (see %s)\n", argv[0].c_str(), log.c_str());
    std::exit(1);
  }
  return p;
}

void stop(Proc& p) { p.stop(SIGTERM); }

uint64_t rss_kb(pid_t pid, const char* field) {
  // procfs files report size 0, so read them as streams.
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field, 0) == 0) return std::strtoull(line.c_str() + std::strlen(field), nullptr, 10);
  }
  return 0;
}

json policy(const std::string& m) {
  return {{"version", 1}, {"name", "worker_bench"}, {"allow_simulated", true},
          {"measurements", json::array({{{"tee", "simulated"}, {"measurement", m}}})}};
}

struct Stack {
  Proc keyservice;
  std::string owner, user, moss;
  fs::path sim_key;
  std::map<std::string, std::string> worker_env;
};

std::string cfg(const std::string& who) { return "'" + (g_dir / who / "client.json").string() + "'"; }

Stack setup(const std::vector<std::string>& models) {
  Stack s;
  s.moss = (g_bin / "moss").string();
  s.sim_key = g_dir / "sim.key";
  attest::SimPlatformKey::load_or_create(s.sim_key).value_or_die();
  auto m = [](const char* b, const char* id) {
    return hex_encode(attest::simulated_measurement(g_bin / b, id).value_or_die());
  };
  const std::string wm = m("moss-worker", "moss-worker");
  write_text_file(g_dir / "wp.json", policy(wm).dump()).check();
  write_text_file(g_dir / "kp.json", policy(m("moss-keyservice", "moss-keyservice")).dump()).check();
  s.keyservice = spawn({(g_bin / "moss-keyservice").string(), "--listen", "127.0.0.1:0", "--state-dir",
                        (g_dir / "ks").string(), "--tee", "sim", "--sim-key-file", s.sim_key.string(),
                        "--worker-policy", (g_dir / "wp.json").string(), "--allow-simulated", "--rate-limit", "0"},
                       {}, g_dir / "keyservice.log");
  auto principal = [&](const std::string& who) {
    sh("'" + s.moss + "' identity new --out '" + (g_dir / who).string() + "'");
    const std::string id = crypto::Identity::load(g_dir / who / "identity.pem").value_or_die().principal_id();
    json c = {{"keyservice_url", s.keyservice.url}, {"keyservice_policy", (g_dir / "kp.json").string()},
              {"identity", "identity.pem"}, {"state_dir", "."}, {"allow_simulated", true},
              {"sim_key_file", s.sim_key.string()}};
    write_text_file(g_dir / who / "client.json", c.dump()).check();
    sh("'" + s.moss + "' user register --config " + cfg(who));
    return id;
  };
  s.owner = principal("owner");
  s.user = principal("user");
  fs::create_directories(g_dir / "store" / s.owner);
  for (const auto& name : models) {
    const std::string id = s.owner + "/" + name;
    const std::string key = (g_dir / "owner" / (name + ".key")).string();
    sh("'" + s.moss + "' model encrypt --in '" + (g_models / name / "model.onnx").string() + "' --out '" +
       (g_dir / "store" / s.owner / (name + ".moss")).string() + "' --model-id " + id + " --key-out '" + key + "'");
    sh("'" + s.moss + "' model upload-key --config " + cfg("owner") + " --key '" + key + "'");
    sh("'" + s.moss + "' model grant --config " + cfg("owner") + " --model " + id + " --user " + s.user +
       " --measurement " + wm);
    sh("'" + s.moss + "' request-key add --config " + cfg("user") + " --model " + id + " --measurement " + wm);
  }
  s.worker_env = {{"MOSS_WORKER_KEYSERVICE_URL", s.keyservice.url},
                  {"MOSS_WORKER_KEYSERVICE_POLICY", (g_dir / "kp.json").string()},
                  {"MOSS_WORKER_MODEL_STORE", (g_dir / "store").string()},
                  {"MOSS_WORKER_TEE", "sim"},
                  {"MOSS_WORKER_SIM_KEY_FILE", s.sim_key.string()},
                  {"MOSS_WORKER_ALLOW_SIMULATED", "true"},
                  {"MOSS_WORKER_MAX_CONCURRENCY", "16"},
                  {"MOSS_WORKER_MEMORY_BUDGET_MB", "4096"},
                  // As FnPacker's local backend and the worker image start it (docs/worker.md).
                  {"OMP_WAIT_POLICY", "passive"},
                  {"GLIBC_TUNABLES", "glibc.malloc.hugetlb=1"},
                  // The bench's own plan cache (the cold phase chooses per instance).
                  {"MOSS_WORKER_PLAN_CACHE_DIR", (g_dir / "plan-cache").string()}};
  return s;
}

Proc start_worker(const Stack& s, const std::string& plan_cache_dir = "") {
  auto env = s.worker_env;
  if (!plan_cache_dir.empty()) env["MOSS_WORKER_PLAN_CACHE_DIR"] = plan_cache_dir;
  return spawn({(g_bin / "moss-worker").string(), "--host", "127.0.0.1", "--port", "0", "--log-level", "warn"},
               env, g_dir / "worker.log");
}

// One encrypted request; returns the client-side latency and the worker's result object.
struct Requester {
  std::string model_id, user;
  SecretBytes key;
  std::vector<uint8_t> plain;  // safetensors of the input
  std::unique_ptr<net::Client> client;
  Requester(const Stack& s, const std::string& name, uint16_t port, const Tensor& input) {
    model_id = s.owner + "/" + name;
    user = s.user;
    auto c = client::load_client_config(g_dir / "user" / "client.json").value_or_die();
    key = std::move(client::read_request_key_file(c, model_id).value_or_die().key);
    TensorBundle b;
    b.add("input", input).check();
    plain = write_safetensors(b).value_or_die();
    net::ClientOptions o;
    o.port = port;
    o.read_timeout = std::chrono::minutes(5);
    client = std::make_unique<net::Client>(o);
  }
  // The result object: {"run", "timing_ms"} (binary wire: from the response headers).
  // Request ids are unique per process: the worker refuses a replayed id (409 `replayed`).
  json once(bool binary = true) {
    static std::atomic<uint64_t> next_id{0};
    protocol::EnvelopeHeader h{model_id, user, "b" + std::to_string(next_id++) + "-" + std::to_string(::getpid()),
                             protocol::Direction::kRequest};
    auto env = crypto::seal_envelope(key.span(), h, plain, {},
                                     binary ? protocol::EnvelopeEncoding::kBinary : protocol::EnvelopeEncoding::kJson)
                   .value_or_die();
    auto req = binary ? net::Request::make("POST", "/v1/infer", std::move(env), protocol::kEnvelopeMediaType)
                      : net::Request::make("POST", "/v1/infer", json{{"model_id", model_id}, {"envelope", env}}.dump(),
                                           "application/json");
    auto r = client->request(req).value_or_die();
    if (r.status != 200) {
      std::fprintf(stderr, "worker_bench: HTTP %d %s\n", r.status, r.body.substr(0, 300).c_str());
      std::exit(1);
    }
    auto out = client::open_infer_response(key.span(), h, r).value_or_die();
    return {{"run", out.run}, {"timing_ms", out.timing_ms}};
  }
};

// The floor of any encrypted call across a process boundary on this machine, as the anchor for
// the warm ratio: raw blocking loopback sockets, one thread per side, no HTTP; the client seals
// `in_bytes`, the server opens them, busy-waits `work_ms` (the in-process run), seals
// `out_bytes`, the client opens them. Returns the p50 round trip.
double transport_floor(size_t in_bytes, size_t out_bytes, double work_ms, int iters) {
  auto busy = [](double m) {
    const auto t = Clock::now();
    while (ms_since(t) < m) {
    }
  };
  auto send_all = [](int fd, const void* p, size_t n) {
    for (size_t off = 0; off < n;) {
      ssize_t k = ::send(fd, static_cast<const char*>(p) + off, n - off, MSG_NOSIGNAL);
      if (k <= 0) return false;
      off += static_cast<size_t>(k);
    }
    return true;
  };
  auto recv_all = [](int fd, void* p, size_t n) {
    for (size_t got = 0; got < n;) {
      ssize_t k = ::recv(fd, static_cast<char*>(p) + got, n - got, 0);
      if (k <= 0) return false;
      got += static_cast<size_t>(k);
    }
    return true;
  };
  auto send_msg = [&](int fd, const std::string& m) {
    const uint64_t n = m.size();
    return send_all(fd, &n, 8) && send_all(fd, m.data(), m.size());
  };
  auto recv_msg = [&](int fd, std::string& m) {
    uint64_t n = 0;
    if (!recv_all(fd, &n, 8) || n > (size_t{1} << 30)) return false;
    m.resize(n);
    return recv_all(fd, m.data(), n);
  };
  std::vector<uint8_t> key(32, 7), in(in_bytes, 3), out(out_bytes, 5);
  int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(listener, reinterpret_cast<sockaddr*>(&addr), len) != 0 || ::listen(listener, 1) != 0 ||
      ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    std::perror("worker_bench: floor socket");
    std::exit(1);
  }
  const int one = 1;
  std::thread server([&] {
    int c = ::accept(listener, nullptr, nullptr);
    ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    std::string m;
    for (int i = 0; recv_msg(c, m); ++i) {
      protocol::EnvelopeHeader h{"o/m", "u", "r" + std::to_string(i), protocol::Direction::kRequest};
      (void)crypto::open_envelope(key, h, m).value_or_die();
      busy(work_ms);
      h.direction = protocol::Direction::kResponse;
      if (!send_msg(c, crypto::seal_envelope(key, h, out, {}, protocol::EnvelopeEncoding::kBinary).value_or_die())) break;
    }
    ::close(c);
  });
  int c = ::socket(AF_INET, SOCK_STREAM, 0);
  if (::connect(c, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    std::perror("worker_bench: floor connect");
    std::exit(1);
  }
  ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  std::vector<double> rt;
  std::string reply;
  for (int i = 0; i < iters; ++i) {
    protocol::EnvelopeHeader h{"o/m", "u", "r" + std::to_string(i), protocol::Direction::kRequest};
    const auto t = Clock::now();
    send_msg(c, crypto::seal_envelope(key, h, in, {}, protocol::EnvelopeEncoding::kBinary).value_or_die());
    if (!recv_msg(c, reply)) std::exit(1);
    h.direction = protocol::Direction::kResponse;
    (void)crypto::open_envelope(key, h, reply).value_or_die();
    rt.push_back(ms_since(t));
  }
  ::close(c);
  server.join();
  ::close(listener);
  return p50(rt);
}

Tensor model_input(const std::string& name) {
  return read_npy_file(g_models / name / "inputs" / "input.npy").value_or_die();
}

void warm_latency(const Stack& s, const std::string& name) {
  Proc w = start_worker(s);
  Tensor input = model_input(name);
  Requester req(s, name, w.port, input);
  req.once();  // load
  auto bytes = read_file(g_models / name / "model.onnx", size_t{1} << 31).value_or_die();
  auto model = engine::CompiledModel::compile(bytes).value_or_die();
  engine::ExecutionContext ctx(model);
  std::vector<NamedTensor> in = {{"input", input}};
  size_t reply_bytes = 0;
  {
    TensorBundle outputs;
    for (auto& o : ctx.run(in).value_or_die()) outputs.add(o.name, std::move(o.tensor)).check();
    reply_bytes = write_safetensors(outputs).value_or_die().size();
  }
  struct Series {
    std::vector<double> client, total, decrypt, inference, encrypt;
  } wire[2];  // [0] binary body, [1] JSON body
  std::vector<double> local_ms;
  for (int i = 0; i < g_iters; ++i) {
    for (int k = 0; k < 2; ++k) {
      auto t = Clock::now();
      json r = req.once(/*binary=*/k == 0);
      wire[k].client.push_back(ms_since(t));
      const json& tm = r["timing_ms"];
      wire[k].total.push_back(tm["total"].get<double>());
      wire[k].decrypt.push_back(tm["decrypt"].get<double>());
      wire[k].inference.push_back(tm["inference"].get<double>());
      wire[k].encrypt.push_back(tm["encrypt"].get<double>());
    }
    auto t = Clock::now();
    (void)ctx.run(in).value_or_die();
    local_ms.push_back(ms_since(t));
  }
  const double local = p50(local_ms);
  const double floor = transport_floor(req.plain.size(), reply_bytes, local, g_iters);
  std::printf("floor %-13s raw-socket encrypted call (%zu B in, %zu B out, %.2f ms busy work): p50 %8.2f ms  "
              "ratio %.3f (the least any encrypted remote call costs here)\n",
              name.c_str(), req.plain.size(), reply_bytes, local, floor, floor / local);
  g_warm_ms[name] = p50(wire[0].client);
  for (int k = 0; k < 2; ++k) {
    const Series& x = wire[k];
    std::printf("warm %-13s %-6s client round trip p50 %8.2f ms (worker total %.2f: decrypt %.2f inference %.2f "
                "encrypt %.2f)  in-process p50 %8.2f ms  ratio %.3f (worker total / in-process %.3f; goal < 1.10, "
                "%d rounds)\n",
                name.c_str(), k == 0 ? "binary" : "json", p50(x.client), p50(x.total), p50(x.decrypt),
                p50(x.inference), p50(x.encrypt), local, p50(x.client) / local, p50(x.total) / local, g_iters);
  }
  stop(w);
}

// One fresh instance's first request. mode: "no cache" (plan cache off), "cache miss" (an empty
// cache directory: the instance writes the entry), "cache hit" (the entry the miss wrote).
double cold_start(const Stack& s, const std::string& name, const std::string& mode, int round) {
  const fs::path cache_dir = g_dir / ("plan-cache-" + name);
  if (mode == "cache miss") fs::remove_all(cache_dir);
  auto t = Clock::now();
  Proc w = start_worker(s, mode == "no cache" ? "off" : cache_dir.string());
  const double start_ms = ms_since(t);  // exec, config, attestation, credentials, listen
  Requester req(s, name, w.port, model_input(name));
  t = Clock::now();
  json r = req.once();
  const double first_ms = ms_since(t);
  const json& tm = r["timing_ms"];
  const double warm = g_warm_ms.count(name) ? g_warm_ms[name] : 0;
  std::printf("cold %-13s %-10s process start+attestation %7.1f ms | first request %7.1f ms: key_fetch %.1f model_fetch %.1f decrypt %.1f compile %.1f inference %.1f encrypt %.2f (run=%s) | warm %.2f ms, cold/warm %.2f\n",
              name.c_str(), mode.c_str(), start_ms, first_ms, tm["key_fetch"].get<double>(),
              tm["model_fetch"].get<double>(), tm["decrypt"].get<double>(), tm["compile"].get<double>(),
              tm["inference"].get<double>(), tm["encrypt"].get<double>(), r["run"].get<std::string>().c_str(),
              warm, warm > 0 ? first_ms / warm : 0.0);
  nlohmann::ordered_json phases = nlohmann::ordered_json::object();
  for (const char* p : {"key_fetch", "model_fetch", "decrypt", "compile", "inference", "encrypt"})
    phases[p] = tm[p].get<double>();
  g_cold_rows.push_back({{"model", name}, {"plan_cache", mode}, {"round", round}, {"start_attest_ms", start_ms},
                         {"first_request_ms", first_ms}, {"warm_ms", warm}, {"phases_ms", std::move(phases)},
                         {"run", r["run"].get<std::string>()}});
  if (mode == "cache miss") {
    // The entry is written in the background after the compile: wait for it (up to 60 s).
    bool written = false;
    for (int i = 0; i < 600 && !written; ++i) {
      std::error_code ec;
      for (const auto& e : fs::directory_iterator(cache_dir, ec)) written |= e.path().extension() == ".plan";
      if (!written) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (!written) std::printf("cold %-13s the plan cache entry was not written\n", name.c_str());
  }
  stop(w);
  return first_ms;
}

void cold_starts(const Stack& s, const std::vector<std::string>& models) {
  static const char* kModes[] = {"no cache", "cache miss", "cache hit"};
  std::map<std::string, std::vector<double>> firsts;  // model + mode -> first request ms
  for (int round = 0; round < g_cold_rounds; ++round) {
    for (const auto& m : models) {
      for (const char* mode : kModes) firsts[m + "|" + mode].push_back(cold_start(s, m, mode, round));
    }
  }
  if (g_cold_rounds < 2) return;
  for (const auto& m : models) {
    for (const char* mode : kModes) {
      const double med = p50(firsts[m + "|" + mode]), warm = g_warm_ms[m];
      std::printf("cold %-13s %-10s median of %d: first request %7.1f ms, warm %.2f ms, cold/warm %.2f\n",
                  m.c_str(), mode, g_cold_rounds, med, warm, warm > 0 ? med / warm : 0.0);
    }
  }
}

void throughput(const Stack& s, const std::string& name) {
  Proc w = start_worker(s);
  Tensor input = model_input(name);
  { Requester(s, name, w.port, input).once(); }
  double base = 0;
  for (int clients : {1, 2, 4, 8}) {
    std::atomic<int> done{0};
    std::atomic<bool> stop_flag{false};
    std::vector<std::thread> threads;
    for (int c = 0; c < clients; ++c) {
      threads.emplace_back([&] {
        Requester r(s, name, w.port, input);
        while (!stop_flag) {
          r.once();
          ++done;
        }
      });
    }
    auto t = Clock::now();
    std::this_thread::sleep_for(std::chrono::duration<double>(g_seconds));
    stop_flag = true;
    for (auto& th : threads) th.join();
    const double rps = done / (ms_since(t) / 1000.0);
    if (clients == 1) base = rps;
    std::printf("throughput %-13s %d client(s): %7.1f req/s (x%.2f of 1 client)\n", name.c_str(), clients, rps, rps / base);
  }
  stop(w);
}

void memory(const Stack& s, const std::string& name) {
  Proc w = start_worker(s);
  Tensor input = model_input(name);
  const uint64_t idle_kb = rss_kb(w.pid, "VmRSS:");
  { Requester(s, name, w.port, input).once(); }
  for (int i = 1; i < 4; ++i) Requester(s, name, w.port, input).once();
  const uint64_t one_kb = rss_kb(w.pid, "VmHWM:"), one_now_kb = rss_kb(w.pid, "VmRSS:");
  std::vector<std::thread> threads;
  for (int c = 0; c < 8; ++c) {
    threads.emplace_back([&] {
      Requester r(s, name, w.port, input);
      for (int i = 0; i < 3; ++i) r.once();
    });
  }
  for (auto& t : threads) t.join();
  const uint64_t eight_kb = rss_kb(w.pid, "VmHWM:"), eight_now_kb = rss_kb(w.pid, "VmRSS:");
  net::ClientOptions o;
  o.port = w.port;
  net::Client c(o);
  json st = json::parse(c.get("/v1/status").value_or_die().body);
  const json& m = st["models"][0];
  const double weights_mb = m["weights_bytes"].get<double>() / 1048576.0;
  const double arena_mb = m["arena_bytes"].get<double>() / m["contexts"].get<double>() / 1048576.0;
  std::printf("memory %-13s RSS idle %.1f MiB | after 1 concurrent %.1f MiB (peak %.1f, includes the load: file + "
              "plaintext + compile) | after 8 concurrent %.1f MiB (peak %.1f) | extra per added request %.1f MiB | "
              "weights %.1f MiB, arena %.1f MiB per context (%d contexts)\n",
              name.c_str(), idle_kb / 1024.0, one_now_kb / 1024.0, one_kb / 1024.0, eight_now_kb / 1024.0,
              eight_kb / 1024.0, (static_cast<double>(eight_now_kb) - one_now_kb) / 7 / 1024.0, weights_mb, arena_mb,
              m["contexts"].get<int>());
  stop(w);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> models = {"mobilenet_v2", "resnet50"};
  std::string json_path;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--bin-dir") g_bin = argv[i + 1];
    else if (a == "--models") g_models = argv[i + 1];
    else if (a == "--iters") g_iters = std::atoi(argv[i + 1]);
    else if (a == "--seconds") g_seconds = std::atof(argv[i + 1]);
    else if (a == "--cold-rounds") g_cold_rounds = std::max(1, std::atoi(argv[i + 1]));
    else if (a == "--json") json_path = argv[i + 1];
    else {
      std::fprintf(stderr, "usage: %s [--bin-dir DIR] [--models DIR] [--iters N] [--seconds S] [--cold-rounds N] [--json FILE]\n",
                   argv[0]);
      return 2;
    }
  }
  for (const auto& m : models) {
    if (!fs::exists(g_models / m / "model.onnx")) {
      std::printf("worker_bench: %s missing; run /usr/bin/python3 tools/export_models.py first\n",
                  (g_models / m / "model.onnx").c_str());
      return 0;
    }
  }
  char tmpl[] = "/tmp/moss-worker-bench-XXXXXX";
  g_dir = ::mkdtemp(tmpl);
  Stack s = setup(models);
  for (const auto& m : models) warm_latency(s, m);
  cold_starts(s, models);
  // Written now: the JSON holds the cold starts, and a later phase failing must not lose them.
  if (!bench::write_json_output(json_path, "worker_bench", {{"cold_start", std::move(g_cold_rows)}})) return 1;
  throughput(s, "mobilenet_v2");
  memory(s, "resnet50");
  stop(s.keyservice);
  fs::remove_all(g_dir);
  return 0;
}
