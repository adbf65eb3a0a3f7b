#include "attest/dcap_verifier.h"
#include "common/rfc3339.h"
#include "attest/intel_root.h"
#include "attest/policy.h"
#include "testdata.h"

#include <gtest/gtest.h>

namespace moss::attest {
namespace {

using testing::read_quote;
using testing::testdata_dir;

constexpr char kPhalaMrenclave[] = "33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb";
constexpr char kPhalaMrsigner[] = "815f42f11cf64430c30bab7816ba596a1da0130c3b028b673133a66cf9a3e0e6";

Claims phala_claims() {
  auto root = intel_sgx_root_ca().value_or_die();
  auto col = load_collateral_dir(testdata_dir() / "sgx-v3-phala-1.collateral", root.get()).value_or_die();
  DcapVerifyOptions o{parse_rfc3339("2025-07-01T00:00:00Z").value_or_die(), col, nullptr};
  return DcapVerifier::create().value_or_die().verify(read_quote("sgx-v3-phala-1.quote"), o).value_or_die();
}

Policy policy(const std::string& body) {
  auto p = Policy::parse(body);
  EXPECT_TRUE(p.ok()) << p.status().to_string();
  return std::move(p).value_or_die();
}

void expect_rejected(const Policy& p, const Claims& c, const std::string& msg) {
  Status st = p.check(c);
  ASSERT_FALSE(st.ok()) << "expected: " << msg;
  EXPECT_EQ(st.message(), msg);
}

// By default only UpToDate is accepted, and the rejection lists the status and advisories.
TEST(PolicyTest, DefaultTcbRuleRejectsNonUpToDateWithAdvisories) {
  MOSS_REQUIRE_TESTDATA();
  auto p = policy(fmt::format(R"({{"version":1,"measurements":[{{"tee":"sgx","mrenclave":"{}"}}]}})", kPhalaMrenclave));
  expect_rejected(p, phala_claims(),
                  "tcb-status: ConfigurationAndSWHardeningNeeded (INTEL-SA-00289, INTEL-SA-00615) not accepted");
}

// A listed status is accepted, and an advisory restriction must cover every advisory.
TEST(PolicyTest, ListedStatusAcceptedOnlyWithCoveredAdvisories) {
  MOSS_REQUIRE_TESTDATA();
  auto claims = phala_claims();
  auto open = policy(fmt::format(R"({{"version":1,"measurements":[{{"tee":"sgx","mrenclave":"{}"}}],
      "tcb":{{"accept":["UpToDate","ConfigurationAndSWHardeningNeeded"]}}}})", kPhalaMrenclave));
  EXPECT_TRUE(open.check(claims).ok());
  auto narrow = policy(fmt::format(R"({{"version":1,"measurements":[{{"tee":"sgx","mrenclave":"{}"}}],
      "tcb":{{"accept":[{{"status":"ConfigurationAndSWHardeningNeeded","advisory_ids":["INTEL-SA-00615"]}}]}}}})",
      kPhalaMrenclave));
  expect_rejected(narrow, claims,
                  "tcb-status: ConfigurationAndSWHardeningNeeded (INTEL-SA-00289, INTEL-SA-00615) not accepted");
  auto both = policy(fmt::format(R"({{"version":1,"measurements":[{{"tee":"sgx","mrenclave":"{}"}}],
      "tcb":{{"accept":[{{"status":"ConfigurationAndSWHardeningNeeded","advisory_ids":["INTEL-SA-00615","INTEL-SA-00289"]}}]}}}})",
      kPhalaMrenclave));
  EXPECT_TRUE(both.check(claims).ok());
}

