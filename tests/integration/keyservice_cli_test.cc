// The whole KeyService flow through the real `moss` CLI against a real moss-keyservice process
// (simulated TEE, explicitly allowed): register owner and user, upload the model key written by
// `moss model encrypt`, grant, add a request key; an attested worker then receives exactly those
// keys. Also: a client whose policy the KeyService does not meet sends nothing.
#include "client/client_config.h"
#include "client/request_key_file.h"
#include "common/encoding.h"
#include "crypto/model_key_file.h"
#include "integration/keyservice_process.h"
#include "unit/keyservice/keyservice_fixture.h"

#include <gtest/gtest.h>

namespace moss {
namespace {
namespace fs = std::filesystem;
using kstest::slurp;

struct CliRun {
  int code = -1;
  std::string out, err;
};

class KeyServiceCliTest : public kstest::SimKeyServiceTest {
 protected:
  KeyServiceCliTest() : SimKeyServiceTest("moss-kscli") {}
  void SetUp() override {
    kstest::SimKeyServiceTest::SetUp();
    if (HasFatalFailure()) return;
    port_ = ks_.start(dir_ / "state", sim_key_, dir_ / "worker-policy.json", dir_ / "ks.log");
    ASSERT_NE(port_, 0) << slurp(dir_ / "ks.log");
  }
  void TearDown() override {
    ks_.stop();
    kstest::SimKeyServiceTest::TearDown();
  }
  CliRun moss(const std::string& args) {
    fs::path out = dir_ / ".out", err = dir_ / ".err";
    std::string cmd = (kstest::bin_dir() / "moss").string() + " " + args + " >" + out.string() +
                      " 2>" + err.string();
    int rc = std::system(cmd.c_str());
    CliRun r;
    r.code = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
    r.out = slurp(out);
    r.err = slurp(err);
    return r;
  }
  // A principal directory with identity and client config; returns its principal id.
  std::string make_principal(const std::string& name) {
    CliRun r = moss("identity new --out " + (dir_ / name).string());
    EXPECT_EQ(r.code, 0) << r.err;
    kstest::write_client_config(dir_ / name, port_, dir_ / "ks-policy.json", sim_key_);
    std::string id = r.out.substr(0, r.out.find('\n'));
    return id;
  }
  std::string cfg(const std::string& name) { return "--config " + (dir_ / name / "client.json").string(); }

  kstest::KeyServiceProcess ks_;
  uint16_t port_ = 0;
};

TEST_F(KeyServiceCliTest, WholeFlowThroughTheCliReleasesExactlyThoseKeys) {
  std::string owner = make_principal("owner"), user = make_principal("user");
  CliRun r = moss("user register " + cfg("owner"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, owner + "\n");
  EXPECT_NE(r.err.find("SIMULATED"), std::string::npos);
  ASSERT_EQ(moss("user register " + cfg("user")).code, 0);

  std::string model = owner + "/digits";
  ASSERT_TRUE(write_text_file(dir_ / "model.onnx", "not really onnx, only bytes").ok());
  r = moss("model encrypt --in " + (dir_ / "model.onnx").string() + " --out " +
           (dir_ / "model.moss").string() + " --model-id " + model + " --key-out " +
           (dir_ / "owner" / "digits.key").string());
  ASSERT_EQ(r.code, 0) << r.err;
  r = moss("model upload-key " + cfg("owner") + " --key " + (dir_ / "owner" / "digits.key").string());
  ASSERT_EQ(r.code, 0) << r.err;
  r = moss("model grant " + cfg("owner") + " --model digits --user " + user + " --measurement " + worker_m_);
  ASSERT_EQ(r.code, 0) << r.err;
  r = moss("request-key add " + cfg("user") + " --model " + model + " --measurement " + worker_m_);
  ASSERT_EQ(r.code, 0) << r.err;

  auto user_config = client::load_client_config(dir_ / "user" / "client.json").value_or_die();
  auto request_key = client::read_request_key_file(user_config, model).value_or_die();
  auto model_key = crypto::read_model_key_file(dir_ / "owner" / "digits.key").value_or_die();
  EXPECT_EQ(request_key.measurement, worker_m_);

  auto w = kstest::TestWorker::create(sim_key_, "worker", ks_m_, port_).value_or_die();
  auto res = w.release(model, user).value_or_die();
  ASSERT_EQ(res.status, 200) << res.body;
  auto j = nlohmann::json::parse(res.body);
  ASSERT_EQ(j["model_keys"].size(), 1u);
  EXPECT_EQ(j["model_keys"][0]["key"], base64_encode(model_key.key.span()));
  EXPECT_EQ(j["request_key"]["key"], base64_encode(request_key.key.span()));
  EXPECT_EQ(j["request_key"]["version"], request_key.key_version);

  // Audit: the owner sees the release of their model with the worker's measurement.
  r = moss("audit " + cfg("owner") + " --model " + model);
  ASSERT_EQ(r.code, 0) << r.err;
  auto events = nlohmann::json::parse(r.out)["events"];
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back()["type"], "key.release");
  EXPECT_EQ(events.back()["measurement"], worker_m_);

  // Revoke: the next fetch is refused; a user cannot grant on the owner's model.
  r = moss("model revoke " + cfg("owner") + " --model digits --user " + user + " --measurement " + worker_m_);
  ASSERT_EQ(r.code, 0) << r.err;
  res = w.release(model, user).value_or_die();
  EXPECT_EQ(res.status, 403);
  EXPECT_EQ(kstest::reason_of(res), "no-grant");
  r = moss("model grant " + cfg("user") + " --model " + model + " --user " + user + " --measurement " + worker_m_);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("not-owner"), std::string::npos) << r.err;
}

TEST_F(KeyServiceCliTest, ClientWhosePolicyTheKeyServiceDoesNotMeetSendsNothing) {
  make_principal("owner");
  ASSERT_TRUE(write_text_file(dir_ / "strict.json", kstest::sim_policy_json({std::string(64, 'd')})).ok());
  kstest::write_client_config(dir_ / "owner", port_, dir_ / "strict.json", sim_key_);
  CliRun r = moss("user register " + cfg("owner"));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("measurement"), std::string::npos) << r.err;
  kstest::write_client_config(dir_ / "owner", port_, dir_ / "ks-policy.json", sim_key_, false);
  r = moss("user register " + cfg("owner"));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("simulated"), std::string::npos) << r.err;
  EXPECT_EQ(slurp(dir_ / "ks.log").find("register"), std::string::npos);
}

}  // namespace
}  // namespace moss
