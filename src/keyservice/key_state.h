// KeyState: everything the KeyService remembers, in a state store (store/state_store.h: one
// SQLite file by default, or etcd shared by replicas): principals, model key versions, grants,
// request keys (key material sealed), used request nonces, and the audit log.
//
// Every row is authenticated and the state carries a version: an edited, inserted or deleted row
// is refused with a named reason. Every change commits in one transaction together with its audit
// event, so the log and the state never disagree; a call returns only after its commit is durable.
// A release reads the grant and commits its audit event in the same transaction, so the log
// orders releases and revokes as they happened (on etcd, across replicas: the transaction fails
// and reruns when another replica committed in between). Audit queries never wait for, or hold
// up, the writer's mutex.
// Authorisation (who may call what) is the caller's job: KeyState enforces the data rules (a grant
// needs a model and a registered user; release needs a grant and a request key).
// Thread-safe: one mutex serialises the writing connection.
#pragma once

#include "common/secret_bytes.h"
#include "common/status.h"
#include "store/audit_log.h"
#include "store/etcd_state_store.h"
#include "store/sealer.h"
#include "store/state_store.h"
#include "crypto/identity.h"
#include "crypto/keyservice_state.h"

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace moss::keyservice {

using ClockMs = std::function<int64_t()>;  // Unix time in milliseconds
int64_t system_clock_ms();

struct PutKeyResult {
  uint32_t version = 0;
  bool created = false;  // false: the same key was already stored (idempotent set)
};

struct KeyVersionInfo {
  uint32_t version = 0;
  bool retired = false;
  int64_t created_ms = 0;
};

struct GrantInfo {
  std::string user_id;
  std::string measurement;
  int64_t created_ms = 0;
};

struct ReleasedKey {
  uint32_t version = 0;
  SecretBytes key;
};

struct Release {
  std::vector<ReleasedKey> model_keys;  // unretired, newest first
  ReleasedKey request_key;
};

// The KeyService's tables in a SQLite file (the default), or in etcd (the replicated store).
Result<store::StateStorePtr> open_sqlite_state(const std::filesystem::path& db_path,
                                               store::Sealer sealer);
Result<store::StateStorePtr> open_etcd_state(store::EtcdStoreOptions options, store::Sealer sealer);

class KeyState {
 public:
  static Result<std::unique_ptr<KeyState>> open(store::StateStorePtr store,
                                                ClockMs clock = system_clock_ms);
  // open(open_sqlite_state(db_path, sealer)).
  static Result<std::unique_ptr<KeyState>> open(const std::filesystem::path& db_path,
                                                store::Sealer sealer, ClockMs clock = system_clock_ms);

  // Registers `id` with `public_key` (the caller checked proof of possession and the id). false when
  // already registered with this key; already-exists when registered with another (impossible
  // unless SHA-256 collides, but never silently overwritten).
  Result<bool> register_principal(const std::string& id, std::span<const uint8_t> public_key);
  // The raw public key, or nullopt when unknown.
  Result<std::optional<std::array<uint8_t, 32>>> principal_key(const std::string& id);

  // Records a nonce; unauthenticated "nonce-replayed" when this principal used it already.
  // Nonces older than `retain_s` are pruned now and then.
  Status use_nonce(const std::string& principal, const std::string& nonce, int64_t retain_s);

  // Model keys. `actor` is the owner (for the audit log).
  Result<PutKeyResult> put_model_key(const std::string& actor, const std::string& model_id,
                                     std::span<const uint8_t> key, bool rotate);
  Status retire_model_key(const std::string& actor, const std::string& model_id, uint32_t version);
  Result<std::vector<KeyVersionInfo>> list_model_keys(const std::string& model_id);
  Status delete_model(const std::string& actor, const std::string& model_id);

  // Grants.
  Result<bool> add_grant(const std::string& actor, const std::string& model_id,
                         const std::string& user_id, const std::string& measurement);
  Status revoke_grant(const std::string& actor, const std::string& model_id,
                      const std::string& user_id, const std::string& measurement);
  Result<std::vector<GrantInfo>> list_grants(const std::string& model_id);

  // Request keys: version 1 on first set, +1 on each later set (rotation). Accepted whether or not
  // the model exists (the same answer either way: no oracle for which models exist).
  Result<PutKeyResult> put_request_key(const std::string& user_id, const std::string& model_id,
                                       const std::string& measurement, std::span<const uint8_t> key);
  Status delete_request_key(const std::string& user_id, const std::string& model_id,
                            const std::string& measurement);

  // The access rule (design: KeyService). Every outcome for a known model is audited, with the
  // asking worker (`worker_id`: its certificate key hash) and, for refusals, the user only as
  // claimed: the worker has not authenticated the requester when it asks.
  Result<Release> release(const std::string& model_id, const std::string& user_id,
                          const std::string& measurement, const std::string& worker_id = "");

  Result<std::vector<store::AuditRecord>> query_audit(const store::AuditQuery& query);
  // Re-verifies the whole state and the audit chain against the sealed head.
  Result<store::AuditHead> verify_audit();
  uint64_t audit_events_written() const;
  // OK when the store can be read (store::StateStore::readable(); store-unavailable otherwise),
  // for readiness. A result is reused for kReadinessReuseMs, and a probe that finds another one
  // reading returns the last result: probes never pile up on a slow etcd. Never takes mu_.
  Status store_readable();
  static constexpr int64_t kReadinessReuseMs = 1'000;

  // The state version: +1 with every committed change (the newest this KeyService has seen).
  int64_t state_version() const { return store_->version(); }
  // The state version and audit head an answer shows (crypto/keyservice_state.h), read together.
  // answer_ticket() is taken when a request arrives; answer_state(ticket) is the newest state seen,
  // provided a read of the store made after that (for the request: a nonce, a read, a commit)
  // saw it, and nullopt otherwise: on etcd, an older state remembered from before the request
  // arrived may lack what another replica acknowledged since, and an answer showing it would be
  // refused as a rollback (store::StateStore::seen_since). Thread-safe, no I/O.
  uint64_t answer_ticket() const { return store_->read_ticket(); }
  std::optional<crypto::KeyServiceState> answer_state(uint64_t ticket) const;
  // The audit head signed by the KeyService's identity (created with the state, sealed in it).
  // With `at`: also the chain value at that sequence number, proven to lead to the head
  // (store::audit_chain_value_at over the store's audit reads), signed together with the head
  // (crypto::audit_proof_signing_message); refused ("audit-seq-unknown") when not in the log.
  struct SignedHead {
    store::AuditHead head;
    int64_t state_version = 0;
    std::optional<int64_t> at;
    std::array<uint8_t, 32> at_hash{};
    std::string message;  // what was signed
    crypto::Ed25519Signature signature{};
  };
  Result<SignedHead> signed_audit_head(std::optional<int64_t> at = std::nullopt);
  const crypto::PublicKey& identity() const { return identity_.public_key(); }

 private:
  KeyState(store::StateStorePtr store, crypto::Identity identity, ClockMs clock);
  // Runs `body` as one committed state change (mu_ held); `reads`: what it will select
  // (store::StateStore::write: etcd fetches them with the head, one round trip).
  Status write(const std::function<Status()>& body, const std::vector<store::StateStore::Read>& reads = {});
  Status audit(const store::AuditEvent& event);  // inside write()
  // Runs `work` inside a transaction shared with the work other threads queue meanwhile (group
  // commit: releases are frequent, each needs a durable event, and one fsync serves the batch).
  // Returns once that transaction committed. mu_ must NOT be held.
  Status group_commit(std::function<Status()> work, std::vector<store::StateStore::Read> reads);
  Result<bool> model_exists(const std::string& model_id);
  Result<bool> principal_exists(const std::string& id);
  Result<Release> release_locked(const std::string& model_id, const std::string& user_id,
                                 const std::string& measurement);

  std::mutex mu_;
  store::StateStorePtr store_;  // guarded by mu_ (query_audit, readable, seen* are thread-safe)
  const crypto::Identity identity_;
  const ClockMs clock_;
  uint64_t events_in_write_ = 0;  // guarded by mu_: audit events of the write() running
  std::atomic<uint64_t> audit_events_{0};
  std::mutex probe_mu_;  // held by the one probe reading the store
  struct Readiness {
    bool known = false;  // a probe has read the store
    bool ok = false;
    int64_t at_ms = 0;   // clock_ when it read
  };
  std::mutex readiness_mu_;  // held only to copy or set readiness_
  Readiness readiness_;      // guarded by readiness_mu_

  struct PendingAudit {
    std::function<Status()> work;
    std::vector<store::StateStore::Read> reads;
    Status result;
    bool done = false;
  };
  std::mutex batch_mu_;  // ordered before mu_
  std::condition_variable batch_cv_;
  std::vector<PendingAudit*> batch_;  // guarded by batch_mu_
  bool committing_ = false;           // guarded by batch_mu_
};

}  // namespace moss::keyservice
