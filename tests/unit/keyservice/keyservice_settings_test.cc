#include "keyservice/keyservice_settings.h"

#include "common/file_util.h"
#include "support/config_command_line_run.h"
#include "support/temp_dir.h"

#include <gtest/gtest.h>

namespace moss::keyservice {
namespace {

using test_support::TempDir;

Status load(Config& c, const std::string& args, std::map<std::string, std::string> env = {}) {
  return test_support::load_command_line(c, args, std::move(env), {kLegacyConfigFileEnv});
}

// default < file < env < flag for moss-keyservice's table; the file may write keys with or
// without the scope, and is named by --config, MOSS_KEYSERVICE_CONFIG or (older) MOSS_CONFIG.
TEST(KeyServiceSettingsTest, Precedence) {
  TempDir dir;
  const std::string file = (dir.path() / "ks.json").string();
  write_text_file(file, R"({"threads": 2, "keyservice": {"rate-limit": 7}, "keyservice.tee": "sim"})").check();
  auto c = make_keyservice_config().value_or_die();
  ASSERT_TRUE(load(c, "").ok());
  EXPECT_EQ(*c.get_int("keyservice.threads"), 8);
  EXPECT_EQ(*c.get_string("keyservice.listen"), "127.0.0.1:7443");

  for (const auto& env : {std::map<std::string, std::string>{{"MOSS_KEYSERVICE_CONFIG", file}},
                          std::map<std::string, std::string>{{"MOSS_CONFIG", file}}}) {
    auto f = make_keyservice_config().value_or_die();
    ASSERT_TRUE(load(f, "", env).ok());
    EXPECT_EQ(*f.get_int("keyservice.threads"), 2);
    EXPECT_EQ(*f.get_int("keyservice.rate-limit"), 7);
    EXPECT_EQ(*f.get_string("keyservice.tee"), "sim");
  }

  auto e = make_keyservice_config().value_or_die();
  ASSERT_TRUE(load(e, "--config " + file, {{"MOSS_KEYSERVICE_THREADS", "3"}}).ok());
  EXPECT_EQ(*e.get_int("keyservice.threads"), 3);
  EXPECT_EQ(*e.get_int("keyservice.rate-limit"), 7);

  auto g = make_keyservice_config().value_or_die();
  ASSERT_TRUE(load(g, "--config " + file + " --threads 4", {{"MOSS_KEYSERVICE_THREADS", "3"}}).ok());
  EXPECT_EQ(*g.get_int("keyservice.threads"), 4);
  EXPECT_EQ(*g.source_of("keyservice.threads"), "flag --threads");
}

// The command line `moss up` gives it (client/stack_services.cc) still parses, bare bools too.
TEST(KeyServiceSettingsTest, StackCommandLineParses) {
  auto c = make_keyservice_config().value_or_die();
  ASSERT_TRUE(load(c, "--listen 127.0.0.1:7000 --state-dir /s --tee sim --sim --sim-key-file /k "
                      "--sim-identity moss-keyservice --worker-policy /p.json --allow-simulated")
                  .ok());
  EXPECT_TRUE(*c.get_bool("keyservice.sim"));
  EXPECT_TRUE(*c.get_bool("keyservice.allow-simulated"));
  EXPECT_EQ(*c.get_string("keyservice.worker-policy"), "/p.json");
  EXPECT_TRUE(c.validate().ok());
}

TEST(KeyServiceSettingsTest, UnknownKeyBadTypeAndRequired) {
  auto u = make_keyservice_config().value_or_die();
  Status s = u.load_json(R"({"keyservice": {"listn": "0.0.0.0:1"}})", "file ks.json");
  EXPECT_EQ(s.message(), "file ks.json: unknown key 'keyservice.listn' (did you mean 'keyservice.listen'?)");
  auto t = make_keyservice_config().value_or_die();
  s = load(t, "", {{"MOSS_KEYSERVICE_MAX_BODY", "lots"}});
  EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(s.message().find("setting keyservice.max-body: env MOSS_KEYSERVICE_MAX_BODY"), std::string::npos)
      << s.message();
  auto r = make_keyservice_config().value_or_die();
  ASSERT_TRUE(load(r, "--worker-policy /p.json").ok());
  s = r.validate();
  EXPECT_NE(s.message().find("keyservice.state-dir is required"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("--state-dir"), std::string::npos) << s.message();
  // host:port is parsed as a value, and the error names the setting and its source.
  auto l = make_keyservice_config().value_or_die();
  ASSERT_TRUE(load(l, "--state-dir /s --worker-policy /p.json --listen nowhere").ok());
  auto opts = keyservice_options_from(l);
  ASSERT_FALSE(opts.ok());
  EXPECT_EQ(opts.status().message(), "setting keyservice.listen: flag --listen: 'nowhere' is not host:port");
  auto rl = make_keyservice_config().value_or_die();
  ASSERT_TRUE(load(rl, "--state-dir /s --worker-policy /p.json", {{"MOSS_KEYSERVICE_REPLICA_LISTEN", "h:99999"}}).ok());
  EXPECT_EQ(keyservice_options_from(rl).status().message(),
            "setting keyservice.replica-listen: env MOSS_KEYSERVICE_REPLICA_LISTEN: the port in 'h:99999' is not a "
            "number in 0..65535");
  // Ranges likewise.
  TempDir dir;
  const std::string policy = (dir.path() / "p.json").string();
  write_text_file(policy, R"({"version":1})").check();
  auto th = make_keyservice_config().value_or_die();
  ASSERT_TRUE(load(th, "--state-dir /s --worker-policy " + policy + " --threads 0").ok());
  EXPECT_EQ(keyservice_options_from(th).status().message(),
            "setting keyservice.threads: flag --threads: 0 is not in [1, 256]");
}

// keyservice.etcd-timeout: EtcdClientOptions' default, a duration in any layer, and out of its
// bounds an error naming the setting and where the value came from.
TEST(KeyServiceSettingsTest, EtcdTimeoutDefaultLayersAndBounds) {
  TempDir dir;
  const std::string policy = (dir.path() / "p.json").string();
  write_text_file(policy, R"({"version":1})").check();
  const std::string base = "--state-dir /s --worker-policy " + policy;
  auto options = [&](const std::string& args, std::map<std::string, std::string> env = {}) {
    auto c = make_keyservice_config().value_or_die();
    Status loaded = load(c, base + args, std::move(env));
    return loaded.ok() ? keyservice_options_from(c) : Result<KeyServerOptions>(loaded);
  };
  auto d = options("");
  ASSERT_TRUE(d.ok()) << d.status().to_string();
  EXPECT_EQ(d->etcd_timeout, store::EtcdClientOptions{}.timeout);
  EXPECT_EQ(d->etcd_timeout, std::chrono::seconds(5));

  const std::string file = (dir.path() / "ks.json").string();
  write_text_file(file, R"({"keyservice": {"etcd-timeout": "750ms"}})").check();
  EXPECT_EQ(options(" --config " + file).value_or_die().etcd_timeout, std::chrono::milliseconds(750));
  EXPECT_EQ(options("", {{"MOSS_KEYSERVICE_ETCD_TIMEOUT", "2s"}}).value_or_die().etcd_timeout,
            std::chrono::seconds(2));
  EXPECT_EQ(options(" --etcd-timeout 1m").value_or_die().etcd_timeout, std::chrono::minutes(1));
  EXPECT_EQ(options(" --etcd-timeout 100ms").value_or_die().etcd_timeout, std::chrono::milliseconds(100));

  auto low = options("", {{"MOSS_KEYSERVICE_ETCD_TIMEOUT", "99ms"}});
  EXPECT_EQ(low.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(low.status().message(),
            "setting keyservice.etcd-timeout: env MOSS_KEYSERVICE_ETCD_TIMEOUT: 99ms is not in [100ms, 1m]");
  auto high = options(" --etcd-timeout 1m1s");
  EXPECT_EQ(high.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(high.status().message().find("flag --etcd-timeout"), std::string::npos) << high.status().message();
  EXPECT_EQ(options(" --etcd-timeout 0").status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(options(" --etcd-timeout 5").status().code(), ErrorCode::kInvalidArgument);  // no unit
}

}  // namespace
}  // namespace moss::keyservice
