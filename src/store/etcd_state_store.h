// EtcdStateStore: the StateStore in an etcd v3 cluster shared by KeyService replicas
// (etcd_client.h: the HTTP/JSON gateway). etcd holds ciphertext and names that are MACs:
//
//   <prefix>head                         key check (32, clear) || sealed state head (state_head.h)
//   <prefix>t/<table>/<c1>/.../<ck>      one row: ci = hex of the first 16 bytes of
//                                        HMAC(name key, table, first i primary-key columns)
//   <prefix>a/<seq, 16 hex digits>       one audit record (its event, prev hash, hash)
//   <prefix>n/<HMAC(principal, nonce)>   a used request nonce, with a lease (expires)
// Every value is sealed (sealer.h) with the key name as associated data, so a value moved to
// another key does not open; rows also carry their version and row MAC (state_auth.h) and count in
// the head's accumulator, exactly as SQLite rows do. What etcd (and its operator) learns: the
// table names, how many rows each table has and which rows share a key prefix (e.g. how many
// grants one model has, not whose), value sizes, the audit log's length, how many nonces are live,
// and when each write happens. See docs/keyservice.md, "High availability".
//
// Consistency: write() reads the head (and, in the same txn, the ranges the body announced it will
// read), runs the body against the revision it read (plus its own pending changes), then commits every row, audit record and the new head in one etcd txn that
// compares the head's mod_revision with the one read. When another replica committed first the
// compare fails and the body runs again on the new state, so replicas never fork the audit chain
// and a release never commits after a revoke it did not see. Reads outside write() read the head
// and the rows in one txn (one revision, linearizable): no replica-local cache. A nonce is one txn
// (create if absent), so a request replayed to another replica is refused. The version an answer
// shows is never this replica's memory of an older read: every read of the head and every commit
// report what they saw with the number the read took when it started (SeenHeads), and
// seen_since() gives a head only to a request that such a read started after.
// Not thread-safe except where state_store.h says so.
#pragma once

#include "store/etcd_client.h"
#include "store/state_auth.h"
#include "store/state_head.h"
#include "store/state_store.h"

#include <atomic>
#include <map>
#include <mutex>
#include <optional>

namespace moss::store {

struct EtcdStoreOptions {
  EtcdClientOptions client;
  std::string prefix = "/moss/keyservice/";  // several states may share one cluster
  int max_write_attempts = 16;               // compare failures before giving up (unavailable)
};

class EtcdStateStore final : public StateStore {
 public:
  // Connects, creates the state when the prefix is empty (the first replica; a race between two
  // first replicas has one winner, the other opens its state), and verifies the whole state.
  static Result<std::unique_ptr<EtcdStateStore>> open(EtcdStoreOptions options,
                                                      std::vector<Table> tables, Sealer sealer);

  std::string describe() const override;
  Status write(const std::function<Status()>& body, const std::vector<Read>& reads = {}) override;
  Result<std::vector<Row>> select(const Table& table, const Match& match) override;
  Status insert(const Table& table, const Row& row) override;
  Result<int64_t> remove(const Table& table, const Match& match) override;
  Status audit(const AuditEvent& event, int64_t time_ms) override;
  Status use_nonce(std::string_view principal, std::string_view nonce, int64_t now_s,
                   int64_t retain_s) override;
  Result<std::vector<AuditRecord>> query_audit(const AuditQuery& query) override;
  Result<std::vector<AuditRecord>> audit_records(int64_t after_seq, int64_t limit) override;
  Result<StateHeadView> head() override;
  uint64_t read_ticket() const override { return seen_.ticket(); }
  std::optional<StateHeadView> seen_since(uint64_t ticket) const override { return seen_.since(ticket); }
  StateHeadView seen() const override { return seen_.newest(); }
  Status readable() override;
  Status verify_all() override;
  const SecretBytes& identity_seed() const override { return identity_seed_; }
  const Sealer& sealer() const override { return sealer_; }
  // HTTP requests sent to etcd by this store so far (both its clients).
  uint64_t etcd_round_trips() const { return client_->round_trips() + audit_client_->round_trips(); }

 private:
  EtcdStateStore(EtcdStoreOptions options, std::unique_ptr<EtcdClient> client,
                 std::unique_ptr<EtcdClient> audit_client, std::vector<Table> tables,
                 Sealer sealer, StateAuth auth, SecretBytes name_key);

  struct RowAt {  // a decoded, authenticated row and the version it was written at
    Row row;
    int64_t version = 0;
  };
  struct Pending {  // a row change of the write in progress
    std::optional<RowAt> put;  // nullopt: delete
    std::string sealed;
  };

  Status create_or_load();
  // Opens the head a read numbered `read` (seen_.begin_read()) returned, and reports it to seen_.
  Result<StateHead> decode_head(const EtcdKv& kv, uint64_t read);
  std::string row_key(const Table& t, const Row& row, size_t key_columns) const;
  Result<std::string> encode_row(const std::string& key, const Table& t, const Row& row,
                                 int64_t version) const;
  Result<RowAt> decode_row(const Table& t, const EtcdKv& kv, int64_t state_version) const;
  // The etcd range holding the rows `match` can select (the longest leading run of primary-key
  // columns it names: one key, or a key prefix), and that prefix.
  Result<std::pair<EtcdRange, std::string>> range_for(const Table& t, const Match& match) const;
  // Matching rows as of the write's snapshot plus its pending changes, keyed by etcd key.
  Result<std::map<std::string, RowAt>> matching(const Table& t, const Match& match);
  // Inside write(): what etcd held at read_revision_ in `range` (its own revision ignored), from
  // the announced reads when one of them covers it, else read now.
  Result<std::vector<EtcdKv>> read_in_write(const EtcdRange& range);
  std::string audit_key(int64_t seq) const;
  Result<std::string> encode_audit(const std::string& key, const AuditRecord& r) const;
  Result<AuditRecord> decode_audit(const EtcdKv& kv) const;
  Result<std::vector<AuditRecord>> read_audit(EtcdClient& client, int64_t after_seq, int64_t limit,
                                              int64_t revision);

  const EtcdStoreOptions options_;
  std::unique_ptr<EtcdClient> client_;        // writes and state reads (owner's mutex)
  std::unique_ptr<EtcdClient> audit_client_;  // audit queries and readable() (its own mutex)
  const std::vector<Table> tables_;
  const Sealer sealer_;
  const StateAuth auth_;
  const SecretBytes name_key_;
  SecretBytes identity_seed_;
  SeenHeads seen_;  // every head read and every commit report here (what answers show)

  // The write in progress (in_write_): the head it builds, the revision its reads see, the head's
  // mod_revision its commit compares, its pending row changes and audit records.
  bool in_write_ = false;
  StateHead head_;
  int64_t read_revision_ = 0;
  int64_t head_mod_revision_ = 0;
  std::map<std::string, Pending> pending_;
  std::vector<EtcdOp> pending_audit_;
  // The announced reads, fetched with the head: (key, range_end) -> what etcd held there.
  std::map<std::pair<std::string, std::string>, std::vector<EtcdKv>> fetched_;

  std::mutex lease_mu_;
  int64_t lease_ = 0;           // guarded by lease_mu_: the nonce lease in use
  int64_t lease_until_s_ = 0;   // guarded by lease_mu_: when to grant the next one
};

}  // namespace moss::store
