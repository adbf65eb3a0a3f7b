#include "keyservice/keyservice_server.h"

#include "attest/attested_tls.h"
#include "attest/collateral.h"
#include "attest/intel_root.h"
#include "common/logging.h"
#include "common/file_util.h"
#include "crypto/recovery_key.h"
#include "keyservice/replica_provisioning.h"
#include "keyservice/replica_state_key.h"
#include "store/sealing_key.h"

#include <sys/stat.h>

namespace moss::keyservice {
namespace fs = std::filesystem;

namespace {

Result<store::SealingKeySourcePtr> sealing_source(const KeyServerOptions& o, std::string_view producer_name) {
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
  if (kind == "gramine") return store::make_gramine_sealing_key();
  if (kind == "file") {
    fs::path path = o.sealing_key_file.empty() ? o.state_dir / "sealing.key" : o.sealing_key_file;
    return store::make_file_sealing_key(path, /*create=*/true);
  }
  return invalid_argument("sealing must be auto, gramine or file, not '{}'", o.sealing);
}

// The recovery export of `o`: the operator's file when named, else the copy in etcd.
Result<RecoveryExport> recovery_export(const KeyServerOptions& o, store::EtcdClient& etcd) {
  if (!o.recovery_export.empty()) {
    MOSS_ASSIGN_OR_RETURN(std::string text, read_text_file(o.recovery_export, 64 * 1024));
    return RecoveryExport::parse(text);
  }
  const std::string key = o.etcd_prefix + "recovery";
  MOSS_ASSIGN_OR_RETURN(auto got, etcd.range(store::EtcdRange::one(key)));
  if (got.kvs.empty()) {
    return failed_precondition("recovery-export-missing: etcd holds no {} (pass the operator's copy "
                               "with --recovery-export)", key);
  }
  return RecoveryExport::parse(got.kvs[0].value);
}

// The state key of an etcd state (open_key_state says which); *save: store a local copy once the
// state opened with it.
Result<SecretBytes> etcd_state_key(const KeyServerOptions& o, const store::Sealer& local,
                                   const StateKeyJoin& join, bool* save) {
  auto log = log::get("keyservice");
  MOSS_ASSIGN_OR_RETURN(auto local_copy, load_local_state_key(local, o.state_dir, o.etcd_prefix));
  if (local_copy) return std::move(*local_copy);
  *save = true;
  store::EtcdClientOptions co;
  co.endpoints = o.etcd_endpoints;
  co.timeout = o.etcd_timeout;
  MOSS_ASSIGN_OR_RETURN(auto etcd, store::EtcdClient::create(co));
  if (!o.recover_private_key.empty()) {
    MOSS_ASSIGN_OR_RETURN(auto private_key, crypto::RecoveryPrivateKey::load(o.recover_private_key));
    MOSS_ASSIGN_OR_RETURN(RecoveryExport e, recovery_export(o, *etcd));
    if (e.prefix != o.etcd_prefix) {
      return invalid_argument("recovery-export-invalid: the export is of prefix {}, not {}", e.prefix,
                              o.etcd_prefix);
    }
    log->warn("state key recovered from the export sealed to recovery key {}", e.recovery_key_sha256);
    return e.open(private_key);
  }
  if (join) return join(o.etcd_prefix);
  const std::string head_key = o.etcd_prefix + "head";
  const std::string recovery_key = o.etcd_prefix + "recovery";
  MOSS_ASSIGN_OR_RETURN(auto head, etcd->range(store::EtcdRange::one(head_key)));
  auto join_required = [&] {
    return refuse(ErrorCode::kFailedPrecondition, "replica-join-required",
                  fmt::format("etcd holds a state under {} and this replica has no copy of its key: "
                              "start it with --join <a running replica's replica port> (or --recover "
                              "<recovery private key> after losing every replica)",
                              o.etcd_prefix));
  };
  if (!head.kvs.empty()) return join_required();
  // The first replica: a new state key, exported sealed to the operator's recovery key.
  MOSS_ASSIGN_OR_RETURN(SecretBytes key, new_state_key());
  if (!o.recovery_public_key.empty()) {
    MOSS_ASSIGN_OR_RETURN(auto public_key, crypto::RecoveryPublicKey::load(o.recovery_public_key));
    MOSS_ASSIGN_OR_RETURN(RecoveryExport e, RecoveryExport::seal(public_key, o.etcd_prefix, key));
    const std::string json = e.to_json();
    // Only while no state and no other export exist: two first replicas have one winner.
    MOSS_ASSIGN_OR_RETURN(auto txn, etcd->txn({{store::EtcdCompare::kCreate, recovery_key, 0},
                                               {store::EtcdCompare::kCreate, head_key, 0}},
                                              {store::EtcdOp::put(recovery_key, json)}, {}));
    if (!txn.succeeded) return join_required();
    MOSS_RETURN_IF_ERROR(write_text_file(o.state_dir / kRecoveryExportFile, json));
    log->info("new state key, exported sealed to recovery key {} ({} and etcd {})",
              e.recovery_key_sha256, (o.state_dir / kRecoveryExportFile).string(), recovery_key);
  } else {
    log->warn("new state key without a recovery-public-key: losing every replica loses the state");
  }
  // Saved at once: a restart must find the key the export (if any) holds.
  MOSS_RETURN_IF_ERROR(save_local_state_key(local, o.state_dir, o.etcd_prefix, key));
  *save = false;
  return key;
}

}  // namespace

Result<std::unique_ptr<KeyState>> open_key_state(const KeyServerOptions& o,
                                                 std::string_view producer_name,
                                                 std::string* sealing_description,
                                                 const StateKeyJoin& join, SecretBytes* state_key) {
  std::error_code ec;
  fs::create_directories(o.state_dir, ec);
  if (ec) return internal_error("creating {}: {}", o.state_dir.string(), ec.message());
  ::chmod(o.state_dir.c_str(), 0700);
  MOSS_ASSIGN_OR_RETURN(store::SealingKeySourcePtr source, sealing_source(o, producer_name));
  MOSS_ASSIGN_OR_RETURN(SecretBytes key, store::derive_sealing_key(*source));
  MOSS_ASSIGN_OR_RETURN(store::Sealer sealer, store::Sealer::create(std::move(key)));
  if (sealing_description) *sealing_description = source->describe();
  store::StateStorePtr state;
  if (o.store == "sqlite") {
    MOSS_ASSIGN_OR_RETURN(state, open_sqlite_state(o.state_dir / "keyservice.db", std::move(sealer)));
  } else if (o.store == "etcd") {
    bool save = false;
    MOSS_ASSIGN_OR_RETURN(SecretBytes shared, etcd_state_key(o, sealer, join, &save));
    MOSS_ASSIGN_OR_RETURN(store::Sealer shared_sealer, state_sealer(shared));
    store::EtcdStoreOptions eo;
    eo.client.endpoints = o.etcd_endpoints;
    eo.client.timeout = o.etcd_timeout;
    eo.prefix = o.etcd_prefix;
    MOSS_ASSIGN_OR_RETURN(state, open_etcd_state(std::move(eo), std::move(shared_sealer)));
    // Kept only once it opened the state (a key that does not is refused: sealing-key-mismatch).
    if (save) MOSS_RETURN_IF_ERROR(save_local_state_key(sealer, o.state_dir, o.etcd_prefix, shared));
    if (state_key) *state_key = std::move(shared);
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

  // Our certificate: fresh key, evidence binding it to the KeyService purpose; short-lived and
  // renewed in place while the server runs. Also what this replica shows other replicas.
  attest::AttestedCredentialOptions cred;
  cred.purpose = kKeyServicePurpose;
  cred.certificate.common_name = "moss-keyservice";
  cred.certificate.lifetime = o.certificate_lifetime;
  MOSS_ASSIGN_OR_RETURN(auto credentials, attest::make_renewing_attested_credentials(std::move(producer), cred));

  // Other replicas: attested KeyService certificates judged by the replica policy, both ways.
  std::optional<attest::AttestedPeerConfig> replica_peer;
  if (!o.join_url.empty() || o.replica_listen) {
    if (o.store != "etcd") return invalid_argument("join and replica-listen need store=etcd");
    if (!o.replica_policy) return invalid_argument("join and replica-listen need a replica-policy");
    replica_peer.emplace();
    replica_peer->policy = *o.replica_policy;
    replica_peer->verify.allow_simulated = o.replica_policy->allow_simulated;
    if (replica_peer->verify.allow_simulated) {
      if (o.producer.sim_key_file.empty()) {
        return invalid_argument("the replica policy allows simulated replicas but no simulated platform key is set");
      }
      MOSS_ASSIGN_OR_RETURN(replica_peer->verify.sim_platform_key,
                            attest::SimPlatformKey::load_public_key(o.producer.sim_key_file));
    }
    if (!o.collateral_dir.empty()) {
      MOSS_ASSIGN_OR_RETURN(auto root, attest::intel_sgx_root_ca());
      MOSS_ASSIGN_OR_RETURN(replica_peer->verify.collateral, attest::load_collateral_dir(o.collateral_dir, root.get()));
    }
  }
  StateKeyJoin join;
  if (!o.join_url.empty()) {
    join = [&](std::string_view prefix) {
      log::get("keyservice")->info("joining: state key from the replica at {}", o.join_url);
      return fetch_state_key(o.join_url, credentials, *replica_peer, prefix);
    };
  }
  SecretBytes state_key;
  MOSS_ASSIGN_OR_RETURN(ks->state_, open_key_state(o, ks->producer_name_, &ks->sealing_, join, &state_key));

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
  net::TlsServerConfig tls = attest::attested_server_config(credentials, std::move(worker_verifier));
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
  if (o.replica_listen) {
    MOSS_ASSIGN_OR_RETURN(ks->replica_server_,
                          start_replica_server(o.replica_listen->first, o.replica_listen->second,
                                               credentials, std::move(*replica_peer),
                                               std::move(state_key), o.etcd_prefix));
  }
  ks->service_->set_connections_probe([server] { return server->connections_open(); });
  log::get("keyservice")->info("started port={} tee={} sealing=\"{}\"", ks->server_->port(),
                               ks->producer_name_, ks->sealing_);
  return ks;
}

KeyServer::~KeyServer() {
  if (server_) server_->stop(std::chrono::milliseconds(0));
}

}  // namespace moss::keyservice
