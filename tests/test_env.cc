// Linked into every test binary: points MOSS_BIN_DIR and MOSS_SOURCE_DIR at this build when the
// environment does not set them, so a test binary run by hand behaves as under CTest. (CTest's
// ENVIRONMENT property cannot carry two variables through gtest_discover_tests.)
#include <cstdlib>

namespace {

const bool kTestEnvironmentSet = [] {
  setenv("MOSS_BIN_DIR", MOSS_TEST_BIN_DIR, /*overwrite=*/0);
  setenv("MOSS_SOURCE_DIR", MOSS_TEST_SOURCE_DIR, /*overwrite=*/0);
  // Workers started by tests keep no compiled-plan cache in the shared temporary directory;
  // tests of the cache give their own directory.
  setenv("MOSS_WORKER_PLAN_CACHE_DIR", "off", /*overwrite=*/0);
  return true;
}();

}  // namespace
