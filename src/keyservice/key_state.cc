#include "keyservice/key_state.h"

#include "common/encoding.h"
#include "keyservice/refusal.h"

#include <chrono>
#include <cstring>

namespace moss::keyservice {

namespace {

const std::string_view kSchemaV1 = R"sql(
CREATE TABLE principals (
  id TEXT PRIMARY KEY,
  public_key BLOB NOT NULL,
  created_ms INTEGER NOT NULL
);
CREATE TABLE model_keys (
  model_id TEXT NOT NULL,
  version INTEGER NOT NULL,
  sealed_key BLOB NOT NULL,
  retired INTEGER NOT NULL DEFAULT 0,
  created_ms INTEGER NOT NULL,
  PRIMARY KEY (model_id, version)
);
CREATE TABLE grants (
  model_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  measurement TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  PRIMARY KEY (model_id, user_id, measurement)
);
CREATE TABLE request_keys (
  user_id TEXT NOT NULL,
  model_id TEXT NOT NULL,
  measurement TEXT NOT NULL,
  version INTEGER NOT NULL,
  sealed_key BLOB NOT NULL,
  created_ms INTEGER NOT NULL,
  PRIMARY KEY (user_id, model_id, measurement)
);
CREATE TABLE nonces (
  principal_id TEXT NOT NULL,
  nonce TEXT NOT NULL,
  time_s INTEGER NOT NULL,
  PRIMARY KEY (principal_id, nonce)
);
CREATE INDEX nonces_time ON nonces(time_s);
)sql";

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

}  // namespace

int64_t system_clock_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Result<std::unique_ptr<KeyState>> KeyState::open(const std::filesystem::path& db_path,
                                                 store::Sealer sealer, ClockMs clock) {
  MOSS_ASSIGN_OR_RETURN(auto db, store::Database::open(db_path));
  std::string v1 = std::string(kSchemaV1) + std::string(store::kAuditLogSchemaSql);
  const store::Migration migrations[] = {{1, v1}};
  MOSS_RETURN_IF_ERROR(db->migrate(migrations));
  return std::unique_ptr<KeyState>(new KeyState(std::move(db), std::move(sealer), std::move(clock)));
}

Status KeyState::audit(const store::AuditEvent& event) {
  MOSS_RETURN_IF_ERROR(store::append_audit_event(*db_, event, clock_()).status());
  audit_events_.fetch_add(1, std::memory_order_relaxed);
  return Status::Ok();
}

uint64_t KeyState::audit_events_written() const { return audit_events_.load(); }

Result<bool> KeyState::model_exists(const std::string& model_id) {
  MOSS_ASSIGN_OR_RETURN(auto st, db_->prepare("SELECT 1 FROM model_keys WHERE model_id = ? LIMIT 1"));
  st.bind(1, model_id);
  return st.step();
}

Result<bool> KeyState::principal_exists(const std::string& id) {
  MOSS_ASSIGN_OR_RETURN(auto st, db_->prepare("SELECT 1 FROM principals WHERE id = ?"));
  st.bind(1, id);
  return st.step();
}

Result<bool> KeyState::register_principal(const std::string& id, std::span<const uint8_t> public_key) {
  std::lock_guard lock(mu_);
  bool created = false;
  MOSS_RETURN_IF_ERROR(db_->transaction([&]() -> Status {
    MOSS_ASSIGN_OR_RETURN(auto st, db_->prepare("SELECT public_key FROM principals WHERE id = ?"));
    st.bind(1, id);
    MOSS_ASSIGN_OR_RETURN(bool row, st.step());
    if (row) {
      if (st.column_blob(0) != std::vector<uint8_t>(public_key.begin(), public_key.end())) {
        return refuse(ErrorCode::kAlreadyExists, "principal-exists",
                      "principal registered with another key");
      }
      return Status::Ok();
    }
    MOSS_ASSIGN_OR_RETURN(auto ins, db_->prepare(
        "INSERT INTO principals (id, public_key, created_ms) VALUES (?, ?, ?)"));
    ins.bind(1, id).bind_blob(2, public_key).bind(3, clock_());
    MOSS_RETURN_IF_ERROR(ins.run());
    created = true;
    return audit({"principal.register", id, "", "", "", ""});
  }));
  return created;
}

