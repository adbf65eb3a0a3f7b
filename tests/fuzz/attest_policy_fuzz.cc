// libFuzzer target for the attestation policy file (attest/policy.h): any text yields a Policy or
// an error Status, never a crash.
#include "attest/policy.h"

#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto policy = moss::attest::Policy::parse(std::string_view(reinterpret_cast<const char*>(data), size));
  (void)policy;
  return 0;
}
