// Tests for src/keyservice/rate_limiter.cc and request_body.cc (pure functions, injected time).
#include "keyservice/rate_limiter.h"
#include "keyservice/request_body.h"

#include <gtest/gtest.h>

namespace moss::keyservice {
namespace {

// A key gets its burst at once, then tokens at the configured rate; keys do not share buckets.
TEST(RateLimiterTest, AllowsBurstThenRefillsAtTheRate) {
  RateLimiter limiter(2, 3);
  auto t0 = RateLimiter::Clock::time_point(std::chrono::seconds(1000));
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter.allow("a", t0));
  EXPECT_FALSE(limiter.allow("a", t0));
  EXPECT_TRUE(limiter.allow("b", t0));
  EXPECT_FALSE(limiter.allow("a", t0 + std::chrono::milliseconds(400)));
  EXPECT_TRUE(limiter.allow("a", t0 + std::chrono::milliseconds(500)));
  EXPECT_FALSE(limiter.allow("a", t0 + std::chrono::milliseconds(500)));
  // Idle long enough refills to the burst, never beyond.
  auto later = t0 + std::chrono::seconds(100);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter.allow("a", later));
  EXPECT_FALSE(limiter.allow("a", later));
}

TEST(RateLimiterTest, ZeroRateDisablesLimiting) {
  RateLimiter limiter(0, 1);
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(limiter.allow("a"));
}

// Bodies must be exact: unknown or missing fields, bad keys and measurements are bad-request.
TEST(RequestBodyTest, RefusesUnknownMissingAndMalformedFields) {
  EXPECT_EQ(parse_body(R"({"a":1,"b":2})", {"a"}).status().reason(), "bad-request");
  EXPECT_EQ(parse_body(R"({"b":2})", {"a"}, {"b"}).status().reason(), "bad-request");
  EXPECT_EQ(parse_body(R"({"a":1,"a":2})", {"a"}).status().reason(), "bad-request");
  EXPECT_EQ(parse_body("[1]", {}).status().reason(), "bad-request");
  EXPECT_TRUE(parse_body(R"({"a":1})", {"a"}, {"b"}).ok());

  auto j = parse_body(R"({"key":"AAAA"})", {"key"}).value_or_die();
  EXPECT_EQ(key_field(j, "key").status().reason(), "bad-request");  // 3 bytes, not 32
  auto ok = parse_body(R"({"key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="})", {"key"}).value_or_die();
  auto key = key_field(ok, "key");
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(key->size(), 32u);

  EXPECT_TRUE(validate_measurement("ab01").ok());
  EXPECT_FALSE(validate_measurement("AB01").ok());
  EXPECT_FALSE(validate_measurement("abc").ok());
  EXPECT_FALSE(validate_measurement(std::string(130, 'a')).ok());

  auto m = parse_body(R"({"m":"0123456789abcdef0123456789abcdef/x/y"})", {"m"}).value_or_die();
  EXPECT_FALSE(model_id_field(m, "m").ok());  // exactly <owner>/<name>
  auto m2 = parse_body(R"({"m":"0123456789abcdef0123456789abcdef/x"})", {"m"}).value_or_die();
  EXPECT_TRUE(model_id_field(m2, "m").ok());
  auto m3 = parse_body(R"({"m":"alice/x"})", {"m"}).value_or_die();
  EXPECT_FALSE(model_id_field(m3, "m").ok());  // owner must be a principal id
}

}  // namespace
}  // namespace moss::keyservice