Result<std::optional<std::array<uint8_t, 32>>> KeyState::principal_key(const std::string& id) {
  std::lock_guard lock(mu_);
  MOSS_ASSIGN_OR_RETURN(auto st, db_->prepare("SELECT public_key FROM principals WHERE id = ?"));
  st.bind(1, id);
  MOSS_ASSIGN_OR_RETURN(bool row, st.step());
  if (!row) return std::optional<std::array<uint8_t, 32>>();
  auto blob = st.column_blob(0);
  if (blob.size() != 32) return data_loss("principal {}: stored key of {} bytes", id, blob.size());
  std::array<uint8_t, 32> key{};
  std::memcpy(key.data(), blob.data(), 32);
  return std::optional<std::array<uint8_t, 32>>(key);
}

Status KeyState::use_nonce(const std::string& principal, const std::string& nonce, int64_t retain_s) {
  std::lock_guard lock(mu_);
  int64_t now_s = clock_() / 1000;
  return db_->transaction([&]() -> Status {
    MOSS_ASSIGN_OR_RETURN(auto st, db_->prepare(
        "INSERT OR IGNORE INTO nonces (principal_id, nonce, time_s) VALUES (?, ?, ?)"));
    st.bind(1, principal).bind(2, nonce).bind(3, now_s);
    MOSS_RETURN_IF_ERROR(st.run());
    if (db_->changes() == 0) {
      return refuse(ErrorCode::kUnauthenticated, "nonce-replayed", "nonce already used");
    }
    // Prune now and then: a nonce older than the retention can no longer pass the time window.
    if (++nonce_inserts_ % 256 == 0) {
      MOSS_ASSIGN_OR_RETURN(auto del, db_->prepare("DELETE FROM nonces WHERE time_s < ?"));
      del.bind(1, now_s - retain_s);
      MOSS_RETURN_IF_ERROR(del.run());
    }
    return Status::Ok();
  });
}

