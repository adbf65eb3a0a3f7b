// The attest tests' temp dir: the shared one.
#pragma once

#include "support/temp_dir.h"

namespace moss::attest::testing {
using moss::test_support::TempDir;
}  // namespace moss::attest::testing
