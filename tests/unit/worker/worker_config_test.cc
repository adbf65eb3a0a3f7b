#include "worker/worker_config.h"
#include "support/config_command_line_run.h"
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

// default < file < env < flag through moss-worker's command line; the file (--config or
// MOSS_WORKER_CONFIG) writes snake_case names, and /init stays above every layer.
TEST(WorkerConfigTest, CommandLinePrecedence) {
  TempDir dir;
  const std::string file = (dir.path() / "w.json").string();
  write_text_file(file, R"({"max_concurrency": 2, "model_store": "/file", "keyservice_policy": {"version": 1}})").check();
  auto d = make_worker_config().value_or_die();
  ASSERT_TRUE(test_support::load_command_line(d, "").ok());
  EXPECT_EQ(worker_config_from(d).value_or_die().max_concurrency, 8u);

  auto f = make_worker_config().value_or_die();
  ASSERT_TRUE(test_support::load_command_line(f, "", {{"MOSS_WORKER_CONFIG", file}}).ok());
  auto c = worker_config_from(f).value_or_die();
  EXPECT_EQ(c.max_concurrency, 2u);
  EXPECT_EQ(c.model_store, "/file");
  EXPECT_EQ(c.keyservice_policy, R"({"version":1})");

  auto e = make_worker_config().value_or_die();
  ASSERT_TRUE(test_support::load_command_line(e, "--config " + file, {{"MOSS_WORKER_MAX_CONCURRENCY", "3"}}).ok());
  EXPECT_EQ(worker_config_from(e).value_or_die().max_concurrency, 3u);

  auto g = make_worker_config().value_or_die();
  ASSERT_TRUE(test_support::load_command_line(g, "--config " + file + " --max-concurrency 4 --allow-simulated --port 0 --log-level warn",
                                              {{"MOSS_WORKER_MAX_CONCURRENCY", "3"}})
                  .ok());
  c = worker_config_from(g).value_or_die();
  EXPECT_EQ(c.max_concurrency, 4u);
  EXPECT_TRUE(c.allow_simulated);
  EXPECT_EQ(c.port, 0);
  EXPECT_EQ(*g.get_string("worker.log-level"), "warn");
  ASSERT_TRUE(apply_init_value(g, nlohmann::json::parse(R"({"max_concurrency": 5})")).ok());
  EXPECT_EQ(worker_config_from(g).value_or_die().max_concurrency, 5u);
}

TEST(WorkerConfigTest, CommandLineUnknownKeyAndBadType) {
  TempDir dir;
  const std::string file = (dir.path() / "w.json").string();
  write_text_file(file, R"({"max_concurency": 2})").check();
  auto u = make_worker_config().value_or_die();
  Status s = test_support::load_command_line(u, "--config " + file);
  EXPECT_NE(s.message().find("unknown key 'max_concurency' (did you mean 'max-concurrency'?)"), std::string::npos)
      << s.message();
  auto t = make_worker_config().value_or_die();
  s = test_support::load_command_line(t, "", {{"MOSS_WORKER_ALLOW_SIMULATED", "perhaps"}});
  EXPECT_NE(s.message().find("setting worker.allow-simulated: env MOSS_WORKER_ALLOW_SIMULATED"), std::string::npos)
      << s.message();
  // /init speaks only the snake_case names.
  auto i = make_worker_config().value_or_die();
  EXPECT_FALSE(apply_init_value(i, nlohmann::json::parse(R"({"max-concurrency": 5})")).ok());
}

}  // namespace
}  // namespace moss::worker
