// A real moss-keyservice process for integration tests: started with the simulated TEE on a free
// loopback port (read back from its "listening on" line), stopped with SIGTERM or killed with
// SIGKILL. The process is measured like any simulated service: its binary plus its identity.
#pragma once

#include "client/client_config.h"
#include "unit/keyservice/keyservice_fixture.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace moss::kstest {

inline std::filesystem::path bin_dir() {
  const char* b = std::getenv("MOSS_BIN_DIR");
  return b ? std::filesystem::path(b) : std::filesystem::path("build/bin");
}

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class KeyServiceProcess {
 public:
  // Starts moss-keyservice; returns 0 on failure (the log says why).
  uint16_t start(const std::filesystem::path& state_dir, const std::filesystem::path& sim_key,
                 const std::filesystem::path& worker_policy, const std::filesystem::path& log,
                 const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {(bin_dir() / "moss-keyservice").string(),
                                     "--listen", "127.0.0.1:" + std::to_string(listen_port),
                                     "--state-dir", state_dir.string(),
                                     "--tee", "sim", "--sim-key-file", sim_key.string(),
                                     "--worker-policy", worker_policy.string(), "--allow-simulated",
                                     "--log-level", "warn"};
    args.insert(args.end(), extra.begin(), extra.end());
    // A previous run's log would show its (stale) port until the child truncates the file.
    std::error_code ignored;
    std::filesystem::remove(log, ignored);
    pid_ = fork();
    if (pid_ == 0) {
      FILE* f = std::freopen(log.c_str(), "w", stdout);
      (void)f;
      dup2(fileno(stdout), 2);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (std::chrono::steady_clock::now() < deadline) {
      std::string text = slurp(log);
      auto at = text.find("listening on https://127.0.0.1:");
      // Whole line only: a port read mid-write would be a wrong port.
      if (at != std::string::npos && text.find('\n', at) != std::string::npos) {
        return static_cast<uint16_t>(std::stoi(text.substr(at + 31)));
      }
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return 0;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return 0;
  }
  void kill_hard() { signal_and_wait(SIGKILL); }
  uint16_t listen_port = 0;  // 0: a free port; set to restart on the same address (same URL)
  void stop() { signal_and_wait(SIGTERM); }
  ~KeyServiceProcess() { kill_hard(); }

 private:
  void signal_and_wait(int sig) {
    if (pid_ <= 0) return;
    ::kill(pid_, sig);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
  }
  pid_t pid_ = -1;
};

// What every KeyService process test starts from: a temp dir, a simulated platform key, the
// measurements of the KeyService binary and of this process (as the worker), and the policies
// admitting each (ks-policy.json, worker-policy.json). Fixtures derive and call SetUp() first.
class SimKeyServiceTest : public ::testing::Test {
 protected:
  explicit SimKeyServiceTest(std::string dir_prefix) : prefix_(std::move(dir_prefix)) {}
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / (prefix_ + "-XXXXXX")).string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    sim_key_ = dir_ / "sim.key";
    ASSERT_TRUE(attest::SimPlatformKey::load_or_create(sim_key_).ok());
    ks_m_ = sim_measurement(bin_dir() / "moss-keyservice", "moss-keyservice");
    worker_m_ = sim_measurement("/proc/self/exe", "worker");
    ASSERT_TRUE(write_text_file(dir_ / "ks-policy.json", sim_policy_json({ks_m_})).ok());
    ASSERT_TRUE(write_text_file(dir_ / "worker-policy.json", sim_policy_json({worker_m_})).ok());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Client settings for principal `who` (files under dir_/who) against the KeyService on `port`.
  client::ClientConfig config(uint16_t port, const std::string& who) const {
    client::ClientConfig c;
    c.keyservice_url = "https://127.0.0.1:" + std::to_string(port);
    c.keyservice_policy = dir_ / "ks-policy.json";
    c.identity = dir_ / who / "identity.pem";
    c.state_dir = dir_ / who;
    c.allow_simulated = true;
    c.sim_key_file = sim_key_;
    return c;
  }

  std::filesystem::path dir_, sim_key_;
  std::string ks_m_, worker_m_;

 private:
  std::string prefix_;
};

}  // namespace moss::kstest
