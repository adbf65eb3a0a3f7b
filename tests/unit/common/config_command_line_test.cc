#include "common/config_command_line.h"

#include "common/file_util.h"
#include "support/config_command_line_run.h"
#include "support/temp_dir.h"

#include <gtest/gtest.h>

namespace moss {
namespace {

using test_support::load_command_line;
using test_support::TempDir;

Config make_scoped() {
  return Config::create({{"svc.port", SettingType::kInt, "1", "port"},
                         {"svc.model-store", SettingType::kString, "", "store"},
                         {"svc.verbose", SettingType::kBool, "false", "log more"},
                         {"svc.doc", SettingType::kString, "", "inline document", false, {}, true}},
                        "svc")
      .value_or_die();
}

// A scope names the file variable and the flags; keys outside it, or the reserved ones, are refused.
TEST(ConfigCommandLineTest, ScopeNamesFlagsAndFileVariable) {
  Config c = make_scoped();
  EXPECT_EQ(c.flag_name("svc.model-store"), "--model-store");
  EXPECT_EQ(c.file_env_name(), "MOSS_SVC_CONFIG");
  EXPECT_EQ(c.key_for("model_store"), "svc.model-store");
  EXPECT_EQ(c.key_for("svc.model-store"), "svc.model-store");
  EXPECT_EQ(c.key_for("nope"), std::nullopt);
  EXPECT_FALSE(Config::create({{"other.port", SettingType::kInt, "1", ""}}, "svc").ok());
  EXPECT_FALSE(Config::create({{"svc.config", SettingType::kString, "", ""}}, "svc").ok());
  EXPECT_FALSE(Config::create({{"svc.print-config", SettingType::kString, "", ""}}, "svc").ok());
  EXPECT_EQ(Config::create({{"a.b", SettingType::kInt, "1", ""}}).value_or_die().file_env_name(), "MOSS_CONFIG");
}

// default < file < env < flag, each layer reached through the command line.
TEST(ConfigCommandLineTest, PrecedenceThroughTheCommandLine) {
  TempDir dir;
  const auto file = dir.path() / "svc.json";
  write_text_file(file, R"({"port": 2, "model_store": "/file", "svc": {"verbose": true}})").check();

  Config d = make_scoped();
  ASSERT_TRUE(load_command_line(d, "").ok());
  EXPECT_EQ(*d.get_int("svc.port"), 1);
  EXPECT_EQ(*d.source_of("svc.port"), "default");

  Config f = make_scoped();
  ASSERT_TRUE(load_command_line(f, "--config " + file.string()).ok());
  EXPECT_EQ(*f.get_int("svc.port"), 2);
  EXPECT_EQ(*f.get_string("svc.model-store"), "/file");
  EXPECT_TRUE(*f.get_bool("svc.verbose"));

  Config e = make_scoped();
  ASSERT_TRUE(load_command_line(e, "", {{"MOSS_SVC_CONFIG", file.string()}, {"MOSS_SVC_PORT", "3"}}).ok());
  EXPECT_EQ(*e.get_int("svc.port"), 3);
  EXPECT_EQ(*e.source_of("svc.port"), "env MOSS_SVC_PORT");
  EXPECT_EQ(*e.get_string("svc.model-store"), "/file");

  Config g = make_scoped();
  ASSERT_TRUE(load_command_line(g, "--port 4 --verbose false --config " + file.string(), {{"MOSS_SVC_PORT", "3"}}).ok());
  EXPECT_EQ(*g.get_int("svc.port"), 4);
  EXPECT_EQ(*g.source_of("svc.port"), "flag --port");
  EXPECT_FALSE(*g.get_bool("svc.verbose"));
}

// A bool flag alone means true; --print-config is reported, not acted on.
TEST(ConfigCommandLineTest, BareBoolFlagAndPrintConfig) {
  Config c = make_scoped();
  ASSERT_TRUE(load_command_line(c, "--verbose").ok());
  EXPECT_TRUE(*c.get_bool("svc.verbose"));
  CLI::App app{"test"};
  Config p = make_scoped();
  ConfigCommandLine command_line(app, p);
  app.parse(std::string("--print-config"), false);
  EXPECT_TRUE(command_line.print_requested());
}

// --config beats MOSS_<SCOPE>_CONFIG, which beats an older variable the binary still reads.
TEST(ConfigCommandLineTest, FileVariableAndLegacyName) {
  TempDir dir;
  write_text_file(dir.path() / "a.json", R"({"port": 10})").check();
  write_text_file(dir.path() / "b.json", R"({"port": 20})").check();
  const std::string a = (dir.path() / "a.json").string(), b = (dir.path() / "b.json").string();
  Config legacy = make_scoped();
  ASSERT_TRUE(load_command_line(legacy, "", {{"OLD_CONFIG", a}}, {"OLD_CONFIG"}).ok());
  EXPECT_EQ(*legacy.get_int("svc.port"), 10);
  Config scoped = make_scoped();
  ASSERT_TRUE(load_command_line(scoped, "", {{"OLD_CONFIG", a}, {"MOSS_SVC_CONFIG", b}}, {"OLD_CONFIG"}).ok());
  EXPECT_EQ(*scoped.get_int("svc.port"), 20);
  Config flag = make_scoped();
  ASSERT_TRUE(load_command_line(flag, "--config " + a, {{"MOSS_SVC_CONFIG", b}}).ok());
  EXPECT_EQ(*flag.get_int("svc.port"), 10);
}

// Unknown keys name the key as written, with a suggestion without the scope; bad types name the
// setting and the layer; the same key written twice (snake and dashed) is refused.
TEST(ConfigCommandLineTest, UnknownKeyBadTypeAndDuplicates) {
  Config u = make_scoped();
  Status s = u.load_json(R"({"modle_store": "/m"})", "file x.json");
  EXPECT_EQ(s.message(), "file x.json: unknown key 'modle_store' (did you mean 'model-store'?)");
  Config scoped = make_scoped();
  s = scoped.load_json(R"({"svc": {"prot": 1}})", "file x.json");
  EXPECT_EQ(s.message(), "file x.json: unknown key 'svc.prot' (did you mean 'svc.port'?)");
  Config t = make_scoped();
  s = load_command_line(t, "--port many");
  EXPECT_EQ(s.message(), "setting svc.port: flag --port: 'many' is not an integer");
  Config twice = make_scoped();
  EXPECT_FALSE(twice.load_json(R"({"model_store": "/a", "model-store": "/b"})", "file x.json").ok());
  Config unknown_flag = make_scoped();
  EXPECT_FALSE(load_command_line(unknown_flag, "--prot 1").ok());
}

// A json_object setting takes an inline object as its text; others refuse one.
TEST(ConfigCommandLineTest, InlineObjectOnlyWhereDeclared) {
  Config c = make_scoped();
  ASSERT_TRUE(c.load_json(R"({"doc": {"version": 1}})", "file x.json").ok());
  EXPECT_EQ(*c.get_string("svc.doc"), R"({"version":1})");
  EXPECT_FALSE(c.load_json(R"({"model_store": {"a": 1}})", "file x.json").ok());
}

}  // namespace
}  // namespace moss
