// moss-keyservice processes over one real etcd (started on loopback; skipped, with the reason,
// when etcd is not installed), as replicas of a cluster. The second joins the first over mutually
// attested TLS for the state key; what one acknowledges the other serves at once, a revoke on one
// is a refusal on the other, a signed request replayed from one to the other is refused, and after
// kill -9 of one the survivor still has every acknowledged write and the shared audit chain
// verifies (moss-keyservice --verify-audit on the etcd state). After losing every replica, one
// started with --recover and the operator's recovery key serves the state again.
#include "client/identity_files.h"
#include "client/keyservice_client.h"
#include "crypto/random.h"
#include "integration/keyservice_process.h"
#include "support/etcd_process.h"
#include "support/sim_worker_key_client.h"
#include "unit/keyservice/keyservice_fixture.h"

#include <gtest/gtest.h>

#include <chrono>
#include <set>

namespace moss {
namespace {
namespace fs = std::filesystem;
using kstest::reason_of;
using kstest::slurp;

class KeyServiceReplicasTest : public kstest::SimKeyServiceTest {
 protected:
  KeyServiceReplicasTest() : SimKeyServiceTest("moss-ksrep") {}
  void SetUp() override {
    kstest::SimKeyServiceTest::SetUp();
    if (HasFatalFailure()) return;
    etcd_ = test_support::EtcdProcess::start();
    if (!etcd_) {
      if (!test_support::EtcdProcess::binary().empty()) FAIL() << "etcd is installed but did not start";
      GTEST_SKIP() << test_support::EtcdProcess::kMissing;
    }
  }
  // The settings every replica shares: the etcd state, a replica port, the replica policy (the
  // KeyService measurement). Each has its own state directory and sealing key.
  std::vector<std::string> replica_flags() const {
    return {"--store", "etcd", "--etcd-endpoints", etcd_->endpoint(), "--etcd-prefix", "/moss/test/",
            "--replica-listen", "127.0.0.1:0", "--replica-policy", (dir_ / "ks-policy.json").string()};
  }
  // Starts replica `name` with `extra` flags; 0 when it did not start (the log says why).
  uint16_t try_start(kstest::KeyServiceProcess& p, const std::string& name,
                     std::vector<std::string> extra = {}) {
    std::vector<std::string> flags = replica_flags();
    flags.insert(flags.end(), extra.begin(), extra.end());
    return p.start(dir_ / name, sim_key_, dir_ / "worker-policy.json", dir_ / (name + ".log"), flags);
  }
  uint16_t start(kstest::KeyServiceProcess& p, const std::string& name, std::vector<std::string> extra = {}) {
    uint16_t port = try_start(p, name, std::move(extra));
    EXPECT_NE(port, 0) << slurp(dir_ / (name + ".log"));
    return port;
  }
  // --join <replica port of `name`>, read from its log.
  std::vector<std::string> join(const std::string& name) const {
    const std::string text = slurp(dir_ / (name + ".log"));
    const std::string line = "replica port https://127.0.0.1:";
    auto at = text.find(line);
    EXPECT_NE(at, std::string::npos) << text;
    if (at == std::string::npos) return {};
    return {"--join", "https://127.0.0.1:" + std::to_string(std::stoi(text.substr(at + line.size())))};
  }
  // moss-keyservice --verify-audit on the shared state, with the key of replica `name`.
  void expect_state_verifies(const std::string& name) {
    std::string cmd = (kstest::bin_dir() / "moss-keyservice").string() + " --state-dir " +
                      (dir_ / name).string() + " --tee sim --worker-policy " +
                      (dir_ / "worker-policy.json").string();
    for (const std::string& f : replica_flags()) cmd += " '" + f + "'";
    cmd += " --verify-audit > " + (dir_ / "verify.out").string() + " 2>&1";
    EXPECT_EQ(std::system(cmd.c_str()), 0) << slurp(dir_ / "verify.out");
    EXPECT_NE(slurp(dir_ / "verify.out").find("audit log verifies"), std::string::npos);
  }
  client::KeyServiceClient client(uint16_t port, const std::string& who) {
    return client::KeyServiceClient::create(config(port, who)).value_or_die();
  }
  // Sends `request` as given (signed once, by the caller) to the KeyService on `port`.
  net::Response send(uint16_t port, const net::Request& request) {
    return kstest::attested_raw_client(port, ks_m_, sim_key_).request(request).value_or_die();
  }

