// A real etcd (Debian's etcd-server) for tests and benches: a cluster of one (or more) members on
// loopback with free client and peer ports and temporary data directories, stopped (and the data
// removed) when the object goes. Tests skip when the binary is missing:
//   auto etcd = test_support::EtcdProcess::start();
//   if (!etcd) GTEST_SKIP() << test_support::EtcdProcess::kMissing;
// (include "support/etcd_process.h"; needs moss_net).
#pragma once

#include "net/client.h"

#include <fmt/format.h>
#include "support/temp_dir.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace moss::test_support {

// A loopback port nothing listens on now (the kernel's choice; free until someone binds it).
inline uint16_t free_loopback_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  uint16_t port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  ::close(fd);
  return port;
}

class EtcdProcess {
 public:
  static constexpr const char* kMissing =
      "etcd is not installed (tools/install-deps.sh installs Debian's etcd-server)";

  // The etcd binary on PATH (or /usr/bin/etcd), or empty.
  static std::string binary() {
    const char* path = std::getenv("PATH");
    std::string dirs = path ? path : "/usr/bin";
    for (size_t at = 0; at <= dirs.size();) {
      size_t colon = std::min(dirs.find(':', at), dirs.size());
      std::filesystem::path p = std::filesystem::path(dirs.substr(at, colon - at)) / "etcd";
      if (::access(p.c_str(), X_OK) == 0) return p.string();
      at = colon + 1;
    }
    return "";
  }

  // Starts a cluster of `members` and waits until every member serves; null when etcd is missing
  // or does not come up (ports taken meanwhile are retried with others).
  static std::unique_ptr<EtcdProcess> start(int members = 1) {
    const std::string bin = binary();
    if (bin.empty()) return nullptr;
    for (int attempt = 0; attempt < 3; ++attempt) {
      std::unique_ptr<EtcdProcess> e(new EtcdProcess());
      if (e->launch(bin, members)) return e;
    }
    return nullptr;
  }

  ~EtcdProcess() {
    for (size_t i = 0; i < members_.size(); ++i) stop_member(i, SIGTERM);
  }

  const std::string& endpoint() const { return members_[0].endpoint; }  // "http://127.0.0.1:<port>"
  std::vector<std::string> endpoints() const {
    std::vector<std::string> out;
    for (const Member& m : members_) out.push_back(m.endpoint);
    return out;
  }
  std::filesystem::path log(size_t member = 0) const { return dir_.path() / fmt_name(member, ".log"); }

  // Sends `signal` to one member and reaps it (SIGKILL: as if its machine died). Idempotent.
  void stop_member(size_t i, int signal = SIGTERM) {
    if (members_[i].pid <= 0) return;
    ::kill(members_[i].pid, signal);
    int status = 0;
    ::waitpid(members_[i].pid, &status, 0);
    members_[i].pid = -1;
  }
  void stop(int signal = SIGTERM) {
    for (size_t i = 0; i < members_.size(); ++i) stop_member(i, signal);
  }

 private:
  struct Member {
    pid_t pid = -1;
    uint16_t client_port = 0, peer_port = 0;
    std::string endpoint, peer;
  };

  EtcdProcess() : dir_("moss-etcd") {}
  // fmt, not operator+: GCC 12 warns falsely (-Wrestrict) on these concatenations.
  static std::string fmt_name(size_t i, const char* suffix) { return fmt::format("m{}{}", i, suffix); }

  bool launch(const std::string& bin, int count) {
    std::string cluster;
    for (int i = 0; i < count; ++i) {
      Member m;
      m.client_port = free_loopback_port();
      m.peer_port = free_loopback_port();
      if (m.client_port == 0 || m.peer_port == 0 || m.client_port == m.peer_port) return false;
      m.endpoint = fmt::format("http://127.0.0.1:{}", m.client_port);
      m.peer = fmt::format("http://127.0.0.1:{}", m.peer_port);
      cluster += fmt::format("{}m{}={}", i ? "," : "", i, m.peer);
      members_.push_back(m);
    }
    for (size_t i = 0; i < members_.size(); ++i) {
      Member& m = members_[i];
      const std::filesystem::path log = dir_.path() / fmt_name(i, ".log");
      std::vector<std::string> argv = {
          bin, "--name", fmt_name(i, ""), "--data-dir", (dir_.path() / fmt_name(i, ".data")).string(),
          "--listen-client-urls", m.endpoint, "--advertise-client-urls", m.endpoint,
          "--listen-peer-urls", m.peer, "--initial-advertise-peer-urls", m.peer,
          "--initial-cluster", cluster, "--initial-cluster-state", "new",
          "--initial-cluster-token", dir_.path().filename().string(),
          "--logger", "zap", "--log-outputs", "stderr"};
      m.pid = ::fork();
      if (m.pid == 0) {
        const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
          ::dup2(fd, STDOUT_FILENO);
          ::dup2(fd, STDERR_FILENO);
        }
        std::vector<char*> args;
        for (auto& a : argv) args.push_back(a.data());
        args.push_back(nullptr);
        ::execv(args[0], args.data());
        ::_exit(127);
      }
      if (m.pid < 0) return false;
    }
    // Serving once every member answers a linearizable read (a leader is elected).
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    for (size_t i = 0; i < members_.size(); ++i) {
      bool up = false;
      while (!up && std::chrono::steady_clock::now() < deadline) {
        int status = 0;
        if (::waitpid(members_[i].pid, &status, WNOHANG) == members_[i].pid) {
          members_[i].pid = -1;
          stop(SIGKILL);
          return false;
        }
        net::ClientOptions o;
        o.port = members_[i].client_port;
        o.connect_timeout = std::chrono::milliseconds(500);
        o.read_timeout = std::chrono::milliseconds(2000);
        net::Client c(o);
        auto r = c.post("/v3/kv/range", R"({"key":"AA=="})");
        up = r.ok() && r->status == 200;
        if (!up) std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      if (!up) {
        stop(SIGKILL);
        return false;
      }
    }
    return true;
  }

  TempDir dir_;
  std::vector<Member> members_;
};

}  // namespace moss::test_support
