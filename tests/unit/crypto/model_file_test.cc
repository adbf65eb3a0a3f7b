// Tests for crypto/model_file.h: round trips in memory and as streams, and tamper resistance:
// every byte flipped, every truncation, appended data, reordered, duplicated and spliced chunks,
// wrong model id and wrong key.
#include "crypto/model_file.h"

#include "crypto/random.h"
#include "unit/crypto/test_util.h"

#include <gtest/gtest.h>

#include <sstream>

namespace moss::crypto {
namespace {

constexpr uint32_t kChunk = kMinChunkSize;  // small chunks: many boundaries in a small file
constexpr char kModelId[] = "0123456789abcdef0123456789abcdef/resnet-50";

class ModelFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    key_ = std::move(random_secret(kModelKeySize)).value_or_die();
    plain_ = testing::pattern_bytes(2 * kChunk + kChunk / 2);  // 3 chunks, the last partial
    file_ = encrypt(plain_);
    header_size_ = kModelFileFixedHeaderSize + sizeof(kModelId) - 1;
  }
  std::vector<uint8_t> encrypt(std::span<const uint8_t> plain, uint32_t chunk = kChunk) {
    ModelEncryptOptions opts;
    opts.chunk_size = chunk;
    return std::move(encrypt_model(key_.span(), kModelId, plain, opts)).value_or_die();
  }
  Status decrypt(std::span<const uint8_t> file) {
    return decrypt_model(key_.span(), kModelId, file).status();
  }
  Status decrypt_stream(std::span<const uint8_t> file) {
    std::istringstream in(std::string(as_chars(file)));
    std::ostringstream out;
    return decrypt_model_stream(key_.span(), kModelId, in, out);
  }
  // Byte offset of chunk i in the file.
  size_t chunk_offset(size_t i) const { return header_size_ + i * (kChunk + 16); }

  SecretBytes key_;
  std::vector<uint8_t> plain_;
  std::vector<uint8_t> file_;
  size_t header_size_ = 0;
};

TEST_F(ModelFileTest, RoundTripsEverySizeAroundChunkBoundaries) {
  // Empty, one byte, exactly one chunk, one more, and multi-chunk models decrypt to themselves,
  // in memory and as a stream, and the file has the advertised size.
  for (size_t n : {size_t{0}, size_t{1}, size_t{kChunk - 1}, size_t{kChunk}, size_t{kChunk + 1},
                   size_t{3 * kChunk}, size_t{3 * kChunk + 7}}) {
    auto plain = testing::pattern_bytes(n, static_cast<uint32_t>(n));
    auto file = encrypt(plain);
    EXPECT_EQ(file.size(), encrypted_model_size(kModelId, n, kChunk));
    EXPECT_EQ(*decrypted_model_size(file), n);
    auto dec = decrypt_model(key_.span(), kModelId, file);
    ASSERT_TRUE(dec.ok()) << n << ": " << dec.status().to_string();
    EXPECT_TRUE(dec->equals(plain)) << n;

    std::istringstream in(std::string(as_chars(file)));
    std::ostringstream out;
    ASSERT_TRUE(decrypt_model_stream(key_.span(), kModelId, in, out).ok()) << n;
    EXPECT_EQ(out.str(), std::string(as_chars(plain))) << n;
  }
}

TEST_F(ModelFileTest, StreamEncryptionMatchesTheInMemoryFormat) {
  // A streamed file decrypts in memory (and vice versa), and progress reaches the total.
  std::istringstream in(std::string(as_chars(plain_)));
  std::ostringstream out;
  ModelEncryptOptions opts;
  opts.chunk_size = kChunk;
  uint64_t last_done = 0;
  int calls = 0;
  ASSERT_TRUE(encrypt_model_stream(key_.span(), kModelId, in, out, opts, plain_.size(),
                                   [&](uint64_t done, uint64_t total) {
                                     EXPECT_GE(done, last_done);
                                     EXPECT_EQ(total, plain_.size());
                                     last_done = done;
                                     ++calls;
                                   })
                  .ok());
  EXPECT_EQ(last_done, plain_.size());
  EXPECT_EQ(calls, 3);
  std::string file = out.str();
  auto dec = decrypt_model(key_.span(), kModelId, as_bytes(file));
  ASSERT_TRUE(dec.ok());
  EXPECT_TRUE(dec->equals(plain_));
}

