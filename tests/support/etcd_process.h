// A real etcd (Debian's etcd-server) for tests and benches: a cluster of one (or more) members on
// loopback with free client and peer ports and temporary data directories, stopped (and the data
// removed) when the object goes. Members can be killed, frozen (a partition) and restarted on
// their own data, as faults. Tests skip when the binary is missing:
//   auto etcd = test_support::EtcdProcess::start();
//   if (!etcd) GTEST_SKIP() << test_support::EtcdProcess::kMissing;
// (include "support/etcd_process.h"; needs moss_net).
#pragma once

#include "common/loopback_port.h"
#include "common/subprocess.h"
#include "net/client.h"

#include <fmt/format.h>
#include "support/temp_dir.h"

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace moss::test_support {

class EtcdProcess {
 public:
  static constexpr const char* kMissing =
      "etcd is not installed (tools/install-deps.sh installs Debian's etcd-server)";

  // The etcd binary on PATH (or /usr/bin/etcd), or empty.
  static std::string binary() { return find_executable_on_path("etcd").string(); }

  // Starts a cluster of `members` and waits until every member serves; null when etcd is missing
  // or does not come up (ports taken meanwhile are retried with others).
  static std::unique_ptr<EtcdProcess> start(int members = 1) {
    const std::string bin = binary();
    if (bin.empty()) return nullptr;
    for (int attempt = 0; attempt < 3; ++attempt) {
      std::unique_ptr<EtcdProcess> e(new EtcdProcess(bin));
      if (e->launch(members)) return e;
    }
    return nullptr;
  }

  ~EtcdProcess() { stop(SIGTERM); }

  size_t size() const { return members_.size(); }
  const std::string& endpoint(size_t member = 0) const { return members_[member].endpoint; }  // "http://127.0.0.1:<port>"
  std::vector<std::string> endpoints() const {
    std::vector<std::string> out;
    for (const Member& m : members_) out.push_back(m.endpoint);
    return out;
  }
  std::filesystem::path log(size_t member = 0) const { return dir_.path() / fmt_name(member, ".log"); }

  // SIGKILL (as if its machine died), or SIGTERM and up to 5 s before SIGKILL; reaps it.
  // Idempotent. Its data stays for restart_member().
  void stop_member(size_t i, int signal = SIGTERM) {
    Member& m = members_[i];
    if (!m.process) return;
    m.process->send_signal(SIGCONT);  // a frozen member cannot take SIGTERM
    if (signal == SIGKILL) {
      m.process->kill_now();
    } else {
      m.process->stop(std::chrono::seconds(5));
    }
    m.process.reset();
  }
  void stop(int signal = SIGTERM) {
    for (size_t i = 0; i < members_.size(); ++i) stop_member(i, signal);
  }
  // Freezes (SIGSTOP) and thaws (SIGCONT) a member: its ports still accept connections but nothing
  // answers, as a member cut off by the network looks to a client.
  void pause_member(size_t i) {
    if (members_[i].process) members_[i].process->send_signal(SIGSTOP);
  }
  void resume_member(size_t i) {
    if (members_[i].process) members_[i].process->send_signal(SIGCONT);
  }

  // Starts a stopped member again on its own data and ports (it rejoins the cluster) and, with
  // `wait`, returns once it serves. Start several before waiting when a majority is down (none
  // serves before a majority runs): restart_member(i, false) each, then wait_serving(i) each.
  bool restart_member(size_t i, bool wait = true) {
    if (!members_[i].process && !spawn(i)) return false;
    return !wait || wait_serving(i, std::chrono::seconds(30));
  }
  // True once member `i` answers a linearizable read (a leader is elected).
  bool wait_serving(size_t i, std::chrono::milliseconds within) {
    const auto deadline = std::chrono::steady_clock::now() + within;
    while (std::chrono::steady_clock::now() < deadline) {
      if (!members_[i].process || !members_[i].process->alive()) return false;
      net::ClientOptions o;
      o.port = members_[i].client_port;
      o.connect_timeout = std::chrono::milliseconds(500);
      o.read_timeout = std::chrono::milliseconds(2000);
      net::Client c(o);
      auto r = c.post("/v3/kv/range", R"({"key":"AA=="})");
      if (r.ok() && r->status == 200) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

 private:
  struct Member {
    std::unique_ptr<Subprocess> process;
    uint16_t client_port = 0, peer_port = 0;
    std::string endpoint, peer;
  };

  explicit EtcdProcess(std::string bin) : dir_("moss-etcd"), bin_(std::move(bin)) {}
  // fmt, not operator+: GCC 12 warns falsely (-Wrestrict) on these concatenations.
  static std::string fmt_name(size_t i, const char* suffix) { return fmt::format("m{}{}", i, suffix); }

  // The same command line for the first start and every restart: with a data directory that
  // exists, etcd ignores the --initial-cluster flags and rejoins as the member it was.
  bool spawn(size_t i) {
    const Member& m = members_[i];
    SubprocessSpec spec;
    spec.name = "etcd " + fmt_name(i, "");
    spec.argv = {bin_, "--name", fmt_name(i, ""), "--data-dir", (dir_.path() / fmt_name(i, ".data")).string(),
                 "--listen-client-urls", m.endpoint, "--advertise-client-urls", m.endpoint,
                 "--listen-peer-urls", m.peer, "--initial-advertise-peer-urls", m.peer,
                 "--initial-cluster", cluster_, "--initial-cluster-state", "new",
                 "--initial-cluster-token", dir_.path().filename().string(),
                 "--logger", "zap", "--log-outputs", "stderr"};
    spec.log_path = log(i);
    auto p = Subprocess::spawn(spec);
    if (!p.ok()) return false;
    members_[i].process = std::move(p).value();
    return true;
  }

  static uint16_t port_or_zero() {
    auto p = free_loopback_port();
    return p.ok() ? *p : 0;
  }

  bool launch(int count) {
    for (int i = 0; i < count; ++i) {
      Member m;
      m.client_port = port_or_zero();
      m.peer_port = port_or_zero();
      if (m.client_port == 0 || m.peer_port == 0 || m.client_port == m.peer_port) return false;
      m.endpoint = fmt::format("http://127.0.0.1:{}", m.client_port);
      m.peer = fmt::format("http://127.0.0.1:{}", m.peer_port);
      cluster_ += fmt::format("{}m{}={}", i ? "," : "", i, m.peer);
      members_.push_back(std::move(m));
    }
    for (size_t i = 0; i < members_.size(); ++i) {
      if (!spawn(i)) return false;
    }
    // A member that exits (its port was taken meanwhile) fails the launch; the caller retries.
    for (size_t i = 0; i < members_.size(); ++i) {
      if (!wait_serving(i, std::chrono::seconds(30))) {
        stop(SIGKILL);
        return false;
      }
    }
    return true;
  }

  TempDir dir_;
  std::string bin_;
  std::string cluster_;
  std::vector<Member> members_;
};

}  // namespace moss::test_support
