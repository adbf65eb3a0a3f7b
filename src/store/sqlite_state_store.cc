#include "store/sqlite_state_store.h"

#include "common/encoding.h"
#include "crypto/random.h"

#include <cstring>

namespace moss::store {

namespace {

constexpr int kSchemaVersion = 2;

const std::string_view kMetaSchemaSql = R"sql(
CREATE TABLE state_meta (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  key_check BLOB NOT NULL,
  sealed BLOB NOT NULL
);
)sql";

// Used request nonces: one authenticated table like the owner's (StateStore::use_nonce).
const std::string_view kNonceSchemaSql = R"sql(
CREATE TABLE nonces (
  principal_id TEXT NOT NULL,
  nonce TEXT NOT NULL,
  time_s INTEGER NOT NULL,
  row_version INTEGER NOT NULL,
  mac BLOB NOT NULL,
  PRIMARY KEY (principal_id, nonce)
);
CREATE INDEX nonces_time ON nonces(time_s);
)sql";

const Table kNonces{"nonces",
                    {{"principal_id", Column::kText}, {"nonce", Column::kText},
                     {"time_s", Column::kInt}},
                    2};

std::string column_list(const Table& t) {
  std::string out;
  for (const Column& c : t.columns) {
    out += c.name;
    out += ", ";
  }
  return out + "row_version, mac";
}

}  // namespace

Result<std::unique_ptr<SqliteStateStore>> SqliteStateStore::open(const std::filesystem::path& path,
                                                                  std::string_view schema_sql,
                                                                  std::vector<Table> tables,
                                                                  Sealer sealer) {
  MOSS_ASSIGN_OR_RETURN(auto db, Database::open(path));
  MOSS_ASSIGN_OR_RETURN(int schema, db->schema_version());
  if (schema != 0 && schema < kSchemaVersion) {
    return Status(ErrorCode::kFailedPrecondition,
                  fmt::format("state-format-unsupported: {} has schema version {}, from before the "
                              "state was authenticated; this version refuses to trust it. Start "
                              "from a new state directory (owners upload keys and grants again).",
                              path.string(), schema));
  }
  std::string sql = std::string(schema_sql) + std::string(kNonceSchemaSql) +
                    std::string(kMetaSchemaSql) + std::string(kAuditLogSchemaSql);
  const Migration migrations[] = {{kSchemaVersion, sql}};
  MOSS_RETURN_IF_ERROR(db->migrate(migrations));
  MOSS_ASSIGN_OR_RETURN(auto reader, Database::open_reader(path));
  MOSS_ASSIGN_OR_RETURN(StateAuth auth, StateAuth::derive(sealer));
  tables.push_back(kNonces);
  std::unique_ptr<SqliteStateStore> s(new SqliteStateStore(
      path, std::move(db), std::move(reader), std::move(tables), std::move(sealer), std::move(auth)));
  MOSS_RETURN_IF_ERROR(s->load_meta());
  MOSS_RETURN_IF_ERROR(s->verify_all());
  s->committed_ = {s->head_.version, s->head_.audit};
  return s;
}

Status SqliteStateStore::load_meta() {
  MOSS_ASSIGN_OR_RETURN(Mac check, auth_.key_check());
  MOSS_ASSIGN_OR_RETURN(auto st, db_->prepare("SELECT key_check, sealed FROM state_meta WHERE id = 1"));
  MOSS_ASSIGN_OR_RETURN(bool row, st.step());
  if (!row) {
    // A new state, unless anything is already in it (then the meta row was deleted).
    for (const Table& t : tables_) {
      MOSS_ASSIGN_OR_RETURN(auto any, db_->prepare(std::string("SELECT 1 FROM ") + t.name + " LIMIT 1"));
      MOSS_ASSIGN_OR_RETURN(bool has, any.step());
      if (has) return state_tampered("state-meta-missing", fmt::format("table {} has rows but the state has no meta row", t.name));
    }
    MOSS_ASSIGN_OR_RETURN(AuditHead head, store::audit_head(*db_));
    if (head.seq != 0) return state_tampered("state-meta-missing", "the audit log has events but the state has no meta row");
    MOSS_ASSIGN_OR_RETURN(head_.identity_seed, crypto::random_secret(32));
    return db_->transaction([&] { return store_meta(); });
  }
  auto stored_check = st.column_blob(0);
  if (stored_check.size() != check.size() ||
      std::memcmp(stored_check.data(), check.data(), check.size()) != 0) {
    return Status(ErrorCode::kFailedPrecondition,
                  "sealing-key-mismatch: the sealing key does not open this state (another "
                  "sealing key, or another TEE identity, than the one that created it)");
  }
  MOSS_ASSIGN_OR_RETURN(head_, open_state_head(sealer_, st.column_blob(1)));
  return Status::Ok();
}

