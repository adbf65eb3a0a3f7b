// moss-packer as a process: token file creation, the API over loopback with local workers (the C3
// stand-in worker), pools restored after a restart, and a clean stop on SIGTERM that takes its
// workers down too. The full stack (KeyService + real worker) runs in demo_test.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "net/client.h"

#ifndef MOSS_PACKER_STAND_IN_WORKER
#error "MOSS_PACKER_STAND_IN_WORKER must name the stand-in worker binary"
#endif

namespace moss {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct PackerProcess {
  pid_t pid = -1;
  uint16_t port = 0;
};

// Starts moss-packer on a free port and reads the port from its first stdout line.
PackerProcess start_packer(const fs::path& dir) {
  const char* bin = std::getenv("MOSS_BIN_DIR");
  fs::path exe = fs::path(bin ? bin : "") / "moss-packer";
  int out[2];
  EXPECT_EQ(pipe(out), 0);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], STDOUT_FILENO);
    close(out[0]);
    std::string token = (dir / "token").string(), state = (dir / "state").string();
    execl(exe.c_str(), exe.c_str(), "--listen", "127.0.0.1:0", "--token-file", token.c_str(),
          "--state-dir", state.c_str(), "--log-level", "warn", static_cast<char*>(nullptr));
    _exit(127);
  }
  close(out[1]);
  std::string line;
  char c;
  while (read(out[0], &c, 1) == 1 && c != '\n') line.push_back(c);
  close(out[0]);
  PackerProcess p;
  p.pid = pid;
  auto colon = line.rfind(':');
  if (colon != std::string::npos)
    p.port = static_cast<uint16_t>(std::atoi(line.c_str() + colon + 1));
  return p;
}

int stop_packer(const PackerProcess& p) {
  kill(p.pid, SIGTERM);
  int status = 0;
  waitpid(p.pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::string s;
  std::getline(in, s);
  return s;
}

net::Response call(uint16_t port, const std::string& token, std::string method, std::string target,
                   std::string body = {}) {
  net::ClientOptions o;
  o.port = port;
  net::Client client(o);
  net::Request req =
      net::Request::make(std::move(method), std::move(target), std::move(body), "application/json");
  req.headers.set("Authorization", "Bearer " + token);
  return client.request(req).value_or_die();
}

bool port_open(uint16_t port) {
  net::ClientOptions o;
  o.port = port;
  o.connect_timeout = std::chrono::milliseconds(300);
  net::Client client(o);
  return client.connect().ok();
}

class PackerProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("packer-proc-" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

// The whole life of a packer: token created 0600, pool created, requests served by a worker it
// started, the pool restored after a restart, and its workers stopped with it.
TEST_F(PackerProcessTest, ServesPoolsAndStopsItsWorkers) {
  PackerProcess p = start_packer(dir_);
  ASSERT_GT(p.port, 0);
  std::string token = read_file(dir_ / "token");
  EXPECT_EQ(token.size(), 64u);
  EXPECT_EQ(
      fs::status(dir_ / "token").permissions() & (fs::perms::group_all | fs::perms::others_all),
      fs::perms::none);

  json pool = {{"name", "default"},
               {"backend", "local"},
               {"worker_binary", MOSS_PACKER_STAND_IN_WORKER},
               {"max_concurrency", 4},
               {"max_instances", 2}};
  ASSERT_EQ(call(p.port, token, "POST", "/v1/pools", pool.dump()).status, 201);
  json req = {{"model_id", "owner/m"}, {"envelope", "ciphertext"}};
  net::Response r = call(p.port, token, "POST", "/v1/pools/default/invoke", req.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  json j = json::parse(r.body);
  EXPECT_EQ(j["envelope"], "ciphertext");
  EXPECT_EQ(j["packer"]["decision"], "cold");
  json status = json::parse(call(p.port, token, "GET", "/v1/pools/default/status").body);
  std::string endpoint = status["instances"][0]["endpoint"];
  uint16_t worker_port =
      static_cast<uint16_t>(std::atoi(endpoint.c_str() + endpoint.rfind(':') + 1));
  EXPECT_TRUE(port_open(worker_port));
  EXPECT_EQ(call(p.port, "not-the-token", "GET", "/v1/pools").status, 401);

  EXPECT_EQ(stop_packer(p), 0);
  EXPECT_FALSE(port_open(worker_port));  // the worker went down with the packer

  PackerProcess again = start_packer(dir_);
  ASSERT_GT(again.port, 0);
  EXPECT_EQ(read_file(dir_ / "token"), token);
  net::Response restored = call(again.port, token, "POST", "/v1/pools/default/invoke", req.dump());
  EXPECT_EQ(restored.status, 200) << restored.body;
  EXPECT_EQ(stop_packer(again), 0);
}

}  // namespace
}  // namespace moss
