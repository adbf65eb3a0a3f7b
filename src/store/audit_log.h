// The append-only, keyed hash-chained audit log (one SQLite table, written inside the caller's
// transaction so an event commits atomically with the change it records).
//
//   hash(n) = HMAC-SHA256(audit key, "moss-audit-v2" 0x00 || hash(n-1) || field*)
// with each field (seq, time_ms as decimal, type, actor, model_id, user_id, measurement, detail)
// encoded as a 4-byte big-endian length and its bytes; hash(0) is 32 zero bytes. The audit key is
// derived from the sealing key (StateAuth), so whoever holds the disk can neither edit an event
// nor recompute the chain after one: editing, removing or reordering any event breaks the chain
// from there on, and verify_audit_chain() says where. Cutting events off the end is caught against
// the head the owner of the log keeps elsewhere (the KeyService keeps it in its sealed state meta
// and signs it for clients: keyservice/state_meta.h).
// Stateless functions over a Database: not thread-safe beyond the Database's own rule.
#pragma once

#include "store/database.h"

#include <array>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

namespace moss::store {

// The table and its indexes (one per filter the query offers); include in the owner's migrations.
extern const std::string_view kAuditLogSchemaSql;

struct AuditEvent {
  std::string type;         // "grant.add", "key.release", ...
  std::string actor;        // principal id, or "worker:<measurement>"
  std::string model_id;     // may be empty
  std::string user_id;      // may be empty
  std::string measurement;  // may be empty
  std::string detail;       // short, never secret
};

struct AuditRecord {
  int64_t seq = 0;
  int64_t time_ms = 0;
  AuditEvent event;
  std::array<uint8_t, 32> prev_hash{};
  std::array<uint8_t, 32> hash{};
};

struct AuditHead {
  int64_t seq = 0;  // 0: empty log
  std::array<uint8_t, 32> hash{};
  bool operator==(const AuditHead&) const = default;
};

Result<std::array<uint8_t, 32>> audit_record_hash(std::span<const uint8_t> key,
                                                  const std::array<uint8_t, 32>& prev_hash,
                                                  int64_t seq, int64_t time_ms,
                                                  const AuditEvent& event);

// data-loss "audit-chain-broken" unless `record`'s hash is its MAC under `key` (its link to the
// previous record is the reader's to check).
Status check_record(std::span<const uint8_t> key, const AuditRecord& record);

// Appends after `head` (call inside a transaction) and returns the record (its seq and hash are
// the new head). `time_ms` is Unix time in milliseconds.
Result<AuditRecord> append_audit_event(Database& db, std::span<const uint8_t> key,
                                       const AuditHead& head, const AuditEvent& event,
                                       int64_t time_ms);

// Walks the whole log: sequence numbers 1..n without gaps, every prev_hash and hash recomputed.
// data-loss with reason "audit-chain-broken" naming the first bad sequence number.
Result<AuditHead> verify_audit_chain(Database& db, std::span<const uint8_t> key);

// Reads the log in order from after `after_seq`, at most `limit` records, every record's MAC
// checked (StateStore::audit_records).
using AuditPageReader =
    std::function<Result<std::vector<AuditRecord>>(int64_t after_seq, int64_t limit)>;
// The chain value (hash) of event `at` (0: the 32 zero bytes before the first event), proven part
// of the chain that ends at `head` (the owner's authoritative head): event `at`'s MAC and every
// event after it up to the head are checked, O(head.seq - at). invalid-argument when `at` is not
// in 0..head.seq; data-loss "audit-chain-broken"/"audit-head-mismatch" when the stored log does
// not lead from `at` to `head`.
Result<std::array<uint8_t, 32>> audit_chain_value_at(const AuditPageReader& read, int64_t at,
                                                     const AuditHead& head);

// The last record as stored (not verified).
Result<AuditHead> audit_head(Database& db);

inline constexpr int64_t kMaxAuditPage = 1000;

// The log in order from after `after_seq`, at most `limit` (1..kMaxAuditPage) records, each
// record's hash recomputed under `key` (data-loss "audit-chain-broken" if altered).
Result<std::vector<AuditRecord>> read_audit_log(Database& db, std::span<const uint8_t> key,
                                                int64_t after_seq, int64_t limit);

struct AuditQuery {
  std::string party;     // events whose model belongs to party, or naming it as user or actor
  std::string model_id;  // optional: only this model
  int64_t after_seq = 0;  // cursor: events with a larger sequence number
  int64_t limit = 100;    // 1..kMaxAuditPage
};
// Each filter runs as an index range scan from the cursor (never a scan of the whole log); every
// returned record's hash is recomputed under `key` (data-loss "audit-chain-broken" if altered).
// Whether `query`'s filters (not its cursor or page) select `record`: the rule query_audit's
// indexed filters implement, for stores that filter in memory.
bool audit_query_matches(const AuditQuery& query, const AuditRecord& record);
Result<std::vector<AuditRecord>> query_audit(Database& db, std::span<const uint8_t> key,
                                             const AuditQuery& query);

}  // namespace moss::store
