#include "attest/dcap_verifier.h"
#include "common/ossl.h"
#include "common/rfc3339.h"
#include "attest/intel_root.h"
#include "testdata.h"

#include <openssl/ec.h>
#include <openssl/x509v3.h>

#include <gtest/gtest.h>

namespace moss::attest {
namespace {

using testing::expected;
using testing::read_quote;
using testing::testdata_dir;

std::time_t at(const char* rfc3339) { return parse_rfc3339(rfc3339).value_or_die(); }

CollateralPtr collateral(const std::string& folder) {
  auto root = intel_sgx_root_ca().value_or_die();
  return load_collateral_dir(testdata_dir() / folder, root.get()).value_or_die();
}

Result<Claims> verify(const std::string& quote, const std::string& folder, const char* when) {
  auto v = DcapVerifier::create().value_or_die();
  DcapVerifyOptions o;
  o.at = at(when);
  if (!folder.empty()) o.collateral = collateral(folder);
  return v.verify(read_quote(quote), o);
}

void expect_error(const Result<Claims>& r, const std::string& needle) {
  ASSERT_FALSE(r.ok()) << "expected failure containing '" << needle << "'";
  EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().message();
}

// Every real quote passes the four signature and chain checks at its PCK certificate's lifetime.
TEST(DcapVerifierTest, EveryRealQuoteVerifiesWithoutCollateral) {
  MOSS_REQUIRE_TESTDATA();
  for (const auto& [name, e] : expected()["quotes"].items()) {
    auto r = verify(name, "", "2024-01-01T00:00:00Z");
    ASSERT_TRUE(r.ok()) << name << ": " << r.status().to_string();
    EXPECT_EQ(r->fmspc, e["pck"]["fmspc"]) << name;
    EXPECT_EQ(r->tcb_status, "Unknown");
    EXPECT_EQ(r->measurement, e["tee"] == "TDX" ? e["report"]["mrtd"] : e["report"]["mrenclave"]);
  }
}

// The quotes with full collateral verify at the pinned time with the TCB status in expected.json.
TEST(DcapVerifierTest, QuotesWithCollateralReportExpectedTcbStatus) {
  MOSS_REQUIRE_TESTDATA();
  struct Case { const char* quote; const char* status; const char* qe; };
  for (auto c : {Case{"sgx-v3-phala-1.quote", "ConfigurationAndSWHardeningNeeded", "UpToDate"},
                 Case{"tdx-v4-phala-1.quote", "UpToDate", "UpToDate"},
                 Case{"tdx-v4-trustee-1.quote", "UpToDate", "UpToDate"},
                 Case{"tdx-v4-trustee-3.quote", "OutOfDate", ""}}) {
    auto all = expected();
    const auto& e = all["quotes"][c.quote]["collateral"];
    auto r = verify(c.quote, e["folder"], e["suggested_verification_time"].get<std::string>().c_str());
    ASSERT_TRUE(r.ok()) << c.quote << ": " << r.status().to_string();
    EXPECT_EQ(r->tcb_status, c.status) << c.quote;
    EXPECT_EQ(r->platform_tcb_status, e["platform_tcb_level"]["status"]) << c.quote;
    EXPECT_EQ(r->qe_tcb_status, c.qe) << c.quote;
    EXPECT_EQ(r->advisory_ids, e["platform_tcb_level"]["advisoryIDs"].get<std::vector<std::string>>());
    EXPECT_TRUE(r->tcb_info_checked);
    if (e.contains("tdx_module_tcb_level")) {
      EXPECT_EQ(r->tdx_module_tcb_status, e["tdx_module_tcb_level"]["status"]);
    }
  }
}

// The full Phala sets check both CRLs and report the validity window of all the collateral.
TEST(DcapVerifierTest, ReportsCollateralWindow) {
  MOSS_REQUIRE_TESTDATA();
  auto r = verify("sgx-v3-phala-1.quote", "sgx-v3-phala-1.collateral", "2025-07-01T00:00:00Z");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_TRUE(r->crls_checked);
  EXPECT_TRUE(r->qe_identity_checked);
  EXPECT_EQ(format_rfc3339(*r->collateral_not_before), "2025-06-19T10:56:11Z");
  EXPECT_EQ(format_rfc3339(*r->collateral_not_after), "2025-07-19T10:01:18Z");
}

// MobileCoin's CRLs-only set: the chain is checked against both CRLs, no TCB status.
TEST(DcapVerifierTest, CrlOnlyCollateralChecksRevocation) {
  MOSS_REQUIRE_TESTDATA();
  auto r = verify("sgx-v3-mobilecoin-1.quote", "sgx-v3-mobilecoin-1.collateral", "2023-05-01T00:00:00Z");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_TRUE(r->crls_checked);
  EXPECT_EQ(r->tcb_status, "Unknown");
  EXPECT_TRUE(r->debug);
}

// No TCB level matches the Google quote or the v5 quote: verification fails with that reason.
TEST(DcapVerifierTest, UnmatchedTcbLevelIsNotSupported) {
  MOSS_REQUIRE_TESTDATA();
  expect_error(verify("tdx-v4-google-1.quote", "tdx-v4-google-1.collateral", "2023-07-01T00:00:00Z"),
               "tcb-level: TCB level not supported");
  expect_error(verify("tdx-v5-phala-1.quote", "tdx-v5-phala-1.collateral", "2026-03-01T00:00:00Z"),
               "tcb-level: TCB level not supported");
}

// sgx-v3-phala-1 at 2026-01-01: the PCK CRL has expired.
TEST(DcapVerifierTest, ExpiredCrlIsRejected) {
  MOSS_REQUIRE_TESTDATA();
  expect_error(verify("sgx-v3-phala-1.quote", "sgx-v3-phala-1.collateral", "2026-01-01T00:00:00Z"),
               "CRL has expired");
}

// Beyond the collateral window (TCB info past nextUpdate while CRLs are current) is rejected.
TEST(DcapVerifierTest, QuoteBeyondCollateralValidityIsRejected) {
  MOSS_REQUIRE_TESTDATA();
  expect_error(verify("tdx-v4-trustee-3.quote", "tdx-v4-trustee-3.collateral", "2025-12-01T00:00:00Z"),
               "collateral-validity: TCB info");
  // After the QE identity's nextUpdate, before the PCK CRL's.
  expect_error(verify("sgx-v3-phala-1.quote", "sgx-v3-phala-1.collateral", "2025-07-19T10:10:00Z"),
               "collateral-validity: QE identity");
}

// The re-issued TCB-signing certificate is not yet valid in 2023; the old one expired in 2025.
TEST(DcapVerifierTest, TcbSigningCertificateValidityIsChecked) {
  MOSS_REQUIRE_TESTDATA();
  auto root = intel_sgx_root_ca().value_or_die();
  auto old_set = load_collateral_dir(testdata_dir() / "tdx-v4-trustee-1.collateral", root.get()).value_or_die();
  auto new_set = load_collateral_dir(testdata_dir() / "tdx-v4-phala-1.collateral", root.get()).value_or_die();
  // The 2023 TCB info signed under the old certificate, checked with the new chain.
  auto mixed = std::make_shared<Collateral>();
  mixed->tcb_info = old_set->tcb_info;
  for (const auto& c : new_set->tcb_signing_chain) mixed->tcb_signing_chain.emplace_back(X509_dup(c.get()));
  auto v = DcapVerifier::create().value_or_die();
  DcapVerifyOptions o{at("2023-07-01T00:00:00Z"), mixed, nullptr};
  auto r = v.verify(read_quote("tdx-v4-trustee-1.quote"), o);
  expect_error(r, "tcb-signing-chain: certificate is not yet valid");
  // The old chain at a 2025 time: expired.
  auto stale = std::make_shared<Collateral>();
  stale->tcb_info = new_set->tcb_info;
  for (const auto& c : old_set->tcb_signing_chain) stale->tcb_signing_chain.emplace_back(X509_dup(c.get()));
  DcapVerifyOptions o2{at("2025-07-01T00:00:00Z"), stale, nullptr};
  expect_error(v.verify(read_quote("tdx-v4-phala-1.quote"), o2), "tcb-signing-chain: certificate has expired");
}

// A flipped byte in each signed region is caught by the check that covers it.
TEST(DcapVerifierTest, FlippedByteInEachSignedRegionIsRejected) {
  MOSS_REQUIRE_TESTDATA();
  auto v = DcapVerifier::create().value_or_die();
  DcapVerifyOptions o{at("2025-07-01T00:00:00Z"), nullptr, nullptr};
  for (const char* name : {"sgx-v3-phala-1.quote", "tdx-v4-phala-1.quote"}) {
    auto bytes = read_quote(name);
    auto q = parse_quote(bytes).value_or_die();
    size_t sig = q.signed_region.size() + 4;  // after the signature data length
    size_t qe_report = q.header.version == 3 ? sig + 128 : sig + 128 + 6;
    struct Flip { size_t offset; const char* reason; };
    for (auto f : {Flip{12, "quote-signature"},                      // header
                   Flip{q.signed_region.size() - 1, "quote-signature"},  // report data
                   Flip{sig + 10, "quote-signature"},                // the signature itself
                   Flip{sig + 64 + 3, "quote-signature"},            // attestation key
                   Flip{qe_report + 300, "qe-report-signature"},     // QE report
                   Flip{qe_report + 384 + 5, "qe-report-signature"}, // QE report signature
                   Flip{qe_report + 384 + 64 + 2 + 1, "qe-report-data"}}) {  // QE auth data
      auto bad = bytes;
      bad[f.offset] ^= 0x01;
      SCOPED_TRACE(std::string(name) + " offset " + std::to_string(f.offset));
      expect_error(v.verify(bad, o), f.reason);
    }
  }
}

// A PCK leaf from another platform in the chain: the QE report signature no longer verifies.
TEST(DcapVerifierTest, SwappedPckCertificateIsRejected) {
  MOSS_REQUIRE_TESTDATA();
  auto q = parse_quote(read_quote("sgx-v3-phala-1.quote")).value_or_die();
  auto other = parse_quote(read_quote("sgx-v3-mobilecoin-1.quote")).value_or_die();
  auto mine = ossl::parse_pem_chain(q.pck_chain_pem).value_or_die();
  auto theirs = ossl::parse_pem_chain(other.pck_chain_pem).value_or_die();
  // Both are issued by the Processor CA, so the swapped chain itself still verifies.
  std::string pem = other.pck_chain_pem.substr(0, other.pck_chain_pem.find("-----END CERTIFICATE-----") + 26);
  pem += q.pck_chain_pem.substr(q.pck_chain_pem.find("-----END CERTIFICATE-----") + 26);
  q.pck_chain_pem = pem;
  auto v = DcapVerifier::create().value_or_die();
  DcapVerifyOptions o{at("2024-01-01T00:00:00Z"), nullptr, nullptr};
  expect_error(v.verify(encode_quote(q), o), "qe-report-signature");
}

// A verifier pinned to another root refuses Intel's chain even though the quote carries Intel's root.
TEST(DcapVerifierTest, WrongRootIsRejected) {
  MOSS_REQUIRE_TESTDATA();
  // A throwaway self-signed P-256 CA with Intel's subject name.
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), -10L * 365 * 86400);
  X509_gmtime_adj(X509_getm_notAfter(cert), 10L * 365 * 86400);
  auto intel = intel_sgx_root_ca().value_or_die();
  X509_set_subject_name(cert, X509_get_subject_name(intel.get()));
  X509_set_issuer_name(cert, X509_get_subject_name(intel.get()));
  X509_set_pubkey(cert, key);
  X509_sign(cert, key, EVP_sha256());
  EVP_PKEY_free(key);
  auto v = DcapVerifier::with_root(ossl::X509Ptr(cert));
  DcapVerifyOptions o{at("2024-01-01T00:00:00Z"), nullptr, nullptr};
  expect_error(v.verify(read_quote("sgx-v3-phala-1.quote"), o), "pck-chain");
}

