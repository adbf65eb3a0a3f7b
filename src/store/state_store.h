// StateStore: the KeyService's durable state as authenticated tables, a sealed state head and the
// keyed audit log, all moving together under one monotonically increasing state version. Two
// implementations: SqliteStateStore (one file, the default; sqlite_state_store.h) and
// EtcdStateStore (replicas over an etcd cluster; etcd_state_store.h). Both give the same answers
// to the same calls (tests/unit/store/state_store_conformance_test.cc runs one suite on both).
//
// The model is tables with a primary key (the first `key_columns` columns); rows are read and
// removed by equality on named columns (Match), never by backend-specific query text. Each write
// (write()) bumps the state version; every row it writes carries that version and a MAC over
// (table, all columns, version) (state_auth.h), checked by every read. The sealed state head
// (state_head.h) holds the version, the secret XOR accumulator of all live rows' set elements, the
// audit head and the KeyService's signing identity; opening re-reads every row and the audit chain
// and refuses a state that does not match it. What this cannot see by itself: the whole state put
// back to an older consistent copy. That is why the version goes out with every answer and clients
// refuse to go backwards (docs/keyservice.md, threat model).
//
// Failures carry a reason a program can test (message "<reason>: ..."):
//   sealing-key-mismatch (failed-precondition)  the key check says: another sealing key
//   state-format-unsupported (failed-precondition) a SQLite file from before row authentication
//   state-meta-altered, state-meta-missing, state-row-altered, state-rows-changed,
//   audit-chain-broken, audit-head-mismatch (data-loss)  the state was edited
//   state-write-conflict (unavailable)  etcd: other replicas committed first, attempt after attempt
// Not thread-safe unless a method says so: the owner serialises calls with its own mutex
// (KeyState does).
#pragma once

#include "common/secret_bytes.h"
#include "common/status.h"
#include "store/audit_log.h"
#include "store/sealer.h"

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
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
  size_t key_columns = 1;  // the primary key: the first key_columns columns
  // The column's index; -1 when the table has none of that name.
  int column_index(std::string_view column) const;
};
// One row's values in column order: text as is, integers as decimal text, blobs as raw bytes.
using Row = std::vector<std::string>;

// Rows whose named columns equal the given values (all of them). Integers as decimal text.
struct Eq {
  const char* column;
  std::string value;
};
using Match = std::vector<Eq>;

// The state version and the audit head as of one consistent read.
struct StateHeadView {
  int64_t version = 0;
  AuditHead audit;
};

// The newest state head a store has seen and whether a given request may show it (thread-safe).
// A read of the head takes a number when it starts (begin_read()) and reports what it read when it
// completes (saw()); a request takes a ticket when it arrives (ticket()): a read numbered at or
// above the ticket started after the request arrived.
class SeenHeads {
 public:
  uint64_t ticket() const { return started_.load() + 1; }
  uint64_t begin_read() { return started_.fetch_add(1) + 1; }
  void saw(uint64_t read, const StateHeadView& head);
  // The newest head seen, when a read numbered `ticket` or later has completed.
  std::optional<StateHeadView> since(uint64_t ticket) const;
  StateHeadView newest() const;

 private:
  std::atomic<uint64_t> started_{0};
  mutable std::mutex mu_;
  StateHeadView head_;     // guarded by mu_: the highest version seen
  uint64_t through_ = 0;   // guarded by mu_: the highest-numbered read that completed
};

class StateStore {
 public:
  virtual ~StateStore() = default;

  // What the state lives in, for logs ("sqlite <path>", "etcd <endpoints> prefix <p>").
  virtual std::string describe() const = 0;

  // Runs `body` as one change that commits as the next state version, atomically with its audit
  // events (nothing of it stays when `body` or the commit fails). The etcd store may run `body`
  // more than once (when another replica committed first); it must only read and write through
  // this store and set results it returns. `reads`: the selects (and removes) `body` will make,
  // announced so that etcd fetches them together with the state head in one round trip instead
  // of one each (a write is then two: that read and the commit). Only a hint: `body` may read
  // anything, announced or not, with the same answers; SQLite ignores it.
  struct Read {
    const Table* table;
    Match match;
  };
  virtual Status write(const std::function<Status()>& body, const std::vector<Read>& reads = {}) = 0;

  // Rows of `table` matching `match`, in primary-key order (integer columns numerically); every
  // row is authenticated. Inside write(): as of the state that write builds on.
  virtual Result<std::vector<Row>> select(const Table& table, const Match& match) = 0;
  // Inside write(): inserts a row (already-exists when its primary key is taken); deletes the
  // matching rows and returns how many.
  virtual Status insert(const Table& table, const Row& row) = 0;
  virtual Result<int64_t> remove(const Table& table, const Match& match) = 0;
  // Inside write(): appends an audit event.
  virtual Status audit(const AuditEvent& event, int64_t time_ms) = 0;

  // Records a request nonce of `principal` (its own write; not part of the versioned state on
  // etcd, where it expires with a lease after `retain_s`). already-exists when it was used before,
  // on any replica.
  virtual Status use_nonce(std::string_view principal, std::string_view nonce, int64_t now_s,
                           int64_t retain_s) = 0;

  // Thread-safe, and never waits for a write: the audit events a party may see (audit_log.h),
  // and the log in order from after `after_seq` (at most `limit`), every record's MAC checked.
  // audit_records(n - 1, 1) is event n with its chain value: what a fork-consistency check reads.
  virtual Result<std::vector<AuditRecord>> query_audit(const AuditQuery& query) = 0;
  virtual Result<std::vector<AuditRecord>> audit_records(int64_t after_seq, int64_t limit) = 0;

  // The current version and audit head. SQLite: the one writer's. etcd: read linearizably now, so
  // a change another replica committed is included.
  virtual Result<StateHeadView> head() = 0;

  // Thread-safe, no I/O: what an answer may show of the state. read_ticket() is taken when a
  // request arrives; seen_since(ticket) is then the newest head this store has seen committed,
  // provided a read of the head that started after the ticket was taken has completed (a
  // linearizable read includes every change acknowledged before it started, on any replica), and
  // nullopt when none has: the head seen before may be older than what another replica has
  // acknowledged since. SQLite: the one writer's committed head, always.
  virtual uint64_t read_ticket() const = 0;
  virtual std::optional<StateHeadView> seen_since(uint64_t ticket) const = 0;
  // The newest head seen committed, however long ago (never goes backwards).
  virtual StateHeadView seen() const = 0;
  int64_t version() const { return seen().version; }
  // Thread-safe, and never waits for a write: OK when the store can be read now (readiness).
  // SQLite: always (the file is open). etcd: one linearizable read of the head key.
  virtual Status readable() = 0;

  // Re-reads everything (as opening does): rows against the accumulator, the audit chain against
  // the head.
  virtual Status verify_all() = 0;

  // The raw Ed25519 seed of the KeyService's signing identity (created with the state).
  virtual const SecretBytes& identity_seed() const = 0;
  virtual const Sealer& sealer() const = 0;  // immutable, thread-safe
};
using StateStorePtr = std::unique_ptr<StateStore>;

}  // namespace moss::store
