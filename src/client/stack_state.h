// The state directory of one `moss up` stack (layout in stack.h): its file names, and the one-time
// preparation of what the services need (directories, simulated platform key, operator token,
// policies, client config). Everything secret is 0600 inside 0700 directories.
// Stateless functions; thread-compatible (one supervisor per directory, stack_lock.h).
#pragma once

#include "common/status.h"

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace moss::client {

inline std::filesystem::path stack_pid_file(const std::filesystem::path& state_dir) {
  return state_dir / "stack.pid";
}
inline std::filesystem::path stack_info_file(const std::filesystem::path& state_dir) {
  return state_dir / "stack.json";
}
inline std::filesystem::path stack_lock_file(const std::filesystem::path& state_dir) {
  return state_dir / "stack.lock";
}

// etcd members under the replicas of a stack: three, so any one may die.
inline constexpr size_t kStackEtcdMembers = 3;

// Reasons (Status::reason) of a refused STATE/etcd/ports.json.
inline constexpr std::string_view kStackPortsDamaged = "stack-ports-damaged";
inline constexpr std::string_view kStackPortsMissing = "stack-ports-missing";

// KeyService replicas of one stack (`moss up --keyservice-replicas N`, N > 1): the loopback ports
// of the etcd members and of the replicas, kept in STATE/etcd/ports.json from the first start on,
// since etcd members remember their peers' addresses in their data and clients their KeyService
// URLs. The etcd ports stay for the life of the etcd data, whatever the replica count.
struct StackReplicaPorts {
  std::vector<uint16_t> etcd_client, etcd_peer;  // one each per member
  std::vector<uint16_t> https, replica;          // one each per replica; https[0] = port_keyservice
};

// Absolute paths and ports of one stack (all under the state directory).
struct StackLayout {
  std::filesystem::path state_dir, bin_dir, log_dir, keyservice_dir, packer_dir, model_store,
      policy_dir, sim_key_file, token_file, client_config, etcd_dir;
  uint16_t port_keyservice = 0, port_packer = 0;
  std::string worker_measurement, keyservice_measurement;  // simulated, hex
  int keyservice_replicas = 1;  // > 1: replicas over etcd (replica_ports)
  StackReplicaPorts replica_ports;

  // Every replica's URL, comma-separated (clients and workers fail over from one to the next).
  std::string keyservice_url() const {
    if (keyservice_replicas <= 1) return "https://127.0.0.1:" + std::to_string(port_keyservice);
    std::string urls;
    for (uint16_t p : replica_ports.https) {
      if (!urls.empty()) urls += ',';
      urls += "https://127.0.0.1:";
      urls += std::to_string(p);
    }
    return urls;
  }
  // The state directory of replica `i` (the KeyService's own without replicas).
  std::filesystem::path keyservice_replica_dir(size_t i) const {
    if (keyservice_replicas <= 1) return keyservice_dir;
    std::string name = "replica";
    name += std::to_string(i);
    return keyservice_dir / name;
  }
  // etcd member `m`'s name in its cluster and its data directory (STATE/etcd/m<m>).
  static std::string etcd_member_name(size_t m) { return fmt::format("m{}", m); }
  std::filesystem::path etcd_member_dir(size_t m) const { return etcd_dir / etcd_member_name(m); }
  std::string packer_url() const { return "http://127.0.0.1:" + std::to_string(port_packer); }
  std::filesystem::path worker_policy() const {
    return policy_dir / "keyservice-accepts-workers.json";
  }
  std::filesystem::path keyservice_policy() const { return policy_dir / "trust-keyservice.json"; }
};

// Creates `dir` (and its parents) and makes it 0700.
Status make_private_dir(const std::filesystem::path& dir);

// Creates the layout under `state_dir` for services from `bin_dir` on the given ports, with
// `keyservice_replicas` KeyService replicas. Their ports come from STATE/etcd/ports.json when it
// exists: the etcd members' always (their data names them), the replicas' for those that existed
// before, new free ones for replicas added; replica 0 moves to `port_keyservice` unless that is 0.
// The file is saved whenever that changes it. A ports.json that does not parse as ours, or a
// missing one while etcd member data exists, fails with data-loss (reason kStackPortsDamaged /
// kStackPortsMissing): new ports would orphan the members' data. Keeps an existing simulated
// platform key and operator token (a restarted stack keeps its identity). The replicas' state
// (etcd, under STATE/etcd/) is another state than the single KeyService's
// (STATE/keyservice/keyservice.db).
Result<StackLayout> prepare_stack_state(const std::filesystem::path& state_dir,
                                        const std::filesystem::path& bin_dir,
                                        uint16_t port_keyservice, uint16_t port_packer,
                                        int keyservice_replicas = 1);

}  // namespace moss::client
