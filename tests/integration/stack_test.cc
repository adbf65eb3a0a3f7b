// `moss up` / `moss down` supervision with stand-in services (stack_fake_service, started under
// the names moss-keyservice, moss-packer, moss-worker): state directory layout and modes, ports,
// one stack per directory, clean stop (also of what a service started), a crashing service taking
// the stack down, Ctrl-C in the foreground, and cleanup after the supervisor was SIGKILLed.
// The real services run in demo_test.
#include "common/file_util.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#ifndef MOSS_STACK_FAKE_SERVICE
#error "MOSS_STACK_FAKE_SERVICE must name the stand-in service binary"
#endif

namespace moss {
namespace {
namespace fs = std::filesystem;
using namespace std::chrono_literals;

struct RunResult {
  int exit_code = -1;
  std::string out, err;
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool port_accepts(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

bool alive(pid_t pid) {
  if (kill(pid, 0) != 0) return false;
  // A zombie still answers kill(0); it is dead for our purposes.
  std::string stat = slurp("/proc/" + std::to_string(pid) + "/stat");
  size_t paren = stat.rfind(')');
  return paren == std::string::npos || stat.size() < paren + 3 || stat[paren + 2] != 'Z';
}

template <typename Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = 10s) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return pred();
}

int port_of(const std::string& url) { return std::stoi(url.substr(url.rfind(':') + 1)); }

class StackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* bin = std::getenv("MOSS_BIN_DIR");
    ASSERT_NE(bin, nullptr) << "MOSS_BIN_DIR is not set";
    moss_ = fs::path(bin) / "moss";
    ASSERT_TRUE(fs::exists(moss_)) << moss_;
    std::string tmpl = (fs::temp_directory_path() / "moss-stack-XXXXXX").string();
    dir_ = mkdtemp(tmpl.data());
    fake_bin_ = dir_ / "bin";
    state_ = dir_ / "state";
    fs::create_directories(fake_bin_);
    for (const char* name : {"moss-keyservice", "moss-packer", "moss-worker"}) {
      fs::create_symlink(MOSS_STACK_FAKE_SERVICE, fake_bin_ / name);
    }
  }
  void TearDown() override {
    run("down --state-dir " + state_.string());
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  RunResult run(const std::string& args, const std::string& env = "") {
    fs::path out = dir_ / ".stdout", err = dir_ / ".stderr";
    std::string cmd = env + " " + moss_.string() + " " + args + " >" + out.string() + " 2>" +
                      err.string();
    int rc = std::system(cmd.c_str());
    RunResult r;
    r.exit_code = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
    r.out = slurp(out);
    r.err = slurp(err);
    return r;
  }
  std::string up_args() const {
    return "up --state-dir " + state_.string() + " --port-keyservice 0 --port-packer 0 --bin-dir " +
           fake_bin_.string();
  }
  nlohmann::json stack_json() const {
    return nlohmann::json::parse(slurp(state_ / "stack.json"), nullptr, false);
  }

  fs::path moss_, dir_, fake_bin_, state_;
};

TEST_F(StackTest, UpWritesTheStateDirectoryAndDownStopsEverything) {
  RunResult up = run(up_args());
  ASSERT_EQ(up.exit_code, 0) << up.err;
  EXPECT_NE(up.out.find("keyservice"), std::string::npos) << up.out;
  EXPECT_NE(up.out.find("moss down --state-dir"), std::string::npos) << up.out;

  nlohmann::json info = stack_json();
  ASSERT_TRUE(info.is_object());
  int pk = port_of(info["keyservice_url"]), pp = port_of(info["packer_url"]);
  EXPECT_NE(pk, pp);
  EXPECT_TRUE(port_accepts(pk));
  EXPECT_TRUE(port_accepts(pp));
  EXPECT_EQ(info["invoke_url"], info["packer_url"].get<std::string>() + "/v1/pools/default/invoke");
  EXPECT_EQ(info["worker_measurement"].get<std::string>().size(), 64u);

  // Secrets are private; the client config resolves identity and state next to a copy of it.
  struct stat st {};
  ASSERT_EQ(stat((state_ / "packer-token").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(stat(state_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  auto client = nlohmann::json::parse(slurp(state_ / "client.json"));
  EXPECT_EQ(client["identity"], "identity.pem");
  EXPECT_EQ(client["state_dir"], ".");
  EXPECT_EQ(client["keyservice_url"], info["keyservice_url"]);
  EXPECT_TRUE(fs::path(client["keyservice_policy"].get<std::string>()).is_absolute());
  EXPECT_TRUE(fs::exists(client["keyservice_policy"].get<std::string>()));
  EXPECT_NE(slurp(state_ / "logs" / "keyservice.log").find("fake moss-keyservice"),
            std::string::npos);
  EXPECT_NE(slurp(state_ / "logs" / "packer.log").find("fake moss-packer"), std::string::npos);

  std::vector<pid_t> services;
  for (auto g : info["service_groups"]) services.push_back(g.get<pid_t>());
  ASSERT_EQ(services.size(), 2u);
  RunResult down = run("down --state-dir " + state_.string());
  ASSERT_EQ(down.exit_code, 0) << down.err;
  EXPECT_NE(down.out.find("stopped"), std::string::npos) << down.out;
  for (pid_t p : services) EXPECT_FALSE(alive(p)) << p;
  EXPECT_FALSE(port_accepts(pk));
  EXPECT_FALSE(fs::exists(state_ / "stack.json"));
  EXPECT_FALSE(fs::exists(state_ / "stack.pid"));
  EXPECT_NE(slurp(state_ / "logs" / "stack.log").find("stopped"), std::string::npos);

  RunResult again = run("down --state-dir " + state_.string());
  EXPECT_EQ(again.exit_code, 0);
  EXPECT_NE(again.out.find("not running"), std::string::npos) << again.out;
}

TEST_F(StackTest, OneStackPerStateDirectory) {
  ASSERT_EQ(run(up_args()).exit_code, 0);
  RunResult second = run(up_args());
  EXPECT_EQ(second.exit_code, 1);
  EXPECT_NE(second.err.find("already running"), std::string::npos) << second.err;
  EXPECT_TRUE(stack_json().is_object());  // the first stack is untouched
}

TEST_F(StackTest, WorkersLeftByThePackerAreStoppedToo) {
  ASSERT_EQ(run(up_args(), "FAKE_PACKER_SPAWN=1").exit_code, 0);
  pid_t packer = stack_json()["service_groups"][1].get<pid_t>();
  ASSERT_TRUE(eventually([&] { return kill(-packer, 0) == 0; }));
  ASSERT_EQ(run("down --state-dir " + state_.string()).exit_code, 0);
  EXPECT_TRUE(eventually([&] { return kill(-packer, 0) != 0; }, 5s))
      << "a process of the packer's group survived moss down";
}

TEST_F(StackTest, AServiceThatDiesTakesTheStackDown) {
  RunResult up = run(up_args(), "FAKE_KEYSERVICE_EXIT_AFTER_MS=1500");
  ASSERT_EQ(up.exit_code, 0) << up.err;
  pid_t supervisor = stack_json()["supervisor_pid"].get<pid_t>();
  EXPECT_TRUE(eventually([&] { return !alive(supervisor); }, 15s));
  EXPECT_FALSE(fs::exists(state_ / "stack.json"));
  std::string log = slurp(state_ / "logs" / "stack.log");
  EXPECT_NE(log.find("keyservice exited with code 3"), std::string::npos) << log;
}

TEST_F(StackTest, ForegroundStopsCleanlyOnCtrlC) {
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::string out = (dir_ / "fg.out").string();
    FILE* f = std::freopen(out.c_str(), "w", stdout);
    (void)f;
    execl(moss_.c_str(), "moss", "up", "--foreground", "--state-dir", state_.c_str(),
          "--port-keyservice", "0", "--port-packer", "0", "--bin-dir", fake_bin_.c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  ASSERT_TRUE(eventually([&] { return fs::exists(state_ / "stack.json"); }, 20s));
  nlohmann::json info = stack_json();
  ASSERT_EQ(info["supervisor_pid"].get<pid_t>(), pid);
  kill(pid, SIGINT);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  for (auto g : info["service_groups"]) EXPECT_FALSE(alive(g.get<pid_t>()));
  EXPECT_FALSE(fs::exists(state_ / "stack.json"));
  EXPECT_NE(slurp(dir_ / "fg.out").find("Ctrl-C stops it"), std::string::npos);
}

TEST_F(StackTest, DownCleansUpAfterAKilledSupervisor) {
  ASSERT_EQ(run(up_args(), "FAKE_PACKER_SPAWN=1 FAKE_IGNORE_TERM=1").exit_code, 0);
  nlohmann::json info = stack_json();
  pid_t supervisor = info["supervisor_pid"].get<pid_t>();
  pid_t packer = info["service_groups"][1].get<pid_t>();
  kill(supervisor, SIGKILL);
  ASSERT_TRUE(eventually([&] { return !alive(supervisor); }));
  // The services ignore SIGTERM here, so the parent-death signal left them running.
  ASSERT_TRUE(alive(packer));
  RunResult down = run("down --state-dir " + state_.string());
  ASSERT_EQ(down.exit_code, 0) << down.err;
  EXPECT_NE(down.out.find("leftover"), std::string::npos) << down.out;
  EXPECT_TRUE(eventually([&] { return kill(-packer, 0) != 0; }, 10s));
}

TEST_F(StackTest, AMissingServiceBinaryIsNamed) {
  fs::remove(fake_bin_ / "moss-packer");
  RunResult up = run(up_args());
  EXPECT_EQ(up.exit_code, 1);
  EXPECT_NE(up.err.find("moss-packer"), std::string::npos) << up.err;
  EXPECT_FALSE(fs::exists(state_ / "stack.json"));
}

}  // namespace
}  // namespace moss
