// The append-only, hash-chained audit log (one SQLite table, written inside the caller's
// transaction so an event commits atomically with the change it records).
//
//   hash(n) = SHA-256("moss-audit-v1" 0x00 || hash(n-1) || field*)
// with each field (seq, time_ms as decimal, type, actor, model_id, user_id, measurement, detail)
// encoded as a 4-byte big-endian length and its bytes; hash(0) is 32 zero bytes. Editing,
// removing or reordering any event breaks the chain from there on, and verify_audit_chain() says
// where. (Cutting events off the end is detectable only against a head recorded elsewhere, e.g.
// one an owner read earlier.)
// Stateless functions over a Database: not thread-safe beyond the Database's own rule.
#pragma once

#include "store/database.h"

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace moss::store {

// The table; include in the owner's migrations.
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
};

std::array<uint8_t, 32> audit_record_hash(const std::array<uint8_t, 32>& prev_hash, int64_t seq,
                                          int64_t time_ms, const AuditEvent& event);

// Appends (call inside a transaction). `time_ms` is Unix time in milliseconds.
Result<AuditRecord> append_audit_event(Database& db, const AuditEvent& event, int64_t time_ms);

// Walks the whole log: sequence numbers 1..n without gaps, every prev_hash and hash recomputed.
// data-loss naming the first bad sequence number.
Result<AuditHead> verify_audit_chain(Database& db);

Result<AuditHead> audit_head(Database& db);

struct AuditQuery {
  std::string party;     // events whose model belongs to party, or naming it as user or actor
  std::string model_id;  // optional: only this model
  int64_t after_seq = 0;
  int64_t limit = 100;
};
Result<std::vector<AuditRecord>> query_audit(Database& db, const AuditQuery& query);

}  // namespace moss::store
