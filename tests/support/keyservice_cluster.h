// KeyServiceCluster: KeyService replicas as moss-keyservice processes (simulated TEE) over one etcd
// cluster on loopback, for fault tests and benches. Replica 0 creates the state key, the others
// join it over the replica port (attested both ways); each keeps its port across restarts, so the
// URLs clients hold stay valid. Replica i talks to the etcd members in order starting at member i;
// with `pin_last_replica`, the last replica talks to the last member only (so stopping that member
// cuts it off from etcd: a partition). Needs moss_common, moss_net, moss_attest.
#pragma once

#include "common/file_util.h"
#include "common/subprocess.h"
#include "support/etcd_process.h"
#include "unit/keyservice/keyservice_fixture.h"

#include <fmt/format.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace moss::test_support {

struct KeyServiceClusterOptions {
  std::filesystem::path bin_dir;  // holds moss-keyservice
  std::filesystem::path dir;      // an existing directory: state dirs, logs, policies, sim key
  int replicas = 3;
  int etcd_members = 3;
  bool pin_last_replica = true;
  // This process, measured with this identity, is the worker the replicas' worker policy admits.
  std::string worker_identity = "worker";
  std::vector<std::string> extra_flags = {"--rate-limit", "0"};  // for every replica
};

class KeyServiceCluster {
 public:
  // Starts etcd and every replica. not-found (EtcdProcess::kMissing) when etcd is not installed.
  static Result<std::unique_ptr<KeyServiceCluster>> start(KeyServiceClusterOptions o) {
    if (EtcdProcess::binary().empty()) return not_found("{}", EtcdProcess::kMissing);
    std::unique_ptr<KeyServiceCluster> c(new KeyServiceCluster(std::move(o)));
    MOSS_RETURN_IF_ERROR(c->prepare());
    for (size_t i = 0; i < c->replicas_.size(); ++i) MOSS_RETURN_IF_ERROR(c->start_replica(i));
    return c;
  }
  ~KeyServiceCluster() {
    for (size_t i = 0; i < replicas_.size(); ++i) stop_replica(i);
  }

  size_t size() const { return replicas_.size(); }
  EtcdProcess& etcd() { return *etcd_; }
  const std::string& url(size_t i) const { return replicas_[i].url; }
  // Every replica's URL, comma-separated, starting at replica `first` (clients given different
  // starting points spread over the replicas).
  std::string urls_from(size_t first) const {
    std::string out;
    for (size_t k = 0; k < replicas_.size(); ++k) {
      out += fmt::format("{}{}", k ? "," : "", replicas_[(first + k) % replicas_.size()].url);
    }
    return out;
  }
  const std::filesystem::path& sim_key() const { return sim_key_; }
  std::filesystem::path keyservice_policy() const { return o_.dir / "ks-policy.json"; }
  const std::string& worker_measurement() const { return worker_m_; }
  std::filesystem::path log(size_t i) const { return o_.dir / fmt::format("replica{}.log", i); }
  bool running(size_t i) const { return replicas_[i].process && replicas_[i].process->alive(); }

