// The state key's recovery export (crypto/recovery_export.h, crypto/recovery_key.h): what the
// first replica seals to the operator's RSA key opens with that key only, survives its JSON form,
// and refuses weak keys, other keys and altered exports with a named reason.
#include "crypto/recovery_export.h"

#include "common/encoding.h"
#include "crypto/random.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <openssl/evp.h>
#include <openssl/pem.h>

namespace moss::crypto {
namespace {

bool starts_with(const Status& s, std::string_view reason) { return s.message().starts_with(reason); }

// One key pair for the suite: 3072-bit generation takes a while.
const RecoveryPrivateKey& operator_key() {
  static RecoveryPrivateKey key = RecoveryPrivateKey::generate().value_or_die();
  return key;
}

TEST(RecoveryExportTest, OpensWithTheOperatorsKeyAfterItsJsonRoundTrip) {
  auto state_key = random_secret(kStateKeyBytes).value_or_die();
  auto public_key = RecoveryPublicKey::from_pem(operator_key().public_pem().value_or_die()).value_or_die();
  EXPECT_EQ(public_key.fingerprint(), operator_key().fingerprint());
  auto sealed = RecoveryExport::seal(public_key, "/moss/keyservice/", state_key).value_or_die();
  const std::string json = sealed.to_json();
  // The key is in no form but the RSA ciphertext.
  EXPECT_EQ(json.find(base64_encode(state_key.span())), std::string::npos);
  EXPECT_EQ(json.find(hex_encode(state_key.span())), std::string::npos);

  auto parsed = RecoveryExport::parse(json).value_or_die();
  EXPECT_EQ(parsed.prefix, "/moss/keyservice/");
  EXPECT_EQ(parsed.recovery_key_sha256, operator_key().fingerprint());
  auto opened = parsed.open(operator_key()).value_or_die();
  EXPECT_TRUE(opened.equals(state_key.span()));
  // The private key survives its PEM form.
  auto reloaded = RecoveryPrivateKey::from_pem(operator_key().private_pem().value_or_die().span()).value_or_die();
  EXPECT_TRUE(parsed.open(reloaded).value_or_die().equals(state_key.span()));
}

TEST(RecoveryExportTest, AnotherKeyOrAnAlteredExportIsRefused) {
  auto state_key = random_secret(kStateKeyBytes).value_or_die();
  auto public_key = RecoveryPublicKey::from_pem(operator_key().public_pem().value_or_die()).value_or_die();
  auto sealed = RecoveryExport::seal(public_key, "/p/", state_key).value_or_die();

  auto other = RecoveryPrivateKey::generate().value_or_die();
  auto refused = sealed.open(other);
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(starts_with(refused.status(), "recovery-open-failed")) << refused.status().to_string();
  // Even with the fingerprint rewritten to the other key, its RSA decryption fails.
  RecoveryExport relabelled = sealed;
  relabelled.recovery_key_sha256 = other.fingerprint();
  refused = relabelled.open(other);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), ErrorCode::kUnauthenticated);

  RecoveryExport flipped = sealed;
  flipped.sealed_state_key[flipped.sealed_state_key.size() / 2] ^= 1;
  refused = flipped.open(operator_key());
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(starts_with(refused.status(), "recovery-open-failed")) << refused.status().to_string();

  // Untrusted JSON: fields missing, extra, of the wrong type, an unknown format.
  auto j = nlohmann::json::parse(sealed.to_json());
  for (const char* field : {"format", "prefix", "recovery_key_sha256", "sealed_state_key"}) {
    auto cut = j;
    cut.erase(field);
    auto parsed = RecoveryExport::parse(cut.dump());
    ASSERT_FALSE(parsed.ok()) << field;
    EXPECT_TRUE(starts_with(parsed.status(), "recovery-export-invalid")) << parsed.status().to_string();
  }
  auto wrong = j;
  wrong["format"] = "moss-keyservice-recovery-v0";
  EXPECT_FALSE(RecoveryExport::parse(wrong.dump()).ok());
  wrong = j;
  wrong["sealed_state_key"] = 7;
  EXPECT_FALSE(RecoveryExport::parse(wrong.dump()).ok());
  EXPECT_FALSE(RecoveryExport::parse("{\"format\":1,").ok());
}

TEST(RecoveryExportTest, WeakOrNonRsaRecoveryKeysAreRefused) {
  auto weak = RecoveryPrivateKey::generate(2048);
  ASSERT_FALSE(weak.ok());
  EXPECT_TRUE(starts_with(weak.status(), "recovery-key-weak"));

  // A 2048-bit RSA key and an EC key made outside MOSS, as PEM files an operator might pass.
  auto pem_of = [](EVP_PKEY* pkey, bool public_half) {
    BIO* bio = BIO_new(BIO_s_mem());
    if (public_half) {
      PEM_write_bio_PUBKEY(bio, pkey);
    } else {
      PEM_write_bio_PrivateKey(bio, pkey, nullptr, nullptr, 0, nullptr, nullptr);
    }
    char* data = nullptr;
    long len = BIO_get_mem_data(bio, &data);
    std::string out(data, static_cast<size_t>(len));
    BIO_free(bio);
    return out;
  };
  EVP_PKEY* rsa2048 = EVP_RSA_gen(2048);
  EVP_PKEY* ec = EVP_EC_gen("P-256");
  ASSERT_TRUE(rsa2048 && ec);
  for (EVP_PKEY* k : {rsa2048, ec}) {
    auto pub = RecoveryPublicKey::from_pem(pem_of(k, true));
    ASSERT_FALSE(pub.ok());
    EXPECT_TRUE(starts_with(pub.status(), "recovery-key-weak")) << pub.status().to_string();
    std::string priv_pem = pem_of(k, false);
    auto priv = RecoveryPrivateKey::from_pem(as_bytes(priv_pem));
    ASSERT_FALSE(priv.ok());
    EXPECT_TRUE(starts_with(priv.status(), "recovery-key-weak")) << priv.status().to_string();
  }
  EVP_PKEY_free(rsa2048);
  EVP_PKEY_free(ec);
  EXPECT_FALSE(RecoveryPublicKey::from_pem("not a key").ok());
}

}  // namespace
}  // namespace moss::crypto
