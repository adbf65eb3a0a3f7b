#include "keyservice/key_state.h"

#include "common/encoding.h"
#include "crypto/signed_request.h"
#include "store/sqlite_state_store.h"

#include <algorithm>
#include <chrono>
#include <cstring>

namespace moss::keyservice {

namespace {

using store::Column;
using store::Row;

// The SQLite store's tables; each carries row_version and mac (store/sqlite_state_store.h). Used
// request nonces are the store's own (StateStore::use_nonce).
const std::string_view kSchema = R"sql(
CREATE TABLE principals (
  id TEXT PRIMARY KEY,
  public_key BLOB NOT NULL,
  created_ms INTEGER NOT NULL,
  row_version INTEGER NOT NULL,
  mac BLOB NOT NULL
);
CREATE TABLE model_keys (
  model_id TEXT NOT NULL,
  version INTEGER NOT NULL,
  sealed_key BLOB NOT NULL,
  retired INTEGER NOT NULL DEFAULT 0,
  created_ms INTEGER NOT NULL,
  row_version INTEGER NOT NULL,
  mac BLOB NOT NULL,
  PRIMARY KEY (model_id, version)
);
CREATE TABLE grants (
  model_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  measurement TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  row_version INTEGER NOT NULL,
  mac BLOB NOT NULL,
  PRIMARY KEY (model_id, user_id, measurement)
);
CREATE TABLE request_keys (
  user_id TEXT NOT NULL,
  model_id TEXT NOT NULL,
  measurement TEXT NOT NULL,
  version INTEGER NOT NULL,
  sealed_key BLOB NOT NULL,
  created_ms INTEGER NOT NULL,
  row_version INTEGER NOT NULL,
  mac BLOB NOT NULL,
  PRIMARY KEY (user_id, model_id, measurement)
);
)sql";

const store::Table kPrincipals{"principals",
                               {{"id", Column::kText}, {"public_key", Column::kBlob},
                                {"created_ms", Column::kInt}},
                               1};
const store::Table kModelKeys{"model_keys",
                              {{"model_id", Column::kText}, {"version", Column::kInt},
                               {"sealed_key", Column::kBlob}, {"retired", Column::kInt},
                               {"created_ms", Column::kInt}},
                              2};
const store::Table kGrants{"grants",
                           {{"model_id", Column::kText}, {"user_id", Column::kText},
                            {"measurement", Column::kText}, {"created_ms", Column::kInt}},
                           3};
const store::Table kRequestKeys{"request_keys",
                                {{"user_id", Column::kText}, {"model_id", Column::kText},
                                 {"measurement", Column::kText}, {"version", Column::kInt},
                                 {"sealed_key", Column::kBlob}, {"created_ms", Column::kInt}},
                                3};
const std::vector<store::Table> kTables = {kPrincipals, kModelKeys, kGrants, kRequestKeys};

std::string model_key_aad(std::string_view model_id, uint32_t version) {
  std::string a = "model-key";
  a.push_back('\0');
  a += model_id;
  a.push_back('\0');
  a += std::to_string(version);
  return a;
}

std::string request_key_aad(std::string_view user, std::string_view model, std::string_view m,
                            uint32_t version) {
  std::string a = "request-key";
  for (std::string_view part : {user, model, m}) {
    a.push_back('\0');
    a += part;
  }
  a.push_back('\0');
  a += std::to_string(version);
  return a;
}

store::Match grant_match(const std::string& model_id, const std::string& user_id,
                         const std::string& measurement) {
  return {{"model_id", model_id}, {"user_id", user_id}, {"measurement", measurement}};
}
store::Match request_key_match(const std::string& user_id, const std::string& model_id,
                               const std::string& measurement) {
  return {{"user_id", user_id}, {"model_id", model_id}, {"measurement", measurement}};
}

std::span<const uint8_t> blob(const std::string& s) { return as_bytes(s); }
std::string to_blob(std::span<const uint8_t> b) { return std::string(as_chars(b)); }
uint32_t to_u32(const std::string& s) { return static_cast<uint32_t>(std::stoul(s)); }
int64_t to_i64(const std::string& s) { return std::stoll(s); }

}  // namespace

int64_t system_clock_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

KeyState::KeyState(store::StateStorePtr store, crypto::Identity identity, ClockMs clock)
    : store_(std::move(store)), identity_(std::move(identity)), clock_(std::move(clock)) {}

