// moss-keyservice against whoever holds its disk: the SQLite file is edited between restarts (a row
// edited, a grant inserted, a row deleted, an owner's public key swapped, the audit log rewritten
// or cut, the whole file put back to an older copy) and each is refused or detected with a named
// reason; a wrong sealing key is named as such; a value that fails to authenticate while running
// is a 500 internal error counted in /metrics, never a client refusal.
#include "client/keyservice_client.h"
#include "client/identity_files.h"
#include "client/seen_state_versions.h"
#include "crypto/random.h"
#include "integration/keyservice_process.h"
#include "support/sim_worker_key_client.h"
#include "unit/keyservice/keyservice_fixture.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

namespace moss {
namespace {
namespace fs = std::filesystem;
using kstest::slurp;

// Runs SQL on the state file with the sqlite3 C API, as the host could.
void edit(const fs::path& db, const std::string& sql) {
  sqlite3* h = nullptr;
  ASSERT_EQ(sqlite3_open(db.c_str(), &h), SQLITE_OK);
  sqlite3_busy_timeout(h, 5000);
  char* err = nullptr;
  int rc = sqlite3_exec(h, sql.c_str(), nullptr, nullptr, &err);
  std::string msg = err ? err : "";
  sqlite3_free(err);
  sqlite3_close(h);
  ASSERT_EQ(rc, SQLITE_OK) << sql << ": " << msg;
}

class KeyServiceTamperTest : public kstest::SimKeyServiceTest {
 protected:
  KeyServiceTamperTest() : SimKeyServiceTest("moss-kstamper") {}
  void SetUp() override {
    kstest::SimKeyServiceTest::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_TRUE(client::create_identity(dir_ / "owner", false).ok());
    ASSERT_TRUE(client::create_identity(dir_ / "user", false).ok());
    // A state with an owner, a user, a model key, a grant and a request key.
    uint16_t port = start();
    ASSERT_NE(port, 0);
    auto owner = client(port, "owner");
    auto user = client(port, "user");
    ASSERT_TRUE(owner.register_self().ok());
    ASSERT_TRUE(user.register_self().ok());
    model_ = owner.principal_id() + "/m";
    user_id_ = user.principal_id();
    ASSERT_TRUE(owner.put_model_key(model_, crypto::random_secret(32).value_or_die().span(), false).ok());
    ASSERT_TRUE(owner.add_grant(model_, user_id_, worker_m_).ok());
    ASSERT_TRUE(user.put_request_key(model_, worker_m_, crypto::random_secret(32).value_or_die().span()).ok());
    ks_.stop();
  }
  void TearDown() override {
    ks_.kill_hard();
    kstest::SimKeyServiceTest::TearDown();
  }

  uint16_t start() {
    return ks_.start(dir_ / "state", sim_key_, dir_ / "worker-policy.json", dir_ / "ks.log");
  }
  // Expects the KeyService to refuse to start, naming `reason`.
  void expect_refuses_to_start(const std::string& reason) {
    EXPECT_EQ(start(), 0) << "started on a tampered state";
    std::string log = slurp(dir_ / "ks.log");
    EXPECT_NE(log.find(reason + ":"), std::string::npos) << log;
  }
  // Expects `moss-keyservice --verify-audit` to fail naming `reason` (or to pass when empty).
  void expect_verify(const std::string& reason) {
    std::string cmd = (kstest::bin_dir() / "moss-keyservice").string() + " --state-dir " +
                      (dir_ / "state").string() + " --tee sim --worker-policy " +
                      (dir_ / "worker-policy.json").string() + " --verify-audit > " +
                      (dir_ / "verify.out").string() + " 2>&1";
    int rc = std::system(cmd.c_str());
    std::string out = slurp(dir_ / "verify.out");
    if (reason.empty()) {
      EXPECT_EQ(rc, 0) << out;
    } else {
      EXPECT_NE(rc, 0) << out;
      EXPECT_NE(out.find(reason + ":"), std::string::npos) << out;
    }
  }
  client::KeyServiceClient client(uint16_t port, const std::string& who) {
    return client::KeyServiceClient::create(config(port, who)).value_or_die();
  }
  fs::path db() const { return dir_ / "state" / "keyservice.db"; }
  std::string url() const { return "https://127.0.0.1:" + std::to_string(ks_.listen_port); }
  // The worker's key client (this process, measured as the worker the policy admits).
  std::unique_ptr<worker::KeyClient> worker_key_client(uint16_t port) {
    return test_support::sim_worker_key_client(sim_key_, "worker", "https://127.0.0.1:" + std::to_string(port),
                                               dir_ / "ks-policy.json")
        .value_or_die();
  }

