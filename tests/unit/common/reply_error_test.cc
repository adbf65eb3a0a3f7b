#include "common/reply_error.h"

#include "common/safetensors.h"

#include <gtest/gtest.h>

namespace moss {
namespace {

// The documented example (docs/formats.md, "Response plaintext") byte for byte, and the round trip.
TEST(ReplyErrorTest, DocumentedBytesAndRoundTrip) {
  auto bytes = write_reply_error({"bad-input", "invalid-argument", "m"}).value_or_die();
  const std::string json =
      R"({"__metadata__":{"moss.error.category":"bad-input","moss.error.code":"invalid-argument","moss.error.message":"m"}})";
  const std::string want = std::string("\x78\0\0\0\0\0\0\0", 8) + json + std::string(6, ' ');
  EXPECT_EQ(std::string(bytes.begin(), bytes.end()), want);

  auto error = reply_error_of(read_safetensors(bytes).value_or_die()).value_or_die();
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->category, "bad-input");
  EXPECT_EQ(error->code, "invalid-argument");
  EXPECT_EQ(error->message, "m");
}

// A result (outputs, no marker) is not an error; a marked bundle with tensors is malformed;
// non-printable bytes in a message cannot break the writer.
TEST(ReplyErrorTest, ResultsMalformedAndUnprintable) {
  TensorBundle result;
  result.add("y", Tensor::from_vector<float>({1}, {1})).check();
  EXPECT_FALSE(reply_error_of(result).value_or_die().has_value());
  result.mutable_metadata()[kReplyErrorCategoryKey] = "bad-input";
  result.mutable_metadata()[kReplyErrorCodeKey] = "internal";
  result.mutable_metadata()[kReplyErrorMessageKey] = "x";
  EXPECT_EQ(reply_error_of(result).status().code(), ErrorCode::kInvalidArgument);

  auto bytes = write_reply_error({"bad-input", "invalid-argument", std::string("name \xff\x01 here")});
  ASSERT_TRUE(bytes.ok()) << bytes.status().to_string();
  auto error = reply_error_of(read_safetensors(*bytes).value_or_die()).value_or_die();
  EXPECT_EQ(error->message, "name ?? here");
}

}  // namespace
}  // namespace moss
