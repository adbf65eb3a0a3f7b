// Tests for src/store: database migrations, the sealer, sealing key sources, the audit chain.
#include "common/encoding.h"
#include "common/file_util.h"
#include "store/audit_log.h"
#include "store/database.h"
#include "store/sealer.h"
#include "store/sealing_key.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

namespace moss::store {
namespace {
namespace fs = std::filesystem;

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "moss-store-XXXXXX").string();
    dir_ = mkdtemp(tmpl.data());
  }
  void TearDown() override { fs::remove_all(dir_); }
  DatabasePtr open_with_audit() {
    auto db = Database::open(dir_ / "t.db");
    EXPECT_TRUE(db.ok()) << db.status().to_string();
    const Migration m[] = {{1, kAuditLogSchemaSql}};
    EXPECT_TRUE((*db)->migrate(m).ok());
    return std::move(db).value();
  }
  fs::path dir_;
};

Sealer make_sealer(uint8_t fill) {
  SecretBytes key(32);
  std::fill(key.data(), key.data() + 32, fill);
  return Sealer::create(std::move(key)).value_or_die();
}

// Migrations run once, record their version, and a newer file than the binary knows is refused.
TEST_F(StoreTest, MigrationsApplyOnceAndRefuseANewerSchema) {
  {
    auto db = Database::open(dir_ / "m.db").value_or_die();
    const Migration m[] = {{1, "CREATE TABLE a (x INTEGER)"}, {2, "CREATE TABLE b (y INTEGER)"}};
    ASSERT_TRUE(db->migrate(m).ok());
    ASSERT_TRUE(db->migrate(m).ok());  // idempotent
    EXPECT_EQ(db->schema_version().value_or_die(), 2);
  }
  auto db = Database::open(dir_ / "m.db").value_or_die();
  const Migration older[] = {{1, "CREATE TABLE a (x INTEGER)"}};
  EXPECT_EQ(db->migrate(older).code(), ErrorCode::kDataLoss);
  struct stat st {};
  ASSERT_EQ(::stat((dir_ / "m.db").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 077, 0u);
}

// A failing transaction body leaves nothing behind.
TEST_F(StoreTest, TransactionRollsBackOnError) {
  auto db = Database::open(dir_ / "t.db").value_or_die();
  ASSERT_TRUE(db->exec("CREATE TABLE a (x INTEGER)").ok());
  Status s = db->transaction([&]() -> Status {
    EXPECT_TRUE(db->exec("INSERT INTO a VALUES (1)").ok());
    return internal_error("boom");
  });
  EXPECT_FALSE(s.ok());
  auto st = db->prepare("SELECT COUNT(*) FROM a").value_or_die();
  ASSERT_TRUE(st.step().value_or_die());
  EXPECT_EQ(st.column_int(0), 0);
}

// Sealed values open only with the same key and the same associated data.
TEST_F(StoreTest, SealerBindsKeyAndAssociatedData) {
  Sealer a = make_sealer(1), b = make_sealer(2);
  std::vector<uint8_t> secret(32, 0x5a);
  auto sealed = a.seal("model-key/x/1", secret).value_or_die();
  EXPECT_EQ(sealed.size(), 1 + 12 + 32 + 16u);
  EXPECT_EQ(std::search(sealed.begin(), sealed.end(), secret.begin(), secret.end()), sealed.end());
  auto back = a.open("model-key/x/1", sealed);
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(back->equals(secret));
  EXPECT_EQ(a.open("model-key/x/2", sealed).status().code(), ErrorCode::kDataLoss);
  EXPECT_EQ(b.open("model-key/x/1", sealed).status().code(), ErrorCode::kDataLoss);
  sealed[20] ^= 1;
  EXPECT_EQ(a.open("model-key/x/1", sealed).status().code(), ErrorCode::kDataLoss);
}

// The file source creates a private key once and refuses a world-readable one; the Gramine source
// reads the pseudo-file's 16 bytes; both derive a 32-byte key.
TEST_F(StoreTest, SealingKeySourcesDeriveStableKeys) {
  auto file = make_file_sealing_key(dir_ / "sealing.key", true);
  auto k1 = derive_sealing_key(*file).value_or_die();
  auto k2 = derive_sealing_key(*file).value_or_die();
  EXPECT_EQ(k1.size(), 32u);
  EXPECT_TRUE(k1.equals(k2.span()));
  ::chmod((dir_ / "sealing.key").c_str(), 0644);
  EXPECT_EQ(derive_sealing_key(*file).status().code(), ErrorCode::kPermissionDenied);
  EXPECT_FALSE(derive_sealing_key(*make_file_sealing_key(dir_ / "absent.key", false)).ok());

  std::vector<uint8_t> raw(16, 7);
  ASSERT_TRUE(write_file(dir_ / "_sgx_mrenclave", raw, 0600).ok());
  auto g = derive_sealing_key(*make_gramine_sealing_key(dir_ / "_sgx_mrenclave"));
  ASSERT_TRUE(g.ok());
  EXPECT_FALSE(g->equals(k1.span()));
}

const std::vector<uint8_t> kAuditKey(32, 0x42);

// Appends in its own transaction after the current head.
Status append(Database& db, const AuditEvent& e, int64_t t) {
  return db.transaction([&]() -> Status {
    MOSS_ASSIGN_OR_RETURN(AuditHead head, audit_head(db));
    return append_audit_event(db, kAuditKey, head, e, t).status();
  });
}

// The chain verifies, and an edited, deleted or reordered event is found by sequence number; a
// chain recomputed without the key (as whoever holds the disk could) does not verify.
TEST_F(StoreTest, AuditChainDetectsEditsAndGaps) {
  auto db = open_with_audit();
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(append(*db, {"grant.add", "owner", "owner/m", "user", "ab", std::to_string(i)}, 1000 + i).ok());
  }
  auto head = verify_audit_chain(*db, kAuditKey);
  ASSERT_TRUE(head.ok()) << head.status().to_string();
  EXPECT_EQ(head->seq, 5);

  ASSERT_TRUE(db->exec("UPDATE audit_log SET user_id = 'mallory' WHERE seq = 3").ok());
  auto edited = verify_audit_chain(*db, kAuditKey);
  EXPECT_EQ(edited.status().code(), ErrorCode::kDataLoss);
  EXPECT_NE(edited.status().message().find("event 3"), std::string::npos);
  EXPECT_EQ(edited.status().message().rfind("audit-chain-broken:", 0), 0u);
  ASSERT_TRUE(db->exec("UPDATE audit_log SET user_id = 'user' WHERE seq = 3").ok());
  ASSERT_TRUE(verify_audit_chain(*db, kAuditKey).ok());
  // Another key (e.g. none, as before: a plain hash anyone can recompute) does not verify.
  EXPECT_FALSE(verify_audit_chain(*db, std::vector<uint8_t>(32, 0)).ok());

  ASSERT_TRUE(db->exec("DELETE FROM audit_log WHERE seq = 2").ok());
  auto gap = verify_audit_chain(*db, kAuditKey);
  EXPECT_EQ(gap.status().code(), ErrorCode::kDataLoss);
  EXPECT_NE(gap.status().message().find("event 3"), std::string::npos);
}

