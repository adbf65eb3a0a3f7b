// StateStore: SQLite tables whose every row is authenticated (StateAuth), a sealed state meta row,
// and the keyed audit log, all moving together under one monotonically increasing state version.
//
// Each write transaction (write()) bumps the state version; every row it writes carries that
// version and a MAC over (table, all columns, version), checked by every read. The sealed meta
// row holds the version, the secret XOR accumulator of all live rows' set elements, the audit
// head and the KeyService's signing identity; open() re-reads every row and the audit chain and
// refuses a state that does not match it. What this cannot see by itself: the whole file put back
// to an older consistent copy. That is why the version goes out with every answer and clients
// refuse to go backwards (docs/keyservice.md, threat model).
//
// Failures carry a reason a program can test (message "<reason>: ..."):
//   sealing-key-mismatch (failed-precondition)  the key check says: another sealing key
//   state-format-unsupported (failed-precondition) a database from before row authentication
//   state-meta-altered, state-meta-missing, state-row-altered, state-rows-changed,
//   audit-chain-broken, audit-head-mismatch (data-loss)  the file was edited
// Not thread-safe: the owner serialises calls with its own mutex (KeyState does).
#pragma once

#include "common/secret_bytes.h"
#include "common/status.h"
#include "store/audit_log.h"
#include "store/database.h"
#include "store/sealer.h"
#include "store/state_auth.h"

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace moss::store {

struct Column {
  enum Kind { kText, kInt, kBlob };
  const char* name;
  Kind kind;
};
struct Table {
  const char* name;
  std::vector<Column> columns;
};
// One row's values in column order: text as is, integers as decimal text, blobs as raw bytes.
using Row = std::vector<std::string>;

class StateStore {
 public:
  // Opens (creating) the database, applies `schema_sql` (the tables, each with the extra columns
  // "row_version INTEGER NOT NULL, mac BLOB NOT NULL") and verifies the whole state against the
  // sealed meta (see the header comment). `tables` lists every authenticated table.
  static Result<std::unique_ptr<StateStore>> open(const std::filesystem::path& path,
                                                  std::string_view schema_sql,
                                                  std::vector<Table> tables, Sealer sealer);

  // Runs `body` in one transaction that commits as the next state version (rolled back, version
  // unchanged, when `body` or the commit fails).
  Status write(const std::function<Status()>& body);

  // Rows of `table` matching `where_sql` (the text after WHERE; may end in ORDER BY/LIMIT) with
  // positional text arguments; every row's MAC is checked.
  Result<std::vector<Row>> select(const Table& table, std::string_view where_sql,
                                  const Row& args = {});
  // Inside write(): inserts a row (already-exists when its primary key is taken); deletes the
  // matching rows and returns how many.
  Status insert(const Table& table, const Row& row);
  Result<int64_t> remove(const Table& table, std::string_view where_sql, const Row& args);
  // Inside write(): appends an audit event.
  Status audit(const AuditEvent& event, int64_t time_ms);

  int64_t version() const { return version_; }
  const AuditHead& audit_head() const { return audit_; }
  std::span<const uint8_t> audit_key() const { return auth_.audit_key(); }
  // The raw Ed25519 seed of the KeyService's signing identity (created with the state).
  const SecretBytes& identity_seed() const { return identity_seed_; }
  Database& db() { return *db_; }
  const Sealer& sealer() const { return sealer_; }  // immutable, thread-safe

  // Re-reads everything (as open() does): rows against the accumulator, the audit chain against
  // the head.
  Status verify_all();

 private:
  StateStore(DatabasePtr db, std::vector<Table> tables, Sealer sealer, StateAuth auth)
      : db_(std::move(db)), tables_(std::move(tables)), sealer_(std::move(sealer)),
        auth_(std::move(auth)) {}
  Status load_meta();
  Status store_meta();
  Result<Row> read_row(const Table& table, const Statement& st, int64_t* row_version);

  DatabasePtr db_;
  std::vector<Table> tables_;
  Sealer sealer_;
  StateAuth auth_;
  int64_t version_ = 0;
  Mac digest_{};
  AuditHead audit_;
  SecretBytes identity_seed_;
  bool in_write_ = false;
};

}  // namespace moss::store
