// KeyServer: a running KeyService: state opened and unsealed, attested TLS credentials made, the
// HTTPS server started. What the moss-keyservice binary and the tests start.
//
// TLS: the server certificate carries this TEE's evidence (purpose "moss-keyservice"). Clients
// may present a certificate; if they do it must be an attested worker certificate (purpose
// "moss-worker") meeting the worker policy, or the handshake fails. Users and owners present
// none and authenticate each request by signature; /v1/release requires the worker certificate.
// Thread-safe.
#pragma once

#include "attest/attested_tls.h"
#include "attest/evidence_producer.h"
#include "attest/policy.h"
#include "keyservice/key_state.h"
#include "keyservice/service.h"
#include "net/server.h"

#include <filesystem>
#include <functional>
#include <optional>
#include <memory>
#include <string>
#include <vector>

namespace moss::keyservice {

inline constexpr char kKeyServicePurpose[] = "moss-keyservice";
inline constexpr char kWorkerPurpose[] = "moss-worker";

struct KeyServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  std::filesystem::path state_dir;         // keyservice.db (+ sealing.key under the file source)
  std::string store = "sqlite";            // sqlite (state_dir/keyservice.db) | etcd
  std::vector<std::string> etcd_endpoints;  // store=etcd: "http://host:port" of the members
  std::string etcd_prefix = "/moss/keyservice/";
  std::chrono::milliseconds etcd_timeout = store::EtcdClientOptions{}.timeout;  // connect, each call
  // store=etcd replicas share one state key (replica_state_key.h). The first replica creates it;
  // a new one joins: it obtains the key from a running replica's replica port (join_url) over
  // mutually attested TLS, both sides judging the other by replica_policy
  // (replica_provisioning.h); after losing every replica, recover_private_key opens the export
  // sealed at setup to recovery_public_key.
  std::string join_url;                       // https://host:port of a running replica's replica port
  std::optional<std::pair<std::string, uint16_t>> replica_listen;  // serve the replica port here
  std::optional<attest::Policy> replica_policy;  // required with join_url or replica_listen
  std::filesystem::path recovery_public_key;     // setup: seal the new state key to it
  std::filesystem::path recover_private_key;     // recovery: open the export with it
  std::filesystem::path recovery_export;  // recovery: the operator's copy (default: <prefix>recovery)
  attest::ProducerConfig producer;         // this KeyService's own evidence
  std::chrono::seconds certificate_lifetime = attest::kAttestedCertificateLifetime;  // renewed at half
  std::string sealing = "auto";            // auto | gramine | file
  std::filesystem::path sealing_key_file;  // "file": default <state_dir>/sealing.key
  attest::Policy worker_policy;            // what a worker must be to receive keys
  bool allow_simulated_workers = false;    // also needs "allow_simulated" in the worker policy
  std::filesystem::path worker_sim_key_file;  // simulated platform key; default producer.sim_key_file
  std::filesystem::path collateral_dir;       // DCAP collateral for worker quotes (optional)
  size_t worker_threads = 8;
  size_t max_body_bytes = 64 * 1024;
  ServiceOptions service;
  ClockMs clock = system_clock_ms;
};

class KeyServer {
 public:
  static Result<std::unique_ptr<KeyServer>> start(KeyServerOptions options);
  ~KeyServer();

  uint16_t port() const { return server_->port(); }
  // The replica port (0 when the options named none).
  uint16_t replica_port() const { return replica_server_ ? replica_server_->port() : 0; }
  const std::string& sealing_description() const { return sealing_; }
  const std::string& producer_name() const { return producer_name_; }
  KeyState& state() { return *state_; }
  void stop(std::chrono::milliseconds grace = std::chrono::seconds(5)) {
    if (replica_server_) replica_server_->stop(grace);
    server_->stop(grace);
  }

 private:
  KeyServer() = default;
  std::unique_ptr<KeyState> state_;
  std::unique_ptr<KeyService> service_;
  net::ServerPtr server_;
  net::ServerPtr replica_server_;
  std::string sealing_;
  std::string producer_name_;
};

// How a replica without a local copy of the state key asks a running one for it (etcd prefix ->
// key); null: it cannot (then it is refused with "replica-join-required").
using StateKeyJoin = std::function<Result<SecretBytes>(std::string_view prefix)>;

// Opens the state of `state_dir` with the sealing source the options name (for --verify-audit).
// store=etcd: the state key is the local sealed copy, else the recovery export (with
// recover_private_key), else `join`'s, else a new one when etcd holds no state yet; `state_key`
// (when given) receives it.
Result<std::unique_ptr<KeyState>> open_key_state(const KeyServerOptions& options,
                                                 std::string_view producer_name,
                                                 std::string* sealing_description = nullptr,
                                                 const StateKeyJoin& join = nullptr,
                                                 SecretBytes* state_key = nullptr);

}  // namespace moss::keyservice
