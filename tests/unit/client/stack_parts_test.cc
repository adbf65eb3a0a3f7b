// Tests for the parts of `moss up` (src/client/stack_*.cc, service_sweep.cc) one by one; the
// supervisor as a whole runs in tests/integration/stack_test.cc.
#include "client/service_sweep.h"
#include "client/stack_info.h"
#include "client/stack_lock.h"
#include "client/stack_services.h"
#include "client/stack_state.h"
#include "common/file_util.h"
#include "common/subprocess.h"
#include "support/temp_dir.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <thread>

namespace moss::client {
namespace {
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using test_support::TempDir;

unsigned mode_of(const fs::path& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 ? (st.st_mode & 0777) : 0;
}

TEST(StackLockTest, OneHolderPerDirectory) {
  TempDir dir;
  EXPECT_FALSE(stack_lock_is_held(dir.path()));
  ASSERT_TRUE(write_text_file(stack_pid_file(dir.path()), "4242\n").ok());
  {
    auto lock = StackLock::acquire(dir.path());
    ASSERT_TRUE(lock.ok()) << lock.status().to_string();
    EXPECT_TRUE(stack_lock_is_held(dir.path()));
    auto second = StackLock::acquire(dir.path());
    ASSERT_FALSE(second.ok());
    EXPECT_EQ(second.status().code(), ErrorCode::kAlreadyExists);
    EXPECT_NE(second.status().message().find("supervisor pid 4242)"), std::string::npos);
    EXPECT_NE(second.status().message().find("moss down --state-dir"), std::string::npos);
    StackLock moved = std::move(*lock);  // the moved-from object must not release it
    EXPECT_TRUE(stack_lock_is_held(dir.path()));
  }
  EXPECT_FALSE(stack_lock_is_held(dir.path()));
  EXPECT_TRUE(StackLock::acquire(dir.path()).ok());
}

StackInfo sample_info(const fs::path& dir) {
  StackInfo info;
  info.supervisor_pid = 1234;
  info.keyservice_url = "https://127.0.0.1:7443";
  info.packer_url = "http://127.0.0.1:8088";
  info.invoke_url = "http://127.0.0.1:8088/v1/pools/default/invoke";
  info.pool = "default";
  info.worker_measurement = std::string(64, 'a');
  info.service_groups = {100, 200};
  info.state_dir = dir;
  info.client_config = dir / "client.json";
  info.token_file = dir / "packer-token";
  info.log_dir = dir / "logs";
  return info;
}

TEST(StackInfoTest, RoundTripsThroughStackJson) {
  TempDir dir;
  const StackInfo info = sample_info(dir.path());
  ASSERT_TRUE(write_stack_info(dir.path(), info).ok());
  EXPECT_EQ(mode_of(stack_info_file(dir.path())), 0600u);
  auto back = read_stack_info(dir.path());
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  EXPECT_EQ(back->supervisor_pid, 1234);
  EXPECT_EQ(back->invoke_url, info.invoke_url);
  EXPECT_EQ(back->service_groups, info.service_groups);
  EXPECT_EQ(back->token_file, info.token_file);
  const std::string text = describe_stack(*back);
  EXPECT_NE(text.find("simulated TEE"), std::string::npos);
  EXPECT_NE(text.find("moss down --state-dir " + dir.path().string()), std::string::npos);
}

TEST(StackInfoTest, AMissingOrMalformedFileIsAnError) {
  TempDir dir;
  EXPECT_EQ(read_stack_info(dir.path()).status().code(), ErrorCode::kNotFound);
  for (const char* bad : {"not json", "[1,2]", R"({"supervisor_pid": 1})",
                          R"({"supervisor_pid": "1", "keyservice_url": ""})"}) {
    ASSERT_TRUE(write_text_file(stack_info_file(dir.path()), bad).ok());
    EXPECT_EQ(read_stack_info(dir.path()).status().code(), ErrorCode::kDataLoss) << bad;
  }
  // Read strictly (issue 17, item 5): a duplicate key, a wrong type, an unknown field or an
  // oversize value is a damaged file too, named in the message.
  ASSERT_TRUE(write_stack_info(dir.path(), sample_info(dir.path())).ok());
  const std::string good = read_text_file(stack_info_file(dir.path()), 1 << 20).value_or_die();
  auto edited = [&](const std::string& key, const nlohmann::json& value) {
    nlohmann::json j = nlohmann::json::parse(good);
    j[key] = value;
    return j.dump();
  };
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"pool":"other",)" + good.substr(good.find('{') + 1), "duplicate key 'pool'"},
      {edited("supervisor_pid", "1234"), "supervisor_pid"},
      {edited("supervisor_pid", 0), "supervisor_pid"},
      {edited("service_groups", {100, "200"}), "service_groups"},
      {edited("service_groups", std::vector<int>(65, 100)), "service_groups"},
      {edited("log_dir", std::string(5000, 'x')), "log_dir"},
      {edited("extra", 1), "unknown field 'extra'"},
  };
  for (const auto& [bad, says] : cases) {
    ASSERT_TRUE(write_text_file(stack_info_file(dir.path()), bad).ok());
    Status s = read_stack_info(dir.path()).status();
    EXPECT_EQ(s.code(), ErrorCode::kDataLoss) << bad;
    EXPECT_NE(s.message().find(says), std::string::npos) << s.message();
  }
}