  std::unique_ptr<test_support::EtcdProcess> etcd_;
};

TEST_F(KeyServiceReplicasTest, ReplicaProcessesShareStateAndSurviveKill9) {
  ASSERT_TRUE(client::create_identity(dir_ / "owner", false).ok());
  ASSERT_TRUE(client::create_identity(dir_ / "user", false).ok());
  kstest::KeyServiceProcess a, b;
  const uint16_t port_a = start(a, "a");
  ASSERT_TRUE(port_a);
  const uint16_t port_b = start(b, "b", join("a"));  // the state key from a, attested both ways
  ASSERT_TRUE(port_b);

  auto owner_a = client(port_a, "owner");
  auto user_b = client(port_b, "user");
  ASSERT_TRUE(owner_a.register_self().ok());
  ASSERT_TRUE(user_b.register_self().ok());  // registered on b, granted on a
  const std::string model = owner_a.principal_id() + "/m";
  const SecretBytes model_key = crypto::random_secret(32).value_or_die();
  ASSERT_TRUE(owner_a.put_model_key(model, model_key.span(), false).ok());
  ASSERT_TRUE(owner_a.add_grant(model, user_b.principal_id(), worker_m_).ok());
  ASSERT_TRUE(user_b.put_request_key(model, worker_m_, crypto::random_secret(32).value_or_die().span()).ok());

  auto w = kstest::TestWorker::create(sim_key_, "worker", ks_m_, port_b).value_or_die();
  auto res = w.release(model, user_b.principal_id()).value_or_die();
  ASSERT_EQ(res.status, 200) << res.body;
  EXPECT_EQ(nlohmann::json::parse(res.body)["model_keys"][0]["key"], base64_encode(model_key.span()));
  ASSERT_TRUE(owner_a.revoke_grant(model, user_b.principal_id(), worker_m_).ok());
  res = w.release(model, user_b.principal_id()).value_or_die();
  EXPECT_EQ(res.status, 403);
  EXPECT_EQ(reason_of(res), "no-grant");

  // A signed request a accepted is a replay at b.
  auto id = crypto::Identity::generate().value_or_die();
  const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch()).count();
  auto signed_request = client::sign_request(
      id, "POST", "/v1/principals",
      nlohmann::json({{"public_key", base64_encode(id.public_key().raw())}}).dump(), now).value_or_die();
  EXPECT_EQ(send(port_a, signed_request).status, 201);
  auto replay = send(port_b, signed_request);
  EXPECT_EQ(replay.status, 401);
  EXPECT_EQ(reason_of(replay), "nonce-replayed");

  // Grants acknowledged by a, then a is killed: b has every one of them.
  std::vector<std::string> acknowledged;
  for (int i = 0; i < 10; ++i) {
    std::string m = std::string(64, "0123456789"[i]);
    if (owner_a.add_grant(model, user_b.principal_id(), m).ok()) acknowledged.push_back(m);
  }
  ASSERT_EQ(acknowledged.size(), 10u);
  a.kill_hard();
  auto owner_b = client(port_b, "owner");
  auto grants = owner_b.list_grants(model).value_or_die();
  std::set<std::string> on_b;
  for (const auto& g : grants["grants"]) on_b.insert(g["measurement"].get<std::string>());
  for (const std::string& m : acknowledged) EXPECT_TRUE(on_b.count(m)) << m;
  ASSERT_TRUE(owner_b.add_grant(model, user_b.principal_id(), worker_m_).ok());  // b still writes
  EXPECT_EQ(w.release(model, user_b.principal_id()).value_or_die().status, 200);
  b.stop();

