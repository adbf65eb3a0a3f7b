// Tests for crypto/identity.h: generation, PEM files, principal ids, signatures.
#include "crypto/identity.h"

#include "common/file_util.h"
#include "crypto/hash.h"
#include "unit/crypto/test_util.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

namespace moss::crypto {
namespace {

TEST(IdentityTest, GeneratedIdentitySignsAndItsPublicKeyVerifies) {
  // A fresh identity's signature verifies; another message or identity does not.
  auto a = Identity::generate();
  auto b = Identity::generate();
  ASSERT_TRUE(a.ok() && b.ok());
  auto sig = a->sign(as_bytes("hello"));
  ASSERT_TRUE(sig.ok());
  EXPECT_TRUE(a->public_key().verify(as_bytes("hello"), *sig).ok());
  EXPECT_EQ(a->public_key().verify(as_bytes("hellO"), *sig).code(), ErrorCode::kUnauthenticated);
  EXPECT_EQ(b->public_key().verify(as_bytes("hello"), *sig).code(), ErrorCode::kUnauthenticated);
  EXPECT_FALSE(a->public_key().verify(as_bytes("hello"), std::span(sig->data(), 63)).ok());
}

TEST(IdentityTest, PrincipalIdIsHexOfTheFirst16BytesOfThePublicKeyHash) {
  // RFC 8032 test 1 public key -> a fixed id: 32 lowercase hex characters, no '/'.
  auto id = Identity::from_private_raw(
      testing::hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"));
  ASSERT_TRUE(id.ok());
  std::string pid = id->principal_id();
  EXPECT_EQ(pid, hex_encode(std::span(sha256(id->public_key().raw()).data(), 16)));
  EXPECT_TRUE(is_principal_id(pid));
  EXPECT_EQ(pid.size(), 32u);
  EXPECT_EQ(pid.find('/'), std::string::npos);
  EXPECT_FALSE(is_principal_id("ABCDEF0123456789abcdef0123456789"));
  EXPECT_FALSE(is_principal_id("abc"));
}

TEST(IdentityTest, PrivateKeyPemRoundTripsThroughA0600File) {
  // save_private writes mode 0600; load returns the same key (same signatures, same id).
  testing::TempDir dir;
  auto id = Identity::generate();
  ASSERT_TRUE(id.ok());
  auto path = dir.path() / "identity.pem";
  ASSERT_TRUE(id->save_private(path).ok());
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto loaded = Identity::load(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();
  EXPECT_EQ(loaded->principal_id(), id->principal_id());
  auto raw1 = id->private_raw();
  auto raw2 = loaded->private_raw();
  ASSERT_TRUE(raw1.ok() && raw2.ok());
  EXPECT_TRUE(raw1->equals(raw2->span()));
}

TEST(IdentityTest, PublicKeyPemRoundTrips) {
  // to_pem then from_pem gives the same raw key.
  auto id = Identity::generate();
  ASSERT_TRUE(id.ok());
  auto pem = id->public_key().to_pem();
  ASSERT_TRUE(pem.ok());
  EXPECT_NE(pem->find("BEGIN PUBLIC KEY"), std::string::npos);
  auto pub = PublicKey::from_pem(*pem);
  ASSERT_TRUE(pub.ok());
  EXPECT_EQ(pub->raw(), id->public_key().raw());
}

TEST(IdentityTest, MalformedKeysAreRejected) {
  // Garbage PEM, a public key given as private, and wrong raw sizes all fail cleanly.
  EXPECT_FALSE(Identity::from_pem(as_bytes("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")).ok());
  auto id = Identity::generate();
  ASSERT_TRUE(id.ok());
  EXPECT_FALSE(Identity::from_pem(as_bytes(*id->public_key().to_pem())).ok());
  EXPECT_FALSE(PublicKey::from_pem("not a pem").ok());
  EXPECT_FALSE(PublicKey::from_raw(std::vector<uint8_t>(31)).ok());
  EXPECT_FALSE(Identity::from_private_raw(std::vector<uint8_t>(33)).ok());
  testing::TempDir dir;
  EXPECT_FALSE(Identity::load(dir.path() / "missing.pem").ok());
}

}  // namespace
}  // namespace moss::crypto

namespace moss::crypto {
namespace {

std::array<uint8_t, 32> from_hex32(std::string_view hex) {
  auto b = hex_decode(hex, 32).value_or_die();
  std::array<uint8_t, 32> a{};
  std::copy(b.begin(), b.end(), a.begin());
  return a;
}

// The eight small-order points (each y with both signs), and non-canonical encodings (y >= p),
// are refused as public keys; with the identity as key, the constant forged signature
// (R = identity, S = 0) does not verify either way.
TEST(IdentityTest, SmallOrderAndNonCanonicalKeysAreRefused) {
  const char* small_order_y[] = {
      "0000000000000000000000000000000000000000000000000000000000000000",
      "0100000000000000000000000000000000000000000000000000000000000000",
      "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
      "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
      "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  };
  for (const char* hex : small_order_y) {
    for (uint8_t sign : {0, 0x80}) {
      auto key = from_hex32(hex);
      key[31] |= sign;
      EXPECT_FALSE(PublicKey::from_raw(key).ok()) << hex << " sign " << int(sign);
      EXPECT_FALSE(is_strict_ed25519_point(key));
    }
  }
  for (const char* hex : {"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
                          "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
                          "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"}) {
    EXPECT_FALSE(PublicKey::from_raw(from_hex32(hex)).ok()) << hex;
  }
  auto good = Identity::generate().value_or_die();
  EXPECT_TRUE(is_strict_ed25519_point(good.public_key().raw()));
}

// A valid signature with L added to S (the malleable twin) and one whose R is small-order are
// refused; the original verifies.
TEST(IdentityTest, StrictVerificationRefusesMalleableAndSmallOrderSignatures) {
  auto id = Identity::generate().value_or_die();
  std::string msg = "message";
  auto sig = id.sign(as_bytes(msg)).value_or_die();
  ASSERT_TRUE(id.public_key().verify(as_bytes(msg), sig).ok());
  // S + L (little-endian add; S < L < 2^253 so it cannot overflow 256 bits).
  static constexpr uint8_t kL[32] = {0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7,
                                     0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                     0, 0, 0, 0x10};
  auto twin = sig;
  unsigned carry = 0;
  for (int i = 0; i < 32; ++i) {
    unsigned v = twin[32 + i] + kL[i] + carry;
    twin[32 + i] = static_cast<uint8_t>(v);
    carry = v >> 8;
  }
  EXPECT_FALSE(id.public_key().verify(as_bytes(msg), twin).ok());
  auto small_r = sig;
  std::fill(small_r.begin(), small_r.begin() + 32, 0);
  small_r[0] = 1;
  EXPECT_FALSE(id.public_key().verify(as_bytes(msg), small_r).ok());
}

}  // namespace
}  // namespace moss::crypto