TEST(StackStateTest, PreparesAPrivateLayoutAndKeepsTheTokenAcrossRuns) {
  TempDir dir;
  const fs::path bin = dir.path() / "bin";
  fs::create_directories(bin);
  for (const char* name : {kKeyServiceBinary, kWorkerBinary}) {
    ASSERT_TRUE(write_text_file(bin / name, std::string("stand-in for ") + name).ok());
  }
  const fs::path state = dir.path() / "state";
  auto layout = prepare_stack_state(state, bin, 7443, 8088);
  ASSERT_TRUE(layout.ok()) << layout.status().to_string();
  EXPECT_EQ(layout->keyservice_url(), "https://127.0.0.1:7443");
  EXPECT_EQ(layout->packer_url(), "http://127.0.0.1:8088");
  for (const fs::path& d : {state, layout->log_dir, layout->keyservice_dir, layout->model_store,
                            layout->policy_dir}) {
    EXPECT_EQ(mode_of(d), 0700u) << d;
  }
  EXPECT_EQ(mode_of(layout->token_file), 0600u);
  EXPECT_TRUE(fs::exists(layout->worker_policy()));
  EXPECT_TRUE(fs::exists(layout->keyservice_policy()));
  EXPECT_TRUE(fs::exists(layout->client_config));
  EXPECT_EQ(layout->worker_measurement.size(), 64u);
  EXPECT_NE(layout->worker_measurement, layout->keyservice_measurement);
  auto token = read_text_file(layout->token_file, 256);
  ASSERT_TRUE(token.ok());
  auto again = prepare_stack_state(state, bin, 1, 2);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(read_text_file(again->token_file, 256).value(), *token);
  EXPECT_EQ(again->worker_measurement, layout->worker_measurement);
}

// A state directory with stand-ins for the binaries prepare_stack_state measures.
struct StackDirs {
  TempDir dir;
  fs::path bin = dir.path() / "bin", state = dir.path() / "state";
  StackDirs() {
    fs::create_directories(bin);
    for (const char* name : {kKeyServiceBinary, kWorkerBinary}) {
      EXPECT_TRUE(write_text_file(bin / name, std::string("stand-in for ") + name).ok());
    }
  }
  fs::path ports_file() const { return state / "etcd" / "ports.json"; }
};

