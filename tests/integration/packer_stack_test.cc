// FnPacker on the real path: bench/packer/stack_bench.sh with a tiny trace runs `moss up`
// (KeyService + FnPacker), publishes two encrypted models with grants and request keys, and sends
// sealed requests through FnPacker's invoke API to real moss-worker processes under four routing
// setups (one round); every response envelope must open. Checks that the MOSS pool served every request.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>

namespace moss {
namespace {

namespace fs = std::filesystem;

TEST(PackerStackTest, MossPoolServesEncryptedRequestsThroughRealWorkers) {
  const char* bin = std::getenv("MOSS_BIN_DIR");
  const char* src = std::getenv("MOSS_SOURCE_DIR");
  if (!src) src = MOSS_SOURCE_DIR_FALLBACK;
  ASSERT_TRUE(bin && src);
  for (const char* b :
       {"moss", "moss-keyservice", "moss-packer", "moss-worker", "packer_stack_bench"}) {
    if (!fs::exists(fs::path(bin) / b)) GTEST_SKIP() << b << " not built";
  }
  std::string cmd = std::string(src) + "/bench/packer/stack_bench.sh " + bin +
                    " --models 2 --duration 4 --rate 6 --rounds 1 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  std::array<char, 4096> buf;
  while (size_t n = fread(buf.data(), 1, buf.size(), p)) out.append(buf.data(), n);
  int status = pclose(p);
  ASSERT_EQ(status, 0) << out;
  std::istringstream lines(out);
  std::string line;
  bool seen = false;
  while (std::getline(lines, line)) {
    // The replay rows: "<round> <policy> requests served failed ...".
    if (line.rfind("1 MOSS ", 0) != 0) continue;
    std::istringstream row(line.substr(7));
    size_t requests = 0, served = 0, failed = 1;
    row >> requests >> served >> failed;
    EXPECT_GT(requests, 0u) << line;
    EXPECT_EQ(served, requests) << line;
    EXPECT_EQ(failed, 0u) << line;
    seen = true;
  }
  EXPECT_TRUE(seen) << out;
}

}  // namespace
}  // namespace moss