std::optional<crypto::KeyServiceState> KeyState::answer_state(uint64_t ticket) const {
  auto seen = store_->seen_since(ticket);
  if (!seen) return std::nullopt;
  return crypto::KeyServiceState{seen->version, seen->audit.seq, seen->audit.hash};
}

Result<store::StateStorePtr> open_sqlite_state(const std::filesystem::path& db_path,
                                               store::Sealer sealer) {
  MOSS_ASSIGN_OR_RETURN(auto store, store::SqliteStateStore::open(db_path, kSchema, kTables,
                                                                  std::move(sealer)));
  return store::StateStorePtr(std::move(store));
}

Result<store::StateStorePtr> open_etcd_state(store::EtcdStoreOptions options, store::Sealer sealer) {
  MOSS_ASSIGN_OR_RETURN(auto store, store::EtcdStateStore::open(std::move(options), kTables,
                                                                std::move(sealer)));
  return store::StateStorePtr(std::move(store));
}

Result<std::unique_ptr<KeyState>> KeyState::open(store::StateStorePtr store, ClockMs clock) {
  MOSS_ASSIGN_OR_RETURN(auto identity, crypto::Identity::from_private_raw(store->identity_seed().span()));
  return std::unique_ptr<KeyState>(new KeyState(std::move(store), std::move(identity), std::move(clock)));
}

Result<std::unique_ptr<KeyState>> KeyState::open(const std::filesystem::path& db_path,
                                                 store::Sealer sealer, ClockMs clock) {
  MOSS_ASSIGN_OR_RETURN(auto store, open_sqlite_state(db_path, std::move(sealer)));
  return open(std::move(store), std::move(clock));
}

Status KeyState::store_readable() {
  auto last = [this] {
    std::lock_guard lock(readiness_mu_);
    return readiness_;
  };
  auto fresh = [this](const Readiness& r) {
    const int64_t now = clock_();  // a clock that went back counts as stale
    return r.known && now >= r.at_ms && now - r.at_ms < kReadinessReuseMs;
  };
  auto answer = [](const Readiness& r) {
    // Fails closed: no result yet counts as not ready.
    return r.known && r.ok ? Status::Ok()
                           : refuse(ErrorCode::kUnavailable, "store-unavailable",
                                    "the state store cannot be read");
  };
  Readiness r = last();
  if (fresh(r)) return answer(r);
  std::unique_lock probe(probe_mu_, std::try_to_lock);
  if (!probe.owns_lock()) return answer(r);  // another probe is reading: the last result
  r = last();
  if (fresh(r)) return answer(r);  // another probe finished in between
  // readable() is thread-safe and waits for no write, so mu_ is not taken.
  r = {true, store_->readable().ok(), 0};
  r.at_ms = clock_();
  {
    std::lock_guard lock(readiness_mu_);
    readiness_ = r;
  }
  return answer(r);
}

Status KeyState::write(const std::function<Status()>& body,
                       const std::vector<store::StateStore::Read>& reads) {
  // The etcd store may run `body` again (another replica committed first): count the events of
  // the run that committed.
  uint64_t events = 0;
  Status s = store_->write([&] {
    events_in_write_ = 0;
    Status b = body();
    events = events_in_write_;
    return b;
  }, reads);
  if (s.ok()) audit_events_.fetch_add(events, std::memory_order_relaxed);
  return s;
}

Status KeyState::audit(const store::AuditEvent& event) {
  MOSS_RETURN_IF_ERROR(store_->audit(event, clock_()));
  ++events_in_write_;
  return Status::Ok();
}

uint64_t KeyState::audit_events_written() const { return audit_events_.load(); }

Result<bool> KeyState::model_exists(const std::string& model_id) {
  MOSS_ASSIGN_OR_RETURN(auto rows, store_->select(kModelKeys, {{"model_id", model_id}}));
  return !rows.empty();
}

Result<bool> KeyState::principal_exists(const std::string& id) {
  MOSS_ASSIGN_OR_RETURN(auto rows, store_->select(kPrincipals, {{"id", id}}));
  return !rows.empty();
}

Result<bool> KeyState::register_principal(const std::string& id, std::span<const uint8_t> public_key) {
  std::lock_guard lock(mu_);
  bool created = false;
  MOSS_RETURN_IF_ERROR(write([&]() -> Status {
    MOSS_ASSIGN_OR_RETURN(auto rows, store_->select(kPrincipals, {{"id", id}}));
    if (!rows.empty()) {
      if (rows[0][1] != to_blob(public_key)) {
        return refuse(ErrorCode::kAlreadyExists, "principal-exists",
                      "principal registered with another key");
      }
      return Status::Ok();
    }
    MOSS_RETURN_IF_ERROR(store_->insert(kPrincipals, {id, to_blob(public_key), std::to_string(clock_())}));
    created = true;
    return audit({"principal.register", id, "", "", "", ""});
  }));
  return created;
}

