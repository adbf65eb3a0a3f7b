#include "worker/worker_config.h"
#include "worker_fixture.h"

#include <nlohmann/json.hpp>

namespace moss::worker {
namespace {

using namespace testing;

EnvLookup env_of(std::map<std::string, std::string> vars) {
  return [vars](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

TEST(WorkerConfigTest, DefaultsAreIncomplete) {
  auto s = load_worker_settings("", {}, env_of({})).value_or_die();
  auto c = worker_config_from(s).value_or_die();
  EXPECT_FALSE(c.complete());
  EXPECT_EQ(c.missing(), "keyservice_url");
  EXPECT_EQ(c.port, 8080);
  EXPECT_EQ(c.key_ttl, std::chrono::seconds(300));
  EXPECT_EQ(c.sim_identity, "moss-worker");
  EXPECT_GT(c.memory_budget_bytes, 0u);
  EXPECT_EQ(c.certificate_lifetime, std::chrono::hours(6));
}

// The attested certificate's lifetime: a duration like keyservice.certificate-lifetime, at least
// 1m, from any layer but /init (it bounds how long the worker's attestation can be replayed).
TEST(WorkerConfigTest, CertificateLifetimeSettingAndBounds) {
  auto s = load_worker_settings("", {{"certificate_lifetime", "90m"}}, env_of({})).value_or_die();
  EXPECT_EQ(worker_config_from(s).value_or_die().certificate_lifetime, std::chrono::minutes(90));
  auto env = load_worker_settings("", {}, env_of({{"MOSS_WORKER_CERTIFICATE_LIFETIME", "1m"}})).value_or_die();
  EXPECT_EQ(worker_config_from(env).value_or_die().certificate_lifetime, std::chrono::minutes(1));
  auto short_one = load_worker_settings("", {{"certificate_lifetime", "59s"}}, env_of({})).value_or_die();
  auto refused = worker_config_from(short_one);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("at least 1m"), std::string::npos) << refused.status().message();
  auto not_duration = load_worker_settings("", {{"certificate_lifetime", "soon"}}, env_of({}));
  EXPECT_FALSE(not_duration.ok() && worker_config_from(*not_duration).ok());
  EXPECT_EQ(apply_init_value(s, nlohmann::json::parse(R"({"certificate_lifetime":"100h"})")).code(),
            ErrorCode::kPermissionDenied);
}

// Environment MOSS_WORKER_* and PORT; MOSS_WORKER_PORT wins over PORT; flags win over both.
TEST(WorkerConfigTest, EnvironmentAndFlags) {
  auto s = load_worker_settings("", {{"max_concurrency", "3"}},
                                env_of({{"MOSS_WORKER_KEYSERVICE_URL", "https://ks:7443"},
                                        {"MOSS_WORKER_KEYSERVICE_POLICY", "/p.json"},
                                        {"MOSS_WORKER_MODEL_STORE", "/models"},
                                        {"MOSS_WORKER_MEMORY_BUDGET_MB", "512"},
                                        {"MOSS_WORKER_MAX_CONCURRENCY", "9"},
                                        {"PORT", "9000"}}))
               .value_or_die();
  auto c = worker_config_from(s).value_or_die();
  EXPECT_TRUE(c.complete());
  EXPECT_EQ(c.keyservice_url, "https://ks:7443");
  EXPECT_EQ(c.memory_budget_bytes, uint64_t{512} << 20);
  EXPECT_EQ(c.max_concurrency, 3u);
  EXPECT_EQ(c.port, 9000);
  auto s2 = load_worker_settings("", {}, env_of({{"PORT", "9000"}, {"MOSS_WORKER_PORT", "9100"}})).value_or_die();
  EXPECT_EQ(worker_config_from(s2).value_or_die().port, 9100);
}

TEST(WorkerConfigTest, FileLayerAndInitValue) {
  TempDir dir;
  auto file = dir.path() / "worker.json";
  write_text_file(file, R"({"model_store":"/m","key_ttl_s":60,"allow_simulated":true})").check();
  auto s = load_worker_settings(file.string(), {}, env_of({})).value_or_die();
  auto c = worker_config_from(s).value_or_die();
  EXPECT_EQ(c.model_store, "/m");
  EXPECT_EQ(c.key_ttl, std::chrono::seconds(60));
  EXPECT_TRUE(c.allow_simulated);

  auto value = nlohmann::json::parse(
      R"({"name":"moss","main":"main","code":"","binary":false,"keyservice_url":"https://k:1",
          "keyservice_policy":{"version":1},"model_store":"/other","max_concurrency":4})");
  ASSERT_TRUE(apply_init_value(s, value).ok());
  c = worker_config_from(s).value_or_die();
  EXPECT_TRUE(c.complete());
  EXPECT_EQ(c.model_store, "/other");
  EXPECT_EQ(c.max_concurrency, 4u);
  EXPECT_EQ(c.keyservice_policy, R"({"version":1})");
}

TEST(WorkerConfigTest, RefusesUnknownAndBadValues) {
  TempDir dir;
  auto file = dir.path() / "worker.json";
  write_text_file(file, R"({"modle_store":"/m"})").check();
  EXPECT_FALSE(load_worker_settings(file.string(), {}, env_of({})).ok());
  auto s = load_worker_settings("", {}, env_of({})).value_or_die();
  EXPECT_FALSE(apply_init_value(s, nlohmann::json::parse(R"({"typo":1})")).ok());
  EXPECT_FALSE(apply_init_value(s, nlohmann::json::parse(R"({"port":1})")).ok());
  // Finding 7: what /init may not set (permission-denied), a file path above all.
  for (const char* v : {R"({"sim_key_file":"/tmp/x/y.key"})", R"({"allow_simulated":true})", R"({"tee":"sim"})",
                        R"({"sim_identity":"x"})", R"({"host":"0.0.0.0"})"}) {
    EXPECT_EQ(apply_init_value(s, nlohmann::json::parse(v)).code(), ErrorCode::kPermissionDenied) << v;
  }
  EXPECT_FALSE(apply_init_value(s, nlohmann::json::parse(R"([1])")).ok());
  auto bad = load_worker_settings("", {{"max_concurrency", "0"}}, env_of({})).value_or_die();
  EXPECT_FALSE(worker_config_from(bad).ok());
  auto tee = load_worker_settings("", {{"tee", "magic"}}, env_of({})).value_or_die();
  EXPECT_FALSE(worker_config_from(tee).ok());
  EXPECT_FALSE(load_worker_settings("", {}, env_of({{"MOSS_WORKER_KEY_TTL_S", "abc"}})).ok() &&
               worker_config_from(load_worker_settings("", {}, env_of({{"MOSS_WORKER_KEY_TTL_S", "abc"}}))
                                      .value_or_die())
                   .ok());
}

}  // namespace
}  // namespace moss::worker
