// Known-answer tests against published vectors: NIST GCM spec (AES-256 cases 13-16), RFC 8032
// Ed25519 (tests 1-3 and SHA(abc)), RFC 5869 HKDF-SHA256 (cases 1-3), FIPS 180 SHA-256, RFC 4231
// HMAC-SHA256 case 2.
#include "crypto/aead.h"
#include "crypto/hash.h"
#include "crypto/hkdf.h"
#include "crypto/identity.h"
#include "unit/crypto/test_util.h"

#include <gtest/gtest.h>

namespace moss::crypto {
namespace {
using testing::hex;

struct GcmVector {
  const char* name;
  const char* key;
  const char* iv;
  const char* pt;
  const char* aad;
  const char* ct;
  const char* tag;
};

// McGrew & Viega, "The Galois/Counter Mode of Operation", test cases 13-16 (AES-256, 96-bit IV);
// 17 and 18 use other IV lengths, which MOSS does not support.
const GcmVector kGcmVectors[] = {
    {"case13", "0000000000000000000000000000000000000000000000000000000000000000",
     "000000000000000000000000", "", "", "", "530f8afbc74536b9a963b4f1c4cb738b"},
    {"case14", "0000000000000000000000000000000000000000000000000000000000000000",
     "000000000000000000000000", "00000000000000000000000000000000", "",
     "cea7403d4d606b6e074ec5d3baf39d18", "d0d1c8a799996bf0265b98b5d48ab919"},
    {"case15", "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
     "cafebabefacedbaddecaf888",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
     "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255",
     "",
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
     "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad",
     "b094dac5d93471bdec1a502270e3cc6c"},
    {"case16", "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
     "cafebabefacedbaddecaf888",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
     "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
     "feedfacedeadbeeffeedfacedeadbeefabaddad2",
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
     "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
     "76fc6ece0f4e1768cddf8853bb2d551b"},
};

TEST(KnownAnswerTest, AesGcmSealsNistVectors) {
  // Encryption reproduces each published ciphertext and tag.
  for (const auto& v : kGcmVectors) {
    auto aead = AesGcm::create(hex(v.key));
    ASSERT_TRUE(aead.ok());
    auto iv = hex(v.iv), pt = hex(v.pt), aad = hex(v.aad);
    std::vector<uint8_t> ct(pt.size());
    std::array<uint8_t, 16> tag{};
    ASSERT_TRUE(aead->seal(std::span<const uint8_t, 12>(iv.data(), 12), aad, pt, ct, tag).ok());
    EXPECT_EQ(hex_encode(ct), v.ct) << v.name;
    EXPECT_EQ(hex_encode(tag), v.tag) << v.name;
  }
}

TEST(KnownAnswerTest, AesGcmOpensNistVectorsAndRejectsAFlippedTag) {
  // Decryption recovers the plaintext; a one-bit change in the tag or AAD is refused.
  for (const auto& v : kGcmVectors) {
    auto aead = AesGcm::create(hex(v.key));
    ASSERT_TRUE(aead.ok());
    auto iv = hex(v.iv), ct = hex(v.ct), aad = hex(v.aad), tag = hex(v.tag);
    std::span<const uint8_t, 12> nonce(iv.data(), 12);
    std::vector<uint8_t> pt(ct.size());
    ASSERT_TRUE(aead->open(nonce, aad, ct, std::span<const uint8_t, 16>(tag.data(), 16), pt).ok());
    EXPECT_EQ(hex_encode(pt), v.pt) << v.name;
    tag[0] ^= 1;
    EXPECT_EQ(aead->open(nonce, aad, ct, std::span<const uint8_t, 16>(tag.data(), 16), pt).code(),
              ErrorCode::kUnauthenticated);
    tag[0] ^= 1;
    aad.push_back(0);
    EXPECT_EQ(aead->open(nonce, aad, ct, std::span<const uint8_t, 16>(tag.data(), 16), pt).code(),
              ErrorCode::kUnauthenticated);
  }
}

TEST(KnownAnswerTest, AesGcmRejectsWrongKeySize) {
  // Only 32-byte keys are accepted.
  EXPECT_EQ(AesGcm::create(std::vector<uint8_t>(16)).status().code(),
            ErrorCode::kInvalidArgument);
}

struct EdVector {
  const char* name;
  const char* secret;
  const char* pub;
  const char* msg;
  const char* sig;
};

// RFC 8032 section 7.1.
const EdVector kEdVectors[] = {
    {"test1", "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b"
     "46bd25bf5f0595bbe24655141438e7a100b"},
    {"test2", "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11"
     "d8c387b2eaeb4302aeeb00d291612bb0c00"},
    {"test3", "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
     "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc"
     "6594a7c15e9716ed28dc027beceea1ec40a"},
    {"sha_abc", "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
     "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
     "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3fee"
     "bbd454d4423643ce80e2a9ac94fa54ca49f",
     "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b58909351fc9ac90b3ecfdfbc7c66431e"
     "0303dca179c138ac17ad9bef1177331a704"},
};

TEST(KnownAnswerTest, Ed25519MatchesRfc8032Vectors) {
  // Public key derivation, signing and verification reproduce RFC 8032 exactly.
  for (const auto& v : kEdVectors) {
    auto id = Identity::from_private_raw(hex(v.secret));
    ASSERT_TRUE(id.ok()) << v.name;
    EXPECT_EQ(hex_encode(id->public_key().raw()), v.pub) << v.name;
    auto msg = hex(v.msg);
    auto sig = id->sign(msg);
    ASSERT_TRUE(sig.ok());
    EXPECT_EQ(hex_encode(*sig), v.sig) << v.name;
    auto pub = PublicKey::from_raw(hex(v.pub));
    ASSERT_TRUE(pub.ok());
    EXPECT_TRUE(pub->verify(msg, hex(v.sig)).ok()) << v.name;
    auto bad = hex(v.sig);
    bad[63] ^= 0x01;
    EXPECT_EQ(pub->verify(msg, bad).code(), ErrorCode::kUnauthenticated) << v.name;
  }
}

TEST(KnownAnswerTest, HkdfMatchesRfc5869Cases) {
  // RFC 5869 appendix A.1-A.3 (SHA-256): basic, long inputs, and empty salt and info.
  std::vector<uint8_t> ikm1(22, 0x0b), salt1 = hex("000102030405060708090a0b0c"),
      info1 = hex("f0f1f2f3f4f5f6f7f8f9");
  auto okm1 = hkdf_sha256(ikm1, salt1, info1, 42);
  ASSERT_TRUE(okm1.ok());
  EXPECT_EQ(hex_encode(okm1->span()),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");

  std::vector<uint8_t> ikm2, salt2, info2;
  for (int i = 0x00; i <= 0x4f; ++i) ikm2.push_back(static_cast<uint8_t>(i));
  for (int i = 0x60; i <= 0xaf; ++i) salt2.push_back(static_cast<uint8_t>(i));
  for (int i = 0xb0; i <= 0xff; ++i) info2.push_back(static_cast<uint8_t>(i));
  auto okm2 = hkdf_sha256(ikm2, salt2, info2, 82);
  ASSERT_TRUE(okm2.ok());
  EXPECT_EQ(hex_encode(okm2->span()),
            "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41"
            "c65e590e09da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87");

  auto okm3 = hkdf_sha256(ikm1, {}, {}, 42);
  ASSERT_TRUE(okm3.ok());
  EXPECT_EQ(hex_encode(okm3->span()),
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8");
}

TEST(KnownAnswerTest, HkdfRejectsImpossibleLengths) {
  // Zero bytes and more than 255 hash blocks are refused.
  std::vector<uint8_t> ikm(32, 1);
  EXPECT_FALSE(hkdf_sha256(ikm, {}, {}, 0).ok());
  EXPECT_FALSE(hkdf_sha256(ikm, {}, {}, 255 * 32 + 1).ok());
}

TEST(KnownAnswerTest, Sha256AndHmacMatchPublishedVectors) {
  // FIPS 180-2 SHA-256("abc") and RFC 4231 test case 2 (key "Jefe").
  EXPECT_EQ(hex_encode(sha256(as_bytes("abc"))),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  auto mac = hmac_sha256(as_bytes("Jefe"), as_bytes("what do ya want for nothing?"));
  ASSERT_TRUE(mac.ok());
  EXPECT_EQ(hex_encode(*mac), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

}  // namespace
}  // namespace moss::crypto