TEST_F(ModelFileTest, EveryFlippedByteIsRejected) {
  // Flipping any bit of any byte (header fields, chunk bodies, tags) fails both decoders; body
  // and tag flips fail authentication specifically.
  for (size_t i = 0; i < file_.size(); ++i) {
    auto bad = file_;
    bad[i] ^= 0x01;
    Status s = decrypt(bad);
    EXPECT_FALSE(s.ok()) << "offset " << i;
    EXPECT_FALSE(decrypt_stream(bad).ok()) << "offset " << i;
    if (i >= header_size_) {
      EXPECT_EQ(s.code(), ErrorCode::kUnauthenticated) << "offset " << i;
    }
  }
}

TEST_F(ModelFileTest, EveryTruncationIsRejected) {
  // Cutting the file at any length, chunk boundaries included, fails both decoders.
  for (size_t n = 0; n < file_.size(); ++n) {
    std::span<const uint8_t> cut(file_.data(), n);
    EXPECT_FALSE(decrypt(cut).ok()) << "length " << n;
    EXPECT_FALSE(decrypt_stream(cut).ok()) << "length " << n;
  }
  // At a boundary the remaining last chunk was sealed as "not last": an authentication failure.
  EXPECT_EQ(decrypt(std::span(file_.data(), chunk_offset(2))).code(), ErrorCode::kUnauthenticated);
  EXPECT_EQ(decrypt(std::span(file_.data(), chunk_offset(0))).code(), ErrorCode::kDataLoss);
}

TEST_F(ModelFileTest, AppendedDataIsRejected) {
  // One extra byte, a copy of the last chunk, or a full junk chunk after the end all fail.
  auto one = file_;
  one.push_back(0);
  EXPECT_FALSE(decrypt(one).ok());
  EXPECT_FALSE(decrypt_stream(one).ok());
  auto dup_last = file_;
  dup_last.insert(dup_last.end(), file_.begin() + chunk_offset(2), file_.end());
  EXPECT_FALSE(decrypt(dup_last).ok());
  EXPECT_FALSE(decrypt_stream(dup_last).ok());
  auto junk = file_;
  junk.insert(junk.end(), kChunk + 16, 0x5a);
  EXPECT_FALSE(decrypt(junk).ok());
  EXPECT_FALSE(decrypt_stream(junk).ok());
}

TEST_F(ModelFileTest, ReorderedAndDuplicatedChunksAreRejected) {
  // Swapping the two full chunks, or repeating chunk 0 in place of chunk 1, fails.
  auto swapped = file_;
  std::swap_ranges(swapped.begin() + chunk_offset(0), swapped.begin() + chunk_offset(1),
                   swapped.begin() + chunk_offset(1));
  EXPECT_EQ(decrypt(swapped).code(), ErrorCode::kUnauthenticated);
  EXPECT_FALSE(decrypt_stream(swapped).ok());
  auto dup = file_;
  std::copy(file_.begin() + chunk_offset(0), file_.begin() + chunk_offset(1),
            dup.begin() + chunk_offset(1));
  EXPECT_EQ(decrypt(dup).code(), ErrorCode::kUnauthenticated);
  // Dropping a middle chunk leaves a well-sized file that still fails.
  auto dropped = file_;
  dropped.erase(dropped.begin() + chunk_offset(1), dropped.begin() + chunk_offset(2));
  EXPECT_EQ(decrypt(dropped).code(), ErrorCode::kUnauthenticated);
}

TEST_F(ModelFileTest, SplicingTwoFilesUnderTheSameKeyIsRejected) {
  // Same key, same model id, same plaintext: header of one file with chunks of the other fails
  // (each file has its own subkey), as does mixing chunks.
  auto other = encrypt(plain_);
  ASSERT_NE(other, file_);  // fresh file random each time
  auto head_a_body_b = file_;
  std::copy(other.begin() + header_size_, other.end(), head_a_body_b.begin() + header_size_);
  EXPECT_EQ(decrypt(head_a_body_b).code(), ErrorCode::kUnauthenticated);
  auto mixed = file_;
  std::copy(other.begin() + chunk_offset(1), other.end(), mixed.begin() + chunk_offset(1));
  EXPECT_EQ(decrypt(mixed).code(), ErrorCode::kUnauthenticated);
  EXPECT_FALSE(decrypt_stream(mixed).ok());
}

