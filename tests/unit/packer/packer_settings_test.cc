#include "packer/packer_settings.h"

#include "common/file_util.h"
#include "support/config_command_line_run.h"
#include "support/temp_dir.h"

#include <gtest/gtest.h>

namespace moss::packer {
namespace {

using test_support::load_command_line;
using test_support::TempDir;

// default < file < env < flag for moss-packer's table (the file is new: --config or
// MOSS_PACKER_CONFIG), and the options they make.
TEST(PackerSettingsTest, Precedence) {
  TempDir dir;
  const std::string file = (dir.path() / "packer.json").string();
  write_text_file(file, R"({"listen": "127.0.0.1:9001", "threads": 8, "token-file": "/t"})").check();
  auto d = make_packer_config().value_or_die();
  ASSERT_TRUE(load_command_line(d, "--token-file /t").ok());
  auto o = packer_options_from(d).value_or_die();
  EXPECT_EQ(o.server.host, "127.0.0.1");
  EXPECT_EQ(o.server.port, 8088);
  EXPECT_EQ(o.server.worker_threads, 64u);
  EXPECT_EQ(o.server.max_body_bytes, size_t{4} << 20);

  auto f = make_packer_config().value_or_die();
  ASSERT_TRUE(load_command_line(f, "", {{"MOSS_PACKER_CONFIG", file}}).ok());
  o = packer_options_from(f).value_or_die();
  EXPECT_EQ(o.server.port, 9001);
  EXPECT_EQ(o.server.worker_threads, 8u);
  EXPECT_EQ(o.token_file, "/t");

  auto e = make_packer_config().value_or_die();
  ASSERT_TRUE(load_command_line(e, "--config " + file, {{"MOSS_PACKER_THREADS", "16"}, {"MOSS_PACKER_LISTEN", "0.0.0.0:9002"}}).ok());
  o = packer_options_from(e).value_or_die();
  EXPECT_EQ(o.server.worker_threads, 16u);
  EXPECT_EQ(o.server.host, "0.0.0.0");

  auto g = make_packer_config().value_or_die();
  ASSERT_TRUE(load_command_line(g, "--config " + file + " --threads 32 --state-dir /s --max-body-mb 2",
                                {{"MOSS_PACKER_THREADS", "16"}})
                  .ok());
  o = packer_options_from(g).value_or_die();
  EXPECT_EQ(o.server.worker_threads, 32u);
  EXPECT_EQ(o.server.max_body_bytes, size_t{2} << 20);
  EXPECT_EQ(o.pools.state_dir, "/s");
  EXPECT_EQ(*g.source_of("packer.threads"), "flag --threads");
}

TEST(PackerSettingsTest, UnknownKeyBadTypeRangesAndRequired) {
  auto u = make_packer_config().value_or_die();
  Status s = u.load_json(R"({"token_fil": "/t"})", "file p.json");
  EXPECT_EQ(s.message(), "file p.json: unknown key 'token_fil' (did you mean 'token-file'?)");
  auto t = make_packer_config().value_or_die();
  s = load_command_line(t, "--threads lots --token-file /t");
  EXPECT_EQ(s.message(), "setting packer.threads: flag --threads: 'lots' is not an integer");
  auto r = make_packer_config().value_or_die();
  ASSERT_TRUE(load_command_line(r, "--threads 2 --token-file /t").ok());
  auto range = packer_options_from(r);
  ASSERT_FALSE(range.ok());
  EXPECT_EQ(range.status().message(), "setting packer.threads: flag --threads: 2 is not in [4, 4096]");
  auto tls = make_packer_config().value_or_die();
  ASSERT_TRUE(load_command_line(tls, "--tls-cert /c.pem --token-file /t").ok());
  EXPECT_FALSE(packer_options_from(tls).ok());
  auto listen = make_packer_config().value_or_die();
  ASSERT_TRUE(load_command_line(listen, "--listen 127.0.0.1:http --token-file /t").ok());
  auto bad = packer_options_from(listen);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("listen"), std::string::npos) << bad.status().message();
  auto req = make_packer_config().value_or_die();
  ASSERT_TRUE(load_command_line(req, "").ok());
  s = req.validate();
  EXPECT_NE(s.message().find("--token-file"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace moss::packer