// etcd members keep their peers' URLs in their data: a stack restarted with another replica
// count must start them on the same ports, and the replicas that stay keep theirs.
TEST(StackStateTest, ARestartWithAnotherReplicaCountKeepsTheEtcdPorts) {
  StackDirs d;
  auto three = prepare_stack_state(d.state, d.bin, 0, 8088, 3);
  ASSERT_TRUE(three.ok()) << three.status().to_string();
  const StackReplicaPorts first = three->replica_ports;
  ASSERT_EQ(first.etcd_client.size(), kStackEtcdMembers);
  ASSERT_EQ(first.https.size(), 3u);
  for (size_t m = 0; m < kStackEtcdMembers; ++m) fs::create_directories(three->etcd_member_dir(m) / "member");

  auto five = prepare_stack_state(d.state, d.bin, 0, 8088, 5);
  ASSERT_TRUE(five.ok()) << five.status().to_string();
  EXPECT_EQ(five->replica_ports.etcd_client, first.etcd_client);
  EXPECT_EQ(five->replica_ports.etcd_peer, first.etcd_peer);
  ASSERT_EQ(five->replica_ports.https.size(), 5u);
  ASSERT_EQ(five->replica_ports.replica.size(), 5u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(five->replica_ports.https[i], first.https[i]);
    EXPECT_EQ(five->replica_ports.replica[i], first.replica[i]);
  }
  EXPECT_EQ(five->port_keyservice, first.https[0]);

  // Fewer replicas, replica 0 moved to a requested port, then the single KeyService (which
  // leaves STATE/etcd alone) and three again: the etcd ports never move.
  auto two = prepare_stack_state(d.state, d.bin, 7443, 8088, 2);
  ASSERT_TRUE(two.ok()) << two.status().to_string();
  EXPECT_EQ(two->replica_ports.etcd_client, first.etcd_client);
  EXPECT_EQ(two->replica_ports.etcd_peer, first.etcd_peer);
  EXPECT_EQ(two->replica_ports.https, (std::vector<uint16_t>{7443, first.https[1]}));
  EXPECT_EQ(two->keyservice_url(), fmt::format("https://127.0.0.1:7443,https://127.0.0.1:{}", first.https[1]));
  ASSERT_TRUE(prepare_stack_state(d.state, d.bin, 7443, 8088, 1).ok());
  auto again = prepare_stack_state(d.state, d.bin, 0, 8088, 3);
  ASSERT_TRUE(again.ok()) << again.status().to_string();
  EXPECT_EQ(again->replica_ports.etcd_client, first.etcd_client);
  EXPECT_EQ(again->replica_ports.etcd_peer, first.etcd_peer);
  EXPECT_EQ(again->replica_ports.https[0], 7443);

  // What the last start saved is what the next one reads.
  auto saved = read_text_file(d.ports_file(), 4096);
  ASSERT_TRUE(saved.ok());
  const auto j = nlohmann::json::parse(*saved);
  EXPECT_EQ(j.at("etcd_client").get<std::vector<uint16_t>>(), first.etcd_client);
  EXPECT_EQ(j.at("https").get<std::vector<uint16_t>>(), again->replica_ports.https);
}

// New ports for existing etcd data would orphan it: a ports.json that is not exactly ours, or
// none while member data exists, stops the start and is left as it was.
TEST(StackStateTest, ADamagedOrMissingPortsFileIsRefusedAsDataLoss) {
  StackDirs d;
  auto first = prepare_stack_state(d.state, d.bin, 0, 8088, 3);
  ASSERT_TRUE(first.ok()) << first.status().to_string();
  const std::string good = read_text_file(d.ports_file(), 4096).value();
  const auto edited = [&](const char* field, nlohmann::json value) {
    auto j = nlohmann::json::parse(good);
    j[field] = std::move(value);
    return j.dump();
  };
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "ports file"},
      {good.substr(0, good.size() / 2), "ports file"},
      {"[1, 2, 3]", "object"},
      {R"({"https":[1],)" + good.substr(1), "duplicate key 'https'"},
      {edited("etcd_client", {1, 2}), "etcd_client"},
      {edited("etcd_peer", {1, 2, "3"}), "etcd_peer"},
      {edited("https", {0}), "https"},
      {edited("https", {70000}), "https"},
      {edited("https", {1.5}), "https"},
      {edited("https", nlohmann::json::array()), "https"},
      {edited("replica", {1, 2}), "replica"},
      {edited("https", {first->replica_ports.etcd_client[0], 2, 3}), "twice"},
      {edited("extra", 1), "unknown field 'extra'"},
  };
  for (const auto& [bad, says] : cases) {
    ASSERT_TRUE(write_text_file(d.ports_file(), bad).ok());
    for (int replicas : {3, 2}) {  // the same count or another: refused either way
      Status s = prepare_stack_state(d.state, d.bin, 0, 8088, replicas).status();
      EXPECT_EQ(s.code(), ErrorCode::kDataLoss) << bad;
      EXPECT_EQ(s.reason(), kStackPortsDamaged) << bad;
      EXPECT_NE(s.message().find(says), std::string::npos) << s.message();
      EXPECT_NE(s.message().find(d.ports_file().string()), std::string::npos) << s.message();
      EXPECT_NE(s.message().find("restore"), std::string::npos) << s.message();
      EXPECT_EQ(read_text_file(d.ports_file(), 4096).value(), bad);  // not regenerated
    }
  }

  // Missing: new ports are fine before etcd has data, refused once a member has some.
  fs::remove(d.ports_file());
  ASSERT_TRUE(prepare_stack_state(d.state, d.bin, 0, 8088, 3).ok());
  fs::remove(d.ports_file());
  fs::create_directories(first->etcd_member_dir(1));
  Status s = prepare_stack_state(d.state, d.bin, 0, 8088, 3).status();
  EXPECT_EQ(s.code(), ErrorCode::kDataLoss);
  EXPECT_EQ(s.reason(), kStackPortsMissing);
  EXPECT_NE(s.message().find("missing"), std::string::npos) << s.message();
  EXPECT_FALSE(fs::exists(d.ports_file()));
}

