#include "attest/connection_attestation.h"
#include "attest/evidence_producer.h"
#include "common/file_util.h"
#include "net/http_message.h"
#include "net/tls_credentials.h"
#include "temp_dir.h"

#include <gtest/gtest.h>

namespace moss::attest {
namespace {

using testing::TempDir;

std::vector<uint8_t> bytes(std::string_view s) { return {s.begin(), s.end()}; }

// The Gramine producer writes the report data to user_report_data and returns the quote file.
TEST(ProducerTest, GramineWritesReportDataAndReadsQuote) {
  TempDir dir;
  ASSERT_TRUE(write_text_file(dir.path() / "quote", "QUOTE-BYTES").ok());
  ProducerConfig cfg;
  cfg.kind = "sgx-gramine";
  cfg.gramine_dir = dir.path();
  auto p = make_producer(cfg).value_or_die();
  std::array<uint8_t, 64> rd{};
  rd[0] = 0xAB;
  auto ev = p->produce(rd).value_or_die();
  EXPECT_EQ(ev.producer, "sgx-gramine");
  EXPECT_EQ(ev.bytes, bytes("QUOTE-BYTES"));
  auto written = read_file(dir.path() / "user_report_data", 1024).value_or_die();
  EXPECT_EQ(written, std::vector<uint8_t>(rd.begin(), rd.end()));
}

// The tsm producer writes inblob in its report entry and reads outblob, provider and auxblob.
TEST(ProducerTest, TsmWritesInblobAndReadsOutblob) {
  TempDir dir;
  auto entry = dir.path() / "moss-test";
  std::filesystem::create_directories(entry);
  ASSERT_TRUE(write_text_file(entry / "outblob", "TDX-QUOTE").ok());
  ASSERT_TRUE(write_text_file(entry / "provider", "tdx_guest\n").ok());
  ASSERT_TRUE(write_text_file(entry / "auxblob", "AUX").ok());
  ProducerConfig cfg;
  cfg.kind = "tsm";
  cfg.tsm_dir = dir.path();
  cfg.tsm_entry = "moss-test";
  auto p = make_producer(cfg).value_or_die();
  std::array<uint8_t, 64> rd{};
  rd[63] = 0x5A;
  auto ev = p->produce(rd).value_or_die();
  EXPECT_EQ(ev.producer, "tsm");
  EXPECT_EQ(ev.provider, "tdx_guest");
  EXPECT_EQ(ev.bytes, bytes("TDX-QUOTE"));
  EXPECT_EQ(ev.aux, bytes("AUX"));
  auto inblob = read_file(entry / "inblob", 1024).value_or_die();
  EXPECT_EQ(inblob, std::vector<uint8_t>(rd.begin(), rd.end()));
}

// Per-connection freshness works through every producer: the connection attestation hook makes
// the Gramine and tsm producers bind the connection's report data (exporter, certificate key,
// purpose) and sends exactly the evidence they return.
TEST(ProducerTest, ConnectionAttestationHookDrivesGramineAndTsm) {
  TempDir dir;
  ASSERT_TRUE(write_text_file(dir.path() / "quote", "SGX-QUOTE").ok());
  auto entry = dir.path() / "tsm" / "moss-test";
  std::filesystem::create_directories(entry);
  ASSERT_TRUE(write_text_file(entry / "outblob", "TDX-QUOTE").ok());
  ASSERT_TRUE(write_text_file(entry / "provider", "tdx_guest\n").ok());
  ProducerConfig gramine;
  gramine.kind = "sgx-gramine";
  gramine.gramine_dir = dir.path();
  ProducerConfig tsm;
  tsm.kind = "tsm";
  tsm.tsm_dir = dir.path() / "tsm";
  tsm.tsm_entry = "moss-test";

  auto cert = net::generate_self_signed().value_or_die();
  const auto der = net::certificate_pem_to_der(cert.cert_pem).value_or_die();
  const std::vector<uint8_t> exporter(32, 0x11);
  const auto expected = connection_report_data(exporter, net::certificate_public_key_sha256(der).value_or_die(),
                                               "moss-worker");
  for (const auto& [cfg, written, quote] :
       {std::tuple{gramine, dir.path() / "user_report_data", std::string("SGX-QUOTE")},
        std::tuple{tsm, entry / "inblob", std::string("TDX-QUOTE")}}) {
    auto hook = make_connection_attestation_hook(make_shared_producer(make_producer(cfg).value_or_die()),
                                                 "moss-worker", "/v1/attest-connection");
    net::Request sent;
    net::NewConnection c;
    c.tls_exporter = exporter;
    c.local_certificate_der = der;
    c.send = [&sent](const net::Request& r) -> Result<net::Response> {
      sent = r;
      return net::Response::json(200, R"({"attested":true})");
    };
    ASSERT_TRUE(hook(c).ok()) << cfg.kind;
    EXPECT_EQ(read_file(written, 1024).value_or_die(), std::vector<uint8_t>(expected.begin(), expected.end()))
        << cfg.kind;
    EXPECT_EQ(sent.target, "/v1/attest-connection");
    EXPECT_EQ(sent.body, quote);
    EXPECT_EQ(sent.headers.get_or("Content-Type", ""), "application/octet-stream");
  }
}

// Auto-detection picks Gramine, then tsm, and falls back to sim only when allowed.
TEST(ProducerTest, AutoDetectionOrderAndSimFallback) {
  TempDir dir;
  ProducerConfig cfg;
  cfg.gramine_dir = dir.path() / "attestation";
  cfg.tsm_dir = dir.path() / "tsm";
  cfg.sim_key_file = dir.path() / "sim.key";
  auto none = make_producer(cfg);
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("no TEE found"), std::string::npos);
  cfg.allow_simulated_fallback = true;
  EXPECT_EQ(make_producer(cfg).value_or_die()->name(), "sim");
  std::filesystem::create_directories(cfg.tsm_dir);
  EXPECT_EQ(make_producer(cfg).value_or_die()->name(), "tsm");
  std::filesystem::create_directories(cfg.gramine_dir);
  ASSERT_TRUE(write_text_file(cfg.gramine_dir / "quote", "q").ok());
  EXPECT_EQ(make_producer(cfg).value_or_die()->name(), "sgx-gramine");
}

// An unknown producer name is an error naming the choices.
TEST(ProducerTest, UnknownKindIsRejected) {
  ProducerConfig cfg;
  cfg.kind = "sev";
  auto r = make_producer(cfg);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("auto, sim, sgx-gramine, tsm"), std::string::npos);
}

}  // namespace
}  // namespace moss::attest
