#include "packer/model_size_hints.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace moss::packer {
namespace {

namespace fs = std::filesystem;

// A directory store gives the encrypted file's size before any load; ids that are not model ids
// never become paths; HTTP stores and missing files give no hint.
TEST(ModelSizeHintsTest, SizeFromADirectoryStore) {
  const fs::path dir = fs::temp_directory_path() / ("moss-size-hints-" + std::to_string(::getpid()));
  fs::create_directories(dir / "o");
  std::ofstream(dir / "o" / "m.moss") << std::string(1234, 'x');
  std::ofstream(dir / "secret.moss") << std::string(99, 'x');
  ModelSizeHints hints(dir.string());
  EXPECT_EQ(hints.get("o/m"), 1234u);
  EXPECT_EQ(hints.get("o/m"), 1234u);  // cached
  EXPECT_FALSE(hints.get("o/missing").has_value());
  EXPECT_FALSE(hints.get("o/../secret").has_value());
  EXPECT_FALSE(hints.get("../secret").has_value());
  EXPECT_FALSE(ModelSizeHints("https://store.example/models").get("o/m").has_value());
  EXPECT_FALSE(ModelSizeHints("").get("o/m").has_value());
  fs::remove_all(dir);
}

}  // namespace
}  // namespace moss::packer
