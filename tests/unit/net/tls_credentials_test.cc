// Key and certificate generation, custom extensions, public-key hashes and PEM handling.
#include "net/tls_credentials.h"

#include <gtest/gtest.h>

namespace moss::net {
namespace {

TEST(TlsCredentialsTest, CertificateCarriesCustomExtension) {
  // An extra extension (as attest will use for evidence) survives generation and parsing.
  CertificateOptions opt;
  std::vector<uint8_t> evidence = {0x04, 0x03, 'a', 'b', 'c', 0x00, 0xff};
  opt.extensions.push_back({"1.3.6.1.4.1.311.105.1", evidence, false});
  auto creds = generate_self_signed(opt).value_or_die();
  auto der = certificate_pem_to_der(creds.cert_pem).value_or_die();
  auto ext = certificate_extension(der, "1.3.6.1.4.1.311.105.1").value_or_die();
  ASSERT_TRUE(ext.has_value());
  EXPECT_EQ(ext->value, evidence);
  EXPECT_FALSE(ext->critical);
  auto absent = certificate_extension(der, "1.2.3.4").value_or_die();
  EXPECT_FALSE(absent.has_value());
}

TEST(TlsCredentialsTest, PublicKeyHashMatchesBetweenKeyAndCertificate) {
  // The SPKI hash computed from the private key equals the one read from the certificate.
  for (KeyType type : {KeyType::kEcdsaP256, KeyType::kEd25519}) {
    auto key = generate_private_key_pem(type).value_or_die();
    auto cert = self_signed_certificate_pem(key).value_or_die();
    auto der = certificate_pem_to_der(cert).value_or_die();
    EXPECT_EQ(public_key_sha256(key).value_or_die(), certificate_public_key_sha256(der).value_or_die());
    EXPECT_EQ(public_key_spki_der(key).value_or_die(), certificate_spki_der(der).value_or_die());
  }
}

TEST(TlsCredentialsTest, DifferentKeysHaveDifferentHashes) {
  // Two fresh keys never share a public-key hash.
  auto a = generate_private_key_pem().value_or_die();
  auto b = generate_private_key_pem().value_or_die();
  EXPECT_NE(public_key_sha256(a).value_or_die(), public_key_sha256(b).value_or_die());
}

TEST(TlsCredentialsTest, ReadsCommonNameAndRoundTripsPem) {
  // The common name is readable and DER -> PEM -> DER is the identity.
  CertificateOptions opt;
  opt.common_name = "keyservice";
  auto creds = generate_self_signed(opt).value_or_die();
  auto der = certificate_pem_to_der(creds.cert_pem).value_or_die();
  EXPECT_EQ(certificate_common_name(der).value_or_die(), "keyservice");
  auto pem = certificate_der_to_pem(der).value_or_die();
  EXPECT_EQ(certificate_pem_to_der(pem).value_or_die(), der);
}

TEST(TlsCredentialsTest, PemToDerTakesTheFirstCertificateOfAChain) {
  // A chain file (leaf first, as TLS servers are configured) gives the leaf; one certificate past
  // kMaxChainCertificates is refused rather than read without bound.
  CertificateOptions leaf_opt, issuer_opt;
  leaf_opt.common_name = "leaf";
  issuer_opt.common_name = "issuer";
  auto leaf = generate_self_signed(leaf_opt).value_or_die();
  auto issuer = generate_self_signed(issuer_opt).value_or_die();
  auto der = certificate_pem_to_der(leaf.cert_pem + issuer.cert_pem).value_or_die();
  EXPECT_EQ(der, certificate_pem_to_der(leaf.cert_pem).value_or_die());
  EXPECT_EQ(certificate_common_name(der).value_or_die(), "leaf");
  std::string longest;
  for (size_t i = 0; i < kMaxChainCertificates; ++i) longest += (i == 0 ? leaf : issuer).cert_pem;
  EXPECT_EQ(certificate_pem_to_der(longest).value_or_die(), der);
  EXPECT_EQ(certificate_pem_to_der(longest + issuer.cert_pem).status().code(), ErrorCode::kInvalidArgument);
}

TEST(TlsCredentialsTest, RejectsMalformedCertificates) {
  // Garbage, truncated DER and trailing bytes are errors, not crashes.
  auto der = certificate_pem_to_der(generate_self_signed().value_or_die().cert_pem).value_or_die();
  std::vector<uint8_t> truncated(der.begin(), der.begin() + static_cast<long>(der.size() / 2));
  std::vector<uint8_t> trailing = der;
  trailing.push_back(0);
  std::vector<uint8_t> garbage(100, 0x30);
  for (const auto& bad : {truncated, trailing, garbage, std::vector<uint8_t>{}}) {
    EXPECT_FALSE(certificate_spki_der(bad).ok());
    EXPECT_FALSE(certificate_extension(bad, "1.2.3").ok());
  }
  EXPECT_FALSE(certificate_pem_to_der("not a pem").ok());
  EXPECT_FALSE(private_key_pem_from_string("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n").ok());
}

TEST(TlsCredentialsTest, RejectsBadOptions) {
  // Invalid OIDs, IP SANs and validity are refused with invalid-argument.
  auto key = generate_private_key_pem().value_or_die();
  CertificateOptions bad_oid;
  bad_oid.extensions.push_back({"not.an.oid", {1}, false});
  EXPECT_EQ(self_signed_certificate_pem(key, bad_oid).status().code(), ErrorCode::kInvalidArgument);
  CertificateOptions bad_ip;
  bad_ip.ip_addresses = {"999.1.1.1"};
  EXPECT_EQ(self_signed_certificate_pem(key, bad_ip).status().code(), ErrorCode::kInvalidArgument);
  CertificateOptions bad_lifetime;
  bad_lifetime.lifetime = std::chrono::seconds(0);
  EXPECT_EQ(self_signed_certificate_pem(key, bad_lifetime).status().code(), ErrorCode::kInvalidArgument);
}

TEST(TlsCredentialsTest, ValidityWindowIsWrittenAndChecked) {
  // notBefore/notAfter follow the options and check_certificate_validity applies them with skew.
  auto key = generate_private_key_pem().value_or_die();
  CertificateOptions opt;
  opt.not_before = 1577836800;  // 2020-01-01
  opt.lifetime = std::chrono::hours(24);
  auto der = certificate_pem_to_der(self_signed_certificate_pem(key, opt).value_or_die()).value_or_die();
  auto v = certificate_validity(der).value_or_die();
  EXPECT_EQ(v.not_before, 1577836800);
  EXPECT_EQ(v.not_after, 1577836800 + 86400);
  EXPECT_TRUE(check_certificate_validity(der, 1577836800 + 3600).ok());
  EXPECT_TRUE(check_certificate_validity(der, 1577836800 - 60).ok());         // within the skew
  EXPECT_TRUE(check_certificate_validity(der, 1577836800 + 86400 + 60).ok());
  auto early = check_certificate_validity(der, 1577836800 - 3600);
  EXPECT_EQ(early.code(), ErrorCode::kUnauthenticated);
  EXPECT_NE(early.message().find("not yet valid (valid from 2020-01-01T00:00:00Z"), std::string::npos) << early.message();
  auto late = check_certificate_validity(der, std::time(nullptr));
  EXPECT_EQ(late.code(), ErrorCode::kUnauthenticated);
  EXPECT_NE(late.message().find("expired (valid until 2020-01-02T00:00:00Z"), std::string::npos) << late.message();
  // By default: valid from a minute ago until `lifetime` from now.
  CertificateOptions now_opt;
  now_opt.lifetime = std::chrono::hours(1);
  auto fresh = certificate_pem_to_der(self_signed_certificate_pem(key, now_opt).value_or_die()).value_or_die();
  auto fv = certificate_validity(fresh).value_or_die();
  const std::time_t now = std::time(nullptr);
  EXPECT_NEAR(static_cast<double>(fv.not_before), static_cast<double>(now - 60), 5);
  EXPECT_NEAR(static_cast<double>(fv.not_after), static_cast<double>(now + 3600), 5);
}

TEST(TlsCredentialsTest, PrivateKeyPemParsesBack) {
  // A generated key PEM is accepted by the loader helpers.
  auto key = generate_private_key_pem().value_or_die();
  std::string_view text(reinterpret_cast<const char*>(key.data()), key.size());
  EXPECT_NE(text.find("BEGIN PRIVATE KEY"), std::string_view::npos);
  EXPECT_TRUE(private_key_pem_from_string(text).ok());
}

}  // namespace
}  // namespace moss::net