Status SqliteStateStore::store_meta() {
  MOSS_ASSIGN_OR_RETURN(auto sealed, seal_state_head(sealer_, head_));
  MOSS_ASSIGN_OR_RETURN(Mac check, auth_.key_check());
  MOSS_ASSIGN_OR_RETURN(auto st, db_->prepare(
      "INSERT OR REPLACE INTO state_meta (id, key_check, sealed) VALUES (1, ?, ?)"));
  st.bind_blob(1, check).bind_blob(2, sealed);
  return st.run();
}

Status SqliteStateStore::verify_all() {
  Mac acc{};
  for (const Table& t : tables_) {
    MOSS_ASSIGN_OR_RETURN(auto st, db_->prepare("SELECT " + column_list(t) + " FROM " + t.name));
    while (true) {
      MOSS_ASSIGN_OR_RETURN(bool row, st.step());
      if (!row) break;
      int64_t row_version = 0;
      MOSS_ASSIGN_OR_RETURN(Row r, read_row(t, st, &row_version));
      MOSS_ASSIGN_OR_RETURN(Mac e, auth_.set_element(t.name, r, row_version));
      xor_into(acc, e);
    }
  }
  if (acc != head_.digest) {
    return state_tampered("state-rows-changed",
                          "rows were inserted, deleted or put back from an older copy of the state");
  }
  MOSS_ASSIGN_OR_RETURN(AuditHead head, verify_audit_chain(*db_, auth_.audit_key()));
  if (!(head == head_.audit)) {
    return state_tampered("audit-head-mismatch",
                          fmt::format("the audit log ends at event {}, the state recorded event {}",
                                      head.seq, head_.audit.seq));
  }
  return Status::Ok();
}

Result<Row> SqliteStateStore::read_row(const Table& t, const Statement& st, int64_t* row_version) {
  Row r;
  r.reserve(t.columns.size());
  int i = 0;
  for (const Column& c : t.columns) {
    switch (c.kind) {
      case Column::kInt: r.push_back(std::to_string(st.column_int(i))); break;
      case Column::kText: r.push_back(st.column_text(i)); break;
      case Column::kBlob: {
        auto b = st.column_blob(i);
        r.emplace_back(b.begin(), b.end());
        break;
      }
    }
    ++i;
  }
  *row_version = st.column_int(i);
  MOSS_RETURN_IF_ERROR(check_row(auth_, t.name, r, *row_version, st.column_blob(i + 1), head_.version));
  return r;
}

Result<Statement> SqliteStateStore::prepare_matching(const char* verb, const Table& t,
                                                     const Match& match, std::string_view suffix) {
  std::string where;
  for (size_t i = 0; i < match.size(); ++i) {
    if (t.column_index(match[i].column) < 0) {
      return internal_error("table {} has no column {}", t.name, match[i].column);
    }
    where += fmt::format("{}{} = ?{}", i ? " AND " : "", match[i].column, i + 1);
  }
  MOSS_ASSIGN_OR_RETURN(auto st, db_->prepare(fmt::format("{} FROM {} WHERE {}{}", verb, t.name,
                                                          where.empty() ? "1" : where, suffix)));
  for (size_t i = 0; i < match.size(); ++i) st.bind(static_cast<int>(i + 1), match[i].value);
  return st;
}

Result<std::vector<Row>> SqliteStateStore::select(const Table& t, const Match& match) {
  std::string order = " ORDER BY ";
  for (size_t i = 0; i < t.key_columns; ++i) order += fmt::format("{}{}", i ? ", " : "", t.columns[i].name);
  MOSS_ASSIGN_OR_RETURN(auto st, prepare_matching(("SELECT " + column_list(t)).c_str(), t, match, order));
  std::vector<Row> out;
  while (true) {
    MOSS_ASSIGN_OR_RETURN(bool row, st.step());
    if (!row) break;
    int64_t v = 0;
    MOSS_ASSIGN_OR_RETURN(Row r, read_row(t, st, &v));
    out.push_back(std::move(r));
  }
  return out;
}

