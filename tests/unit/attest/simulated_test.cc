#include "attest/evidence_producer.h"
#include "common/encoding.h"
#include "attest/evidence_verifier.h"
#include "attest/simulated.h"
#include "common/file_util.h"
#include "temp_dir.h"

#include <sys/stat.h>

#include <gtest/gtest.h>

namespace moss::attest {
namespace {

using testing::TempDir;

std::array<uint8_t, 64> report_data(uint8_t fill) {
  std::array<uint8_t, 64> rd{};
  rd.fill(fill);
  return rd;
}

// The platform key file is created on first use with mode 0600 and reused afterwards.
TEST(SimulatedTest, PlatformKeyIsCreatedPrivateAndReused) {
  TempDir dir;
  auto path = dir.path() / "sub" / "sim.key";
  auto a = SimPlatformKey::load_or_create(path);
  ASSERT_TRUE(a.ok()) << a.status().to_string();
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto b = SimPlatformKey::load_or_create(path);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(a->public_key(), b->public_key());
  ::chmod(path.c_str(), 0644);
  auto c = SimPlatformKey::load_or_create(path);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("readable by others"), std::string::npos);
}

// The measurement depends on both the binary and the identity string.
TEST(SimulatedTest, MeasurementCoversBinaryAndIdentity) {
  TempDir dir;
  auto bin = dir.path() / "bin";
  ASSERT_TRUE(write_text_file(bin, "binary one").ok());
  auto m1 = simulated_measurement(bin, "worker").value_or_die();
  EXPECT_EQ(m1, simulated_measurement(bin, "worker").value_or_die());
  EXPECT_NE(m1, simulated_measurement(bin, "keyservice").value_or_die());
  ASSERT_TRUE(write_text_file(bin, "binary two").ok());
  EXPECT_NE(m1, simulated_measurement(bin, "worker").value_or_die());
}

// Evidence from the sim producer verifies when allowed, labelled simulated, with its report data.
TEST(SimulatedTest, RoundTripVerifiesWhenAllowed) {
  TempDir dir;
  ProducerConfig cfg;
  cfg.kind = "sim";
  cfg.sim_key_file = dir.path() / "sim.key";
  cfg.sim_identity = "worker";
  auto producer = make_producer(cfg).value_or_die();
  EXPECT_EQ(producer->name(), "sim");
  auto rd = report_data(7);
  auto ev = producer->produce(rd).value_or_die();
  auto verifier = EvidenceVerifier::create().value_or_die();
  EvidenceVerifyOptions o;
  o.allow_simulated = true;
  o.sim_platform_key = SimPlatformKey::load_public_key(cfg.sim_key_file).value_or_die();
  auto claims = verifier.verify_and_check(ev.bytes, o, rd, nullptr);
  ASSERT_TRUE(claims.ok()) << claims.status().to_string();
  EXPECT_TRUE(claims->simulated());
  EXPECT_EQ(claims->tcb_status, "Simulated");
  EXPECT_EQ(claims->simulated_identity, "worker");
  auto expected = simulated_measurement("/proc/self/exe", "worker").value_or_die();
  EXPECT_EQ(claims->measurement, hex_encode(expected));
  EXPECT_EQ(claims_to_json(*claims)["tee"], "simulated");
}

// Simulated evidence is refused unless explicitly allowed, before any other check.
TEST(SimulatedTest, RefusedUnlessAllowed) {
  TempDir dir;
  auto key = SimPlatformKey::load_or_create(dir.path() / "k").value_or_die();
  auto ev = key.sign_evidence({}, report_data(1), "x").value_or_die();
  auto verifier = EvidenceVerifier::create().value_or_die();
  EvidenceVerifyOptions o;
  o.sim_platform_key = key.public_key();
  auto r = verifier.verify(ev, o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("simulated: simulated evidence refused"), std::string::npos);
}

// Evidence signed by another platform key, or altered after signing, is rejected.
TEST(SimulatedTest, WrongKeyAndTamperingAreRejected) {
  TempDir dir;
  auto key = SimPlatformKey::load_or_create(dir.path() / "a").value_or_die();
  auto other = SimPlatformKey::load_or_create(dir.path() / "b").value_or_die();
  auto ev = key.sign_evidence({}, report_data(1), "x").value_or_die();
  auto r = verify_simulated_evidence(ev, other.public_key(), true, 0);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("signed by platform key"), std::string::npos);
  ev[50] ^= 1;  // inside the report data
  r = verify_simulated_evidence(ev, key.public_key(), true, 0);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("signature does not verify"), std::string::npos);
  ev.pop_back();
  EXPECT_FALSE(verify_simulated_evidence(ev, key.public_key(), true, 0).ok());
}

// Evidence carrying other report data fails the report-data check.
TEST(SimulatedTest, WrongReportDataIsRejected) {
  TempDir dir;
  auto key = SimPlatformKey::load_or_create(dir.path() / "k").value_or_die();
  auto ev = key.sign_evidence({}, report_data(1), "x").value_or_die();
  auto verifier = EvidenceVerifier::create().value_or_die();
  EvidenceVerifyOptions o;
  o.allow_simulated = true;
  o.sim_platform_key = key.public_key();
  auto r = verifier.verify_and_check(ev, o, report_data(2), nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("report-data:"), std::string::npos);
}

}  // namespace
}  // namespace moss::attest
