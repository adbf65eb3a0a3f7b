#include "client/stack_state.h"

#include "attest/simulated.h"
#include "client/stack_services.h"
#include "common/encoding.h"
#include "common/file_util.h"
#include "common/loopback_port.h"
#include "common/strict_json.h"
#include "crypto/random.h"

#include <nlohmann/json.hpp>

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace moss::client {
namespace fs = std::filesystem;

Status make_private_dir(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return internal_error("cannot create {}: {}", dir.string(), ec.message());
  if (chmod(dir.c_str(), 0700) != 0) {
    return internal_error("cannot chmod {}: {}", dir.string(), std::strerror(errno));
  }
  return Status::Ok();
}

namespace {

constexpr size_t kMaxPortsFile = 64 * 1024;
// A bound for reading only (the CLI allows far fewer replicas).
constexpr size_t kMaxSavedReplicas = 64;

// One array of ports from ports.json: integers in [1, 65535], `size` of them when not 0.
Result<std::vector<uint16_t>> port_list(const nlohmann::ordered_json& j, std::string_view name,
                                        size_t size) {
  MOSS_ASSIGN_OR_RETURN(const auto* items, array_field(j, name, kMaxSavedReplicas));
  if (items->empty() || (size != 0 && items->size() != size)) {
    return invalid_argument("field '{}' must hold {} ports", name, size != 0 ? size : 1);
  }
  std::vector<uint16_t> ports;
  for (const auto& p : *items) {
    if (!p.is_number_integer() || p.get<int64_t>() < 1 || p.get<int64_t>() > 65535) {
      return invalid_argument("field '{}' must hold ports (integers 1 to 65535)", name);
    }
    ports.push_back(static_cast<uint16_t>(p.get<int64_t>()));
  }
  return ports;
}

bool ports_distinct(const StackReplicaPorts& p) {
  std::vector<uint16_t> all;
  for (const auto* list : {&p.etcd_client, &p.etcd_peer, &p.https, &p.replica}) {
    all.insert(all.end(), list->begin(), list->end());
  }
  std::sort(all.begin(), all.end());
  return std::adjacent_find(all.begin(), all.end()) == all.end();
}

// ports.json as written by save_replica_ports; anything else is a damaged file.
Result<StackReplicaPorts> parse_replica_ports(std::string_view text) {
  MOSS_ASSIGN_OR_RETURN(auto j, parse_json_object(text, "ports file", {"etcd_client", "etcd_peer", "https", "replica"},
                                                  {}, 2));
  StackReplicaPorts p;
  MOSS_ASSIGN_OR_RETURN(p.etcd_client, port_list(j, "etcd_client", kStackEtcdMembers));
  MOSS_ASSIGN_OR_RETURN(p.etcd_peer, port_list(j, "etcd_peer", kStackEtcdMembers));
  MOSS_ASSIGN_OR_RETURN(p.https, port_list(j, "https", 0));
  MOSS_ASSIGN_OR_RETURN(p.replica, port_list(j, "replica", p.https.size()));
  if (!ports_distinct(p)) return invalid_argument("a port is given twice");
  return p;
}

Status save_replica_ports(const fs::path& file, const StackReplicaPorts& p) {
  const nlohmann::json j = {{"etcd_client", p.etcd_client}, {"etcd_peer", p.etcd_peer}, {"https", p.https},
                            {"replica", p.replica}};
  return write_text_file(file, j.dump() + "\n", 0600);
}

// The ports of the etcd members and the replicas (contract at prepare_stack_state).
Result<StackReplicaPorts> replica_ports(const StackLayout& l, size_t replicas, uint16_t port_keyservice) {
  const fs::path file = l.etcd_dir / "ports.json";
  // What to do about a refused file: etcd keeps its peers' URLs in its data, so members started on
  // other ports would never find each other again (the stack's keys and grants are in there).
  auto refuse = [&](std::string_view reason, std::string_view what) {
    return Status(ErrorCode::kDataLoss,
                  fmt::format("{}; the etcd members' data in {} names their ports, so new ones would orphan it: "
                              "restore {} from a backup, or delete {} to start the KeyService replicas afresh "
                              "(their keys and grants are then lost)",
                              what, l.etcd_dir.string(), file.string(), l.etcd_dir.string()),
                  std::string(reason));
  };
  StackReplicaPorts p;
  auto text = read_text_file(file, kMaxPortsFile);
  if (text.ok()) {
    auto saved = parse_replica_ports(*text);
    if (!saved.ok()) {
      return refuse(kStackPortsDamaged, fmt::format("{} is damaged ({})", file.string(), saved.status().message()));
    }
    p = std::move(*saved);
  } else if (text.status().code() != ErrorCode::kNotFound) {
    // Unreadable (permissions, oversize): not the same as absent.
    return refuse(kStackPortsDamaged, fmt::format("{} cannot be read ({})", file.string(), text.status().message()));
  } else {
    for (size_t m = 0; m < kStackEtcdMembers; ++m) {
      std::error_code ec;
      if (fs::exists(l.etcd_member_dir(m), ec) || ec) {
        return refuse(kStackPortsMissing, fmt::format("{} is missing while etcd member data exists", file.string()));
      }
    }
  }
  const StackReplicaPorts before = p;
  // New ports differ from every port kept or already chosen: free_loopback_port only says that
  // nothing holds a port now, and the stack's own services are down.
  auto fresh = [&]() -> Result<uint16_t> {
    for (int attempt = 0; attempt < 64; ++attempt) {
      MOSS_ASSIGN_OR_RETURN(uint16_t port, free_loopback_port());
      bool taken = port == port_keyservice;
      for (const auto* list : {&p.etcd_client, &p.etcd_peer, &p.https, &p.replica}) {
        taken = taken || std::find(list->begin(), list->end(), port) != list->end();
      }
      if (!taken) return port;
    }
    return internal_error("no free loopback port apart from the stack's own");
  };
  while (p.etcd_client.size() < kStackEtcdMembers) {
    MOSS_ASSIGN_OR_RETURN(uint16_t c, fresh());
    p.etcd_client.push_back(c);
    MOSS_ASSIGN_OR_RETURN(uint16_t q, fresh());
    p.etcd_peer.push_back(q);
  }
  // Replicas beyond the new count are dropped (their directories stay, unused); the ones kept
  // keep their ports, so client configs written before still name them.
  if (p.https.size() > replicas) {
    p.https.resize(replicas);
    p.replica.resize(replicas);
  }
  if (port_keyservice != 0 && !p.https.empty()) p.https[0] = port_keyservice;
  while (p.https.size() < replicas) {
    uint16_t https = port_keyservice;
    if (!p.https.empty() || https == 0) {
      MOSS_ASSIGN_OR_RETURN(https, fresh());
    }
    p.https.push_back(https);
    MOSS_ASSIGN_OR_RETURN(uint16_t replica, fresh());
    p.replica.push_back(replica);
  }
  if (!ports_distinct(p)) {
    return invalid_argument("port {} is taken by another service of this stack (see {})", port_keyservice,
                            file.string());
  }
  if (p.etcd_client != before.etcd_client || p.etcd_peer != before.etcd_peer || p.https != before.https ||
      p.replica != before.replica) {
    MOSS_RETURN_IF_ERROR(save_replica_ports(file, p));
  }
  return p;
}

}  // namespace

Result<StackLayout> prepare_stack_state(const fs::path& state_dir, const fs::path& bin_dir,
                                        uint16_t port_keyservice, uint16_t port_packer,
                                        int keyservice_replicas) {
  StackLayout l;
  l.state_dir = fs::absolute(state_dir).lexically_normal();
  l.bin_dir = fs::absolute(bin_dir).lexically_normal();
  l.log_dir = l.state_dir / "logs";
  l.keyservice_dir = l.state_dir / "keyservice";
  l.packer_dir = l.state_dir / "packer";
  l.model_store = l.state_dir / "models";
  l.policy_dir = l.state_dir / "policies";
  l.sim_key_file = l.state_dir / "sim" / "platform.key";
  l.token_file = l.state_dir / "packer-token";
  l.client_config = l.state_dir / "client.json";
  l.etcd_dir = l.state_dir / "etcd";
  l.port_keyservice = port_keyservice;
  l.port_packer = port_packer;
  l.keyservice_replicas = keyservice_replicas;
  for (const fs::path& d : {l.state_dir, l.log_dir, l.keyservice_dir, l.packer_dir, l.model_store,
                            l.policy_dir, l.sim_key_file.parent_path()}) {
    MOSS_RETURN_IF_ERROR(make_private_dir(d));
  }
  if (keyservice_replicas > 1) {
    MOSS_RETURN_IF_ERROR(make_private_dir(l.etcd_dir));
    MOSS_ASSIGN_OR_RETURN(l.replica_ports,
                          replica_ports(l, static_cast<size_t>(keyservice_replicas), port_keyservice));
    l.port_keyservice = l.replica_ports.https[0];
    for (int i = 0; i < keyservice_replicas; ++i) {
      MOSS_RETURN_IF_ERROR(make_private_dir(l.keyservice_replica_dir(static_cast<size_t>(i))));
    }
  }
  MOSS_RETURN_IF_ERROR(attest::SimPlatformKey::load_or_create(l.sim_key_file).status());
  if (!fs::exists(l.token_file)) {
    MOSS_ASSIGN_OR_RETURN(SecretBytes token, crypto::random_secret(32));
    MOSS_RETURN_IF_ERROR(write_text_file(l.token_file, hex_encode(token.span()), 0600));
  }
  MOSS_ASSIGN_OR_RETURN(auto worker_m, attest::simulated_measurement(
                                           l.bin_dir / kWorkerBinary, kWorkerSimIdentity));
  MOSS_ASSIGN_OR_RETURN(auto keyservice_m,
                        attest::simulated_measurement(l.bin_dir / kKeyServiceBinary,
                                                      kKeyServiceSimIdentity));
  l.worker_measurement = hex_encode(worker_m);
  l.keyservice_measurement = hex_encode(keyservice_m);
  MOSS_RETURN_IF_ERROR(write_stack_policies(l));
  MOSS_RETURN_IF_ERROR(write_client_config(l));
  return l;
}

}  // namespace moss::client