  std::string model_, user_id_;
  kstest::KeyServiceProcess ks_;
};

TEST_F(KeyServiceTamperTest, UntouchedStateRestartsAndVerifies) {
  expect_verify("");
  ASSERT_NE(start(), 0) << slurp(dir_ / "ks.log");
}

TEST_F(KeyServiceTamperTest, EditedRowIsRefused) {
  edit(db(), "UPDATE grants SET measurement = '" + std::string(64, 'e') + "'");
  expect_refuses_to_start("state-row-altered");
  expect_verify("state-row-altered");
}

TEST_F(KeyServiceTamperTest, SwappedOwnerPublicKeyIsRefused) {
  auto attacker = crypto::Identity::generate().value_or_die();
  edit(db(), "UPDATE principals SET public_key = x'" + hex_encode(attacker.public_key().raw()) +
                 "' WHERE id = '" + model_.substr(0, 32) + "'");
  expect_refuses_to_start("state-row-altered");
}

TEST_F(KeyServiceTamperTest, InsertedGrantIsRefused) {
  // A grant for another measurement, with the MAC of the real grant copied along.
  edit(db(), "INSERT INTO grants SELECT model_id, user_id, '" + std::string(64, 'f') +
                 "', created_ms, row_version, mac FROM grants");
  expect_refuses_to_start("state-row-altered");
}

TEST_F(KeyServiceTamperTest, RevokedGrantPutBackIsRefused) {
  // The authentic grant row is saved, the grant revoked, and the old row put back.
  edit(db(), "CREATE TABLE saved AS SELECT * FROM grants");
  {
    uint16_t port = start();
    ASSERT_NE(port, 0);
    ASSERT_TRUE(client(port, "owner").revoke_grant(model_, user_id_, worker_m_).ok());
    ks_.stop();
  }
  edit(db(), "INSERT INTO grants SELECT * FROM saved; DROP TABLE saved");
  expect_refuses_to_start("state-rows-changed");
}

TEST_F(KeyServiceTamperTest, DeletedRowIsRefused) {
  edit(db(), "DELETE FROM request_keys");
  expect_refuses_to_start("state-rows-changed");
}

TEST_F(KeyServiceTamperTest, RewrittenAuditLogIsDetected) {
  // Blame another user and recompute the chain the old, unkeyed way (SHA-256 as it was): without
  // the audit key nobody can produce valid hashes.
  edit(db(), "UPDATE audit_log SET user_id = 'mallory' WHERE type = 'grant.add'");
  expect_verify("audit-chain-broken");
  expect_refuses_to_start("audit-chain-broken");
}

TEST_F(KeyServiceTamperTest, CutAuditLogIsDetected) {
  edit(db(), "DELETE FROM audit_log WHERE seq = (SELECT MAX(seq) FROM audit_log)");
  expect_verify("audit-head-mismatch");
}

TEST_F(KeyServiceTamperTest, DeletedStateMetaIsRefused) {
  edit(db(), "DELETE FROM state_meta");
  expect_refuses_to_start("state-meta-missing");
}

// The whole file put back to a copy from before a revoke: the KeyService itself cannot tell, but
// every client that saw the newer state refuses the older one, by name.
TEST_F(KeyServiceTamperTest, WholeFileRollbackIsRefusedByClients) {
  fs::copy(dir_ / "state", dir_ / "state-copy", fs::copy_options::recursive);
  {
    uint16_t port = start();
    ASSERT_NE(port, 0);
    auto owner = client(port, "owner");
    ASSERT_TRUE(owner.revoke_grant(model_, user_id_, worker_m_).ok());
    ks_.stop();
  }
  fs::remove_all(dir_ / "state");
  fs::rename(dir_ / "state-copy", dir_ / "state");
  uint16_t port = start();
  ASSERT_NE(port, 0) << slurp(dir_ / "ks.log");
  // The client state is keyed by URL; the restarted KeyService listens on another port here, so
  // carry the owner's memory over to the new URL as a client configured for a fixed address would.
  auto text = slurp(dir_ / "owner" / "keyservice-versions.json");
  auto j = nlohmann::json::parse(text);
  nlohmann::json newest = {{"state_version", 0}};
  for (auto& [url, e] : j.items()) {
    if (e["state_version"].get<int64_t>() > newest["state_version"].get<int64_t>()) newest = e;
  }
  nlohmann::json moved = {{"https://127.0.0.1:" + std::to_string(port), newest}};
  ASSERT_TRUE(write_text_file(dir_ / "owner" / "keyservice-versions.json", moved.dump()).ok());
  auto grants = client(port, "owner").list_grants(model_);
  ASSERT_FALSE(grants.ok()) << "the rolled-back state was trusted: " << grants->dump();
  EXPECT_EQ(grants.status().code(), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(grants.status().message().rfind("keyservice-rollback:", 0), 0u) << grants.status().to_string();
}

// The whole file put back to a copy from before a revoke, then written to until its state version
// passes what every client remembers: the version check alone passes, but the audit log has forked
// from the head the clients remember, which the restored copy cannot prove. The `moss` client (its
// state dir) and the worker's key client (in memory, on the same URL) refuse it by name.
TEST_F(KeyServiceTamperTest, RollbackFollowedByWritesIsRefusedAsForked) {
  ks_.listen_port = start();
  ASSERT_NE(ks_.listen_port, 0) << slurp(dir_ / "ks.log");
  ks_.stop();
  fs::copy(dir_ / "state", dir_ / "state-copy", fs::copy_options::recursive);
  ASSERT_NE(start(), 0) << slurp(dir_ / "ks.log");
  auto worker = worker_key_client(ks_.listen_port);
  ASSERT_TRUE(worker->release(model_, user_id_).ok());  // the worker remembers this head
  {
    auto owner = client(ks_.listen_port, "owner");
    ASSERT_TRUE(owner.revoke_grant(model_, user_id_, worker_m_).ok());  // the owner remembers this
  }
  auto refused = worker->release(model_, user_id_);  // the worker sees the revoke
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), ErrorCode::kPermissionDenied) << refused.status().to_string();
  // What the owner remembers; the worker's later refusal is at least as new.
  const int64_t remembered = client::seen_keyservice_state(dir_ / "owner", url()).value_or_die().version + 2;
  ks_.stop();
  fs::remove_all(dir_ / "state");
  fs::rename(dir_ / "state-copy", dir_ / "state");
  ASSERT_NE(start(), 0) << slurp(dir_ / "ks.log");
  // The host's own writes (registration is open) carry the old copy past the remembered version
  // (read from what each new principal's client saw).
  int64_t version = 0;
  for (int i = 0; version <= remembered + 1 && i < 100; ++i) {
    const std::string host = "host" + std::to_string(i);
    ASSERT_TRUE(client::create_identity(dir_ / host, false).ok());
    ASSERT_TRUE(client(ks_.listen_port, host).register_self().ok());
    version = client::seen_keyservice_state(dir_ / host, url()).value_or_die().version;
  }
  ASSERT_GT(version, remembered);  // the version alone no longer tells
  auto grants = client(ks_.listen_port, "owner").list_grants(model_);
  ASSERT_FALSE(grants.ok()) << "the forked state was trusted: " << grants->dump();
  EXPECT_EQ(grants.status().code(), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(grants.status().message().rfind("keyservice-forked:", 0), 0u) << grants.status().to_string();
  auto keys = worker->release(model_, user_id_);  // the restored copy still holds the grant
  ASSERT_FALSE(keys.ok()) << "keys released from a forked state";
  EXPECT_EQ(keys.status().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(keys.status().message().find("keyservice-forked:"), std::string::npos)
      << keys.status().to_string();
}

// Item 14: another sealing key is named at start; an old-format database is refused clearly.
TEST_F(KeyServiceTamperTest, WrongSealingKeyRefusesToStart) {
  std::vector<uint8_t> other(32, 7);
  ASSERT_TRUE(write_file(dir_ / "state" / "sealing.key", other, 0600).ok());
  expect_refuses_to_start("sealing-key-mismatch");
}

TEST_F(KeyServiceTamperTest, DatabaseFromBeforeAuthenticationIsRefused) {
  fs::remove_all(dir_ / "state");
  fs::create_directories(dir_ / "state");
  edit(db(), "CREATE TABLE principals (id TEXT PRIMARY KEY); PRAGMA user_version = 1;");
  expect_refuses_to_start("state-format-unsupported");
}

// A value altered while the KeyService runs: the release answers 500 "internal" (not a 401/403
// blamed on the client) and /metrics counts an integrity error.
TEST_F(KeyServiceTamperTest, ValueThatFailsToAuthenticateIsAnInternalError) {
  uint16_t port = start();
  ASSERT_NE(port, 0);
  edit(db(), "UPDATE request_keys SET sealed_key = randomblob(length(sealed_key))");
  auto worker = kstest::TestWorker::create(sim_key_, "worker", ks_m_, port);
  ASSERT_TRUE(worker.ok()) << worker.status().to_string();
  auto res = worker->release(model_, user_id_);
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(res->status, 500);
  EXPECT_EQ(kstest::reason_of(*res), "internal");
  net::Client c = kstest::attested_raw_client(port, ks_m_, sim_key_);
  auto metrics = c.get("/metrics");
  ASSERT_TRUE(metrics.ok());
  EXPECT_NE(metrics->body.find("moss_keyservice_integrity_errors_total 1"), std::string::npos)
      << metrics->body;
}

}  // namespace
}  // namespace moss