// A quote whose own chain ends at a fake root (not Intel's) is rejected by the pinned verifier.
TEST(DcapVerifierTest, QuoteCarryingOnlyItsLeafFailsTheChain) {
  MOSS_REQUIRE_TESTDATA();
  auto q = parse_quote(read_quote("sgx-v3-phala-1.quote")).value_or_die();
  q.pck_chain_pem = q.pck_chain_pem.substr(0, q.pck_chain_pem.find("-----END CERTIFICATE-----") + 26);
  auto v = DcapVerifier::create().value_or_die();
  DcapVerifyOptions o{at("2024-01-01T00:00:00Z"), nullptr, nullptr};
  expect_error(v.verify(encode_quote(q), o), "pck-chain: unable to get local issuer certificate");
}

// The collateral cache serves a verified set by TEE type and FMSPC until its nextUpdate.
TEST(DcapVerifierTest, CacheServesCollateralUntilNextUpdate) {
  MOSS_REQUIRE_TESTDATA();
  CollateralCache cache;
  cache.put(collateral("sgx-v3-phala-1.collateral"));
  EXPECT_NE(cache.find("SGX", "00a067110000", at("2025-07-01T00:00:00Z")), nullptr);
  EXPECT_EQ(cache.find("SGX", "00a067110000", at("2025-07-19T10:01:18Z")), nullptr);
  EXPECT_EQ(cache.find("TDX", "00a067110000", at("2025-07-01T00:00:00Z")), nullptr);
  auto v = DcapVerifier::create().value_or_die();
  DcapVerifyOptions o{at("2025-07-01T00:00:00Z"), nullptr, &cache};
  auto r = v.verify(read_quote("sgx-v3-phala-1.quote"), o);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->tcb_status, "ConfigurationAndSWHardeningNeeded");
}

