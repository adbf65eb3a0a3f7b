// Tests for crypto/model_key_file.h: round trip through a 0600 file and strict parsing.
#include "crypto/model_key_file.h"

#include "common/file_util.h"
#include "crypto/random.h"
#include "unit/crypto/test_util.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

namespace moss::crypto {
namespace {

TEST(ModelKeyFileTest, RoundTripsThroughA0600File) {
  // The key and model id come back unchanged; the file is readable by its owner only.
  testing::TempDir dir;
  auto key = std::move(random_secret(32)).value_or_die();
  auto path = dir.path() / "model.key";
  ASSERT_TRUE(write_model_key_file(path, "owner/model", key.span()).ok());
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto read = read_model_key_file(path);
  ASSERT_TRUE(read.ok()) << read.status().to_string();
  EXPECT_EQ(read->model_id, "owner/model");
  EXPECT_TRUE(read->key.equals(key.span()));
}

TEST(ModelKeyFileTest, EncodingIsTheDocumentedJson) {
  // A fixed key encodes to exactly the text shown in docs/formats.md.
  std::vector<uint8_t> key(32);
  for (size_t i = 0; i < key.size(); ++i) key[i] = static_cast<uint8_t>(i);
  auto text = encode_model_key("owner/model", key);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(as_chars(text->span()),
            "{\"kind\":\"moss-model-key\",\"version\":1,\"model_id\":\"owner/model\","
            "\"key\":\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"}\n");
}

TEST(ModelKeyFileTest, MalformedKeyFilesAreRejected) {
  // Wrong kind, version, key size, extra fields, bad base64 or id, and non-JSON all fail.
  const char* bad[] = {
      "",
      "not json",
      R"({"kind":"other","version":1,"model_id":"m","key":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="})",
      R"({"kind":"moss-model-key","version":2,"model_id":"m","key":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="})",
      R"({"kind":"moss-model-key","version":1,"model_id":"m","key":"AAECAw=="})",
      R"({"kind":"moss-model-key","version":1,"model_id":"m","key":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gIQ=="})",
      R"({"kind":"moss-model-key","version":1,"model_id":"m","key":"!!"})",
      R"({"kind":"moss-model-key","version":1,"model_id":"a b","key":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="})",
      R"({"kind":"moss-model-key","version":1,"model_id":"m","key":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=","x":1})",
      R"({"kind":"moss-model-key","version":1,"model_id":"m"})",
  };
  for (const char* text : bad) {
    EXPECT_FALSE(decode_model_key(as_bytes(text)).ok()) << text;
  }
  testing::TempDir dir;
  EXPECT_FALSE(read_model_key_file(dir.path() / "missing").ok());
}

}  // namespace
}  // namespace moss::crypto