// MRSIGNER rules need the product id and at least the minimum SVN; an unlisted enclave is named.
TEST(PolicyTest, MeasurementRules) {
  MOSS_REQUIRE_TESTDATA();
  auto claims = phala_claims();
  const char* accept = R"(,"tcb":{"accept":["ConfigurationAndSWHardeningNeeded"]})";
  auto signer = policy(fmt::format(R"({{"version":1,"measurements":[{{"tee":"sgx","mrsigner":"{}","product_id":0,"min_svn":0}}]{}}})", kPhalaMrsigner, accept));
  EXPECT_TRUE(signer.check(claims).ok());
  auto newer = policy(fmt::format(R"({{"version":1,"measurements":[{{"tee":"sgx","mrsigner":"{}","product_id":0,"min_svn":1}}]{}}})", kPhalaMrsigner, accept));
  EXPECT_FALSE(newer.check(claims).ok());
  auto other = policy(fmt::format(R"({{"version":1,"measurements":[{{"tee":"sgx","mrenclave":"{}"}}]{}}})", std::string(64, 'a'), accept));
  Status st = other.check(claims);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.message().rfind(std::string("measurement: sgx mrenclave ") + kPhalaMrenclave, 0), 0u) << st.message();
}

// A debug enclave is refused under the default policy even when its measurement is listed.
TEST(PolicyTest, DebugEnclaveRefusedByDefault) {
  MOSS_REQUIRE_TESTDATA();
  DcapVerifyOptions o{parse_rfc3339("2024-01-01T00:00:00Z").value_or_die(), nullptr, nullptr};
  auto claims = DcapVerifier::create().value_or_die().verify(read_quote("sgx-v3-mobilecoin-1.quote"), o).value_or_die();
  ASSERT_TRUE(claims.debug);
  auto p = policy(fmt::format(R"({{"version":1,"measurements":[{{"tee":"sgx","mrenclave":"{}"}}]}})", claims.measurement));
  expect_rejected(p, claims, "debug: debug enclave refused");
}

// Without collateral the default policy refuses; too-old collateral is refused by age.
TEST(PolicyTest, CollateralRequiredAndAgeLimited) {
  MOSS_REQUIRE_TESTDATA();
  auto claims = phala_claims();
  auto aged = policy(fmt::format(R"({{"version":1,"measurements":[{{"tee":"sgx","mrenclave":"{}"}}],
      "tcb":{{"accept":["ConfigurationAndSWHardeningNeeded"],"max_collateral_age_hours":24}}}})", kPhalaMrenclave));
  Status st = aged.check(claims);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.message().rfind("collateral-age:", 0), 0u) << st.message();
  claims.qe_identity_checked = false;
  auto p = policy(fmt::format(R"({{"version":1,"measurements":[{{"tee":"sgx","mrenclave":"{}"}}]}})", kPhalaMrenclave));
  st = p.check(claims);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.message().rfind("collateral:", 0), 0u) << st.message();
}

// Simulated claims are refused unless the policy allows simulation.
TEST(PolicyTest, SimulatedNeedsAllowSimulated) {
  Claims c;
  c.tee = TeeType::kSimulated;
  c.measurement = std::string(64, 'b');
  auto deny = policy(R"({"version":1,"measurements":[{"tee":"simulated","measurement":")" + c.measurement + R"("}]})");
  expect_rejected(deny, c, "simulated: simulated evidence not allowed by policy");
  auto allow = policy(R"({"version":1,"allow_simulated":true,"measurements":[{"tee":"simulated","measurement":")" + c.measurement + R"("}]})");
  EXPECT_TRUE(allow.check(c).ok());
}

// Unknown keys, versions and statuses are errors, so a typo cannot loosen a policy.
TEST(PolicyTest, StrictParsing) {
  EXPECT_FALSE(Policy::parse(R"({"version":2})").ok());
  EXPECT_FALSE(Policy::parse(R"({"measurements":[]})").ok());
  EXPECT_FALSE(Policy::parse(R"({"version":1,"alow_debug":true})").ok());
  EXPECT_FALSE(Policy::parse(R"({"version":1,"tcb":{"accept":["Revoked"]}})").ok());
  EXPECT_FALSE(Policy::parse(R"({"version":1,"measurements":[{"tee":"sgx","mrenclave":"zz"}]})").ok());
  EXPECT_FALSE(Policy::parse(R"({"version":1,"measurements":[{"tee":"tdx"}]})").ok());
  EXPECT_TRUE(Policy::parse(R"({"version":1})").ok());
}

