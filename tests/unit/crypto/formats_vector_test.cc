// Reproduces the test vectors printed in docs/formats.md (generated independently by
// formats_vectors.py with pyca/cryptography), with the random values injected.
#include "crypto/envelope.h"
#include "crypto/hash.h"
#include "crypto/model_file.h"
#include "unit/crypto/test_util.h"

#include <gtest/gtest.h>

namespace moss::crypto {
namespace {

// The envelope's keyless framing is protocol's; these tests exercise it through seal and open.
using protocol::convert_envelope;
using protocol::Direction;
using protocol::envelope_encoding;
using protocol::EnvelopeEncoding;
using protocol::EnvelopeFrame;
using protocol::EnvelopeHeader;
using protocol::kEnvelopeMediaType;
using protocol::peek_binary_envelope_header;
using protocol::peek_envelope_header;

std::vector<uint8_t> range_bytes(uint8_t first, size_t n) {
  std::vector<uint8_t> b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(first + i);
  return b;
}

TEST(FormatsVectorTest, EmptyModelFileMatchesTheDocumentedBytes) {
  // Key 00..1f, file random 20..3f, model "owner/empty", chunk 1024, empty plaintext.
  auto key = range_bytes(0, 32), random = range_bytes(0x20, 32);
  ModelEncryptOptions opts{1024, random};
  auto file = encrypt_model(key, "owner/empty", {}, opts);
  ASSERT_TRUE(file.ok());
  EXPECT_EQ(hex_encode(*file),
            "4d4f53534d4f444c0001000b00000400202122232425262728292a2b2c2d2e2f303132333435363738393a"
            "3b3c3d3e3f6f776e65722f656d7074798e9f5da00d8fde151e0975ba7ef8371a");
  auto plain = decrypt_model(key, "owner/empty", *file);
  ASSERT_TRUE(plain.ok());
  EXPECT_TRUE(plain->empty());
}

TEST(FormatsVectorTest, ThreeChunkModelFileMatchesTheDocumentedDigestAndTags) {
  // 2500 bytes (byte i = i mod 251) in 1024-byte chunks: header, tags and file digest as listed.
  auto key = range_bytes(0, 32), random = range_bytes(0x20, 32);
  std::vector<uint8_t> plain(2500);
  for (size_t i = 0; i < plain.size(); ++i) plain[i] = static_cast<uint8_t>(i % 251);
  ModelEncryptOptions opts{1024, random};
  auto file = encrypt_model(key, "owner/demo", plain, opts);
  ASSERT_TRUE(file.ok());
  ASSERT_EQ(file->size(), 2606u);
  EXPECT_EQ(hex_encode(std::span(file->data(), 58)),
            "4d4f53534d4f444c0001000a00000400202122232425262728292a2b2c2d2e2f303132333435363738393a"
            "3b3c3d3e3f6f776e65722f64656d6f");
  auto tag_at = [&](size_t end) { return hex_encode(std::span(file->data() + end - 16, 16)); };
  EXPECT_EQ(tag_at(58 + 1040), "089adcbfa5e228eb3f4611e4aa1ee23a");
  EXPECT_EQ(tag_at(58 + 2080), "1741b6aca06d374be3b8af679bae021b");
  EXPECT_EQ(tag_at(2606), "8ac9fb39a3e1f47f0c43176e682fd475");
  EXPECT_EQ(hex_encode(sha256(*file)),
            "63ab175005efb3059c644652f678dc1fd6649b134deb331e3b9f5b806102cfeb");
}

TEST(FormatsVectorTest, EnvelopesMatchTheDocumentedJson) {
  // Key 00..1f, nonce 00..0b: the request "hello" and response "world" seal to the listed JSON.
  auto key = range_bytes(0, 32), nonce = range_bytes(0, 12);
  EnvelopeHeader h{"owner/demo", "fedcba9876543210fedcba9876543210", "req-1",
                   Direction::kRequest};
  auto req = seal_envelope(key, h, as_bytes("hello"), nonce);
  ASSERT_TRUE(req.ok());
  EXPECT_EQ(*req,
            R"({"v":1,"model_id":"owner/demo","user_id":"fedcba9876543210fedcba9876543210",)"
            R"("request_id":"req-1","direction":"request","nonce":"AAECAwQFBgcICQoL",)"
            R"("ciphertext":"448Tg/CARb+wfy4EvNB/fEmO1wUw"})");
  h.direction = Direction::kResponse;
  auto resp = seal_envelope(key, h, as_bytes("world"), nonce);
  ASSERT_TRUE(resp.ok());
  EXPECT_EQ(*resp,
            R"({"v":1,"model_id":"owner/demo","user_id":"fedcba9876543210fedcba9876543210",)"
            R"("request_id":"req-1","direction":"response","nonce":"AAECAwQFBgcICQoL",)"
            R"("ciphertext":"XvYXg1ZGjh5p1iNJC4ao0yKOC86w"})");
  auto opened = open_envelope(key, h, *resp);
  ASSERT_TRUE(opened.ok());
  EXPECT_EQ(as_chars(opened->span()), "world");
}

TEST(FormatsVectorTest, BinaryEnvelopeMatchesTheDocumentedBytes) {
  // The same request in the binary form: same ciphertext and tag, framed instead of JSON.
  auto key = range_bytes(0, 32), nonce = range_bytes(0, 12);
  EnvelopeHeader h{"owner/demo", "fedcba9876543210fedcba9876543210", "req-1",
                   Direction::kRequest};
  auto req = seal_envelope(key, h, as_bytes("hello"), nonce, EnvelopeEncoding::kBinary);
  ASSERT_TRUE(req.ok());
  EXPECT_EQ(hex_encode(as_bytes(*req)),
            "894d4f5353454e560101000a6f776e65722f64656d6f002066656463626139383736353433323130666564"
            "6362613938373635343332313000057265712d31000102030405060708090a0be38f1383f08045bfb07f2e"
            "04bcd07f7c498ed70530");
  auto opened = open_envelope(key, h, *req);
  ASSERT_TRUE(opened.ok());
  EXPECT_EQ(as_chars(opened->span()), "hello");
}

}  // namespace
}  // namespace moss::crypto