  // Starts replica `i` (again: on its port, with the state key it sealed locally; the first time,
  // replica > 0 joins replica 0) and returns once it serves.
  Status start_replica(size_t i) {
    Replica& r = replicas_[i];
    if (running(i)) return Status::Ok();
    std::vector<std::string> argv = {
        (o_.bin_dir / "moss-keyservice").string(), "--listen", fmt::format("127.0.0.1:{}", r.port),
        "--state-dir", (o_.dir / fmt::format("replica{}", i)).string(), "--tee", "sim",
        "--sim-key-file", sim_key_.string(), "--worker-policy", (o_.dir / "worker-policy.json").string(),
        "--allow-simulated", "--log-level", "warn", "--store", "etcd", "--etcd-endpoints",
        etcd_endpoints(i), "--etcd-prefix", "/moss/cluster/", "--replica-listen", "127.0.0.1:0",
        "--replica-policy", keyservice_policy().string()};
    argv.insert(argv.end(), o_.extra_flags.begin(), o_.extra_flags.end());
    if (i > 0 && !r.started_once) {
      MOSS_ASSIGN_OR_RETURN(uint16_t replica_port, replica_port_of(0));
      argv.insert(argv.end(), {"--join", fmt::format("https://127.0.0.1:{}", replica_port)});
    }
    std::error_code ignored;
    std::filesystem::remove(log(i), ignored);  // the "listening on" line read below is this start's
    SubprocessSpec spec;
    spec.name = fmt::format("keyservice replica {}", i);
    spec.argv = std::move(argv);
    spec.log_path = log(i);
    MOSS_ASSIGN_OR_RETURN(r.process, Subprocess::spawn(spec));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    const std::string line = "listening on https://127.0.0.1:";
    while (std::chrono::steady_clock::now() < deadline) {
      const std::string text = read_log(i);
      const auto at = text.find(line);
      if (at != std::string::npos && text.find('\n', at) != std::string::npos) {
        r.port = static_cast<uint16_t>(std::atoi(text.c_str() + at + line.size()));
        r.url = fmt::format("https://127.0.0.1:{}", r.port);
        r.started_once = true;
        return Status::Ok();
      }
      if (auto ended = r.process->poll_exit()) {
        return unavailable("replica {} {}: {}", i, *ended, text);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return deadline_exceeded("replica {} did not start within 30 s: {}", i, read_log(i));
  }
  // kill -9: gone at once, nothing flushed or closed.
  void kill_replica(size_t i) {
    if (replicas_[i].process) replicas_[i].process->kill_now();
    replicas_[i].process.reset();
  }
  void stop_replica(size_t i) {
    if (replicas_[i].process) replicas_[i].process->stop(std::chrono::seconds(5));
    replicas_[i].process.reset();
  }

  // moss-keyservice --verify-audit on the shared state with replica `i`'s key (its state dir):
  // every row authenticated, the audit chain and its sealed head checked. Ok with its output.
  Result<std::string> verify_audit(size_t i) {
    const std::filesystem::path out = o_.dir / "verify-audit.out";
    std::string cmd = (o_.bin_dir / "moss-keyservice").string() + " --state-dir " +
                      (o_.dir / fmt::format("replica{}", i)).string() + " --tee sim --worker-policy " +
                      (o_.dir / "worker-policy.json").string() + " --store etcd --etcd-prefix /moss/cluster/" +
                      " --etcd-endpoints " + etcd_endpoints(0) + " --verify-audit > " + out.string() + " 2>&1";
    const int rc = std::system(cmd.c_str());
    auto text = read_text_file(out, 1 << 20);
    std::string what = text.ok() ? *text : text.status().to_string();
    if (rc != 0 || what.find("audit log verifies") == std::string::npos) {
      return internal_error("--verify-audit failed (exit status {}): {}", rc, what);
    }
    return what;
  }

 private:
  struct Replica {
    std::unique_ptr<Subprocess> process;
    uint16_t port = 0;  // 0 until the first start reports it
    std::string url;
    bool started_once = false;
  };

  explicit KeyServiceCluster(KeyServiceClusterOptions o) : o_(std::move(o)), replicas_(o_.replicas) {}

  Status prepare() {
    etcd_ = EtcdProcess::start(o_.etcd_members);
    if (!etcd_) return unavailable("etcd is installed but a {}-member cluster did not start", o_.etcd_members);
    sim_key_ = o_.dir / "sim.key";
    MOSS_RETURN_IF_ERROR(attest::SimPlatformKey::load_or_create(sim_key_).status());
    const std::string ks_m = kstest::sim_measurement(o_.bin_dir / "moss-keyservice", "moss-keyservice");
    worker_m_ = kstest::sim_measurement("/proc/self/exe", o_.worker_identity);
    if (ks_m.empty() || worker_m_.empty()) return internal_error("cannot measure moss-keyservice or this process");
    MOSS_RETURN_IF_ERROR(write_text_file(keyservice_policy(), kstest::sim_policy_json({ks_m})));
    return write_text_file(o_.dir / "worker-policy.json", kstest::sim_policy_json({worker_m_}));
  }

  std::string etcd_endpoints(size_t replica) const {
    const size_t n = etcd_->size();
    if (o_.pin_last_replica && replicas_.size() > 1 && replica + 1 == replicas_.size()) {
      return etcd_->endpoint(n - 1);
    }
    std::string out;
    for (size_t k = 0; k < n; ++k) out += fmt::format("{}{}", k ? "," : "", etcd_->endpoint((replica + k) % n));
    return out;
  }

  std::string read_log(size_t i) const {
    auto text = read_text_file(log(i), 1 << 20);
    return text.ok() ? *text : std::string();
  }

  Result<uint16_t> replica_port_of(size_t i) const {
    const std::string text = read_log(i);
    const std::string line = "replica port https://127.0.0.1:";
    const auto at = text.find(line);
    if (at == std::string::npos) return failed_precondition("replica {} reported no replica port: {}", i, text);
    return static_cast<uint16_t>(std::atoi(text.c_str() + at + line.size()));
  }

  KeyServiceClusterOptions o_;
  std::unique_ptr<EtcdProcess> etcd_;
  std::vector<Replica> replicas_;
  std::filesystem::path sim_key_;
  std::string worker_m_;
};

}  // namespace moss::test_support