Result<std::optional<std::array<uint8_t, 32>>> KeyState::principal_key(const std::string& id) {
  std::lock_guard lock(mu_);
  MOSS_ASSIGN_OR_RETURN(auto rows, store_->select(kPrincipals, {{"id", id}}));
  if (rows.empty()) return std::optional<std::array<uint8_t, 32>>();
  const std::string& raw = rows[0][1];
  if (raw.size() != 32) return data_loss("principal {}: stored key of {} bytes", id, raw.size());
  std::array<uint8_t, 32> key{};
  std::memcpy(key.data(), raw.data(), 32);
  return std::optional<std::array<uint8_t, 32>>(key);
}

Status KeyState::use_nonce(const std::string& principal, const std::string& nonce, int64_t retain_s) {
  std::lock_guard lock(mu_);
  Status s = store_->use_nonce(principal, nonce, clock_() / 1000, retain_s);
  if (s.code() == ErrorCode::kAlreadyExists) {
    return refuse(ErrorCode::kUnauthenticated, "nonce-replayed", "nonce already used");
  }
  return s;
}

Result<PutKeyResult> KeyState::put_model_key(const std::string& actor, const std::string& model_id,
                                             std::span<const uint8_t> key, bool rotate) {
  std::lock_guard lock(mu_);
  PutKeyResult out;
  MOSS_RETURN_IF_ERROR(write([&]() -> Status {
    MOSS_ASSIGN_OR_RETURN(auto rows, store_->select(kModelKeys, {{"model_id", model_id}}));
    uint32_t latest = 0;
    bool same_key_present = false;
    for (const Row& r : rows) {
      uint32_t version = to_u32(r[1]);
      latest = std::max(latest, version);
      MOSS_ASSIGN_OR_RETURN(SecretBytes existing,
                            store_->sealer().open(model_key_aad(model_id, version), blob(r[2])));
      if (existing.equals(key)) {
        same_key_present = true;
        out.version = version;
      }
    }
    if (same_key_present) return Status::Ok();  // a retried upload: idempotent
    if (latest > 0 && !rotate) {
      return refuse(ErrorCode::kAlreadyExists, "key-exists",
                    fmt::format("model {} already has a different key (use rotate)", model_id));
    }
    out.version = latest + 1;
    out.created = true;
    MOSS_ASSIGN_OR_RETURN(auto sealed, store_->sealer().seal(model_key_aad(model_id, out.version), key));
    MOSS_RETURN_IF_ERROR(store_->insert(kModelKeys, {model_id, std::to_string(out.version),
                                                     to_blob(sealed), "0", std::to_string(clock_())}));
    return audit({latest == 0 ? "model.key.set" : "model.key.rotate", actor, model_id, "", "",
                  fmt::format("version={}", out.version)});
  }));
  return out;
}

Status KeyState::retire_model_key(const std::string& actor, const std::string& model_id,
                                  uint32_t version) {
  std::lock_guard lock(mu_);
  return write([&]() -> Status {
    MOSS_ASSIGN_OR_RETURN(auto rows, store_->select(kModelKeys, {{"model_id", model_id}}));
    const Row* found = nullptr;
    int live_others = 0;
    for (const Row& r : rows) {
      if (to_u32(r[1]) == version) {
        found = &r;
      } else if (r[3] == "0") {
        ++live_others;
      }
    }
    if (!found) {
      return refuse(ErrorCode::kNotFound, "unknown-key-version",
                    fmt::format("model {} has no key version {}", model_id, version));
    }
    if ((*found)[3] != "0") return Status::Ok();
    if (live_others == 0) {
      return refuse(ErrorCode::kFailedPrecondition, "last-key-version",
                    "cannot retire the only live key version (rotate first, or delete the model)");
    }
    Row retired = *found;
    retired[3] = std::to_string(1);  // (not = "1": GCC 12 -Wrestrict false positive)
    MOSS_RETURN_IF_ERROR(store_->remove(kModelKeys, {{"model_id", model_id},
                                                    {"version", std::to_string(version)}}).status());
    MOSS_RETURN_IF_ERROR(store_->insert(kModelKeys, retired));
    return audit({"model.key.retire", actor, model_id, "", "", fmt::format("version={}", version)});
  });
}

