#include "client/stack_state.h"

#include "attest/simulated.h"
#include "client/stack_services.h"
#include "common/encoding.h"
#include "common/file_util.h"
#include "crypto/random.h"

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

Result<StackLayout> prepare_stack_state(const fs::path& state_dir, const fs::path& bin_dir,
                                        uint16_t port_keyservice, uint16_t port_packer) {
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
  l.port_keyservice = port_keyservice;
  l.port_packer = port_packer;
  for (const fs::path& d : {l.state_dir, l.log_dir, l.keyservice_dir, l.packer_dir, l.model_store,
                            l.policy_dir, l.sim_key_file.parent_path()}) {
    MOSS_RETURN_IF_ERROR(make_private_dir(d));
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