TEST_F(ModelFileTest, WrongModelIdOrKeyIsRejected) {
  // Expecting another id, rewriting the header's id, or another key: all unauthenticated.
  EXPECT_EQ(decrypt_model(key_.span(), "0123456789abcdef0123456789abcdef/resnet-51", file_)
                .status()
                .code(),
            ErrorCode::kUnauthenticated);
  auto renamed = file_;
  renamed[header_size_ - 1] = '1';  // ".../resnet-51" in the header itself
  EXPECT_EQ(decrypt_model(key_.span(), "0123456789abcdef0123456789abcdef/resnet-51", renamed)
                .status()
                .code(),
            ErrorCode::kUnauthenticated);
  auto other_key = std::move(random_secret(kModelKeySize)).value_or_die();
  EXPECT_EQ(decrypt_model(other_key.span(), kModelId, file_).status().code(),
            ErrorCode::kUnauthenticated);
  EXPECT_EQ(decrypt_model(std::vector<uint8_t>(16), kModelId, file_).status().code(),
            ErrorCode::kInvalidArgument);
}

TEST_F(ModelFileTest, AbsurdHeadersAreRejectedBeforeAnyAllocation) {
  // Bad magic, unknown version, chunk sizes outside bounds and bad model ids are refused.
  auto bad_magic = file_;
  bad_magic[0] = 'X';
  EXPECT_EQ(parse_model_header(bad_magic).status().code(), ErrorCode::kInvalidArgument);
  auto bad_version = file_;
  bad_version[9] = 2;
  EXPECT_EQ(parse_model_header(bad_version).status().code(), ErrorCode::kUnimplemented);
  auto huge_chunk = file_;
  huge_chunk[12] = 0x7f;
  EXPECT_EQ(parse_model_header(huge_chunk).status().code(), ErrorCode::kInvalidArgument);
  auto tiny_chunk = file_;
  tiny_chunk[12] = tiny_chunk[13] = tiny_chunk[14] = 0;
  tiny_chunk[15] = 16;
  EXPECT_EQ(parse_model_header(tiny_chunk).status().code(), ErrorCode::kInvalidArgument);
  auto long_id = file_;
  long_id[10] = 0xff;
  EXPECT_EQ(parse_model_header(long_id).status().code(), ErrorCode::kInvalidArgument);
  auto zero_id = file_;
  zero_id[10] = zero_id[11] = 0;
  EXPECT_EQ(parse_model_header(zero_id).status().code(), ErrorCode::kInvalidArgument);
  auto bad_char = file_;
  bad_char[kModelFileFixedHeaderSize] = ' ';
  EXPECT_EQ(parse_model_header(bad_char).status().code(), ErrorCode::kInvalidArgument);
}

TEST_F(ModelFileTest, EncryptionRejectsBadParameters) {
  // Chunk sizes outside bounds, bad model ids, short keys and a wrong injected random fail.
  ModelEncryptOptions opts;
  opts.chunk_size = kMinChunkSize - 1;
  EXPECT_FALSE(encrypt_model(key_.span(), kModelId, plain_, opts).ok());
  opts.chunk_size = kMaxChunkSize + 1;
  EXPECT_FALSE(encrypt_model(key_.span(), kModelId, plain_, opts).ok());
  EXPECT_FALSE(encrypt_model(key_.span(), "a/../b", plain_).ok());
  EXPECT_FALSE(encrypt_model(key_.span(), "/abs", plain_).ok());
  EXPECT_FALSE(encrypt_model(std::vector<uint8_t>(31), kModelId, plain_).ok());
  std::vector<uint8_t> short_random(8);
  ModelEncryptOptions injected;
  injected.file_random = short_random;
  EXPECT_FALSE(encrypt_model(key_.span(), kModelId, plain_, injected).ok());
}

TEST_F(ModelFileTest, FailedDecryptionLeavesNoPlaintextInTheBuffer) {
  // decrypt_model_into wipes the whole output when a later chunk fails.
  auto bad = file_;
  bad.back() ^= 1;  // last tag
  std::vector<uint8_t> out(plain_.size(), 0xee);
  EXPECT_EQ(decrypt_model_into(key_.span(), kModelId, bad, out).code(),
            ErrorCode::kUnauthenticated);
  EXPECT_EQ(std::count(out.begin(), out.end(), 0), static_cast<long>(out.size()));
}

}  // namespace
}  // namespace moss::crypto
