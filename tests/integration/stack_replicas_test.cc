// `moss up --keyservice-replicas 3` with the real services: a 3-member etcd on loopback and three
// KeyService replicas (the second and third joined to the first), every URL in stack.json and the
// client config; an encrypted inference through FnPacker; kill -9 of the replica everyone talks to
// first; a new user registered, granted and served (the worker's key fetch fails over); the
// supervisor starts the killed replica again; `moss down` leaves no process of the stack behind.
// Then a restart on the same state directory with another replica count: the etcd members come
// back on their ports with their data (a user granted before is served after). Skipped, with the
// reason, when etcd is not installed.
#include "common/proc_scan.h"
#include "common/subprocess.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

namespace moss {
namespace {
namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

uint16_t port_of(const std::string& url) { return static_cast<uint16_t>(std::stoi(url.substr(url.rfind(':') + 1))); }

class StackReplicasTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (find_executable_on_path("etcd").empty()) {
      GTEST_SKIP() << "etcd is not installed (tools/install-deps.sh installs Debian's etcd-server)";
    }
    const char* bin = std::getenv("MOSS_BIN_DIR");
    ASSERT_NE(bin, nullptr);
    moss_ = fs::path(bin) / "moss";
    std::string tmpl = (fs::temp_directory_path() / "moss-stackrep-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    state_ = dir_ / "state";
  }
  void TearDown() override {
    if (dir_.empty()) return;
    (void)run("down --state-dir " + state_.string());
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // `moss ARGS`; its exit code, stdout in *out (trimmed) and stderr appended to the transcript.
  int run(const std::string& args, std::string* out = nullptr) {
    const fs::path o = dir_ / ".out", e = dir_ / ".err";
    const std::string cmd = moss_.string() + " " + args + " >" + o.string() + " 2>" + e.string();
    const int rc = std::system(cmd.c_str());
    if (out) *out = trim(slurp(o));
    transcript_ += "$ moss " + args + "\n" + slurp(o) + slurp(e);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  }
  nlohmann::json stack_json() const {
    return nlohmann::json::parse(slurp(state_ / "stack.json"), nullptr, false);
  }
  // A principal with its identity and a copy of the stack's client config; its id.
  std::string principal(const std::string& name) {
    std::string id;
    EXPECT_EQ(run("identity new --out " + (dir_ / name).string(), &id), 0) << transcript_;
    fs::copy_file(state_ / "client.json", dir_ / name / "client.json", fs::copy_options::overwrite_existing);
    EXPECT_EQ(run("user register --config " + config(name)), 0) << transcript_;
    return id;
  }
  std::string config(const std::string& name) const { return (dir_ / name / "client.json").string(); }
  // An owner ("owner") who encrypts the digits example into the stack's model store and uploads
  // its key; sets model_.
  void publish_model() {
    const std::string owner = principal("owner");
    model_ = owner + "/digits";
    ASSERT_EQ(run("model encrypt --in " + (examples_ / "digits.onnx").string() + " --out " +
                  (dir_ / "owner" / "digits.moss").string() + " --model-id " + model_ + " --key-out " +
                  (dir_ / "owner" / "digits.key").string()), 0) << transcript_;
    fs::create_directories(state_ / "models" / owner);
    fs::copy_file(dir_ / "owner" / "digits.moss", state_ / "models" / owner / "digits.moss");
    ASSERT_EQ(run("model upload-key --config " + config("owner") + " --key " +
                  (dir_ / "owner" / "digits.key").string()), 0) << transcript_;
  }
  // Grants `user` the model, adds its request key, and classifies one digit through FnPacker.
  void serve(const std::string& user, const std::string& user_id, const nlohmann::json& info) {
    const std::string wm = info["worker_measurement"];
    ASSERT_EQ(run("model grant --config " + config("owner") + " --model " + model_ + " --user " + user_id +
                  " --measurement " + wm), 0) << transcript_;
    ASSERT_EQ(run("request-key add --config " + config(user) + " --model " + model_ + " --measurement " + wm), 0)
        << transcript_;
    infer(user, info, dir_ / (user + "-out"));
  }
  // `user` classifies one digit through FnPacker into `out`.
  void infer(const std::string& user, const nlohmann::json& info, const fs::path& out) {
    ASSERT_EQ(run("infer --config " + config(user) + " --model " + model_ + " --input image=" +
                  (examples_ / "inputs" / "digit_3.npy").string() + " --output-dir " + out.string() +
                  " --endpoint " + info["invoke_url"].get<std::string>() + " --token " +
                  trim(slurp(info["token_file"].get<std::string>()))), 0) << transcript_;
    EXPECT_TRUE(fs::exists(out / "logits.npy")) << transcript_;
  }

  fs::path moss_, dir_, state_;
  fs::path examples_ = fs::path(MOSS_TEST_SOURCE_DIR) / "examples" / "digits";
  std::string model_, transcript_;
};

TEST_F(StackReplicasTest, ServesThroughTheLossOfAReplicaAndDownStopsEverything) {
  ASSERT_EQ(run("up --state-dir " + state_.string() +
                " --port-keyservice 0 --port-packer 0 --keyservice-replicas 3"), 0) << transcript_;
  nlohmann::json info = stack_json();
  ASSERT_TRUE(info.is_object()) << transcript_;
  std::vector<std::string> urls;
  std::stringstream list(info["keyservice_url"].get<std::string>());
  for (std::string u; std::getline(list, u, ',');) urls.push_back(u);
  ASSERT_EQ(urls.size(), 3u) << info.dump();
  EXPECT_NE(slurp(state_ / "client.json").find(info["keyservice_url"].get<std::string>()), std::string::npos);
  EXPECT_EQ(info["service_groups"].size(), 3u + 3u + 1u) << info.dump();  // etcd, replicas, packer

  ASSERT_NO_FATAL_FAILURE(publish_model());
  serve("user1", principal("user1"), info);

  // kill -9 of replica 0, the first URL of every client and worker.
  pid_t first = 0;
  for (const auto& g : info["service_groups"]) {
    if (process_listens_on_loopback(static_cast<pid_t>(g.get<int64_t>()), port_of(urls[0]))) {
      first = static_cast<pid_t>(g.get<int64_t>());
    }
  }
  ASSERT_GT(first, 0) << info.dump();
  ASSERT_EQ(::kill(first, SIGKILL), 0);
  // Writes (registration, grant, request key) and the worker's key release for a new user: all
  // go to the surviving replicas.
  serve("user2", principal("user2"), info);

  // The supervisor started replica 0 again (a new process on the same port).
  bool back = false;
  for (int i = 0; i < 100 && !back; ++i) {
    nlohmann::json now = stack_json();
    for (const auto& g : now["service_groups"]) {
      const auto pid = static_cast<pid_t>(g.get<int64_t>());
      back = back || (pid != first && process_listens_on_loopback(pid, port_of(urls[0])));
    }
    if (!back) std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(back) << slurp(state_ / "logs" / "stack.log");

  nlohmann::json last = stack_json();
  ASSERT_EQ(run("down --state-dir " + state_.string()), 0) << transcript_;
  const std::string mark = "MOSSUP_STATE_DIR=" + fs::absolute(state_).lexically_normal().string();
  for (const auto& g : last["service_groups"]) {
    const auto group = static_cast<pid_t>(g.get<int64_t>());
    EXPECT_TRUE(processes_in_group_with_env(group, mark).empty()) << "process group " << group
                                                                   << " outlived moss down";
  }
  EXPECT_NE(::kill(first, 0), 0);
}

// The etcd members' data names their ports: a restart with 2 replicas instead of 3 must start them
// on the same ports (ports.json), and what was granted before is served after.
TEST_F(StackReplicasTest, ARestartWithAnotherReplicaCountKeepsTheState) {
  const std::string up = "up --state-dir " + state_.string() + " --port-keyservice 0 --port-packer 0 --keyservice-replicas ";
  ASSERT_EQ(run(up + "3"), 0) << transcript_;
  const std::string ports_before = slurp(state_ / "etcd" / "ports.json");
  ASSERT_NO_FATAL_FAILURE(publish_model());
  serve("user1", principal("user1"), stack_json());
  ASSERT_EQ(run("down --state-dir " + state_.string()), 0) << transcript_;

  ASSERT_EQ(run(up + "2"), 0) << transcript_ << slurp(state_ / "logs" / "stack.log");
  const nlohmann::json info = stack_json();
  const auto before = nlohmann::json::parse(ports_before), after = nlohmann::json::parse(slurp(state_ / "etcd" / "ports.json"));
  EXPECT_EQ(after["etcd_client"], before["etcd_client"]);
  EXPECT_EQ(after["etcd_peer"], before["etcd_peer"]);
  EXPECT_EQ(after["https"].size(), 2u);
  // user1's grant and request key are from before the restart: only etcd's data can serve them.
  fs::copy_file(state_ / "client.json", dir_ / "user1" / "client.json", fs::copy_options::overwrite_existing);
  infer("user1", info, dir_ / "user1-after");
}

}  // namespace
}  // namespace moss
