#include "client/stack_state.h"

#include "attest/simulated.h"
#include "client/stack_services.h"
#include "common/encoding.h"
#include "common/file_util.h"
#include "common/loopback_port.h"
#include "crypto/random.h"

#include <nlohmann/json.hpp>

#include <sys/stat.h>

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

// The ports of the replicas and etcd members: those saved by an earlier start when they are for
// as many replicas (and replica 0 on the requested port, unless that is "any"), else new ones.
Result<StackReplicaPorts> replica_ports(const fs::path& file, int replicas, uint16_t port_keyservice) {
  if (auto text = read_text_file(file, 64 * 1024); text.ok()) {
    auto j = nlohmann::json::parse(*text, nullptr, false);
    StackReplicaPorts saved;
    if (!j.is_discarded() && j.is_object()) {
      try {
        saved.etcd_client = j.at("etcd_client").get<std::vector<uint16_t>>();
        saved.etcd_peer = j.at("etcd_peer").get<std::vector<uint16_t>>();
        saved.https = j.at("https").get<std::vector<uint16_t>>();
        saved.replica = j.at("replica").get<std::vector<uint16_t>>();
      } catch (const nlohmann::json::exception&) {
        saved = {};
      }
    }
    if (saved.etcd_client.size() == kStackEtcdMembers && saved.etcd_peer.size() == kStackEtcdMembers &&
        saved.https.size() == static_cast<size_t>(replicas) && saved.replica.size() == saved.https.size() &&
        (port_keyservice == 0 || saved.https[0] == port_keyservice)) {
      return saved;
    }
  }
  StackReplicaPorts p;
  auto any = [] { return free_loopback_port(); };
  for (size_t m = 0; m < kStackEtcdMembers; ++m) {
    MOSS_ASSIGN_OR_RETURN(uint16_t c, any());
    MOSS_ASSIGN_OR_RETURN(uint16_t q, any());
    p.etcd_client.push_back(c);
    p.etcd_peer.push_back(q);
  }
  for (int i = 0; i < replicas; ++i) {
    uint16_t https = port_keyservice;
    if (i > 0 || https == 0) {
      MOSS_ASSIGN_OR_RETURN(https, any());
    }
    MOSS_ASSIGN_OR_RETURN(uint16_t replica, any());
    p.https.push_back(https);
    p.replica.push_back(replica);
  }
  nlohmann::json j = {{"etcd_client", p.etcd_client}, {"etcd_peer", p.etcd_peer}, {"https", p.https},
                      {"replica", p.replica}};
  MOSS_RETURN_IF_ERROR(write_text_file(file, j.dump() + "\n", 0600));
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
                          replica_ports(l.etcd_dir / "ports.json", keyservice_replicas, port_keyservice));
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
