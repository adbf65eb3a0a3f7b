// Helpers shared by the crypto tests: hex literals and a scratch directory removed on exit.
#pragma once

#include "common/encoding.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <random>
#include <string>
#include <vector>

namespace moss::crypto::testing {

inline std::vector<uint8_t> hex(std::string_view s) {
  auto r = hex_decode(s, 1 << 20);
  EXPECT_TRUE(r.ok()) << s;
  return r.ok() ? *r : std::vector<uint8_t>{};
}

inline std::vector<uint8_t> pattern_bytes(size_t n, uint32_t seed = 1) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> b(n);
  for (auto& x : b) x = static_cast<uint8_t>(rng());
  return b;
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "moss-crypto-XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace moss::crypto::testing
