// Tests for src/client/client_config.cc and request_key_file.cc (contract C2).
#include "client/client_config.h"
#include "client/request_key_file.h"
#include "common/file_util.h"

#include <gtest/gtest.h>

#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>

namespace moss::client {
namespace {
namespace fs = std::filesystem;

class ClientConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("moss-client-config-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "alice");
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

constexpr char kConfig[] =
    R"({"keyservice_url":"https://127.0.0.1:7443","keyservice_policy":"policy.json",
        "identity":"identity.pem","state_dir":".","allow_simulated":true})";

// Relative paths resolve against the config file's directory, not the working directory.
TEST_F(ClientConfigTest, ResolvesRelativePathsAgainstTheConfigDirectory) {
  fs::path path = dir_ / "alice" / "client.json";
  ASSERT_TRUE(write_text_file(path, kConfig).ok());
  auto c = load_client_config(path);
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->keyservice_url, "https://127.0.0.1:7443");
  EXPECT_EQ(c->keyservice_policy, dir_ / "alice" / "policy.json");
  EXPECT_EQ(c->identity, dir_ / "alice" / "identity.pem");
  EXPECT_EQ(c->state_dir, dir_ / "alice");
  EXPECT_TRUE(c->allow_simulated);
}

// Replicas: keyservice_url as a JSON array or comma-separated, kept as the comma form; every
// entry must be an https URL.
TEST_F(ClientConfigTest, KeyServiceUrlAcceptsAListOfReplicas) {
  const std::string rest = R"(,"keyservice_policy":"p","identity":"i","state_dir":"."})";
  for (const char* urls : {R"(["https://a:1","https://b:2"])", R"("https://a:1, https://b:2")"}) {
    auto c = parse_client_config(std::string(R"({"keyservice_url":)") + urls + rest, dir_ / "c.json");
    ASSERT_TRUE(c.ok()) << urls << ": " << c.status().to_string();
    EXPECT_EQ(c->keyservice_url, "https://a:1,https://b:2");
  }
  for (const char* bad : {R"([])", R"(["https://a:1","http://b:2"])", R"(["https://a:1",3])",
                          R"("https://a:1,,https://b:2")", R"({"u":"https://a:1"})"}) {
    EXPECT_FALSE(parse_client_config(std::string(R"({"keyservice_url":)") + bad + rest, dir_ / "c.json").ok())
        << bad;
  }
}

// Without --config, $MOSS_CLIENT_CONFIG names the file.
TEST_F(ClientConfigTest, FallsBackToTheEnvironment) {
  fs::path path = dir_ / "alice" / "client.json";
  ASSERT_TRUE(write_text_file(path, kConfig).ok());
  ::setenv(kClientConfigEnv, path.c_str(), 1);
  auto c = load_client_config(std::nullopt);
  ::unsetenv(kClientConfigEnv);
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->config_path, path);
}

// A typo, a missing field, a plain-HTTP URL or a wrong type is an error, never a default.
TEST_F(ClientConfigTest, RefusesUnknownKeysMissingFieldsAndPlainHttp) {
  EXPECT_FALSE(parse_client_config(R"({"keyservice_url":"https://a:1","keyservice_policy":"p",
      "identity":"i","state_dir":".","allow_simulate":true})", dir_ / "c.json").ok());
  EXPECT_FALSE(parse_client_config(R"({"keyservice_url":"https://a:1","identity":"i",
      "state_dir":"."})", dir_ / "c.json").ok());
  EXPECT_FALSE(parse_client_config(R"({"keyservice_url":"http://a:1","keyservice_policy":"p",
      "identity":"i","state_dir":"."})", dir_ / "c.json").ok());
  EXPECT_FALSE(parse_client_config(R"({"keyservice_url":"https://a:1","keyservice_policy":"p",
      "identity":"i","state_dir":".","allow_simulated":"yes"})", dir_ / "c.json").ok());
  auto missing = load_client_config(dir_ / "nope.json");
  EXPECT_EQ(missing.status().code(), ErrorCode::kNotFound);
}

// The request key file round-trips, lands at the contract path with mode 0600.
TEST_F(ClientConfigTest, RequestKeyFileRoundTripsWithMode0600) {
  auto c = parse_client_config(kConfig, dir_ / "alice" / "client.json");
  ASSERT_TRUE(c.ok());
  RequestKeyFile f;
  f.model_id = "0123456789abcdef0123456789abcdef/digits";
  f.measurement = "a3e9218298b564b4a50a5167f9d4871f486df4781190192d584671a934f08d00";
  f.key_version = 3;
  f.key = SecretBytes(32);
  for (size_t i = 0; i < 32; ++i) f.key.data()[i] = static_cast<uint8_t>(i * 7);
  ASSERT_TRUE(write_request_key_file(*c, f).ok());
  fs::path expected =
      dir_ / "alice" / "request-keys" / "0123456789abcdef0123456789abcdef__digits.json";
  ASSERT_TRUE(fs::exists(expected));
  struct stat st {};
  ASSERT_EQ(::stat(expected.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto back = read_request_key_file(*c, f.model_id);
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  EXPECT_EQ(back->model_id, f.model_id);
  EXPECT_EQ(back->measurement, f.measurement);
  EXPECT_EQ(back->key_version, 3u);
  EXPECT_TRUE(back->key.equals(f.key.span()));
}

// Reading a model that has no key is not-found; a file edited to name another model is refused.
TEST_F(ClientConfigTest, RequestKeyFileRefusesMissingAndMismatchedFiles) {
  auto c = parse_client_config(kConfig, dir_ / "alice" / "client.json");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(read_request_key_file(*c, "o/m").status().code(), ErrorCode::kNotFound);
  auto path = request_key_file_path(*c, "o/m");
  ASSERT_TRUE(path.ok());
  fs::create_directories(path->parent_path());
  ASSERT_TRUE(write_text_file(*path, R"({"kind":"moss-request-key","version":1,"model_id":"o/x",
      "measurement":"ab","key_version":1,"key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="})",
                              0600).ok());
  EXPECT_EQ(read_request_key_file(*c, "o/m").status().code(), ErrorCode::kInvalidArgument);
  RequestKeyFile bad;
  bad.model_id = "o/m";
  bad.measurement = "ab";
  bad.key_version = 1;
  bad.key = SecretBytes(16);
  EXPECT_FALSE(write_request_key_file(*c, bad).ok());
  EXPECT_FALSE(request_key_file_path(*c, "../etc").ok());
}

}  // namespace
}  // namespace moss::client
