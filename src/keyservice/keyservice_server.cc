#include "keyservice/keyservice_server.h"

#include "attest/attested_tls.h"
#include "attest/collateral.h"
#include "attest/intel_root.h"
#include "common/logging.h"
#include "store/sealing_key.h"

#include <sys/stat.h>

namespace moss::keyservice {
namespace fs = std::filesystem;

Result<std::unique_ptr<KeyState>> open_key_state(const KeyServerOptions& o,
                                                 std::string_view producer_name,
                                                 std::string* sealing_description) {
  std::error_code ec;
  fs::create_directories(o.state_dir, ec);
  if (ec) return internal_error("creating {}: {}", o.state_dir.string(), ec.message());
  ::chmod(o.state_dir.c_str(), 0700);
  std::string kind = o.sealing;
  if (kind == "auto") {
    if (producer_name == "sgx-gramine") {
      kind = "gramine";
    } else if (producer_name == "sim" || !o.sealing_key_file.empty()) {
      kind = "file";
    } else {
      return failed_precondition(
          "no sealing key for tee '{}': set sealing-key-file (a key on storage only this TEE can "
          "read)", producer_name);
    }
  }
  store::SealingKeySourcePtr source;
  if (kind == "gramine") {
    source = store::make_gramine_sealing_key();
  } else if (kind == "file") {
    fs::path path = o.sealing_key_file.empty() ? o.state_dir / "sealing.key" : o.sealing_key_file;
    source = store::make_file_sealing_key(path, /*create=*/true);
  } else {
    return invalid_argument("sealing must be auto, gramine or file, not '{}'", o.sealing);
  }
  MOSS_ASSIGN_OR_RETURN(SecretBytes key, store::derive_sealing_key(*source));
  MOSS_ASSIGN_OR_RETURN(store::Sealer sealer, store::Sealer::create(std::move(key)));
  if (sealing_description) *sealing_description = source->describe();
  store::StateStorePtr state;
  if (o.store == "sqlite") {
    MOSS_ASSIGN_OR_RETURN(state, open_sqlite_state(o.state_dir / "keyservice.db", std::move(sealer)));
  } else if (o.store == "etcd") {
    store::EtcdStoreOptions eo;
    eo.client.endpoints = o.etcd_endpoints;
    eo.prefix = o.etcd_prefix;
    MOSS_ASSIGN_OR_RETURN(state, open_etcd_state(std::move(eo), std::move(sealer)));
  } else {
    return invalid_argument("store must be sqlite or etcd, not '{}'", o.store);
  }
  log::get("keyservice")->info("state in {}", state->describe());
  return KeyState::open(std::move(state), o.clock);
}

Result<std::unique_ptr<KeyServer>> KeyServer::start(KeyServerOptions o) {
  if (o.state_dir.empty()) return invalid_argument("state directory is required");
  std::unique_ptr<KeyServer> ks(new KeyServer());
  MOSS_ASSIGN_OR_RETURN(auto producer, attest::make_producer(o.producer));
  ks->producer_name_ = std::string(producer->name());
  MOSS_ASSIGN_OR_RETURN(ks->state_, open_key_state(o, ks->producer_name_, &ks->sealing_));

  // Our certificate: fresh key, evidence binding it to the KeyService purpose; short-lived and
  // renewed in place while the server runs.
  attest::AttestedCredentialOptions cred;
  cred.purpose = kKeyServicePurpose;
  cred.certificate.common_name = "moss-keyservice";
  cred.certificate.lifetime = o.certificate_lifetime;
  MOSS_ASSIGN_OR_RETURN(auto credentials, attest::make_renewing_attested_credentials(std::move(producer), cred));

  // Workers: attested certificates for the worker purpose, judged by the worker policy.
  attest::AttestedPeerConfig peer;
  peer.purpose = kWorkerPurpose;
  peer.policy = o.worker_policy;
  peer.verify.allow_simulated = o.allow_simulated_workers && o.worker_policy.allow_simulated;
  if (peer.verify.allow_simulated) {
    fs::path sim_key = o.worker_sim_key_file.empty() ? o.producer.sim_key_file : o.worker_sim_key_file;
    if (sim_key.empty()) return invalid_argument("simulated workers allowed but no simulated platform key");
    MOSS_ASSIGN_OR_RETURN(peer.verify.sim_platform_key, attest::SimPlatformKey::load_public_key(sim_key));
  }
  if (!o.collateral_dir.empty()) {
    MOSS_ASSIGN_OR_RETURN(auto root, attest::intel_sgx_root_ca());
    MOSS_ASSIGN_OR_RETURN(peer.verify.collateral, attest::load_collateral_dir(o.collateral_dir, root.get()));
  }
  // The same judgement for the fresh evidence a worker sends once per connection.
  MOSS_ASSIGN_OR_RETURN(auto connection_verifier, attest::ConnectionEvidenceVerifier::create(peer));
  MOSS_ASSIGN_OR_RETURN(net::PeerVerifier worker_verifier, attest::make_attested_peer_verifier(std::move(peer)));
  net::TlsServerConfig tls = attest::attested_server_config(std::move(credentials), std::move(worker_verifier));
  tls.require_client_cert = false;  // users and owners present none (see the header)

  ks->service_ = std::make_unique<KeyService>(*ks->state_, o.service, o.clock);
  ks->service_->set_connection_verifier(std::move(connection_verifier));
  net::ServerOptions so;
  so.host = o.host;
  so.port = o.port;
  so.worker_threads = o.worker_threads;
  so.max_body_bytes = o.max_body_bytes;
  so.max_header_bytes = 16 * 1024;
  so.read_timeout = std::chrono::seconds(10);
  so.tls = std::move(tls);
  so.name = "keyservice";
  MOSS_ASSIGN_OR_RETURN(ks->server_, net::Server::start(std::move(so), ks->service_->make_router()));
  net::Server* server = ks->server_.get();
  ks->service_->set_connections_probe([server] { return server->connections_open(); });
  log::get("keyservice")->info("started port={} tee={} sealing=\"{}\"", ks->server_->port(),
                               ks->producer_name_, ks->sealing_);
  return ks;
}

KeyServer::~KeyServer() {
  if (server_) server_->stop(std::chrono::milliseconds(0));
}

}  // namespace moss::keyservice