  // The shared state verifies, rows and audit chain, with the key b holds sealed.
  expect_state_verifies("b");
}

// Clients and workers configured with both replicas' URLs: when the one they talk to is killed,
// the next call goes to the other, with no error seen by the caller.
TEST_F(KeyServiceReplicasTest, ClientsAndWorkersFailOverWhenAReplicaIsKilled) {
  ASSERT_TRUE(client::create_identity(dir_ / "owner", false).ok());
  ASSERT_TRUE(client::create_identity(dir_ / "user", false).ok());
  kstest::KeyServiceProcess a, b;
  const uint16_t port_a = start(a, "a");
  ASSERT_TRUE(port_a);
  const uint16_t port_b = start(b, "b", join("a"));
  ASSERT_TRUE(port_b);
  const std::string both = fmt::format("https://127.0.0.1:{},https://127.0.0.1:{}", port_a, port_b);
  auto config_of = [&](const std::string& who) {
    client::ClientConfig c = config(port_a, who);
    c.keyservice_url = both;
    return c;
  };
  auto owner = client::KeyServiceClient::create(config_of("owner")).value_or_die();
  auto user = client::KeyServiceClient::create(config_of("user")).value_or_die();
  ASSERT_TRUE(owner.register_self().ok());
  ASSERT_TRUE(user.register_self().ok());
  const std::string model = owner.principal_id() + "/m";
  ASSERT_TRUE(owner.put_model_key(model, crypto::random_secret(32).value_or_die().span(), false).ok());
  ASSERT_TRUE(owner.add_grant(model, user.principal_id(), worker_m_).ok());
  ASSERT_TRUE(user.put_request_key(model, worker_m_, crypto::random_secret(32).value_or_die().span()).ok());

  auto keys = test_support::sim_worker_key_client(sim_key_, "worker", both, dir_ / "ks-policy.json").value_or_die();
  ASSERT_TRUE(keys->release(model, user.principal_id()).ok());

  a.kill_hard();
  // Every call after the kill succeeds: the owner's write, the user's, the worker's release.
  ASSERT_TRUE(owner.add_grant(model, user.principal_id(), std::string(64, 'a')).ok());
  auto grants = owner.list_grants(model).value_or_die();
  EXPECT_EQ(grants["grants"].size(), 2u) << grants.dump();
  auto released = keys->release(model, user.principal_id());
  ASSERT_TRUE(released.ok()) << released.status().to_string();
  ASSERT_TRUE(owner.revoke_grant(model, user.principal_id(), worker_m_).ok());
  released = keys->release(model, user.principal_id());
  ASSERT_FALSE(released.ok());  // a refusal from b, not a failover
  EXPECT_NE(released.status().message().find("no-grant"), std::string::npos) << released.status().to_string();
}

// Every replica lost, state directories and all: a new replica with no key and no replica to join
// is refused, and one started with --recover and the operator's recovery private key opens the
// export the first replica sealed at setup and serves the state as it was.
TEST_F(KeyServiceReplicasTest, RecoversFromTheSealedExportAfterLosingEveryReplica) {
  const fs::path moss = kstest::bin_dir() / "moss";
  std::string cmd = moss.string() + " keyservice recovery-key new --out " + (dir_ / "operator").string() +
                    " > " + (dir_ / "rk.out").string() + " 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << slurp(dir_ / "rk.out");
  ASSERT_TRUE(client::create_identity(dir_ / "owner", false).ok());
  ASSERT_TRUE(client::create_identity(dir_ / "user", false).ok());

  kstest::KeyServiceProcess a, b;
  const uint16_t port_a = start(a, "a", {"--recovery-public-key", (dir_ / "operator" / "recovery-public.pem").string()});
  ASSERT_TRUE(port_a);
  ASSERT_TRUE(fs::exists(dir_ / "a" / "recovery.json"));
  const std::string export_copy = slurp(dir_ / "a" / "recovery.json");
  ASSERT_TRUE(start(b, "b", join("a")));
  auto owner = client(port_a, "owner");
  auto user = client(port_a, "user");
  ASSERT_TRUE(owner.register_self().ok());
  ASSERT_TRUE(user.register_self().ok());
  const std::string model = owner.principal_id() + "/m";
  const SecretBytes model_key = crypto::random_secret(32).value_or_die();
  ASSERT_TRUE(owner.put_model_key(model, model_key.span(), false).ok());
  ASSERT_TRUE(owner.add_grant(model, user.principal_id(), worker_m_).ok());
  ASSERT_TRUE(user.put_request_key(model, worker_m_, crypto::random_secret(32).value_or_die().span()).ok());

  // The operator checks the export against the recovery key (nothing secret printed).
  cmd = moss.string() + " keyservice recover --recovery-key " + (dir_ / "operator" / "recovery-private.pem").string() +
        " --export " + (dir_ / "a" / "recovery.json").string() + " > " + (dir_ / "check.out").string() + " 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << slurp(dir_ / "check.out");
  EXPECT_NE(slurp(dir_ / "check.out").find("opens with recovery key"), std::string::npos);

  a.kill_hard();
  b.kill_hard();
  fs::remove_all(dir_ / "a");
  fs::remove_all(dir_ / "b");

  kstest::KeyServiceProcess c;
  EXPECT_EQ(try_start(c, "c"), 0);
  EXPECT_NE(slurp(dir_ / "c.log").find("replica-join-required"), std::string::npos) << slurp(dir_ / "c.log");
  const uint16_t port_c = start(c, "c", {"--recover", (dir_ / "operator" / "recovery-private.pem").string()});
  ASSERT_TRUE(port_c);
  auto owner_c = client(port_c, "owner");
  auto grants = owner_c.list_grants(model).value_or_die();
  ASSERT_EQ(grants["grants"].size(), 1u) << grants.dump();
  auto w = kstest::TestWorker::create(sim_key_, "worker", ks_m_, port_c).value_or_die();
  auto res = w.release(model, user.principal_id()).value_or_die();
  ASSERT_EQ(res.status, 200) << res.body;
  EXPECT_EQ(nlohmann::json::parse(res.body)["model_keys"][0]["key"], base64_encode(model_key.span()));
  c.stop();
  // c kept the recovered key sealed: it restarts without --recover, and the state verifies.
  ASSERT_TRUE(start(c, "c"));
  c.stop();
  expect_state_verifies("c");
  EXPECT_EQ(export_copy.find(base64_encode(model_key.span())), std::string::npos);
}

}  // namespace
}  // namespace moss
