// Tests for src/packer/operator_token.cc: created once (0600) and kept; short tokens refused.
#include "packer/operator_token.h"

#include "common/file_util.h"
#include "support/temp_dir.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

namespace moss::packer {
namespace {

TEST(OperatorTokenTest, CreatesAPrivateTokenOnceAndKeepsIt) {
  test_support::TempDir dir;
  const auto path = dir.path() / "token";
  auto first = load_or_create_operator_token(path);
  ASSERT_TRUE(first.ok()) << first.status().to_string();
  EXPECT_EQ(first->size(), 64u);  // 32 random bytes in hex
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(load_or_create_operator_token(path).value(), *first);
}

TEST(OperatorTokenTest, ReadsAGivenTokenAndRefusesAShortOne) {
  test_support::TempDir dir;
  const auto path = dir.path() / "token";
  ASSERT_TRUE(write_text_file(path, "0123456789abcdef-operator \r\n", 0600).ok());
  EXPECT_EQ(load_or_create_operator_token(path).value(), "0123456789abcdef-operator");
  ASSERT_TRUE(write_text_file(path, "tiny-tok\n", 0600).ok());
  auto r = load_or_create_operator_token(path);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(r.status().message().find("tiny-tok"), std::string::npos);  // never quotes the token
}

}  // namespace
}  // namespace moss::packer
