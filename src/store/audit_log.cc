#include "store/audit_log.h"

#include "common/encoding.h"
#include "crypto/hash.h"

#include <cstring>

namespace moss::store {

const std::string_view kAuditLogSchemaSql = R"sql(
CREATE TABLE audit_log (
  seq INTEGER PRIMARY KEY,
  time_ms INTEGER NOT NULL,
  type TEXT NOT NULL,
  actor TEXT NOT NULL,
  model_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  measurement TEXT NOT NULL,
  detail TEXT NOT NULL,
  prev_hash BLOB NOT NULL,
  hash BLOB NOT NULL
);
CREATE INDEX audit_log_model ON audit_log(model_id);
CREATE INDEX audit_log_user ON audit_log(user_id);
)sql";

namespace {

void put_field(std::string& out, std::string_view field) {
  uint32_t n = static_cast<uint32_t>(field.size());
  out.push_back(static_cast<char>(n >> 24));
  out.push_back(static_cast<char>(n >> 16));
  out.push_back(static_cast<char>(n >> 8));
  out.push_back(static_cast<char>(n));
  out.append(field);
}

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

}  // namespace

std::array<uint8_t, 32> audit_record_hash(const std::array<uint8_t, 32>& prev_hash, int64_t seq,
                                          int64_t time_ms, const AuditEvent& e) {
  std::string buf("moss-audit-v1", 13);
  buf.push_back('\0');
  buf.append(as_chars(prev_hash));
  put_field(buf, std::to_string(seq));
  put_field(buf, std::to_string(time_ms));
  for (std::string_view f : {std::string_view(e.type), std::string_view(e.actor),
                             std::string_view(e.model_id), std::string_view(e.user_id),
                             std::string_view(e.measurement), std::string_view(e.detail)}) {
    put_field(buf, f);
  }
  return crypto::sha256(as_bytes(buf));
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

Result<AuditRecord> append_audit_event(Database& db, const AuditEvent& event, int64_t time_ms) {
  MOSS_ASSIGN_OR_RETURN(AuditHead head, audit_head(db));
  AuditRecord r;
  r.seq = head.seq + 1;
  r.time_ms = time_ms;
  r.event = event;
  r.prev_hash = head.hash;
  r.hash = audit_record_hash(r.prev_hash, r.seq, r.time_ms, r.event);
  MOSS_ASSIGN_OR_RETURN(auto st, db.prepare(std::string("INSERT INTO audit_log (") + kColumns +
                                            ") VALUES (?,?,?,?,?,?,?,?,?,?)"));
  st.bind(1, r.seq).bind(2, r.time_ms).bind(3, event.type).bind(4, event.actor);
  st.bind(5, event.model_id).bind(6, event.user_id).bind(7, event.measurement).bind(8, event.detail);
  st.bind_blob(9, r.prev_hash).bind_blob(10, r.hash);
  MOSS_RETURN_IF_ERROR(st.run());
  return r;
}

Result<AuditHead> verify_audit_chain(Database& db) {
  MOSS_ASSIGN_OR_RETURN(auto st, db.prepare(std::string("SELECT ") + kColumns +
                                            " FROM audit_log ORDER BY seq"));
  AuditHead head;
  while (true) {
    MOSS_ASSIGN_OR_RETURN(bool row, st.step());
    if (!row) break;
    AuditRecord r = read_record(st);
    if (r.seq != head.seq + 1) {
      return data_loss("audit log: event {} follows {} (events missing)", r.seq, head.seq);
    }
    if (r.prev_hash != head.hash) {
      return data_loss("audit log: event {} does not link to event {}", r.seq, head.seq);
    }
    if (audit_record_hash(r.prev_hash, r.seq, r.time_ms, r.event) != r.hash) {
      return data_loss("audit log: event {} was altered (hash mismatch)", r.seq);
    }
    head.seq = r.seq;
    head.hash = r.hash;
  }
  return head;
}

Result<std::vector<AuditRecord>> query_audit(Database& db, const AuditQuery& q) {
  std::string sql = std::string("SELECT ") + kColumns +
                    " FROM audit_log WHERE seq > ?1 AND (substr(model_id, 1, length(?2) + 1) = "
                    "?2 || '/' OR user_id = ?2 OR actor = ?2)";
  if (!q.model_id.empty()) sql += " AND model_id = ?3";
  sql += " ORDER BY seq LIMIT ?4";
  MOSS_ASSIGN_OR_RETURN(auto st, db.prepare(sql));
  st.bind(1, q.after_seq).bind(2, q.party).bind(4, q.limit);
  if (!q.model_id.empty()) st.bind(3, q.model_id);
  std::vector<AuditRecord> out;
  while (true) {
    MOSS_ASSIGN_OR_RETURN(bool row, st.step());
    if (!row) break;
    out.push_back(read_record(st));
  }
  return out;
}

}  // namespace moss::store
