#include "common/secret_bytes.h"

#include <gtest/gtest.h>

namespace moss {
namespace {

// Moving a secret leaves the source empty, so no second copy of the key lingers.
TEST(SecretBytesTest, MoveLeavesSourceEmpty) {
  std::vector<uint8_t> raw = {1, 2, 3, 4};
  SecretBytes a(raw);
  SecretBytes b(std::move(a));
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): checking the moved-from state
  EXPECT_EQ(b.size(), 4u);
  EXPECT_TRUE(b.equals(raw));
}

// Equality is by content and length; a prefix is not equal.
TEST(SecretBytesTest, ConstantTimeEqualityComparesContentAndLength) {
  std::vector<uint8_t> x = {9, 9, 9}, y = {9, 9, 8}, z = {9, 9};
  EXPECT_TRUE(constant_time_equal(x, x));
  EXPECT_FALSE(constant_time_equal(x, y));
  EXPECT_FALSE(constant_time_equal(x, z));
  SecretBytes s(x);
  s.wipe();
  EXPECT_TRUE(s.empty());
}

}  // namespace
}  // namespace moss
