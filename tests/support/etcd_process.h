// A real etcd (Debian's etcd-server) for tests and benches: one member on loopback with free
// client and peer ports and a temporary data directory, stopped (and its data removed) when the
// object goes. Tests skip when the binary is missing:
//   auto etcd = test_support::EtcdProcess::start();
//   if (!etcd) GTEST_SKIP() << test_support::EtcdProcess::kMissing;
// (include "support/etcd_process.h"; needs moss_net).
#pragma once

#include "net/client.h"
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

  // Starts a one-member cluster and waits until it serves; null when etcd is missing or does not
  // come up (a port taken meanwhile is retried with others).
  static std::unique_ptr<EtcdProcess> start() {
    const std::string bin = binary();
    if (bin.empty()) return nullptr;
    for (int attempt = 0; attempt < 3; ++attempt) {
      std::unique_ptr<EtcdProcess> e(new EtcdProcess());
      if (e->launch(bin)) return e;
    }
    return nullptr;
  }

  ~EtcdProcess() { stop(SIGTERM); }

  const std::string& endpoint() const { return endpoint_; }  // "http://127.0.0.1:<port>"
  uint16_t client_port() const { return client_port_; }
  const std::filesystem::path& log() const { return log_; }

  void stop(int signal = SIGTERM) {
    if (pid_ <= 0) return;
    ::kill(pid_, signal);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

 private:
  EtcdProcess() : dir_("moss-etcd") {}

  bool launch(const std::string& bin) {
    client_port_ = free_loopback_port();
    const uint16_t peer_port = free_loopback_port();
    if (client_port_ == 0 || peer_port == 0 || client_port_ == peer_port) return false;
    endpoint_ = "http://127.0.0.1:" + std::to_string(client_port_);
    const std::string peer = "http://127.0.0.1:" + std::to_string(peer_port);
    log_ = dir_.path() / "etcd.log";
    std::vector<std::string> argv = {
        bin, "--name", "moss-test", "--data-dir", (dir_.path() / "data").string(),
        "--listen-client-urls", endpoint_, "--advertise-client-urls", endpoint_,
        "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
        "--initial-cluster", "moss-test=" + peer, "--initial-cluster-state", "new",
        "--logger", "zap", "--log-outputs", "stderr"};
    pid_ = ::fork();
    if (pid_ == 0) {
      const int fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
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
    if (pid_ < 0) return false;
    // Serving once a linearizable read answers (a leader is elected).
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
      }
      net::ClientOptions o;
      o.port = client_port_;
      o.connect_timeout = std::chrono::milliseconds(500);
      o.read_timeout = std::chrono::milliseconds(2000);
      net::Client c(o);
      auto r = c.post("/v3/kv/range", R"({"key":"AA=="})");
      if (r.ok() && r->status == 200) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    stop(SIGKILL);
    return false;
  }

  TempDir dir_;
  pid_t pid_ = -1;
  uint16_t client_port_ = 0;
  std::string endpoint_;
  std::filesystem::path log_;
};

}  // namespace moss::test_support
