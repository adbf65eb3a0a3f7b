#include "common/encoding.h"
#include "attest/quote.h"
#include "testdata.h"

#include <gtest/gtest.h>

namespace moss::attest {
namespace {

using testing::expected;
using testing::read_quote;

// Every real quote parses and its fields match expected.json.
TEST(QuoteTest, ParsesEveryRealQuoteWithExpectedFields) {
  MOSS_REQUIRE_TESTDATA();
  auto exp = expected();
  ASSERT_GE(exp["quotes"].size(), 10u);
  for (const auto& [name, e] : exp["quotes"].items()) {
    SCOPED_TRACE(name);
    auto bytes = read_quote(name);
    ASSERT_EQ(bytes.size(), e["size"].get<size_t>());
    auto q = parse_quote(bytes);
    ASSERT_TRUE(q.ok()) << q.status().to_string();
    EXPECT_EQ(q->header.version, e["version"].get<int>());
    EXPECT_EQ(q->is_tdx, e["tee"] == "TDX");
    EXPECT_EQ(q->header.att_key_type, e["att_key_type"].get<int>());
    EXPECT_EQ(q->header.qe_svn, e["qe_svn"].get<int>());
    EXPECT_EQ(q->header.pce_svn, e["pce_svn"].get<int>());
    EXPECT_EQ(hex_encode(q->header.qe_vendor_id), e["qe_vendor_id"]);
    EXPECT_EQ(hex_encode(q->header.user_data), e["header_user_data"]);
    EXPECT_EQ(q->sig_data_len, e["sig_data_len"].get<uint32_t>());
    EXPECT_EQ(q->trailing_bytes, e["trailing_bytes_after_sig_data"].get<size_t>());
    EXPECT_EQ(q->cert_data_type, e["cert_data_type"].get<int>());
    if (e["outer_cert_data_type"].is_null()) EXPECT_EQ(q->outer_cert_data_type, 0);
    else EXPECT_EQ(q->outer_cert_data_type, e["outer_cert_data_type"].get<int>());
    const auto& r = e["report"];
    EXPECT_EQ(hex_encode(q->report_data()), r["reportdata"]);
    if (q->is_tdx) {
      EXPECT_EQ(hex_encode(q->td_body.mr_td), r["mrtd"]);
      EXPECT_EQ(hex_encode(q->td_body.tee_tcb_svn), r["tee_tcb_svn"]);
      if (r.contains("mrseam")) {  // not listed for the v5 quote
        EXPECT_EQ(hex_encode(q->td_body.mr_seam), r["mrseam"]);
        EXPECT_EQ(hex_encode(q->td_body.td_attributes), r["td_attributes"]);
        EXPECT_EQ(hex_encode(q->td_body.xfam), r["xfam"]);
      }
      EXPECT_EQ(q->td_body.is_v15, q->header.version == 5);
      for (int i = 0; i < 4; ++i)
        EXPECT_EQ(hex_encode(q->td_body.rtmr[i]), r["rtmr" + std::to_string(i)]);
    } else {
      EXPECT_EQ(hex_encode(q->sgx_body.cpu_svn), r["cpusvn"]);
      EXPECT_EQ(hex_encode(q->sgx_body.attributes), r["attributes"]);
      EXPECT_EQ(hex_encode(q->sgx_body.mr_enclave), r["mrenclave"]);
      EXPECT_EQ(hex_encode(q->sgx_body.mr_signer), r["mrsigner"]);
      EXPECT_EQ(q->sgx_body.isv_prod_id, r["isvprodid"].get<int>());
      EXPECT_EQ(q->sgx_body.isv_svn, r["isvsvn"].get<int>());
    }
    const auto& qe = e["qe_report"];
    EXPECT_EQ(hex_encode(q->qe_report.mr_enclave), qe["mrenclave"]);
    EXPECT_EQ(hex_encode(q->qe_report.mr_signer), qe["mrsigner"]);
    EXPECT_EQ(q->qe_report.isv_prod_id, qe["isvprodid"].get<int>());
    EXPECT_EQ(q->qe_report.isv_svn, qe["isvsvn"].get<int>());
    EXPECT_NE(q->pck_chain_pem.find("-----BEGIN CERTIFICATE-----"), std::string::npos);
    EXPECT_EQ(q->pck_chain_pem.find('\0'), std::string::npos);
  }
}

// Encoding a parsed quote gives back the original bytes, minus any trailing padding (these
// quotes' PEM chains carry no NUL terminator, which the parser drops).
TEST(QuoteTest, EncodeRoundTripsRealQuotes) {
  MOSS_REQUIRE_TESTDATA();
  for (const char* name : {"sgx-v3-mobilecoin-1.quote", "sgx-v3-trustee-1.quote", "tdx-v4-google-1.quote"}) {
    auto bytes = read_quote(name);
    auto q = parse_quote(bytes);
    ASSERT_TRUE(q.ok());
    auto enc = encode_quote(*q);
    bytes.resize(bytes.size() - q->trailing_bytes);
    EXPECT_EQ(enc, bytes) << name;
  }
}

// Every truncation of a real quote is rejected as malformed, never read past its end.
TEST(QuoteTest, RejectsEveryTruncation) {
  MOSS_REQUIRE_TESTDATA();
  auto bytes = read_quote("tdx-v4-phala-1.quote");
  auto q = parse_quote(bytes);
  ASSERT_TRUE(q.ok());
  size_t full = bytes.size() - q->trailing_bytes;
  for (size_t n = 0; n < full; n += 7) {
    auto r = parse_quote(std::span(bytes.data(), n));
    ASSERT_FALSE(r.ok()) << n;
  }
}

// Unsupported versions and key types are refused with a message naming the field.
TEST(QuoteTest, RefusesUnknownVersionAndKeyType) {
  MOSS_REQUIRE_TESTDATA();
  auto bytes = read_quote("sgx-v3-phala-1.quote");
  auto v = bytes;
  v[0] = 2;
  auto r = parse_quote(v);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("version 2"), std::string::npos);
  auto k = bytes;
  k[2] = 3;
  r = parse_quote(k);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("key type 3"), std::string::npos);
}

// A signature-data length that points past the end is rejected.
TEST(QuoteTest, RejectsSignatureLengthPastEnd) {
  MOSS_REQUIRE_TESTDATA();
  auto bytes = read_quote("sgx-v3-phala-1.quote");
  bytes[432 + 3] = 0x7f;
  auto r = parse_quote(bytes);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("signature data"), std::string::npos);
}

}  // namespace
}  // namespace moss::attest