TEST(StackStateTest, ServiceSpecsCarryTheStackMarkerAndTheirOwnGroup) {
  StackLayout l;
  l.state_dir = "/tmp/stack";
  l.bin_dir = "/opt/moss/bin";
  l.log_dir = "/tmp/stack/logs";
  l.port_packer = 8088;
  const SubprocessSpec packer = packer_spec(l);
  EXPECT_EQ(packer.name, "packer");
  EXPECT_EQ(packer.argv.at(0), "/opt/moss/bin/moss-packer");
  EXPECT_EQ(packer.argv.at(2), "127.0.0.1:8088");
  EXPECT_EQ(packer.env.at(kStackDirEnv), "/tmp/stack");
  EXPECT_EQ(packer.log_path, fs::path("/tmp/stack/logs/packer.log"));
  EXPECT_EQ(packer.tie, ParentTie::kGroupDiesWithParent);
  EXPECT_EQ(keyservice_spec(l).log_path, fs::path("/tmp/stack/logs/keyservice.log"));
}

// A service left by a killed supervisor (marked, in its own group) is stopped; an unmarked
// process in the same group is left alone.
TEST(ServiceSweepTest, StopsOnlyTheStacksProcessesInTheGroups) {
  TempDir dir;
  SubprocessSpec spec;
  spec.name = "leftover";
  spec.argv = {"/bin/sh", "-c",
               std::string("env -u ") + kStackDirEnv + " sleep 30 & echo $!; exec sleep 30"};
  spec.env = {{kStackDirEnv, dir.path().string()}};
  spec.log_path = dir.path() / "log";
  spec.tie = ParentTie::kGroupDiesWithParent;
  auto leftover = Subprocess::spawn(spec);
  ASSERT_TRUE(leftover.ok());
  const pid_t group = (*leftover)->pid();
  std::string text;
  for (int i = 0; i < 500 && text.find('\n') == std::string::npos; ++i) {
    auto read = read_text_file(spec.log_path, 64);
    if (read.ok()) text = *read;
    std::this_thread::sleep_for(10ms);
  }
  const pid_t unmarked = std::stoi(text);
  while (stack_processes_in_group(group, dir.path()).empty()) std::this_thread::sleep_for(10ms);

  StackInfo info = sample_info(dir.path());
  info.service_groups = {0, 1, group};  // 0 and 1 are never swept
  EXPECT_EQ(stack_processes_in_group(group, "/some/other/stack").size(), 0u);
  EXPECT_EQ(sweep_service_groups(info), 1u);
  EXPECT_EQ((*leftover)->poll_exit(), std::optional<std::string>("killed by signal 15"));
  EXPECT_EQ(::kill(unmarked, 0), 0);  // not the stack's: untouched
  ::kill(unmarked, SIGKILL);
  EXPECT_EQ(sweep_service_groups(info), 0u);
}

}  // namespace
}  // namespace moss::client
