#include "common/status.h"

#include <gtest/gtest.h>

namespace moss {
namespace {

Result<int> parse_positive(int v) {
  if (v <= 0) return invalid_argument("value {} is not positive", v);
  return v;
}

Result<int> doubled(int v) {
  MOSS_ASSIGN_OR_RETURN(int x, parse_positive(v));
  return 2 * x;
}

// A Result carries either the value or the error, and the macros propagate errors unchanged.
TEST(StatusTest, ResultPropagatesErrorsThroughMacros) {
  EXPECT_EQ(*doubled(4), 8);
  auto bad = doubled(-1);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(bad.status().to_string(), "invalid-argument: value -1 is not positive");
}

// Context is prefixed so a message says where the failure happened.
TEST(StatusTest, WithContextPrefixesMessage) {
  Status s = data_loss("chunk 3 failed authentication").with_context("reading m.moss");
  EXPECT_EQ(s.message(), "reading m.moss: chunk 3 failed authentication");
  EXPECT_EQ(error_code_name(s.code()), "data-loss");
  EXPECT_TRUE(Status::Ok().with_context("x").ok());
}

}  // namespace
}  // namespace moss