// A TCB info document altered after signing is refused when loaded.
TEST(DcapVerifierTest, TamperedTcbInfoSignatureIsRejected) {
  MOSS_REQUIRE_TESTDATA();
  auto text = read_text_file(testdata_dir() / "sgx-v3-phala-1.collateral/tcb_info.json", 1 << 20).value_or_die();
  auto chain = read_text_file(testdata_dir() / "sgx-v3-phala-1.collateral/tcb_signing_chain.pem", 1 << 20).value_or_die();
  auto certs = ossl::parse_pem_chain(chain).value_or_die();
  ASSERT_TRUE(parse_tcb_info(text, X509_get0_pubkey(certs[0].get())).ok());
  auto pos = text.find("\"tcbEvaluationDataNumber\":17");
  ASSERT_NE(pos, std::string::npos);
  text.replace(pos + 26, 2, "18");
  auto r = parse_tcb_info(text, X509_get0_pubkey(certs[0].get()));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("tcbInfo-signature"), std::string::npos);
}

// Collateral is untrusted input: a second "tcbInfo" after the signed one (the signature would
// cover the first while a lenient parser kept the second), an oversized document and a wrongly
// typed field are refused as errors, never exceptions.
TEST(DcapVerifierTest, DuplicateKeyOversizedAndMistypedTcbInfoAreRefused) {
  MOSS_REQUIRE_TESTDATA();
  auto text = read_text_file(testdata_dir() / "sgx-v3-phala-1.collateral/tcb_info.json", 1 << 20).value_or_die();
  auto chain = read_text_file(testdata_dir() / "sgx-v3-phala-1.collateral/tcb_signing_chain.pem", 1 << 20).value_or_die();
  auto certs = ossl::parse_pem_chain(chain).value_or_die();
  EVP_PKEY* signer = X509_get0_pubkey(certs[0].get());
  const size_t end = text.rfind('}');
  ASSERT_NE(end, std::string::npos);
  std::string twice = text;
  twice.insert(end, R"(,"tcbInfo":{"id":"SGX","version":3})");
  auto dup = parse_tcb_info(twice, signer);
  ASSERT_FALSE(dup.ok());
  EXPECT_NE(dup.status().message().find("duplicate key"), std::string::npos) << dup.status().message();

  std::string padded = text;
  padded.insert(end, std::string(300 * 1024, ' '));
  auto big = parse_tcb_info(padded, signer);
  ASSERT_FALSE(big.ok());
  EXPECT_NE(big.status().message().find("larger than"), std::string::npos) << big.status().message();

  for (const char* body : {R"({"tcbInfo":[1],"signature":"00"})", R"({"tcbInfo":{},"signature":7})", "[]", "{"}) {
    auto r = parse_tcb_info(body, signer);
    EXPECT_FALSE(r.ok()) << body;
    EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument) << body;
  }
}

}  // namespace
}  // namespace moss::attest
