// SqliteStateStore: the StateStore in one SQLite file (the default: one KeyService on one machine).
//
// Each table is a SQLite table with the extra columns "row_version INTEGER NOT NULL, mac BLOB NOT
// NULL"; the sealed head is the one row of state_meta (next to the key check, in clear); the audit
// log is audit_log.h's table; used request nonces are the authenticated table `nonces`, pruned now
// and then. A write is one SQLite transaction (durable on return: database.h). Audit queries run
// on a second, read-only connection (WAL), so they never wait for, or hold up, the writer.
// Not thread-safe except where state_store.h says so.
#pragma once

#include "store/database.h"
#include "store/state_auth.h"
#include "store/state_head.h"
#include "store/state_store.h"

#include <filesystem>
#include <mutex>

namespace moss::store {

class SqliteStateStore final : public StateStore {
 public:
  // Opens (creating) the database, applies `schema_sql` (the tables, each with the extra columns
  // above) and verifies the whole state against the sealed head. `tables` lists every
  // authenticated table the schema creates.
  static Result<std::unique_ptr<SqliteStateStore>> open(const std::filesystem::path& path,
                                                        std::string_view schema_sql,
                                                        std::vector<Table> tables, Sealer sealer);

  std::string describe() const override { return "sqlite " + path_.string(); }
  Status write(const std::function<Status()>& body, const std::vector<Read>& reads = {}) override;
  Result<std::vector<Row>> select(const Table& table, const Match& match) override;
  Status insert(const Table& table, const Row& row) override;
  Result<int64_t> remove(const Table& table, const Match& match) override;
  Status audit(const AuditEvent& event, int64_t time_ms) override;
  Status use_nonce(std::string_view principal, std::string_view nonce, int64_t now_s,
                   int64_t retain_s) override;
  Result<std::vector<AuditRecord>> query_audit(const AuditQuery& query) override;
  Result<std::vector<AuditRecord>> audit_records(int64_t after_seq, int64_t limit) override;
  Result<StateHeadView> head() override { return StateHeadView{head_.version, head_.audit}; }
  // The one writer's head is the state: every answer may show it.
  uint64_t read_ticket() const override { return 0; }
  std::optional<StateHeadView> seen_since(uint64_t) const override { return seen(); }
  StateHeadView seen() const override;
  Status readable() override { return Status::Ok(); }
  Status verify_all() override;
  const SecretBytes& identity_seed() const override { return head_.identity_seed; }
  const Sealer& sealer() const override { return sealer_; }

  Database& db() { return *db_; }

 private:
  SqliteStateStore(std::filesystem::path path, DatabasePtr db, DatabasePtr reader,
                   std::vector<Table> tables, Sealer sealer, StateAuth auth)
      : path_(std::move(path)), db_(std::move(db)), reader_(std::move(reader)),
        tables_(std::move(tables)), sealer_(std::move(sealer)), auth_(std::move(auth)) {}
  Status load_meta();
  Status store_meta();
  Result<Row> read_row(const Table& table, const Statement& st, int64_t* row_version);
  // "SELECT <columns> FROM <table> WHERE <match>" (or DELETE), parameters bound.
  Result<Statement> prepare_matching(const char* verb, const Table& table, const Match& match,
                                     std::string_view suffix);
  // Deletes what `select` reads (and `del` deletes), taking each row out of the accumulator.
  Result<int64_t> remove_selected(const Table& table, Statement& select, Statement& del);

  const std::filesystem::path path_;
  DatabasePtr db_;
  std::mutex reader_mu_;  // never held with the owner's mutex
  DatabasePtr reader_;    // guarded by reader_mu_
  std::vector<Table> tables_;
  Sealer sealer_;
  StateAuth auth_;
  StateHead head_;
  mutable std::mutex committed_mu_;
  StateHeadView committed_;  // guarded by committed_mu_: head_ as of the last commit
  uint64_t nonce_inserts_ = 0;
  bool in_write_ = false;
};

}  // namespace moss::store