Result<PutKeyResult> KeyState::put_model_key(const std::string& actor, const std::string& model_id,
                                             std::span<const uint8_t> key, bool rotate) {
  std::lock_guard lock(mu_);
  PutKeyResult out;
  MOSS_RETURN_IF_ERROR(db_->transaction([&]() -> Status {
    MOSS_ASSIGN_OR_RETURN(auto st, db_->prepare(
        "SELECT version, sealed_key FROM model_keys WHERE model_id = ? ORDER BY version DESC"));
    st.bind(1, model_id);
    uint32_t latest = 0;
    bool same_key_present = false;
    while (true) {
      MOSS_ASSIGN_OR_RETURN(bool row, st.step());
      if (!row) break;
      auto version = static_cast<uint32_t>(st.column_int(0));
      if (latest == 0) latest = version;
      MOSS_ASSIGN_OR_RETURN(SecretBytes existing,
                            sealer_.open(model_key_aad(model_id, version), st.column_blob(1)));
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
    MOSS_ASSIGN_OR_RETURN(auto sealed, sealer_.seal(model_key_aad(model_id, out.version), key));
    MOSS_ASSIGN_OR_RETURN(auto ins, db_->prepare(
        "INSERT INTO model_keys (model_id, version, sealed_key, created_ms) VALUES (?, ?, ?, ?)"));
    ins.bind(1, model_id).bind(2, out.version).bind_blob(3, sealed).bind(4, clock_());
    MOSS_RETURN_IF_ERROR(ins.run());
    return audit({latest == 0 ? "model.key.set" : "model.key.rotate", actor, model_id, "", "",
                  fmt::format("version={}", out.version)});
  }));
  return out;
}

Status KeyState::retire_model_key(const std::string& actor, const std::string& model_id,
                                  uint32_t version) {
  std::lock_guard lock(mu_);
  return db_->transaction([&]() -> Status {
    MOSS_ASSIGN_OR_RETURN(auto st, db_->prepare(
        "SELECT version, retired FROM model_keys WHERE model_id = ?"));
    st.bind(1, model_id);
    bool found = false;
    bool already = false;
    int live_others = 0;
    while (true) {
      MOSS_ASSIGN_OR_RETURN(bool row, st.step());
      if (!row) break;
      auto v = static_cast<uint32_t>(st.column_int(0));
      bool retired = st.column_int(1) != 0;
      if (v == version) {
        found = true;
        already = retired;
      } else if (!retired) {
        ++live_others;
      }
    }
    if (!found) {
      return refuse(ErrorCode::kNotFound, "unknown-key-version",
                    fmt::format("model {} has no key version {}", model_id, version));
    }
    if (already) return Status::Ok();
    if (live_others == 0) {
      return refuse(ErrorCode::kFailedPrecondition, "last-key-version",
                    "cannot retire the only live key version (rotate first, or delete the model)");
    }
    MOSS_ASSIGN_OR_RETURN(auto up, db_->prepare(
        "UPDATE model_keys SET retired = 1 WHERE model_id = ? AND version = ?"));
    up.bind(1, model_id).bind(2, version);
    MOSS_RETURN_IF_ERROR(up.run());
    return audit({"model.key.retire", actor, model_id, "", "", fmt::format("version={}", version)});
  });
}

Result<std::vector<KeyVersionInfo>> KeyState::list_model_keys(const std::string& model_id) {
  std::lock_guard lock(mu_);
  MOSS_ASSIGN_OR_RETURN(auto st, db_->prepare(
      "SELECT version, retired, created_ms FROM model_keys WHERE model_id = ? ORDER BY version DESC"));
  st.bind(1, model_id);
  std::vector<KeyVersionInfo> out;
  while (true) {
    MOSS_ASSIGN_OR_RETURN(bool row, st.step());
    if (!row) break;
    out.push_back({static_cast<uint32_t>(st.column_int(0)), st.column_int(1) != 0, st.column_int(2)});
  }
  if (out.empty()) return refuse(ErrorCode::kNotFound, "unknown-model", "model " + model_id);
  return out;
}

Status KeyState::delete_model(const std::string& actor, const std::string& model_id) {
  std::lock_guard lock(mu_);
  return db_->transaction([&]() -> Status {
    MOSS_ASSIGN_OR_RETURN(bool exists, model_exists(model_id));
    if (!exists) return refuse(ErrorCode::kNotFound, "unknown-model", "model " + model_id);
    for (const char* sql : {"DELETE FROM model_keys WHERE model_id = ?",
                            "DELETE FROM grants WHERE model_id = ?",
                            "DELETE FROM request_keys WHERE model_id = ?"}) {
      MOSS_ASSIGN_OR_RETURN(auto st, db_->prepare(sql));
      st.bind(1, model_id);
      MOSS_RETURN_IF_ERROR(st.run());
    }
    return audit({"model.delete", actor, model_id, "", "", ""});
  });
}

Result<bool> KeyState::add_grant(const std::string& actor, const std::string& model_id,
                                 const std::string& user_id, const std::string& measurement) {
  std::lock_guard lock(mu_);
  bool created = false;
  MOSS_RETURN_IF_ERROR(db_->transaction([&]() -> Status {
    MOSS_ASSIGN_OR_RETURN(bool model, model_exists(model_id));
    if (!model) return refuse(ErrorCode::kNotFound, "unknown-model", "model " + model_id + " has no key");
    MOSS_ASSIGN_OR_RETURN(bool user, principal_exists(user_id));
    if (!user) return refuse(ErrorCode::kNotFound, "unknown-user", "user " + user_id + " is not registered");
    MOSS_ASSIGN_OR_RETURN(auto st, db_->prepare(
        "INSERT OR IGNORE INTO grants (model_id, user_id, measurement, created_ms) VALUES (?, ?, ?, ?)"));
    st.bind(1, model_id).bind(2, user_id).bind(3, measurement).bind(4, clock_());
    MOSS_RETURN_IF_ERROR(st.run());
    created = db_->changes() > 0;
    if (!created) return Status::Ok();
    return audit({"grant.add", actor, model_id, user_id, measurement, ""});
  }));
  return created;
}

Status KeyState::revoke_grant(const std::string& actor, const std::string& model_id,
                              const std::string& user_id, const std::string& measurement) {
  std::lock_guard lock(mu_);
  return db_->transaction([&]() -> Status {
    MOSS_ASSIGN_OR_RETURN(auto st, db_->prepare(
        "DELETE FROM grants WHERE model_id = ? AND user_id = ? AND measurement = ?"));
    st.bind(1, model_id).bind(2, user_id).bind(3, measurement);
    MOSS_RETURN_IF_ERROR(st.run());
    if (db_->changes() == 0) {
      return refuse(ErrorCode::kNotFound, "unknown-grant", "no such grant");
    }
    return audit({"grant.revoke", actor, model_id, user_id, measurement, ""});
  });
}

Result<std::vector<GrantInfo>> KeyState::list_grants(const std::string& model_id) {
  std::lock_guard lock(mu_);
  MOSS_ASSIGN_OR_RETURN(bool model, model_exists(model_id));
  if (!model) return refuse(ErrorCode::kNotFound, "unknown-model", "model " + model_id);
  MOSS_ASSIGN_OR_RETURN(auto st, db_->prepare(
      "SELECT user_id, measurement, created_ms FROM grants WHERE model_id = ? ORDER BY user_id, measurement"));
  st.bind(1, model_id);
  std::vector<GrantInfo> out;
  while (true) {
    MOSS_ASSIGN_OR_RETURN(bool row, st.step());
    if (!row) break;
    out.push_back({st.column_text(0), st.column_text(1), st.column_int(2)});
  }
  return out;
}

Result<PutKeyResult> KeyState::put_request_key(const std::string& user_id, const std::string& model_id,
                                               const std::string& measurement,
                                               std::span<const uint8_t> key) {
  std::lock_guard lock(mu_);
  PutKeyResult out;
  MOSS_RETURN_IF_ERROR(db_->transaction([&]() -> Status {
    MOSS_ASSIGN_OR_RETURN(bool model, model_exists(model_id));
    if (!model) return refuse(ErrorCode::kNotFound, "unknown-model", "model " + model_id);
    MOSS_ASSIGN_OR_RETURN(auto st, db_->prepare(
        "SELECT version, sealed_key FROM request_keys WHERE user_id = ? AND model_id = ? AND measurement = ?"));
    st.bind(1, user_id).bind(2, model_id).bind(3, measurement);
    MOSS_ASSIGN_OR_RETURN(bool row, st.step());
    uint32_t previous = row ? static_cast<uint32_t>(st.column_int(0)) : 0;
    if (row) {
      MOSS_ASSIGN_OR_RETURN(SecretBytes existing,
                            sealer_.open(request_key_aad(user_id, model_id, measurement, previous),
                                         st.column_blob(1)));
      if (existing.equals(key)) {  // a retried upload: idempotent
        out.version = previous;
        return Status::Ok();
      }
    }
    out.version = previous + 1;
    out.created = true;
    MOSS_ASSIGN_OR_RETURN(auto sealed, sealer_.seal(request_key_aad(user_id, model_id, measurement,
                                                                    out.version), key));
    MOSS_ASSIGN_OR_RETURN(auto up, db_->prepare(
        "INSERT OR REPLACE INTO request_keys (user_id, model_id, measurement, version, sealed_key, "
        "created_ms) VALUES (?, ?, ?, ?, ?, ?)"));
    up.bind(1, user_id).bind(2, model_id).bind(3, measurement).bind(4, out.version);
    up.bind_blob(5, sealed).bind(6, clock_());
    MOSS_RETURN_IF_ERROR(up.run());
    return audit({previous == 0 ? "request-key.set" : "request-key.rotate", user_id, model_id,
                  user_id, measurement, fmt::format("version={}", out.version)});
  }));
  return out;
}

Status KeyState::delete_request_key(const std::string& user_id, const std::string& model_id,
                                    const std::string& measurement) {
  std::lock_guard lock(mu_);
  return db_->transaction([&]() -> Status {
    MOSS_ASSIGN_OR_RETURN(auto st, db_->prepare(
        "DELETE FROM request_keys WHERE user_id = ? AND model_id = ? AND measurement = ?"));
    st.bind(1, user_id).bind(2, model_id).bind(3, measurement);
    MOSS_RETURN_IF_ERROR(st.run());
    if (db_->changes() == 0) {
      return refuse(ErrorCode::kNotFound, "unknown-request-key", "no such request key");
    }
    return audit({"request-key.delete", user_id, model_id, user_id, measurement, ""});
  });
}

Result<Release> KeyState::release(const std::string& model_id, const std::string& user_id,
                                  const std::string& measurement) {
  std::unique_lock lock(mu_);
  auto result = release_locked(model_id, user_id, measurement);
  lock.unlock();
  const std::string actor = "worker:" + measurement;
  if (result.ok()) {
    std::string versions;
    for (const auto& k : result->model_keys) {
      if (!versions.empty()) versions.push_back(',');
      versions.append(std::to_string(k.version));
    }
    // The keys leave only after the release is durably on record.
    MOSS_RETURN_IF_ERROR(audit_group_commit(
        {"key.release", actor, model_id, user_id, measurement,
         fmt::format("model_versions={} request_version={}", versions, result->request_key.version)}));
    return result;
  }
  // A refusal about an existing model is worth recording: owners see who tried.
  if (result.status().code() == ErrorCode::kPermissionDenied ||
      reason_of(result.status()) == "unknown-user") {
    MOSS_RETURN_IF_ERROR(audit_group_commit({"key.release.denied", actor, model_id, user_id,
                                             measurement, std::string(reason_of(result.status()))}));
  }
  return result;
}

Status KeyState::audit_group_commit(store::AuditEvent event) {
  PendingAudit me{std::move(event), Status::Ok(), false};
  std::unique_lock lk(batch_mu_);
  batch_.push_back(&me);
  while (!me.done) {
    if (committing_) {
      batch_cv_.wait(lk);
      continue;
    }
    // Leader: commit everything queued so far (ours included) in one transaction.
    committing_ = true;
    std::vector<PendingAudit*> mine;
    mine.swap(batch_);
    lk.unlock();
    Status s;
    {
      std::lock_guard db_lock(mu_);
      s = db_->transaction([&]() -> Status {
        for (PendingAudit* p : mine) MOSS_RETURN_IF_ERROR(audit(p->event));
        return Status::Ok();
      });
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
  MOSS_ASSIGN_OR_RETURN(auto g, db_->prepare(
      "SELECT 1 FROM grants WHERE model_id = ? AND user_id = ? AND measurement = ?"));
  g.bind(1, model_id).bind(2, user_id).bind(3, measurement);
  MOSS_ASSIGN_OR_RETURN(bool granted, g.step());
  if (!granted) {
    return refuse(ErrorCode::kPermissionDenied, "no-grant",
                  "the owner has not granted this user access to this model for this measurement");
  }
  MOSS_ASSIGN_OR_RETURN(auto r, db_->prepare(
      "SELECT version, sealed_key FROM request_keys WHERE user_id = ? AND model_id = ? AND measurement = ?"));
  r.bind(1, user_id).bind(2, model_id).bind(3, measurement);
  MOSS_ASSIGN_OR_RETURN(bool has_request_key, r.step());
  if (!has_request_key) {
    return refuse(ErrorCode::kPermissionDenied, "no-request-key",
                  "the user has no request key for this model and measurement");
  }
  Release out;
  out.request_key.version = static_cast<uint32_t>(r.column_int(0));
  MOSS_ASSIGN_OR_RETURN(out.request_key.key,
                        sealer_.open(request_key_aad(user_id, model_id, measurement,
                                                     out.request_key.version),
                                     r.column_blob(1)));
  MOSS_ASSIGN_OR_RETURN(auto k, db_->prepare(
      "SELECT version, sealed_key FROM model_keys WHERE model_id = ? AND retired = 0 ORDER BY version DESC"));
  k.bind(1, model_id);
  while (true) {
    MOSS_ASSIGN_OR_RETURN(bool row, k.step());
    if (!row) break;
    ReleasedKey rk;
    rk.version = static_cast<uint32_t>(k.column_int(0));
    MOSS_ASSIGN_OR_RETURN(rk.key, sealer_.open(model_key_aad(model_id, rk.version), k.column_blob(1)));
    out.model_keys.push_back(std::move(rk));
  }
  return out;
}

Result<std::vector<store::AuditRecord>> KeyState::query_audit(const store::AuditQuery& query) {
  std::lock_guard lock(mu_);
  return store::query_audit(*db_, query);
}

Result<store::AuditHead> KeyState::verify_audit() {
  std::lock_guard lock(mu_);
  return store::verify_audit_chain(*db_);
}

}  // namespace moss::keyservice
