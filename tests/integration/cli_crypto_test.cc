// Runs the real `moss` binary (from MOSS_BIN_DIR): identity creation and the model
// encrypt/decrypt round trip, exit codes, one-line errors, and no partial output on failure.
#include "common/file_util.h"
#include "crypto/model_key_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

namespace moss {
namespace {
namespace fs = std::filesystem;

struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

class CliCryptoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* bin = std::getenv("MOSS_BIN_DIR");
    ASSERT_NE(bin, nullptr) << "MOSS_BIN_DIR is not set";
    moss_ = fs::path(bin) / "moss";
    ASSERT_TRUE(fs::exists(moss_)) << moss_;
    std::string tmpl = (fs::temp_directory_path() / "moss-cli-XXXXXX").string();
    dir_ = mkdtemp(tmpl.data());
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  RunResult run(const std::string& args) {
    fs::path out = dir_ / ".stdout", err = dir_ / ".stderr";
    std::string cmd = moss_.string() + " " + args + " >" + out.string() + " 2>" + err.string();
    int rc = std::system(cmd.c_str());
    RunResult r;
    r.exit_code = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
    r.out = slurp(out);
    r.err = slurp(err);
    fs::remove(out);
    fs::remove(err);
    return r;
  }
  static std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  fs::path write_random_file(const std::string& name, size_t size) {
    std::mt19937 rng(static_cast<uint32_t>(size));
    std::string data(size, '\0');
    for (auto& c : data) c = static_cast<char>(rng());
    fs::path p = dir_ / name;
    std::ofstream(p, std::ios::binary) << data;
    return p;
  }
  static unsigned mode_of(const fs::path& p) {
    struct stat st {};
    return stat(p.c_str(), &st) == 0 ? (st.st_mode & 0777) : 0;
  }
  // Files in the directory other than the listed ones (e.g. leftover temporaries).
  size_t file_count() const {
    return static_cast<size_t>(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()));
  }
  static size_t line_count(const std::string& s) {
    return static_cast<size_t>(std::count(s.begin(), s.end(), '\n'));
  }

  fs::path moss_;
  fs::path dir_;
};

TEST_F(CliCryptoTest, IdentityNewWritesKeysAndRefusesToOverwrite) {
  // `identity new` prints a 32-hex principal id, writes a 0600 private key, and refuses a second
  // run into the same directory unless --force.
  RunResult r = run("identity new --out " + (dir_ / "id").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string pid = r.out.substr(0, r.out.find('\n'));
  EXPECT_EQ(pid.size(), 32u);
  EXPECT_EQ(pid.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_EQ(mode_of(dir_ / "id" / "identity.pem"), 0600u);
  EXPECT_TRUE(fs::exists(dir_ / "id" / "identity.pub.pem"));

  RunResult again = run("identity new --out " + (dir_ / "id").string());
  EXPECT_NE(again.exit_code, 0);
  EXPECT_EQ(line_count(again.err), 1u) << again.err;
  EXPECT_NE(again.err.find("already holds an identity"), std::string::npos);

  RunResult forced = run("identity new --force --out " + (dir_ / "id").string());
  ASSERT_EQ(forced.exit_code, 0) << forced.err;
  EXPECT_NE(forced.out.substr(0, 32), pid);
}

TEST_F(CliCryptoTest, ModelEncryptDecryptRoundTrips) {
  // encrypt then decrypt reproduces the file byte for byte; the key file is 0600 and names the
  // model; an existing key file is not replaced.
  fs::path model = write_random_file("model.onnx", 3 * 1024 * 1024 + 123);
  std::string enc = "model encrypt --in " + model.string() + " --out " +
                    (dir_ / "model.moss").string() + " --model-id owner/m1 --key-out " +
                    (dir_ / "m1.key").string() + " --chunk-kib 64";
  RunResult e = run(enc);
  ASSERT_EQ(e.exit_code, 0) << e.err;
  EXPECT_EQ(mode_of(dir_ / "m1.key"), 0600u);
  auto key = crypto::read_model_key_file(dir_ / "m1.key");
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(key->model_id, "owner/m1");

  RunResult d = run("model decrypt --in " + (dir_ / "model.moss").string() + " --key " +
                    (dir_ / "m1.key").string() + " --model-id owner/m1 --out " +
                    (dir_ / "plain.onnx").string());
  ASSERT_EQ(d.exit_code, 0) << d.err;
  EXPECT_EQ(slurp(dir_ / "plain.onnx"), slurp(model));

  RunResult again = run(enc);
  EXPECT_NE(again.exit_code, 0);
  EXPECT_EQ(line_count(again.err), 1u) << again.err;
}

TEST_F(CliCryptoTest, TamperedOrMismatchedInputsFailWithoutLeavingOutput) {
  // A flipped byte, a truncated file, a wrong model id or another key: exit 1, one stderr line,
  // and neither the output nor a temporary file is left behind.
  fs::path model = write_random_file("model.bin", 300 * 1024);
  ASSERT_EQ(run("model encrypt --in " + model.string() + " --out " +
                (dir_ / "m.moss").string() + " --model-id owner/m --key-out " +
                (dir_ / "m.key").string() + " --chunk-kib 64")
                .exit_code,
            0);
  ASSERT_EQ(run("model encrypt --in " + model.string() + " --out " +
                (dir_ / "other.moss").string() + " --model-id owner/m --key-out " +
                (dir_ / "other.key").string())
                .exit_code,
            0);
  std::string file = slurp(dir_ / "m.moss");
  std::string flipped = file;
  flipped[flipped.size() / 2] ^= 0x10;
  std::ofstream(dir_ / "flipped.moss", std::ios::binary) << flipped;
  std::ofstream(dir_ / "cut.moss", std::ios::binary) << file.substr(0, 55 + 2 * (65536 + 16));
  const size_t files_before = file_count();

  struct Case {
    std::string in, key, id, expect;
  } cases[] = {
      {"flipped.moss", "m.key", "owner/m", "failed authentication"},
      {"cut.moss", "m.key", "owner/m", "failed authentication"},
      {"m.moss", "m.key", "owner/other", "is for model"},
      {"m.moss", "other.key", "owner/m", "failed authentication"},
      {"missing.moss", "m.key", "owner/m", "missing.moss"},
  };
  for (const auto& c : cases) {
    RunResult r = run("model decrypt --in " + (dir_ / c.in).string() + " --key " +
                      (dir_ / c.key).string() + " --model-id " + c.id + " --out " +
                      (dir_ / "out.bin").string());
    EXPECT_EQ(r.exit_code, 1) << c.in;
    EXPECT_EQ(line_count(r.err), 1u) << r.err;
    EXPECT_EQ(r.err.rfind("moss: error: ", 0), 0u) << r.err;
    EXPECT_NE(r.err.find(c.expect), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(dir_ / "out.bin")) << c.in;
    EXPECT_EQ(file_count(), files_before) << "temporary left behind for " << c.in;
  }
}

TEST_F(CliCryptoTest, ProgressIsShownForLargeFilesWhenAsked) {
  // A file over 16 MiB with --progress reports up to 100% on stderr; stdout stays empty.
  fs::path model = write_random_file("big.bin", 17 * 1024 * 1024);
  RunResult r = run("model encrypt --progress --in " + model.string() + " --out " +
                    (dir_ / "big.moss").string() + " --model-id owner/big --key-out " +
                    (dir_ / "big.key").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("100%"), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty());
}

}  // namespace
}  // namespace moss