// Queries return what concerns a party: its models, or events naming it as user or actor; pages
// follow the cursor; an altered event is refused.
TEST_F(StoreTest, AuditQueryFiltersByPartyAndPages) {
  auto db = open_with_audit();
  ASSERT_TRUE(append(*db, {"model.key.set", "alice", "alice/m", "", "", ""}, 1).ok());
  ASSERT_TRUE(append(*db, {"grant.add", "alice", "alice/m", "bob", "ab", ""}, 2).ok());
  ASSERT_TRUE(append(*db, {"model.key.set", "carol", "carol/x", "", "", ""}, 3).ok());
  ASSERT_TRUE(append(*db, {"model.key.set", "alicex", "alicex/m", "", "", ""}, 4).ok());
  auto alice = query_audit(*db, kAuditKey, {"alice", "", 0, 100}).value_or_die();
  ASSERT_EQ(alice.size(), 2u);
  auto bob = query_audit(*db, kAuditKey, {"bob", "", 0, 100}).value_or_die();
  ASSERT_EQ(bob.size(), 1u);
  EXPECT_EQ(bob[0].event.type, "grant.add");
  EXPECT_EQ(query_audit(*db, kAuditKey, {"bob", "alice/m", 0, 100}).value_or_die().size(), 1u);
  EXPECT_EQ(query_audit(*db, kAuditKey, {"alice", "", 1, 100}).value_or_die().size(), 1u);
  EXPECT_EQ(query_audit(*db, kAuditKey, {"carol", "alice/m", 0, 100}).value_or_die().size(), 0u);
  EXPECT_FALSE(query_audit(*db, kAuditKey, {"alice", "", 0, kMaxAuditPage + 1}).ok());

  // 250 events for dave: pages of 100 by cursor, in order, without gaps or repeats.
  for (int i = 0; i < 250; ++i) {
    ASSERT_TRUE(append(*db, {"key.release", "worker:ab", "alice/m", "dave", "ab", ""}, 10 + i).ok());
  }
  std::vector<int64_t> seen;
  int64_t after = 0;
  for (int page = 0; page < 4; ++page) {
    auto events = query_audit(*db, kAuditKey, {"dave", "", after, 100}).value_or_die();
    for (const auto& e : events) seen.push_back(e.seq);
    if (events.empty()) break;
    after = events.back().seq;
  }
  ASSERT_EQ(seen.size(), 250u);
  for (size_t i = 1; i < seen.size(); ++i) EXPECT_EQ(seen[i], seen[i - 1] + 1);
  // Each filter is an index search, never a scan of the whole log.
  for (const char* filter : {"model_owner = 'alice'", "user_id = 'dave'", "actor = 'x'",
                             "user_id = 'dave' AND model_id = 'alice/m'"}) {
    auto plan = db->prepare(std::string("EXPLAIN QUERY PLAN SELECT seq FROM audit_log WHERE ") +
                            filter + " AND seq > 5 ORDER BY seq LIMIT 10").value_or_die();
    std::string text;
    while (plan.step().value_or_die()) text += plan.column_text(3) + ";";
    EXPECT_NE(text.find("INDEX audit_log_"), std::string::npos) << filter << ": " << text;
    EXPECT_EQ(text.find("TEMP B-TREE"), std::string::npos) << filter << ": " << text;
  }

  ASSERT_TRUE(db->exec("UPDATE audit_log SET detail = 'x' WHERE seq = 2").ok());
  EXPECT_EQ(query_audit(*db, kAuditKey, {"bob", "", 0, 100}).status().code(), ErrorCode::kDataLoss);
}

}  // namespace
}  // namespace moss::store