Result<std::vector<KeyVersionInfo>> KeyState::list_model_keys(const std::string& model_id) {
  std::lock_guard lock(mu_);
  MOSS_ASSIGN_OR_RETURN(auto rows, store_->select(kModelKeys, {{"model_id", model_id}}));
  std::reverse(rows.begin(), rows.end());  // newest first
  std::vector<KeyVersionInfo> out;
  for (const Row& r : rows) out.push_back({to_u32(r[1]), r[3] != "0", to_i64(r[4])});
  if (out.empty()) return refuse(ErrorCode::kNotFound, "unknown-model", "model " + model_id);
  return out;
}

Status KeyState::delete_model(const std::string& actor, const std::string& model_id) {
  std::lock_guard lock(mu_);
  return write([&]() -> Status {
    MOSS_ASSIGN_OR_RETURN(bool exists, model_exists(model_id));
    if (!exists) return refuse(ErrorCode::kNotFound, "unknown-model", "model " + model_id);
    for (const store::Table* t : {&kModelKeys, &kGrants, &kRequestKeys}) {
      MOSS_RETURN_IF_ERROR(store_->remove(*t, {{"model_id", model_id}}).status());
    }
    return audit({"model.delete", actor, model_id, "", "", ""});
  });
}

Result<bool> KeyState::add_grant(const std::string& actor, const std::string& model_id,
                                 const std::string& user_id, const std::string& measurement) {
  std::lock_guard lock(mu_);
  bool created = false;
  MOSS_RETURN_IF_ERROR(write([&]() -> Status {
    MOSS_ASSIGN_OR_RETURN(bool model, model_exists(model_id));
    if (!model) return refuse(ErrorCode::kNotFound, "unknown-model", "model " + model_id + " has no key");
    MOSS_ASSIGN_OR_RETURN(bool user, principal_exists(user_id));
    if (!user) return refuse(ErrorCode::kNotFound, "unknown-user", "user " + user_id + " is not registered");
    MOSS_ASSIGN_OR_RETURN(auto rows, store_->select(kGrants, grant_match(model_id, user_id, measurement)));
    if (!rows.empty()) return Status::Ok();
    MOSS_RETURN_IF_ERROR(store_->insert(kGrants, {model_id, user_id, measurement, std::to_string(clock_())}));
    created = true;
    return audit({"grant.add", actor, model_id, user_id, measurement, ""});
  }, {{&kModelKeys, {{"model_id", model_id}}}, {&kPrincipals, {{"id", user_id}}},
      {&kGrants, grant_match(model_id, user_id, measurement)}}));
  return created;
}

Status KeyState::revoke_grant(const std::string& actor, const std::string& model_id,
                              const std::string& user_id, const std::string& measurement) {
  std::lock_guard lock(mu_);
  return write([&]() -> Status {
    MOSS_ASSIGN_OR_RETURN(int64_t n, store_->remove(kGrants, grant_match(model_id, user_id, measurement)));
    if (n == 0) return refuse(ErrorCode::kNotFound, "unknown-grant", "no such grant");
    return audit({"grant.revoke", actor, model_id, user_id, measurement, ""});
  }, {{&kGrants, grant_match(model_id, user_id, measurement)}});
}

Result<std::vector<GrantInfo>> KeyState::list_grants(const std::string& model_id) {
  std::lock_guard lock(mu_);
  MOSS_ASSIGN_OR_RETURN(bool model, model_exists(model_id));
  if (!model) return refuse(ErrorCode::kNotFound, "unknown-model", "model " + model_id);
  MOSS_ASSIGN_OR_RETURN(auto rows, store_->select(kGrants, {{"model_id", model_id}}));
  std::vector<GrantInfo> out;
  for (const Row& r : rows) out.push_back({r[1], r[2], to_i64(r[3])});
  return out;
}