Status SqliteStateStore::insert(const Table& t, const Row& row) {
  if (!in_write_) return internal_error("StateStore::insert outside write()");
  if (row.size() != t.columns.size()) return internal_error("row of {} columns for table {}", row.size(), t.name);
  std::string marks;
  for (size_t i = 0; i < t.columns.size() + 2; ++i) marks += i ? ", ?" : "?";
  MOSS_ASSIGN_OR_RETURN(auto st, db_->prepare(std::string("INSERT INTO ") + t.name + " (" +
                                              column_list(t) + ") VALUES (" + marks + ")"));
  for (size_t i = 0; i < row.size(); ++i) {
    int index = static_cast<int>(i + 1);
    switch (t.columns[i].kind) {
      case Column::kInt: st.bind(index, static_cast<int64_t>(std::stoll(row[i]))); break;
      case Column::kText: st.bind(index, row[i]); break;
      case Column::kBlob: st.bind_blob(index, as_bytes(row[i])); break;
    }
  }
  MOSS_ASSIGN_OR_RETURN(Mac mac, auth_.row_mac(t.name, row, head_.version));
  MOSS_ASSIGN_OR_RETURN(Mac element, auth_.set_element(t.name, row, head_.version));
  int n = static_cast<int>(row.size());
  st.bind(n + 1, head_.version).bind_blob(n + 2, mac);
  MOSS_RETURN_IF_ERROR(st.run());
  xor_into(head_.digest, element);
  return Status::Ok();
}

Result<int64_t> SqliteStateStore::remove(const Table& t, const Match& match) {
  if (!in_write_) return internal_error("StateStore::remove outside write()");
  MOSS_ASSIGN_OR_RETURN(auto select, prepare_matching(("SELECT " + column_list(t)).c_str(), t, match, ""));
  MOSS_ASSIGN_OR_RETURN(auto del, prepare_matching("DELETE", t, match, ""));
  return remove_selected(t, select, del);
}

Result<int64_t> SqliteStateStore::remove_selected(const Table& t, Statement& select, Statement& del) {
  // Read first (authenticated) to take each row's element out of the accumulator.
  int64_t n = 0;
  while (true) {
    MOSS_ASSIGN_OR_RETURN(bool row, select.step());
    if (!row) break;
    int64_t v = 0;
    MOSS_ASSIGN_OR_RETURN(Row r, read_row(t, select, &v));
    MOSS_ASSIGN_OR_RETURN(Mac element, auth_.set_element(t.name, r, v));
    xor_into(head_.digest, element);
    ++n;
  }
  MOSS_RETURN_IF_ERROR(del.run());
  if (db_->changes() != n) return internal_error("table {}: deleted {} rows, read {}", t.name, db_->changes(), n);
  return n;
}

Status SqliteStateStore::audit(const AuditEvent& event, int64_t time_ms) {
  if (!in_write_) return internal_error("StateStore::audit outside write()");
  MOSS_ASSIGN_OR_RETURN(AuditRecord r, append_audit_event(*db_, auth_.audit_key(), head_.audit, event, time_ms));
  head_.audit = {r.seq, r.hash};
  return Status::Ok();
}

Status SqliteStateStore::use_nonce(std::string_view principal, std::string_view nonce,
                                   int64_t now_s, int64_t retain_s) {
  return write([&]() -> Status {
    MOSS_RETURN_IF_ERROR(insert(kNonces, {std::string(principal), std::string(nonce), std::to_string(now_s)}));
    // Prune now and then: a nonce older than the retention can no longer pass the time window.
    if (++nonce_inserts_ % 256 == 0) {
      MOSS_ASSIGN_OR_RETURN(auto select, db_->prepare("SELECT " + column_list(kNonces) +
                                                      " FROM nonces WHERE time_s < ?1"));
      MOSS_ASSIGN_OR_RETURN(auto del, db_->prepare("DELETE FROM nonces WHERE time_s < ?1"));
      select.bind(1, now_s - retain_s);
      del.bind(1, now_s - retain_s);
      MOSS_RETURN_IF_ERROR(remove_selected(kNonces, select, del).status());
    }
    return Status::Ok();
  });
}

Result<std::vector<AuditRecord>> SqliteStateStore::query_audit(const AuditQuery& query) {
  std::lock_guard lock(reader_mu_);
  return store::query_audit(*reader_, auth_.audit_key(), query);
}

Result<std::vector<AuditRecord>> SqliteStateStore::audit_records(int64_t after_seq, int64_t limit) {
  std::lock_guard lock(reader_mu_);
  return read_audit_log(*reader_, auth_.audit_key(), after_seq, limit);
}

Status SqliteStateStore::write(const std::function<Status()>& body, const std::vector<Read>&) {
  if (in_write_) return internal_error("nested StateStore::write");
  const StateHead saved{head_.version, head_.digest, head_.audit, SecretBytes()};
  in_write_ = true;
  ++head_.version;
  Status s = db_->transaction([&]() -> Status {
    MOSS_RETURN_IF_ERROR(body());
    return store_meta();
  });
  in_write_ = false;
  if (!s.ok()) {
    head_.version = saved.version;
    head_.digest = saved.digest;
    head_.audit = saved.audit;
    return s;
  }
  std::lock_guard lock(committed_mu_);
  committed_ = {head_.version, head_.audit};
  return s;
}

StateHeadView SqliteStateStore::seen() const {
  std::lock_guard lock(committed_mu_);
  return committed_;
}

}  // namespace moss::store
