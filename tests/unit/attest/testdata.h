// Where the real DCAP quotes live: <source>/tests/data/attestation, a copy of the team's
// ../shared/testdata/attestation kept in the tree so a fresh clone tests them too. Tests skip with a
// clear message when it is absent.
#pragma once

#include "common/file_util.h"

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

namespace moss::attest::testing {

inline std::filesystem::path testdata_dir() {
  const char* src = std::getenv("MOSS_SOURCE_DIR");
  std::filesystem::path base = src ? src : MOSS_ATTEST_SOURCE_DIR;
  return base / "tests" / "data" / "attestation";
}

inline bool have_testdata() { return std::filesystem::exists(testdata_dir() / "expected.json"); }

inline std::vector<uint8_t> read_quote(const std::string& name) {
  return moss::read_file(testdata_dir() / name, 1 << 20).value_or_die();
}

inline nlohmann::json expected() {
  return nlohmann::json::parse(
      moss::read_text_file(testdata_dir() / "expected.json", 1 << 20).value_or_die());
}

#define MOSS_REQUIRE_TESTDATA() \
  if (!::moss::attest::testing::have_testdata()) GTEST_SKIP() << "no tests/data/attestation"

}  // namespace moss::attest::testing
