// Tests for common/encoding.h: RFC 4648 vectors, strictness and size bounds.
#include "common/encoding.h"

#include <gtest/gtest.h>

#include <random>

namespace moss {
namespace {

std::vector<uint8_t> bytes_of(std::string_view s) { return {s.begin(), s.end()}; }

TEST(EncodingTest, Base64MatchesRfc4648Vectors) {
  // RFC 4648 section 10 test vectors, encode and decode.
  const std::pair<const char*, const char*> cases[] = {
      {"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},         {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}};
  for (auto [plain, enc] : cases) {
    EXPECT_EQ(base64_encode(as_bytes(plain)), enc);
    auto dec = base64_decode(enc, 100);
    ASSERT_TRUE(dec.ok()) << enc;
    EXPECT_EQ(*dec, bytes_of(plain));
  }
}

TEST(EncodingTest, Base64UrlUsesUrlAlphabetWithoutPadding) {
  // 0xfb 0xff encodes to "+/8=" in standard and "-_8" in URL-safe base64.
  std::vector<uint8_t> b = {0xfb, 0xff};
  EXPECT_EQ(base64_encode(b), "+/8=");
  EXPECT_EQ(base64url_encode(b), "-_8");
  EXPECT_EQ(*base64url_decode("-_8", 10), b);
  EXPECT_EQ(*base64url_decode("-_8=", 10), b);
  EXPECT_FALSE(base64url_decode("+/8", 10).ok());
  EXPECT_FALSE(base64_decode("-_8=", 10).ok());
}

TEST(EncodingTest, RandomBytesRoundTripThroughEveryCodec) {
  // Encoding then decoding returns the input for all lengths 0..64.
  std::mt19937 rng(7);
  for (size_t n = 0; n <= 64; ++n) {
    std::vector<uint8_t> b(n);
    for (auto& x : b) x = static_cast<uint8_t>(rng());
    EXPECT_EQ(*base64_decode(base64_encode(b), n), b);
    EXPECT_EQ(*base64url_decode(base64url_encode(b), n), b);
    EXPECT_EQ(*hex_decode(hex_encode(b), n), b);
    auto secret = base64_decode_secret(base64_encode(b), n);
    ASSERT_TRUE(secret.ok());
    EXPECT_TRUE(secret->equals(b));
  }
}

TEST(EncodingTest, Base64RejectsMalformedInput) {
  // Whitespace, bad characters, bad padding, truncation and non-canonical bits all fail.
  for (const char* bad : {"Zm9v\n", " Zm9v", "Zm9", "Zg", "Zg=", "Z===", "Zm9v====", "Zm=v",
                          "Zh==", "Zm9=", "Zm*v", "====", "A"}) {
    auto r = base64_decode(bad, 100);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument) << bad;
    }
  }
  EXPECT_FALSE(base64url_decode("Zh", 100).ok());
  EXPECT_FALSE(base64url_decode("Zm9vY", 100).ok());
}

TEST(EncodingTest, DecodersEnforceTheSizeLimit) {
  // A decoded size above max_bytes is refused with resource-exhausted; at the limit it passes.
  EXPECT_TRUE(base64_decode("Zm9vYmFy", 6).ok());
  EXPECT_EQ(base64_decode("Zm9vYmFy", 5).status().code(), ErrorCode::kResourceExhausted);
  EXPECT_EQ(base64url_decode("Zm9vYmE", 4).status().code(), ErrorCode::kResourceExhausted);
  EXPECT_EQ(base64_decode_secret("Zm9vYmFy", 5).status().code(), ErrorCode::kResourceExhausted);
  EXPECT_TRUE(hex_decode("0011", 2).ok());
  EXPECT_EQ(hex_decode("001122", 2).status().code(), ErrorCode::kResourceExhausted);
}

TEST(EncodingTest, HexIsLowercaseAndDecodesStrictly) {
  // Encoding is lowercase; decoding accepts either case and rejects odd length or bad digits.
  std::vector<uint8_t> b = {0x00, 0xab, 0xff, 0x10};
  EXPECT_EQ(hex_encode(b), "00abff10");
  EXPECT_EQ(*hex_decode("00ABfF10", 10), b);
  EXPECT_FALSE(hex_decode("abc", 10).ok());
  EXPECT_FALSE(hex_decode("zz", 10).ok());
  EXPECT_FALSE(hex_decode("0x", 10).ok());
}

}  // namespace
}  // namespace moss
