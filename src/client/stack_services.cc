#include "client/stack_services.h"

#include "common/file_util.h"
#include "net/client.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <thread>

namespace moss::client {
namespace fs = std::filesystem;

namespace {

nlohmann::json simulated_policy(const std::string& name, const std::string& measurement) {
  return {{"version", 1},
          {"name", name},
          {"allow_simulated", true},
          {"allow_debug", false},
          {"measurements", nlohmann::json::array({{{"tee", "simulated"},
                                                   {"measurement", measurement}}})}};
}

std::string read_token(const StackLayout& layout) {
  auto text = read_text_file(layout.token_file, 256);
  return text.ok() ? *text : std::string();
}

}  // namespace

Status write_stack_policies(const StackLayout& l) {
  MOSS_RETURN_IF_ERROR(write_text_file(
      l.worker_policy(),
      simulated_policy("moss up: the keyservice releases keys to this build of moss-worker "
                       "(simulated TEE)",
                       l.worker_measurement)
              .dump(2) +
          "\n"));
  return write_text_file(
      l.keyservice_policy(),
      simulated_policy("moss up: workers and clients trust this build of moss-keyservice "
                       "(simulated TEE)",
                       l.keyservice_measurement)
              .dump(2) +
          "\n");
}

Status write_client_config(const StackLayout& l) {
  nlohmann::json j = {{"keyservice_url", l.keyservice_url()},
                      {"keyservice_policy", l.keyservice_policy().string()},
                      {"identity", "identity.pem"},
                      {"state_dir", "."},
                      {"allow_simulated", true},
                      {"sim_key_file", l.sim_key_file.string()}};
  return write_text_file(l.client_config, j.dump(2) + "\n");
}

namespace {

SubprocessSpec service_spec(const StackLayout& l, std::string name) {
  SubprocessSpec s;
  s.env[kStackDirEnv] = l.state_dir.string();
  s.log_path = l.log_dir / (name + ".log");
  s.name = std::move(name);
  s.tie = ParentTie::kGroupDiesWithParent;
  s.stop_grace = std::chrono::seconds(5);
  return s;
}

}  // namespace

SubprocessSpec keyservice_spec(const StackLayout& l) {
  SubprocessSpec s = service_spec(l, "keyservice");
  s.argv = {(l.bin_dir / kKeyServiceBinary).string(),
            "--listen",
            "127.0.0.1:" + std::to_string(l.port_keyservice),
            "--state-dir",
            l.keyservice_dir.string(),
            "--tee",
            "sim",
            "--sim",
            "--sim-key-file",
            l.sim_key_file.string(),
            "--sim-identity",
            kKeyServiceSimIdentity,
            "--worker-policy",
            l.worker_policy().string(),
            "--allow-simulated"};
  return s;
}

Result<SubprocessSpec> etcd_member_spec(const StackLayout& l, size_t m) {
  const fs::path etcd = find_executable_on_path(kEtcdBinary);
  if (etcd.empty()) {
    return not_found("moss up --keyservice-replicas needs etcd on PATH (tools/install-deps.sh "
                     "installs Debian's etcd-server)");
  }
  const StackReplicaPorts& p = l.replica_ports;
  // fmt, not operator+: GCC 12 warns falsely (-Wrestrict) on such concatenations.
  auto url = [](uint16_t port) { return fmt::format("http://127.0.0.1:{}", port); };
  std::string cluster;
  for (size_t k = 0; k < p.etcd_peer.size(); ++k) {
    cluster += fmt::format("{}{}={}", k ? "," : "", StackLayout::etcd_member_name(k), url(p.etcd_peer[k]));
  }
  SubprocessSpec s = service_spec(l, fmt::format("etcd{}", m));
  // With its data directory present (a restart), etcd ignores the --initial-cluster flags.
  s.argv = {etcd.string(), "--name", StackLayout::etcd_member_name(m), "--data-dir", l.etcd_member_dir(m).string(),
            "--listen-client-urls", url(p.etcd_client[m]), "--advertise-client-urls", url(p.etcd_client[m]),
            "--listen-peer-urls", url(p.etcd_peer[m]), "--initial-advertise-peer-urls", url(p.etcd_peer[m]),
            "--initial-cluster", cluster, "--initial-cluster-state", "new",
            "--initial-cluster-token", "moss-up", "--logger", "zap", "--log-outputs", "stderr"};
  return s;
}

SubprocessSpec keyservice_replica_spec(const StackLayout& l, size_t i) {
  const StackReplicaPorts& p = l.replica_ports;
  SubprocessSpec s = keyservice_spec(l);
  s.name = fmt::format("keyservice{}", i);
  s.log_path = l.log_dir / fmt::format("{}.log", s.name);
  std::string endpoints;
  for (size_t k = 0; k < p.etcd_client.size(); ++k) {
    endpoints += fmt::format("{}http://127.0.0.1:{}", k ? "," : "", p.etcd_client[(i + k) % p.etcd_client.size()]);
  }
  s.argv[2] = fmt::format("127.0.0.1:{}", p.https[i]);  // --listen
  s.argv[4] = l.keyservice_replica_dir(i).string();     // --state-dir
  s.argv.insert(s.argv.end(), {"--store", "etcd", "--etcd-endpoints", endpoints, "--replica-listen",
                               fmt::format("127.0.0.1:{}", p.replica[i]), "--replica-policy",
                               l.keyservice_policy().string()});
  // Used only while the replica holds no copy of the state key (its first start).
  if (i > 0) s.argv.insert(s.argv.end(), {"--join", fmt::format("https://127.0.0.1:{}", p.replica[0])});
  return s;
}

Status wait_etcd_serving(const StackLayout& l, size_t m, std::chrono::steady_clock::time_point deadline) {
  while (std::chrono::steady_clock::now() < deadline) {
    net::ClientOptions o;
    o.port = l.replica_ports.etcd_client[m];
    o.connect_timeout = std::chrono::milliseconds(500);
    o.read_timeout = std::chrono::milliseconds(2000);
    net::Client c(o);
    auto r = c.post("/v3/kv/range", R"({"key":"AA=="})");  // a linearizable read of key "\0"
    if (r.ok() && r->status == 200) return Status::Ok();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return deadline_exceeded("etcd member {} (127.0.0.1:{}) did not serve in time", m,
                           l.replica_ports.etcd_client[m]);
}

SubprocessSpec packer_spec(const StackLayout& l) {
  SubprocessSpec s = service_spec(l, "packer");
  s.argv = {(l.bin_dir / kPackerBinary).string(),
            "--listen",
            "127.0.0.1:" + std::to_string(l.port_packer),
            "--token-file",
            l.token_file.string(),
            "--state-dir",
            l.packer_dir.string()};
  return s;
}

Result<std::string> create_stack_pool(const StackLayout& l,
                                      std::chrono::steady_clock::time_point deadline) {
  nlohmann::json worker_config = {
      {"keyservice_url", l.keyservice_url()},
      {"keyservice_policy", l.keyservice_policy().string()},
      {"model_store", l.model_store.string()},
      {"tee", "sim"},
      {"sim_key_file", l.sim_key_file.string()},
      {"sim_identity", kWorkerSimIdentity},
      {"allow_simulated", "true"},
      {"host", "127.0.0.1"}};
  nlohmann::json body = {{"name", kStackPool},
                         {"backend", "local"},
                         {"worker_binary", (l.bin_dir / kWorkerBinary).string()},
                         {"worker_config", worker_config},
                         {"max_concurrency", 10},
                         {"memory_budget_mb", 1024},
                         {"min_instances", 0},
                         {"max_instances", 2}};
  net::ClientOptions options;
  options.port = l.port_packer;
  net::Client client(options);
  std::string auth = "Bearer " + read_token(l);
  auto send = [&](std::string method, std::string target, std::string payload) {
    net::Request req;
    req.method = std::move(method);
    req.target = std::move(target);
    req.headers.set("Authorization", auth);
    if (!payload.empty()) req.headers.set("Content-Type", "application/json");
    req.body = std::move(payload);
    return client.request(req);
  };
  // The packer keeps pools across restarts; the saved one may name old ports, so replace it.
  std::string target = std::string("/v1/pools/") + kStackPool;
  while (true) {
    auto removed = send("DELETE", target, "");
    if (removed.ok() && (removed->status == 200 || removed->status == 404)) break;
    if (std::chrono::steady_clock::now() >= deadline) {
      if (!removed.ok()) return removed.status();
      return unavailable("packer refused to replace pool '{}': HTTP {} {}", kStackPool,
                         removed->status, removed->body.substr(0, 300));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  auto created = send("POST", "/v1/pools", body.dump());
  if (!created.ok()) return created.status();
  if (created->status != 201) {
    return unavailable("packer refused to create pool '{}': HTTP {} {}", kStackPool,
                       created->status, created->body.substr(0, 300));
  }
  return std::string(kStackPool);
}

}  // namespace moss::client
