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

// Reason and not-sent hint are for programs: context added on the way up keeps both, and neither
// changes the message a person reads.
TEST(StatusTest, ReasonAndNotSentHintSurviveContext) {
  Status s = unavailable("connecting to 127.0.0.1:1 failed").with_reason("connect-failed").with_request_not_sent();
  Status up = s.with_context("invoking the worker").with_context("pool p");
  EXPECT_EQ(up.reason(), "connect-failed");
  EXPECT_TRUE(up.request_not_sent());
  EXPECT_EQ(up.code(), ErrorCode::kUnavailable);
  EXPECT_EQ(up.message(), "pool p: invoking the worker: connecting to 127.0.0.1:1 failed");
  EXPECT_EQ(up.to_string(), "unavailable: " + up.message());
  Result<int> r = Status(up);
  EXPECT_EQ(r.status().reason(), "connect-failed");
  EXPECT_TRUE(std::move(r).status().request_not_sent());

  Status plain = unavailable("reading the response failed");
  EXPECT_EQ(plain.reason(), "");
  EXPECT_FALSE(plain.request_not_sent());
  EXPECT_EQ(Status(ErrorCode::kNotFound, "m", "unknown-model").reason(), "unknown-model");
  // Ok stays Ok, with nothing attached.
  Status ok = Status::Ok().with_reason("x").with_request_not_sent();
  EXPECT_TRUE(ok.ok());
  EXPECT_EQ(ok.reason(), "");
  EXPECT_FALSE(ok.request_not_sent());
}

}  // namespace
}  // namespace moss
