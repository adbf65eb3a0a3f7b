// moss-keyservice under stress: writes acknowledged before a SIGKILL at a random moment are all
// there after restart and the audit chain verifies (several kill/restart rounds); 32 concurrent
// clients doing mixed operations see no error and lose no write.
#include "client/keyservice_client.h"
#include "client/identity_files.h"
#include "crypto/random.h"
#include "integration/keyservice_process.h"
#include "unit/keyservice/keyservice_fixture.h"

#include <gtest/gtest.h>

#include <atomic>
#include <barrier>
#include <mutex>
#include <random>
#include <set>

namespace moss {
namespace {
namespace fs = std::filesystem;
using kstest::slurp;

class KeyServiceDurabilityTest : public kstest::SimKeyServiceTest {
 protected:
  KeyServiceDurabilityTest() : SimKeyServiceTest("moss-ksdur") {}

  uint16_t start(kstest::KeyServiceProcess& p, const std::vector<std::string>& extra = {}) {
    uint16_t port = p.start(dir_ / "state", sim_key_, dir_ / "worker-policy.json", dir_ / "ks.log", extra);
    EXPECT_NE(port, 0) << slurp(dir_ / "ks.log");
    return port;
  }

};

// Grants written in a loop while the KeyService is killed with SIGKILL at random moments: every
// acknowledged grant survives every restart and the audit chain verifies at the end.
TEST_F(KeyServiceDurabilityTest, AcknowledgedWritesSurviveKill9AndTheAuditVerifies) {
  ASSERT_TRUE(client::create_identity(dir_ / "owner", false).ok());
  ASSERT_TRUE(client::create_identity(dir_ / "user", false).ok());
  std::string model, user;
  {
    kstest::KeyServiceProcess ks;
    uint16_t port = start(ks);
    auto owner = client::KeyServiceClient::create(config(port, "owner")).value_or_die();
    auto u = client::KeyServiceClient::create(config(port, "user")).value_or_die();
    ASSERT_TRUE(owner.register_self().ok());
    ASSERT_TRUE(u.register_self().ok());
    model = owner.principal_id() + "/m";
    user = u.principal_id();
    ASSERT_TRUE(owner.put_model_key(model, crypto::random_secret(32).value_or_die().span(), false).ok());
    ks.kill_hard();
  }
  std::set<std::string> acknowledged;
  std::mt19937 rng(12345);
  uint64_t counter = 0;
  for (int round = 0; round < 6; ++round) {
    kstest::KeyServiceProcess ks;
    uint16_t port = start(ks);
    ASSERT_NE(port, 0);
    auto owner = client::KeyServiceClient::create(config(port, "owner")).value_or_die();
    std::mutex mu;
    std::thread writer([&] {
      while (true) {
        char m[65];
        std::snprintf(m, sizeof m, "%064llx", static_cast<unsigned long long>(++counter));
        auto r = owner.add_grant(model, user, m);
        if (!r.ok()) return;  // the server died under us
        std::lock_guard lock(mu);
        acknowledged.insert(m);
      }
    });
    // Kill at a random moment, but only once this round has acknowledged a write: on a loaded
    // machine a fixed sleep can end before the first write, and the test would count too few.
    const size_t before = [&] { std::lock_guard lock(mu); return acknowledged.size(); }();
    std::this_thread::sleep_for(std::chrono::milliseconds(100 + rng() % 300));
    for (int i = 0; i < 300; ++i) {
      {
        std::lock_guard lock(mu);
        if (acknowledged.size() >= before + 3) break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ks.kill_hard();
    writer.join();
  }
  ASSERT_GT(acknowledged.size(), 10u);

  kstest::KeyServiceProcess ks;
  uint16_t port = start(ks);
  auto owner = client::KeyServiceClient::create(config(port, "owner")).value_or_die();
  auto grants = owner.list_grants(model);
  ASSERT_TRUE(grants.ok()) << grants.status().to_string();
  std::set<std::string> present;
  for (const auto& g : (*grants)["grants"]) present.insert(g["measurement"].get<std::string>());
  for (const auto& m : acknowledged) EXPECT_TRUE(present.count(m)) << "lost acknowledged grant " << m;
  ks.stop();

  std::string cmd = (kstest::bin_dir() / "moss-keyservice").string() + " --state-dir " +
                    (dir_ / "state").string() + " --tee sim --worker-policy " +
                    (dir_ / "worker-policy.json").string() + " --verify-audit > " +
                    (dir_ / "verify.out").string() + " 2>&1";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << slurp(dir_ / "verify.out");
  EXPECT_NE(slurp(dir_ / "verify.out").find("audit log verifies"), std::string::npos);
}

// 32 clients at once: each registers, uploads its model key, grants the next client, adds a
// request key for the previous client's model, lists and audits, and an attested worker fetches
// its keys. No request fails and every write is there afterwards.
TEST_F(KeyServiceDurabilityTest, ThirtyTwoConcurrentClientsLoseNothing) {
  kstest::KeyServiceProcess ks;
  uint16_t port = start(ks);
  ASSERT_NE(port, 0);
  constexpr int kClients = 32;
  std::vector<std::string> ids(kClients);
  std::vector<std::string> errors;
  std::mutex mu;
  std::barrier sync(kClients);
  auto fail = [&](const std::string& what) {
    std::lock_guard lock(mu);
    errors.push_back(what);
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      auto c = client::KeyServiceClient::create(config(port, "c"), crypto::Identity::generate().value_or_die());
      if (!c.ok()) return fail(c.status().to_string()), sync.arrive_and_drop();
      auto& ks_client = *c;
      ids[i] = ks_client.principal_id();
      std::string own = ids[i] + "/m";
      if (auto r = ks_client.register_self(); !r.ok()) fail("register " + r.status().to_string());
      if (auto r = ks_client.put_model_key(own, crypto::random_secret(32).value_or_die().span(), false); !r.ok()) {
        fail("put_model_key " + r.status().to_string());
      }
      sync.arrive_and_wait();  // every principal and model exists from here on
      std::string next = ids[(i + 1) % kClients];
      std::string prev_model = ids[(i + kClients - 1) % kClients] + "/m";
      if (auto r = ks_client.add_grant(own, next, worker_m_); !r.ok()) fail("grant " + r.status().to_string());
      if (auto r = ks_client.put_request_key(prev_model, worker_m_, crypto::random_secret(32).value_or_die().span()); !r.ok()) {
        fail("request key " + r.status().to_string());
      }
      if (auto r = ks_client.list_grants(own); !r.ok()) fail("list " + r.status().to_string());
      if (auto r = ks_client.audit("", 0, 100); !r.ok()) fail("audit " + r.status().to_string());
      sync.arrive_and_wait();  // every grant and request key exists from here on
      auto w = kstest::TestWorker::create(sim_key_, "worker", ks_m_, port);
      if (!w.ok()) return fail("worker " + w.status().to_string());
      auto res = w->release(prev_model, ids[i]);
      if (!res.ok() || res->status != 200) fail("release " + (res.ok() ? res->body : res.status().to_string()));
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_TRUE(errors.empty()) << errors.size() << " errors, first: " << errors.front();

  auto checker = client::KeyServiceClient::create(config(port, "c"), crypto::Identity::generate().value_or_die()).value_or_die();
  ASSERT_TRUE(checker.register_self().ok());
  ks.stop();
  std::string cmd = (kstest::bin_dir() / "moss-keyservice").string() + " --state-dir " +
                    (dir_ / "state").string() + " --tee sim --worker-policy " +
                    (dir_ / "worker-policy.json").string() + " --verify-audit > " +
                    (dir_ / "verify.out").string() + " 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << slurp(dir_ / "verify.out");
  // 32 x (register, key set, grant, request key, release) + the checker's registration.
  EXPECT_NE(slurp(dir_ / "verify.out").find("verifies: " + std::to_string(kClients * 5 + 1) + " events"),
            std::string::npos) << slurp(dir_ / "verify.out");
}

}  // namespace
}  // namespace moss
