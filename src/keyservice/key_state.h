// KeyState: everything the KeyService remembers, in one SQLite database: principals, model key
// versions, grants, request keys (key material sealed), used request nonces, and the audit log.
//
// Every change commits in one transaction together with its audit event, so the log and the state
// never disagree; a call returns only after its commit is durable (store/database.h).
// Authorisation (who may call what) is the caller's job: KeyState enforces the data rules (a grant
// needs a model and a registered user; release needs a grant and a request key).
// Thread-safe: one mutex serialises the connection.
#pragma once

#include "common/secret_bytes.h"
#include "common/status.h"
#include "store/audit_log.h"
#include "store/database.h"
#include "store/sealer.h"

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

class KeyState {
 public:
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

  // Request keys: version 1 on first set, +1 on each later set (rotation).
  Result<PutKeyResult> put_request_key(const std::string& user_id, const std::string& model_id,
                                       const std::string& measurement, std::span<const uint8_t> key);
  Status delete_request_key(const std::string& user_id, const std::string& model_id,
                            const std::string& measurement);

  // The access rule (design: KeyService). Every outcome for a known model is audited.
  Result<Release> release(const std::string& model_id, const std::string& user_id,
                          const std::string& measurement);

  Result<std::vector<store::AuditRecord>> query_audit(const store::AuditQuery& query);
  Result<store::AuditHead> verify_audit();
  uint64_t audit_events_written() const;

 private:
  KeyState(store::DatabasePtr db, store::Sealer sealer, ClockMs clock)
      : db_(std::move(db)), sealer_(std::move(sealer)), clock_(std::move(clock)) {}
  Status audit(const store::AuditEvent& event);  // inside a transaction, mu_ held
  // Commits `event` in its own transaction, sharing one commit (one fsync) with the events other
  // threads queue meanwhile (group commit: releases are frequent, each needs a durable event).
  // Returns once the event is durable. mu_ must NOT be held.
  Status audit_group_commit(store::AuditEvent event);
  Result<bool> model_exists(const std::string& model_id);
  Result<bool> principal_exists(const std::string& id);
  Result<Release> release_locked(const std::string& model_id, const std::string& user_id,
                                 const std::string& measurement);

  std::mutex mu_;
  store::DatabasePtr db_;  // guarded by mu_
  const store::Sealer sealer_;
  const ClockMs clock_;
  uint64_t nonce_inserts_ = 0;  // guarded by mu_
  std::atomic<uint64_t> audit_events_{0};

  struct PendingAudit {
    store::AuditEvent event;
    Status result;
    bool done = false;
  };
  std::mutex batch_mu_;  // ordered before mu_
  std::condition_variable batch_cv_;
  std::vector<PendingAudit*> batch_;  // guarded by batch_mu_
  bool committing_ = false;           // guarded by batch_mu_
};

}  // namespace moss::keyservice