// A policy is untrusted input: every value is type-checked and bounded, errors are values (no
// exception escapes), and a duplicate key (two answers to one question) is refused.
TEST(PolicyTest, UntrustedInputIsBoundedAndTypeChecked) {
  const std::string signer = fmt::format(R"("tee":"sgx","mrsigner":"{}")", kPhalaMrsigner);
  auto sgx = [&](const std::string& extra) {
    return Policy::parse(fmt::format(R"({{"version":1,"measurements":[{{{}{}}}]}})", signer, extra));
  };
  EXPECT_TRUE(sgx(R"(,"product_id":65535,"min_svn":65535)").ok());
  // 16-bit fields: 65536 would wrap to 0 and loosen the rule.
  EXPECT_FALSE(sgx(R"(,"product_id":65536)").ok());
  EXPECT_FALSE(sgx(R"(,"product_id":1,"min_svn":65536)").ok());
  EXPECT_FALSE(sgx(R"(,"product_id":-1)").ok());
  EXPECT_FALSE(sgx(R"(,"product_id":1.5)").ok());
  EXPECT_FALSE(sgx(R"(,"product_id":"1")").ok());
  EXPECT_FALSE(sgx(R"(,"product_id":1,"product_id":2)").ok());
  for (const char* text : {R"({"version":1,"version":1})", R"({"version":"1"})", R"({"version":1.0})",
                           R"({"version":1,"allow_debug":"yes"})", R"({"version":1,"name":7})",
                           R"({"version":1,"measurements":{}})", R"({"version":1,"measurements":[7]})",
                           R"({"version":1,"measurements":[{"tee":5}]})",
                           R"({"version":1,"tcb":{"accept":"UpToDate"}})",
                           R"({"version":1,"tcb":{"accept":[{"status":"UpToDate","advisory_ids":[1]}]}})",
                           R"({"version":1,"tcb":{"require_collateral":1}})",
                           R"({"version":1,"tcb":{"max_collateral_age_hours":-1}})", "[1]", "{"}) {
    auto p = Policy::parse(text);
    ASSERT_FALSE(p.ok()) << text;
    EXPECT_EQ(p.status().message().rfind("policy", 0), 0u) << p.status().message();
  }
  const std::string huge = R"({"version":1,"name":")" + std::string(1 << 20, 'a') + R"("})";
  EXPECT_NE(Policy::parse(huge).status().message().find("larger than"), std::string::npos);
  auto named = Policy::parse(R"({"version":1,"name":"prod","tcb":{"max_collateral_age_hours":24}})");
  ASSERT_TRUE(named.ok()) << named.status().to_string();
  EXPECT_EQ(named->name, "prod");
  EXPECT_EQ(named->max_collateral_age_seconds.value_or(0), 24 * 3600);
}

// TDX rules match MRTD and each listed RTMR.
TEST(PolicyTest, TdxRuleMatchesMrtdAndRtmrs) {
  Claims c;
  c.tee = TeeType::kTdx;
  c.measurement = std::string(96, 'a');
  c.rtmr = {std::string(96, '1'), std::string(96, '2'), std::string(96, '3'), std::string(96, '0')};
  c.tcb_status = "UpToDate";
  c.tcb_info_checked = c.qe_identity_checked = c.crls_checked = true;
  auto ok = policy(R"({"version":1,"measurements":[{"tee":"tdx","mrtd":")" + c.measurement + R"(","rtmr1":")" + c.rtmr[1] + R"("}]})");
  EXPECT_TRUE(ok.check(c).ok());
  auto bad = policy(R"({"version":1,"measurements":[{"tee":"tdx","mrtd":")" + c.measurement + R"(","rtmr1":")" + c.rtmr[0] + R"("}]})");
  EXPECT_FALSE(bad.check(c).ok());
}

}  // namespace
}  // namespace moss::attest
