// Tests for src/client/seen_state_versions.cc (the file shared with the Python client) and the
// judging rules of src/crypto/keyservice_state.cc it feeds: a legitimate advance passes (the same
// head at a higher version without a request; a longer log once proven), a fork does not.
#include "client/seen_state_versions.h"
#include "common/encoding.h"
#include "common/file_util.h"
#include "crypto/identity.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>

namespace moss::client {
namespace {
namespace fs = std::filesystem;
using crypto::KeyServiceState;
using crypto::SeenKeyServiceState;
using crypto::StateJudgement;

constexpr char kUrl[] = "https://127.0.0.1:7443";

std::array<uint8_t, 32> hash_of(uint8_t b) {
  std::array<uint8_t, 32> h{};
  h.fill(b);
  return h;
}

class SeenStateVersionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("moss-seen-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path file() const { return dir_ / kSeenVersionsFile; }
  fs::path dir_;
};

TEST_F(SeenStateVersionsTest, RecordsInThePythonClientsFormat) {
  EXPECT_EQ(seen_keyservice_state(dir_, kUrl).value_or_die().audit_seq, -1);  // no file yet
  SeenKeyServiceState s{5, 3, hash_of(1), ""};
  ASSERT_TRUE(record_keyservice_state(dir_, kUrl, s).ok());
  // byte for byte what clients/python/tests/test_state_versions.py expects of both writers
  EXPECT_EQ(read_text_file(file(), 4096).value_or_die(),
            "{\n \"https://127.0.0.1:7443\": {\n  \"state_version\": 5,\n  \"audit_seq\": 3,\n"
            "  \"audit_hash\": \"" + hex_encode(hash_of(1)) + "\"\n }\n}\n");
  ASSERT_TRUE(record_keyservice_state(dir_, kUrl, {4, 3, hash_of(1), ""}).ok());  // lower: kept
  auto back = seen_keyservice_state(dir_, kUrl).value_or_die();
  EXPECT_EQ(back.version, 5);
  EXPECT_EQ(back.audit_seq, 3);
  EXPECT_EQ(back.audit_hash, hash_of(1));
}

TEST_F(SeenStateVersionsTest, TheVersionOnlyFormatStillReads) {
  fs::create_directories(dir_);
  ASSERT_TRUE(write_text_file(file(), R"({"https://127.0.0.1:7443": 7, "other": "x"})").ok());
  auto s = seen_keyservice_state(dir_, kUrl).value_or_die();
  EXPECT_EQ(s.version, 7);
  EXPECT_EQ(s.audit_seq, -1);
  // No head yet: the next answer's head is taken as seen; a lower version is still a rollback.
  EXPECT_EQ(crypto::judge_keyservice_state(kUrl, s, {8, 4, hash_of(2)}).value_or_die(), StateJudgement::kFresh);
  EXPECT_FALSE(crypto::judge_keyservice_state(kUrl, s, {6, 4, hash_of(2)}).ok());
  // A malformed record fails closed.
  ASSERT_TRUE(write_text_file(file(), R"({"https://127.0.0.1:7443": {"state_version": 1}})").ok());
  EXPECT_EQ(seen_keyservice_state(dir_, kUrl).status().code(), ErrorCode::kDataLoss);
}

TEST_F(SeenStateVersionsTest, ALegitimateAdvancePassesAndAForkDoesNot) {
  const SeenKeyServiceState seen{9, 3, hash_of(1), ""};
  // The same head at a higher version (nonces only): fresh without a proof.
  EXPECT_EQ(crypto::judge_keyservice_state(kUrl, seen, {12, 3, hash_of(1)}).value_or_die(), StateJudgement::kFresh);
  // Another head at or before the remembered sequence: forked.
  for (KeyServiceState a : {KeyServiceState{12, 3, hash_of(2)}, KeyServiceState{12, 2, hash_of(1)}}) {
    auto j = crypto::judge_keyservice_state(kUrl, seen, a);
    ASSERT_FALSE(j.ok());
    EXPECT_EQ(j.status().message().rfind("keyservice-forked:", 0), 0u) << j.status().to_string();
  }
  // A longer log needs the proof, at the remembered sequence.
  const KeyServiceState answered{12, 5, hash_of(5)};
  EXPECT_EQ(crypto::judge_keyservice_state(kUrl, seen, answered).value_or_die(), StateJudgement::kNeedsProof);
  EXPECT_EQ(crypto::audit_proof_target(seen), "/v1/audit/head?at=3");
  auto identity = crypto::Identity::generate().value_or_die();
  auto proof = [&](int64_t at, std::array<uint8_t, 32> at_hash, const crypto::Identity& signer) {
    std::string msg = crypto::audit_proof_signing_message(5, hex_encode(hash_of(5)), 13, at, hex_encode(at_hash));
    return nlohmann::json{{"seq", 5}, {"hash", hex_encode(hash_of(5))}, {"state_version", 13},
                          {"at", at}, {"at_hash", hex_encode(at_hash)},
                          {"keyservice_key", base64_encode(signer.public_key().raw())},
                          {"signature", base64_encode(signer.sign(as_bytes(msg)).value_or_die())}}
        .dump();
  };
  auto now = crypto::verify_audit_proof(kUrl, seen, answered, proof(3, hash_of(1), identity));
  ASSERT_TRUE(now.ok()) << now.status().to_string();
  EXPECT_EQ(now->version, 13);
  EXPECT_EQ(now->audit_seq, 5);
  EXPECT_EQ(now->keyservice_key, base64_encode(identity.public_key().raw()));
  auto forked = crypto::verify_audit_proof(kUrl, seen, answered, proof(3, hash_of(7), identity));
  ASSERT_FALSE(forked.ok());
  EXPECT_EQ(forked.status().message().rfind("keyservice-forked:", 0), 0u);
  // Another state identity than the pinned one.
  auto other = crypto::Identity::generate().value_or_die();
  EXPECT_FALSE(crypto::verify_audit_proof(kUrl, *now, {13, 6, hash_of(6)}, proof(5, hash_of(5), other)).ok());
  // A wrong question or a bad signature is malformed, not a fork.
  EXPECT_EQ(crypto::verify_audit_proof(kUrl, seen, answered, proof(2, hash_of(1), identity)).status().code(),
            ErrorCode::kDataLoss);
  EXPECT_EQ(crypto::verify_audit_proof(kUrl, seen, answered, "{}").status().code(), ErrorCode::kDataLoss);
}

TEST_F(SeenStateVersionsTest, HeadHeaderParsing) {
  auto s = crypto::parse_keyservice_state("7", "3 " + hex_encode(hash_of(0xab)));
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->audit_seq, 3);
  for (std::string head : {std::string("3"), "3  " + hex_encode(hash_of(1)), "x " + hex_encode(hash_of(1)),
                           "3 " + std::string(64, 'A'), "-3 " + hex_encode(hash_of(1))}) {
    EXPECT_FALSE(crypto::parse_keyservice_state("7", head).has_value()) << head;
  }
  EXPECT_FALSE(crypto::parse_keyservice_state(std::nullopt, "3 " + hex_encode(hash_of(1))).has_value());
}

}  // namespace
}  // namespace moss::client