Result<PutKeyResult> KeyState::put_request_key(const std::string& user_id, const std::string& model_id,
                                               const std::string& measurement,
                                               std::span<const uint8_t> key) {
  std::lock_guard lock(mu_);
  PutKeyResult out;
  const store::Match where = request_key_match(user_id, model_id, measurement);
  MOSS_RETURN_IF_ERROR(write([&]() -> Status {
    MOSS_ASSIGN_OR_RETURN(auto rows, store_->select(kRequestKeys, where));
    uint32_t previous = rows.empty() ? 0 : to_u32(rows[0][3]);
    if (!rows.empty()) {
      MOSS_ASSIGN_OR_RETURN(SecretBytes existing,
                            store_->sealer().open(request_key_aad(user_id, model_id, measurement, previous),
                                         blob(rows[0][4])));
      if (existing.equals(key)) {  // a retried upload: idempotent
        out.version = previous;
        return Status::Ok();
      }
      MOSS_RETURN_IF_ERROR(store_->remove(kRequestKeys, where).status());
    }
    out.version = previous + 1;
    out.created = true;
    MOSS_ASSIGN_OR_RETURN(auto sealed, store_->sealer().seal(request_key_aad(user_id, model_id, measurement,
                                                                    out.version), key));
    MOSS_RETURN_IF_ERROR(store_->insert(kRequestKeys, {user_id, model_id, measurement,
                                                       std::to_string(out.version), to_blob(sealed),
                                                       std::to_string(clock_())}));
    return audit({previous == 0 ? "request-key.set" : "request-key.rotate", user_id, model_id,
                  user_id, measurement, fmt::format("version={}", out.version)});
  }));
  return out;
}

Status KeyState::delete_request_key(const std::string& user_id, const std::string& model_id,
                                    const std::string& measurement) {
  std::lock_guard lock(mu_);
  return write([&]() -> Status {
    MOSS_ASSIGN_OR_RETURN(int64_t n, store_->remove(
        kRequestKeys, request_key_match(user_id, model_id, measurement)));
    if (n == 0) return refuse(ErrorCode::kNotFound, "unknown-request-key", "no such request key");
    return audit({"request-key.delete", user_id, model_id, user_id, measurement, ""});
  });
}

Result<Release> KeyState::release(const std::string& model_id, const std::string& user_id,
                                  const std::string& measurement, const std::string& worker_id) {
  // fmt, not operator+: GCC 12 warns falsely (-Wrestrict) on these concatenations.
  const std::string actor = fmt::format("worker:{}", measurement);
  const std::string worker = worker_id.empty() ? std::string() : fmt::format(" worker={}", worker_id);
  Result<Release> result = internal_error("release did not run");
  // The grant is read and the outcome recorded in one transaction: a revoke committed before it
  // is seen, and one committed after it is also after it in the log.
  MOSS_RETURN_IF_ERROR(group_commit([&]() -> Status {
    result = release_locked(model_id, user_id, measurement);
    if (result.ok()) {
      std::string versions;
      for (const auto& k : result->model_keys) {
        if (!versions.empty()) versions.push_back(',');
        versions.append(std::to_string(k.version));
      }
      return audit({"key.release", actor, model_id, user_id, measurement,
                    fmt::format("model_versions={} request_version={}{}", versions,
                                result->request_key.version, worker)});
    }
    const Status& s = result.status();
    if (s.code() == ErrorCode::kDataLoss || s.code() == ErrorCode::kInternal) return Status::Ok();
    // A refusal about an existing model is worth recording: owners see which worker tried. The
    // worker asks on behalf of a request nobody has authenticated yet, so the user is only the one
    // it claims; the event does not name it as its user.
    if (s.code() == ErrorCode::kPermissionDenied || s.reason() == "unknown-user") {
      return audit({"key.release.denied", actor, model_id, "", measurement,
                    fmt::format("reason={} claimed_user={} requester=unauthenticated{}",
                                s.reason(), user_id, worker)});
    }
    return Status::Ok();
  }, {{&kModelKeys, {{"model_id", model_id}}}, {&kPrincipals, {{"id", user_id}}},
      {&kGrants, grant_match(model_id, user_id, measurement)},
      {&kRequestKeys, request_key_match(user_id, model_id, measurement)}}));
  return result;
}

Status KeyState::group_commit(std::function<Status()> work, std::vector<store::StateStore::Read> reads) {
  PendingAudit me{std::move(work), std::move(reads), Status::Ok(), false};
  std::unique_lock lk(batch_mu_);
  batch_.push_back(&me);
  while (!me.done) {
    if (committing_) {
      batch_cv_.wait(lk);
      continue;
    }
    // Leader: run everything queued so far (ours included) in one transaction.
    committing_ = true;
    std::vector<PendingAudit*> mine;
    mine.swap(batch_);
    lk.unlock();
    Status s;
    {
      std::vector<store::StateStore::Read> reads;
      for (PendingAudit* p : mine) reads.insert(reads.end(), p->reads.begin(), p->reads.end());
      std::lock_guard db_lock(mu_);
      s = write([&]() -> Status {
        for (PendingAudit* p : mine) MOSS_RETURN_IF_ERROR(p->work());
        return Status::Ok();
      }, reads);
    }
    lk.lock();
    for (PendingAudit* p : mine) {
      p->result = s;
      p->done = true;
    }
    committing_ = false;
    batch_cv_.notify_all();
  }
  return me.result;
}

