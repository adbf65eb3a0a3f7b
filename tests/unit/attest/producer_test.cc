#include "attest/evidence_producer.h"
#include "common/file_util.h"
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
