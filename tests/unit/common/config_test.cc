#include "common/config.h"

#include "common/file_util.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include <unistd.h>

namespace moss {
namespace {

using std::chrono::milliseconds;

std::vector<SettingSpec> worker_specs() {
  return {
      {"worker.port", SettingType::kInt, "8080", "port to listen on", false, {"PORT"}},
      {"worker.key-cache-ttl", SettingType::kDuration, "5m", "key cache lifetime"},
      {"worker.memory-budget", SettingType::kBytes, "2GiB", "model memory budget"},
      {"worker.verbose", SettingType::kBool, "false", "log more"},
      {"keyservice.listen", SettingType::kString, "127.0.0.1:7000", "KeyService address"},
      {"keyservice.admin-token", SettingType::kString, std::nullopt, "admin token", true},
  };
}

Config make_config() { return Config::create(worker_specs()).value_or_die(); }

EnvLookup env_of(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    return it == vars.end() ? std::nullopt : std::optional<std::string>(it->second);
  };
}

// With nothing loaded, each setting has its built-in default, reported as such.
TEST(ConfigTest, DefaultsApplyWhenNothingElseIsSet) {
  Config c = make_config();
  EXPECT_EQ(*c.get_int("worker.port"), 8080);
  EXPECT_EQ(*c.get_duration("worker.key-cache-ttl"), milliseconds(300'000));
  EXPECT_EQ(*c.get_bytes("worker.memory-budget"), uint64_t{2} << 30);
  EXPECT_FALSE(*c.get_bool("worker.verbose"));
  EXPECT_EQ(*c.get_string("keyservice.listen"), "127.0.0.1:7000");
  EXPECT_EQ(*c.source_of("worker.port"), "default");
}

// Flag beats env beats file beats default, whatever order the layers are loaded in.
TEST(ConfigTest, PrecedenceIsDefaultFileEnvFlagInAnyLoadOrder) {
  Config c = make_config();
  ASSERT_TRUE(c.set_flag("worker.port", "3", "--port").ok());
  ASSERT_TRUE(c.load_env(env_of({{"MOSS_WORKER_PORT", "2"}, {"MOSS_KEYSERVICE_LISTEN", "env:1"}})).ok());
  ASSERT_TRUE(c.load_json(R"({"worker": {"port": 1, "verbose": true}, "keyservice.listen": "file:1"})", "file test.json").ok());
  EXPECT_EQ(*c.get_int("worker.port"), 3);
  EXPECT_EQ(*c.source_of("worker.port"), "flag --port");
  EXPECT_EQ(*c.get_string("keyservice.listen"), "env:1");
  EXPECT_EQ(*c.source_of("keyservice.listen"), "env MOSS_KEYSERVICE_LISTEN");
  EXPECT_TRUE(*c.get_bool("worker.verbose"));
  EXPECT_EQ(*c.source_of("worker.verbose"), "file test.json");
}

// Environment names are MOSS_ + upper-case key with '.' and '-' as '_'; aliases rank below.
TEST(ConfigTest, MapsKeysToEnvironmentNamesAndAliases) {
  EXPECT_EQ(config_env_name("keyservice.listen"), "MOSS_KEYSERVICE_LISTEN");
  EXPECT_EQ(config_env_name("worker.key-cache-ttl"), "MOSS_WORKER_KEY_CACHE_TTL");
  EXPECT_EQ(config_flag_name("worker.key-cache-ttl"), "worker-key-cache-ttl");
  Config c = make_config();
  ASSERT_TRUE(c.load_env(env_of({{"MOSS_WORKER_KEY_CACHE_TTL", "90s"}, {"PORT", "9000"}})).ok());
  EXPECT_EQ(*c.get_duration("worker.key-cache-ttl"), milliseconds(90'000));
  EXPECT_EQ(*c.get_int("worker.port"), 9000);
  EXPECT_EQ(*c.source_of("worker.port"), "env PORT");
  Config d = make_config();
  ASSERT_TRUE(d.load_env(env_of({{"MOSS_WORKER_PORT", "1"}, {"PORT", "9000"}})).ok());
  EXPECT_EQ(*d.get_int("worker.port"), 1);
}

// A bad value is refused when loaded, and the error names the key, the source and the value.
TEST(ConfigTest, BadValuesNameTheKeyAndWhereTheyCameFrom) {
  Config c = make_config();
  Status s = c.load_env(env_of({{"MOSS_WORKER_PORT", "abc"}}));
  EXPECT_EQ(s.message(), "setting worker.port: env MOSS_WORKER_PORT: 'abc' is not an integer");
  // The getter reports the same error for the value that was stored.
  EXPECT_EQ(c.get_int("worker.port").status().message(), s.message());
  Status f = make_config().load_json(R"({"worker": {"memory-budget": "2 gigs"}})", "file moss.json");
  EXPECT_NE(f.message().find("setting worker.memory-budget: file moss.json: '2 gigs' is not a size"),
            std::string::npos) << f.message();
  Status g = make_config().set_flag("worker.verbose", "maybe", "--verbose");
  EXPECT_NE(g.message().find("flag --verbose: 'maybe' is not a boolean"), std::string::npos) << g.message();
}

// A misspelt key in a file is an error naming the key and suggesting the closest setting.
TEST(ConfigTest, UnknownFileKeysAreErrorsWithASuggestion) {
  Status s = make_config().load_json(R"({"keyservice": {"listn": "x"}})", "file moss.json");
  EXPECT_EQ(s.message(), "file moss.json: unknown key 'keyservice.listn' (did you mean 'keyservice.listen'?)");
  Status t = make_config().load_json(R"({"frobnicate": 1})", "file moss.json");
  EXPECT_EQ(t.message(), "file moss.json: unknown key 'frobnicate'");
  // A setting written as an object is not a way to sneak in unknown keys either.
  EXPECT_FALSE(make_config().load_json(R"({"worker": {"port": {"x": 1}}})", "f").ok());
}

// The same key twice in a file, in any spelling, is refused rather than resolved silently.
TEST(ConfigTest, DuplicateFileKeysAreErrors) {
  EXPECT_FALSE(make_config().load_json(R"({"worker": {"port": 1}, "worker.port": 2})", "f").ok());
  EXPECT_FALSE(make_config().load_json(R"({"worker.port": 1, "worker.port": 2})", "f").ok());
  EXPECT_FALSE(make_config().load_json(R"({"worker": {"port": 1}, "worker": {"verbose": true}})", "f").ok());
}

// JSON types must fit the setting: no numbers for durations, no objects, arrays, nulls or floats.
TEST(ConfigTest, FileValuesMustHaveASensibleJsonType) {
  EXPECT_TRUE(make_config().load_json(R"({"worker.memory-budget": 1048576, "worker.port": "81"})", "f").ok());
  for (const char* bad : {R"({"worker.key-cache-ttl": 30})", R"({"worker.port": 1.5})", R"({"worker.port": null})",
                          R"({"worker.port": [1]})", R"({"keyservice.listen": 7000})", R"({"worker.verbose": 1})",
                          R"([1])", R"({"worker.port": 1)", R"({"worker.port": 1e99999})"}) {
    EXPECT_FALSE(make_config().load_json(bad, "f").ok()) << bad;
  }
}

// Durations accept ms, s, m, h, d and combinations; anything else is refused.
TEST(ConfigTest, ParsesDurations) {
  EXPECT_EQ(*parse_duration("250ms"), milliseconds(250));
  EXPECT_EQ(*parse_duration("300s"), milliseconds(300'000));
  EXPECT_EQ(*parse_duration("5m"), milliseconds(300'000));
  EXPECT_EQ(*parse_duration("2h"), milliseconds(7'200'000));
  EXPECT_EQ(*parse_duration("1h30m"), milliseconds(5'400'000));
  EXPECT_EQ(*parse_duration("1d"), milliseconds(86'400'000));
  EXPECT_EQ(*parse_duration("0"), milliseconds(0));
  EXPECT_EQ(*parse_duration(" 10s "), milliseconds(10'000));
  for (const char* bad : {"", "5", "5x", "-5s", "1.5s", "s", "5 m", "5sec", "99999999999999999999s", "999999d"}) {
    EXPECT_FALSE(parse_duration(bad).ok()) << bad;
  }
  EXPECT_EQ(format_duration(milliseconds(5'400'250)), "1h30m250ms");
}

// Sizes accept plain bytes, decimal (KB, MB, GB, TB) and binary (KiB .. TiB) units.
TEST(ConfigTest, ParsesByteSizes) {
  EXPECT_EQ(*parse_byte_size("512MiB"), uint64_t{512} << 20);
  EXPECT_EQ(*parse_byte_size("2GiB"), uint64_t{2} << 30);
  EXPECT_EQ(*parse_byte_size("64KiB"), uint64_t{64} << 10);
  EXPECT_EQ(*parse_byte_size("10MB"), 10'000'000u);
  EXPECT_EQ(*parse_byte_size("4096"), 4096u);
  EXPECT_EQ(*parse_byte_size("1 TiB"), uint64_t{1} << 40);
  for (const char* bad : {"", "MiB", "2gib", "2 GB extra", "-1", "1.5GiB", "20000000TiB", "2Gi"}) {
    EXPECT_FALSE(parse_byte_size(bad).ok()) << bad;
  }
}

// Integers and booleans are parsed exactly, with the usual spellings of true and false.
TEST(ConfigTest, ParsesIntegersAndBooleans) {
  EXPECT_EQ(*parse_config_int("-42"), -42);
  EXPECT_FALSE(parse_config_int("42abc").ok());
  EXPECT_FALSE(parse_config_int("99999999999999999999").ok());
  for (const char* t : {"true", "TRUE", "1", "yes", "on"}) EXPECT_TRUE(*parse_config_bool(t)) << t;
  for (const char* f : {"false", "0", "No", "off"}) EXPECT_FALSE(*parse_config_bool(f)) << f;
  EXPECT_FALSE(parse_config_bool("2").ok());
}

// Secrets print as <secret> in the dump, and the dump lists every setting with its source.
TEST(ConfigTest, DumpShowsEverySettingWithSourceAndMasksSecrets) {
  Config c = make_config();
  std::string before = c.dump();
  EXPECT_NE(before.find("<unset, required>"), std::string::npos);
  ASSERT_TRUE(c.load_env(env_of({{"MOSS_KEYSERVICE_ADMIN_TOKEN", "hunter2"}})).ok());
  ASSERT_TRUE(c.load_flags({{"worker.port", "9"}}).ok());
  std::string dump = c.dump();
  EXPECT_EQ(dump.find("hunter2"), std::string::npos);
  EXPECT_NE(dump.find("keyservice.admin-token = <secret>  (env MOSS_KEYSERVICE_ADMIN_TOKEN)"), std::string::npos) << dump;
  EXPECT_NE(dump.find("worker.port            = 9  (flag --worker-port)"), std::string::npos) << dump;
  EXPECT_NE(dump.find("keyservice.listen      = \"127.0.0.1:7000\"  (default)"), std::string::npos) << dump;
  EXPECT_EQ(std::count(dump.begin(), dump.end(), '\n'), 6);
  auto secret = c.get_secret("keyservice.admin-token");
  ASSERT_TRUE(secret.ok());
  EXPECT_EQ(secret->size(), 7u);
}

// An invalid secret value is reported without echoing it.
TEST(ConfigTest, ErrorsNeverEchoSecretValues) {
  auto c = Config::create({{"db.pin", SettingType::kInt, "0", "pin", true}}).value_or_die();
  Status s = c.load_env(env_of({{"MOSS_DB_PIN", "s3cr3t"}}));
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.message().find("s3cr3t"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("env MOSS_DB_PIN"), std::string::npos);
}

// A required setting without a value fails its getter and validate(), saying how to set it.
TEST(ConfigTest, RequiredSettingsMustBeSet) {
  Config c = make_config();
  auto r = c.get_string("keyservice.admin-token");
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("MOSS_KEYSERVICE_ADMIN_TOKEN"), std::string::npos);
  EXPECT_FALSE(c.validate().ok());
  ASSERT_TRUE(c.set_flag("keyservice.admin-token", "t", "--token").ok());
  EXPECT_TRUE(c.validate().ok());
}

// Asking for an undeclared key or the wrong type is a programming error, reported as internal.
TEST(ConfigTest, GettersRefuseUndeclaredKeysAndWrongTypes) {
  Config c = make_config();
  EXPECT_EQ(c.get_int("worker.prot").status().code(), ErrorCode::kInternal);
  EXPECT_EQ(c.get_string("worker.port").status().code(), ErrorCode::kInternal);
  EXPECT_FALSE(c.set_flag("nope", "1", "--nope").ok());
}

// Settings tables with ambiguous or invalid declarations are refused at start-up.
TEST(ConfigTest, CreateRejectsBadTables) {
  auto bad = [](std::vector<SettingSpec> specs) { return !Config::create(std::move(specs)).ok(); };
  EXPECT_TRUE(bad({{"worker.key_cache", SettingType::kString, "", ""}}));  // '_' not allowed
  EXPECT_TRUE(bad({{"Worker.port", SettingType::kInt, "1", ""}}));
  EXPECT_TRUE(bad({{"worker..port", SettingType::kInt, "1", ""}}));
  EXPECT_TRUE(bad({{"a.b", SettingType::kInt, "1", ""}, {"a.b", SettingType::kInt, "1", ""}}));
  EXPECT_TRUE(bad({{"a.b", SettingType::kInt, "1", ""}, {"a.b.c", SettingType::kInt, "1", ""}}));
  EXPECT_TRUE(bad({{"a-b.c", SettingType::kInt, "1", ""}, {"a.b-c", SettingType::kInt, "1", ""}}));
  EXPECT_TRUE(bad({{"a.b", SettingType::kDuration, "5", ""}}));  // default without unit
  EXPECT_TRUE(bad({{"a.b", SettingType::kInt, "1", "", false, {"X"}}, {"a.c", SettingType::kInt, "1", "", false, {"X"}}}));
  EXPECT_FALSE(bad(worker_specs()));
}

// A real JSON file on disk loads; a missing file and an oversized one fail clearly.
TEST(ConfigTest, LoadsFilesFromDisk) {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("moss_config_test_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  ASSERT_TRUE(write_text_file(dir / "moss.json", R"({"worker": {"port": 7}})").ok());
  Config c = make_config();
  ASSERT_TRUE(c.load_file(dir / "moss.json").ok());
  EXPECT_EQ(*c.get_int("worker.port"), 7);
  EXPECT_EQ(*c.source_of("worker.port"), "file " + (dir / "moss.json").string());
  EXPECT_FALSE(c.load_file(dir / "missing.json").ok());
  fs::remove_all(dir);
}

}  // namespace
}  // namespace moss