Result<Release> KeyState::release_locked(const std::string& model_id, const std::string& user_id,
                                         const std::string& measurement) {
  MOSS_ASSIGN_OR_RETURN(bool model, model_exists(model_id));
  if (!model) return refuse(ErrorCode::kNotFound, "unknown-model", "model " + model_id);
  MOSS_ASSIGN_OR_RETURN(bool user, principal_exists(user_id));
  if (!user) return refuse(ErrorCode::kNotFound, "unknown-user", "user " + user_id);
  MOSS_ASSIGN_OR_RETURN(auto grants, store_->select(kGrants, grant_match(model_id, user_id, measurement)));
  if (grants.empty()) {
    return refuse(ErrorCode::kPermissionDenied, "no-grant",
                  "the owner has not granted this user access to this model for this measurement");
  }
  MOSS_ASSIGN_OR_RETURN(auto rk, store_->select(
      kRequestKeys, request_key_match(user_id, model_id, measurement)));
  if (rk.empty()) {
    return refuse(ErrorCode::kPermissionDenied, "no-request-key",
                  "the user has no request key for this model and measurement");
  }
  Release out;
  out.request_key.version = to_u32(rk[0][3]);
  MOSS_ASSIGN_OR_RETURN(out.request_key.key,
                        store_->sealer().open(request_key_aad(user_id, model_id, measurement,
                                                     out.request_key.version),
                                     blob(rk[0][4])));
  MOSS_ASSIGN_OR_RETURN(auto keys, store_->select(
      kModelKeys, {{"model_id", model_id}, {"retired", "0"}}));
  std::reverse(keys.begin(), keys.end());  // newest first
  for (const Row& r : keys) {
    ReleasedKey k;
    k.version = to_u32(r[1]);
    MOSS_ASSIGN_OR_RETURN(k.key, store_->sealer().open(model_key_aad(model_id, k.version), blob(r[2])));
    out.model_keys.push_back(std::move(k));
  }
  return out;
}

Result<std::vector<store::AuditRecord>> KeyState::query_audit(const store::AuditQuery& query) {
  // Not under mu_: the store answers audit queries without waiting for (or holding up) writes.
  return store_->query_audit(query);
}

Result<store::AuditHead> KeyState::verify_audit() {
  std::lock_guard lock(mu_);
  MOSS_RETURN_IF_ERROR(store_->verify_all());
  MOSS_ASSIGN_OR_RETURN(store::StateHeadView head, store_->head());
  return head.audit;
}

Result<KeyState::SignedHead> KeyState::signed_audit_head(std::optional<int64_t> at) {
  SignedHead out;
  store::StateHeadView now;
  {
    // On etcd: what every replica committed until now (a linearizable read), so the proof is at
    // least as new as any answer a client judged before asking. Under mu_: the store's head is
    // only consistent between writes.
    std::lock_guard lock(mu_);
    MOSS_ASSIGN_OR_RETURN(now, store_->head());
  }
  out.head = now.audit;
  out.state_version = now.version;
  std::string hash_hex = hex_encode(out.head.hash);
  if (!at) {
    out.message = crypto::audit_head_signing_message(out.head.seq, hash_hex, out.state_version);
  } else {
    if (*at < 0 || *at > out.head.seq) {
      return refuse(ErrorCode::kInvalidArgument, "audit-seq-unknown",
                    fmt::format("audit sequence {} is not in the log (head {})", *at, out.head.seq));
    }
    out.at = *at;
    // Through the store's audit reads: walking from an old sequence never holds the mutex writes
    // take.
    MOSS_ASSIGN_OR_RETURN(out.at_hash, store::audit_chain_value_at(
                                           [this](int64_t after, int64_t limit) {
                                             return store_->audit_records(after, limit);
                                           },
                                           *at, out.head));
    out.message = crypto::audit_proof_signing_message(out.head.seq, hash_hex, out.state_version,
                                                      *at, hex_encode(out.at_hash));
  }
  MOSS_ASSIGN_OR_RETURN(out.signature, identity_.sign(as_bytes(out.message)));
  return out;
}

}  // namespace moss::keyservice
