#include "store/audit_log.h"

#include "common/encoding.h"
#include "crypto/hash.h"
#include "store/state_auth.h"

#include <algorithm>
#include <cstring>
#include <map>

namespace moss::store {

// model_owner (the part of model_id before '/') is stored so that "events on this party's models"
// is an index lookup, not a prefix scan. seq is the rowid, so each index below is in effect
// (column, seq): a filter plus a cursor is one range scan.
const std::string_view kAuditLogSchemaSql = R"sql(
CREATE TABLE audit_log (
  seq INTEGER PRIMARY KEY,
  time_ms INTEGER NOT NULL,
  type TEXT NOT NULL,
  actor TEXT NOT NULL,
  model_id TEXT NOT NULL,
  model_owner TEXT NOT NULL,
  user_id TEXT NOT NULL,
  measurement TEXT NOT NULL,
  detail TEXT NOT NULL,
  prev_hash BLOB NOT NULL,
  hash BLOB NOT NULL
);
CREATE INDEX audit_log_model ON audit_log(model_id);
CREATE INDEX audit_log_owner ON audit_log(model_owner);
CREATE INDEX audit_log_user ON audit_log(user_id);
CREATE INDEX audit_log_user_model ON audit_log(user_id, model_id);
CREATE INDEX audit_log_actor ON audit_log(actor);
CREATE INDEX audit_log_actor_model ON audit_log(actor, model_id);
)sql";

namespace {

std::array<uint8_t, 32> to_hash(const std::vector<uint8_t>& blob) {
  std::array<uint8_t, 32> h{};
  if (blob.size() == 32) std::memcpy(h.data(), blob.data(), 32);
  return h;
}

AuditRecord read_record(const Statement& st) {
  AuditRecord r;
  r.seq = st.column_int(0);
  r.time_ms = st.column_int(1);
  r.event.type = st.column_text(2);
  r.event.actor = st.column_text(3);
  r.event.model_id = st.column_text(4);
  r.event.user_id = st.column_text(5);
  r.event.measurement = st.column_text(6);
  r.event.detail = st.column_text(7);
  r.prev_hash = to_hash(st.column_blob(8));
  r.hash = to_hash(st.column_blob(9));
  return r;
}

constexpr char kColumns[] =
    "seq, time_ms, type, actor, model_id, user_id, measurement, detail, prev_hash, hash";

std::string owner_of(std::string_view model_id) {
  size_t slash = model_id.find('/');
  return slash == std::string_view::npos ? std::string() : std::string(model_id.substr(0, slash));
}

Status broken(int64_t seq, std::string_view what) {
  return Status(ErrorCode::kDataLoss,
                fmt::format("audit-chain-broken: audit log event {} {}", seq, what));
}

}  // namespace

Status check_record(std::span<const uint8_t> key, const AuditRecord& r) {
  MOSS_ASSIGN_OR_RETURN(auto h, audit_record_hash(key, r.prev_hash, r.seq, r.time_ms, r.event));
  if (h != r.hash) return broken(r.seq, "was altered (MAC mismatch)");
  return Status::Ok();
}

Result<std::array<uint8_t, 32>> audit_record_hash(std::span<const uint8_t> key,
                                                  const std::array<uint8_t, 32>& prev_hash,
                                                  int64_t seq, int64_t time_ms,
                                                  const AuditEvent& e) {
  std::string buf("moss-audit-v2", 13);
  buf.push_back('\0');
  buf.append(as_chars(prev_hash));
  append_field(buf, std::to_string(seq));
  append_field(buf, std::to_string(time_ms));
  for (std::string_view f : {std::string_view(e.type), std::string_view(e.actor),
                             std::string_view(e.model_id), std::string_view(e.user_id),
                             std::string_view(e.measurement), std::string_view(e.detail)}) {
    append_field(buf, f);
  }
  return crypto::hmac_sha256(key, as_bytes(buf));
}

Result<AuditHead> audit_head(Database& db) {
  MOSS_ASSIGN_OR_RETURN(auto st, db.prepare("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1"));
  MOSS_ASSIGN_OR_RETURN(bool row, st.step());
  AuditHead head;
  if (row) {
    head.seq = st.column_int(0);
    head.hash = to_hash(st.column_blob(1));
  }
  return head;
}

Result<AuditRecord> append_audit_event(Database& db, std::span<const uint8_t> key,
                                       const AuditHead& head, const AuditEvent& event,
                                       int64_t time_ms) {
  AuditRecord r;
  r.seq = head.seq + 1;
  r.time_ms = time_ms;
  r.event = event;
  r.prev_hash = head.hash;
  MOSS_ASSIGN_OR_RETURN(r.hash, audit_record_hash(key, r.prev_hash, r.seq, r.time_ms, r.event));
  MOSS_ASSIGN_OR_RETURN(auto st, db.prepare(std::string("INSERT INTO audit_log (") + kColumns +
                                            ", model_owner) VALUES (?,?,?,?,?,?,?,?,?,?,?)"));
  st.bind(1, r.seq).bind(2, r.time_ms).bind(3, event.type).bind(4, event.actor);
  st.bind(5, event.model_id).bind(6, event.user_id).bind(7, event.measurement).bind(8, event.detail);
  st.bind_blob(9, r.prev_hash).bind_blob(10, r.hash).bind(11, owner_of(event.model_id));
  MOSS_RETURN_IF_ERROR(st.run());
  return r;
}

