#include "common/file_util.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

namespace moss {
namespace {

std::filesystem::path temp_dir() {
  auto dir = std::filesystem::temp_directory_path() /
             ("moss_file_util_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return dir;
}

// A written file reads back identically and carries the requested permission bits.
TEST(FileUtilTest, WriteThenReadRoundTripsWithMode) {
  auto path = temp_dir() / "secret.bin";
  std::vector<uint8_t> data = {1, 2, 3, 250};
  ASSERT_TRUE(write_file(path, data, 0600).ok());
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(*read_file(path, 100), data);
  EXPECT_TRUE(read_secret_file(path, 100)->equals(data));
}

// Oversized and missing files are distinct, clear errors.
TEST(FileUtilTest, ReadRefusesOversizedAndMissingFiles) {
  auto path = temp_dir() / "big.bin";
  ASSERT_TRUE(write_file(path, std::vector<uint8_t>(64, 7)).ok());
  EXPECT_EQ(read_file(path, 63).status().code(), ErrorCode::kResourceExhausted);
  EXPECT_EQ(read_file(temp_dir() / "nope", 10).status().code(), ErrorCode::kNotFound);
  EXPECT_EQ(read_text_file(temp_dir(), 10).status().code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace moss
