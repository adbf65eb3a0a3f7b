// Helpers shared by the crypto tests: hex literals and a scratch directory removed on exit.
#pragma once

#include "support/temp_dir.h"

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

using moss::test_support::TempDir;

}  // namespace moss::crypto::testing
