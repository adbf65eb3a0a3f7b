// KeyClient: the worker's side of contract C1, POST /v1/release over mutually attested TLS.
//
// The worker presents its own attested certificate (purpose "moss-worker") and accepts only a
// KeyService whose evidence binds purpose "moss-keyservice" and satisfies the configured policy.
// On every new connection it first proves fresh attestation for that connection
// (POST /v1/attest-connection with evidence over the TLS exporter; attest/connection_attestation.h):
// one evidence production per connection, amortized by keep-alive.
// One keep-alive connection is reused for every release (calls are serialised on it; the key
// cache makes them rare). With several KeyService URLs (replicas) each attempt fails over from
// one to the next on connection errors, timeouts and 5xx, never on a refusal or a KeyService
// that fails attestation (net/failover_client.h). Transport failures are retried a bounded number of times with backoff,
// then reported as one unavailable error naming the KeyService; refusals (403/404/401) are not
// retried. The KeyService's state version and audit head (sent with every answer) are remembered:
// an answer with an older version is refused ("keyservice-rollback"), and when the audit log grew
// the KeyService must prove its chain still holds the remembered head (GET
// /v1/audit/head?at=<seq>, one extra request on the answer's connection), else "keyservice-forked"
// (crypto/keyservice_state.h). When that replica cannot answer the proof now (connection lost,
// timeout, 5xx) it is asked of the next one (failover), which then also proves, on its connection,
// that its chain holds the answer's head (two requests); when no replica can, the release attempt
// fails and is retried like a transport failure. The keys are never used before a proof holds; a
// refused proof (4xx) or a fork or rollback verdict fails closed at once.
// Thread-safe.
#pragma once

#include "attest/attested_tls.h"
#include "attest/evidence_producer.h"
#include "crypto/keyservice_state.h"
#include "net/failover_client.h"
#include "worker/released_keys.h"

#include <chrono>
#include <memory>
#include <mutex>
#include <string>

namespace moss::worker {

inline constexpr char kWorkerPurpose[] = "moss-worker";
inline constexpr char kKeyServicePurpose[] = "moss-keyservice";
inline constexpr char kAttestConnectionPath[] = "/v1/attest-connection";

struct KeyClientOptions {
  std::string url;  // https://host:port; replicas: a list (net::parse_url_list), with failover
  attest::AttestedPeerConfig server;  // how the KeyService is judged (purpose set by create())
  // Produces the per-connection evidence (required; shared with certificate renewal, so
  // make_shared_producer).
  std::shared_ptr<attest::EvidenceProducer> producer;
  int attempts = 3;                   // transport attempts per release
  std::chrono::milliseconds backoff{200};  // doubled after each failed attempt
  std::chrono::milliseconds connect_timeout{3'000};
  std::chrono::milliseconds read_timeout{10'000};
  std::chrono::milliseconds deadline{15'000};  // per attempt, across every replica tried
};

class KeyClient : public KeySource {
 public:
  // `credentials`: the worker's attested certificate and key (make_attested_credentials with
  // purpose kWorkerPurpose).
  static Result<std::unique_ptr<KeyClient>> create(KeyClientOptions options,
                                                   net::TlsCredentials credentials);
  // The same with credentials renewed while the client lives (make_renewing_attested_credentials).
  static Result<std::unique_ptr<KeyClient>> create(KeyClientOptions options,
                                                   net::RenewableCredentialsPtr credentials);

  Result<ReleasedKeys> release(std::string_view model_id, std::string_view user_id) override;

  // Connections opened so far (1 while keep-alive holds); for tests.
  uint64_t connections_opened() const;

 private:
  KeyClient(KeyClientOptions options, net::FailoverClient client);
  const KeyClientOptions options_;
  mutable std::mutex mu_;
  // Judges an answer's state against seen_ (fetching the fork proof when needed); mu_ held.
  Status judge_locked(const crypto::KeyServiceState& answered);
  net::FailoverClient client_;        // guarded by mu_
  crypto::SeenKeyServiceState seen_;  // guarded by mu_
};

// The policy setting: JSON text when it starts with '{', else a file path.
Result<attest::Policy> load_keyservice_policy(const std::string& path_or_json);

}  // namespace moss::worker