namespace {
// Walks the events from `st` (ordered by seq) after `head`: each must follow it without a gap,
// link to it and carry its recomputed MAC; returns the last one.
Result<AuditHead> walk_chain(Statement& st, std::span<const uint8_t> key, AuditHead head) {
  while (true) {
    MOSS_ASSIGN_OR_RETURN(bool row, st.step());
    if (!row) break;
    AuditRecord r = read_record(st);
    if (r.seq != head.seq + 1) return broken(r.seq, fmt::format("follows {} (events missing)", head.seq));
    if (r.prev_hash != head.hash) return broken(r.seq, fmt::format("does not link to event {}", head.seq));
    MOSS_RETURN_IF_ERROR(check_record(key, r));
    head.seq = r.seq;
    head.hash = r.hash;
  }
  return head;
}
}  // namespace

Result<AuditHead> verify_audit_chain(Database& db, std::span<const uint8_t> key) {
  MOSS_ASSIGN_OR_RETURN(auto st, db.prepare(std::string("SELECT ") + kColumns +
                                            " FROM audit_log ORDER BY seq"));
  return walk_chain(st, key, AuditHead{});
}

Result<std::array<uint8_t, 32>> audit_chain_value_at(const AuditPageReader& read, int64_t at,
                                                     const AuditHead& head) {
  if (at < 0 || at > head.seq) {
    return invalid_argument("audit sequence {} is not in the log (head {})", at, head.seq);
  }
  if (at == head.seq) return head.hash;
  if (at == 0) return std::array<uint8_t, 32>{};  // the chain's fixed start
  // Event `at` as stored (its MAC checked by the reader), then every later event linked up to the
  // head: a record the host put in place of event `at` (even an authentic one from another copy)
  // does not lead to the head this KeyService holds.
  std::array<uint8_t, 32> value{};
  AuditHead last{at - 1, {}};
  while (last.seq < head.seq) {
    MOSS_ASSIGN_OR_RETURN(auto page, read(last.seq, std::min(kMaxAuditPage, head.seq - last.seq)));
    if (page.empty()) break;
    for (const AuditRecord& r : page) {
      if (r.seq != last.seq + 1) return broken(last.seq + 1, "is missing");
      if (r.seq == at) {
        value = r.hash;
      } else if (r.prev_hash != last.hash) {
        return broken(r.seq, fmt::format("does not link to event {}", last.seq));
      }
      last = {r.seq, r.hash};
      if (last.seq == head.seq) break;
    }
  }
  if (last != head) {
    return Status(ErrorCode::kDataLoss,
                  fmt::format("audit-head-mismatch: the audit log from event {} does not lead to "
                              "the head {} (ends at {})", at, head.seq, last.seq));
  }
  return value;
}

Result<std::vector<AuditRecord>> read_audit_log(Database& db, std::span<const uint8_t> key,
                                                int64_t after_seq, int64_t limit) {
  if (limit < 1 || limit > kMaxAuditPage) {
    return invalid_argument("audit page size must be 1..{}", kMaxAuditPage);
  }
  MOSS_ASSIGN_OR_RETURN(auto st, db.prepare(std::string("SELECT ") + kColumns +
                                            " FROM audit_log WHERE seq > ?1 ORDER BY seq LIMIT ?2"));
  st.bind(1, after_seq).bind(2, limit);
  std::vector<AuditRecord> out;
  while (true) {
    MOSS_ASSIGN_OR_RETURN(bool row, st.step());
    if (!row) break;
    AuditRecord r = read_record(st);
    const int64_t expected = after_seq + 1 + static_cast<int64_t>(out.size());
    if (r.seq != expected) return broken(r.seq, fmt::format("follows {} (events missing)", expected - 1));
    MOSS_RETURN_IF_ERROR(check_record(key, r));
    out.push_back(std::move(r));
  }
  return out;
}

bool audit_query_matches(const AuditQuery& q, const AuditRecord& r) {
  const AuditEvent& e = r.event;
  if (q.model_id.empty()) return owner_of(e.model_id) == q.party || e.user_id == q.party || e.actor == q.party;
  if (e.model_id != q.model_id) return false;
  return owner_of(q.model_id) == q.party || e.user_id == q.party || e.actor == q.party;
}

Result<std::vector<AuditRecord>> query_audit(Database& db, std::span<const uint8_t> key,
                                             const AuditQuery& q) {
  if (q.limit < 1 || q.limit > kMaxAuditPage) {
    return invalid_argument("audit page size must be 1..{}", kMaxAuditPage);
  }
  // The party's events are the union of three indexed filters; each is read from the cursor up to
  // the page size, and the union's first `limit` events by sequence are the page.
  std::vector<std::string> filters;
  if (q.model_id.empty()) {
    filters = {"model_owner = ?1", "user_id = ?1", "actor = ?1"};
  } else if (owner_of(q.model_id) == q.party) {
    filters = {"model_id = ?2"};  // every event on the party's own model
  } else {
    filters = {"user_id = ?1 AND model_id = ?2", "actor = ?1 AND model_id = ?2"};
  }
  std::map<int64_t, AuditRecord> page;
  for (const std::string& filter : filters) {
    MOSS_ASSIGN_OR_RETURN(auto st, db.prepare(std::string("SELECT ") + kColumns +
                                              " FROM audit_log WHERE " + filter +
                                              " AND seq > ?3 ORDER BY seq LIMIT ?4"));
    st.bind(1, q.party).bind(2, q.model_id).bind(3, q.after_seq).bind(4, q.limit);
    while (true) {
      MOSS_ASSIGN_OR_RETURN(bool row, st.step());
      if (!row) break;
      AuditRecord r = read_record(st);
      page.emplace(r.seq, std::move(r));
    }
  }
  std::vector<AuditRecord> out;
  for (auto& [seq, r] : page) {
    if (static_cast<int64_t>(out.size()) == q.limit) break;
    MOSS_RETURN_IF_ERROR(check_record(key, r));
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace moss::store
